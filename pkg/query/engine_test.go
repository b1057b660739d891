package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/prom"
)

// fakeBackend counts queries and can block until released.
type fakeBackend struct {
	calls   atomic.Int64
	running atomic.Int64
	maxRun  atomic.Int64
	release chan struct{}
	err     error
}

func (f *fakeBackend) Query(ctx context.Context, q string, _ time.Time) (model.Vector, error) {
	f.calls.Add(1)
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRun.Load()
		if n <= m || f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return model.Vector{{Metric: model.Metric{"q": model.LabelValue(q)}, Value: 1}}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCoalescesIdenticalInFlightQueries(t *testing.T) {
	b := &fakeBackend{release: make(chan struct{})}
	e := New(b, Options{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := e.Query(context.Background(), "up", time.Time{})
			if err == nil && (len(v) != 1 || v[0].Metric["q"] != "up") {
				err = errors.New("wrong result")
			}
			errs <- err
		}()
	}
	// Let every caller join the one query in flight, then answer it.
	for b.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(b.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("backend saw %d queries for %d identical concurrent requests, want 1", got, n)
	}
}

func TestCacheTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	tests := []struct {
		name      string
		ttl       time.Duration
		advance   time.Duration
		wantCalls int64
	}{
		{"no cache", 0, 0, 2},
		{"within ttl", 5 * time.Second, 4 * time.Second, 1},
		{"after ttl", 5 * time.Second, 5 * time.Second, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &fakeBackend{}
			e := New(b, Options{TTL: tt.ttl, Now: clk.Now})
			if _, err := e.Query(context.Background(), "q", time.Time{}); err != nil {
				t.Fatal(err)
			}
			clk.Add(tt.advance)
			r, err := e.do(context.Background(), "q")
			if err != nil {
				t.Fatal(err)
			}
			if got := b.calls.Load(); got != tt.wantCalls {
				t.Errorf("backend calls = %d, want %d", got, tt.wantCalls)
			}
			if r.Cached != (tt.wantCalls == 1) {
				t.Errorf("Cached = %v", r.Cached)
			}
		})
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	b := &fakeBackend{err: errors.New("boom")}
	e := New(b, Options{TTL: time.Minute})
	for i := 0; i < 2; i++ {
		if _, err := e.Query(context.Background(), "q", time.Time{}); err == nil || err.Error() != "boom" {
			t.Fatalf("err = %v, want boom", err)
		}
	}
	if got := b.calls.Load(); got != 2 {
		t.Errorf("backend calls = %d, want 2 (errors must not be cached)", got)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	b := &fakeBackend{release: make(chan struct{})}
	e := New(b, Options{MaxConcurrent: 3})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.Query(context.Background(), "q"+string(rune('a'+i)), time.Time{})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(b.release)
	wg.Wait()
	if got := b.maxRun.Load(); got > 3 {
		t.Errorf("%d queries ran at once, limit 3", got)
	}
	if got := b.calls.Load(); got != 10 {
		t.Errorf("backend calls = %d, want 10", got)
	}
}

// stuckBackend holds every query until released, whatever its deadline.
type stuckBackend struct {
	calls   atomic.Int64
	release chan struct{}
}

func (b *stuckBackend) Query(context.Context, string, time.Time) (model.Vector, error) {
	b.calls.Add(1)
	<-b.release
	return nil, nil
}

func TestQueueFull(t *testing.T) {
	b := &stuckBackend{release: make(chan struct{})}
	defer close(b.release)
	e := New(b, Options{MaxConcurrent: 1, Timeout: 50 * time.Millisecond, Backend: "http://prom:9090"})
	go func() { _, _ = e.Query(context.Background(), "first", time.Time{}) }() // holds the only slot
	for b.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err := e.Query(context.Background(), "second", time.Time{})
	if prom.KindOf(err) != prom.QueueFull || prom.Summary(err) != "prometheus backend http://prom:9090: query failed: queue full" {
		t.Fatalf("err = %v (kind %q, summary %q), want a queue full prom.Error", err, prom.KindOf(err), prom.Summary(err))
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1: the queued query must not be sent", got)
	}
}

func TestCallerDeadlineDoesNotCancelSharedQuery(t *testing.T) {
	b := &fakeBackend{release: make(chan struct{})}
	e := New(b, Options{TTL: time.Minute, Backend: "http://prom:9090"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := e.Query(ctx, "q", time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) || prom.KindOf(err) != prom.Timeout ||
		prom.Summary(err) != "prometheus backend http://prom:9090: query failed: timeout" {
		t.Fatalf("err = %v (%q), want a deadline exceeded naming the backend", err, prom.Summary(err))
	}
	close(b.release)
	// The query kept running for others and its result is cached.
	if _, err := e.Query(context.Background(), "q", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want 1", got)
	}
}

func TestBackendTimeout(t *testing.T) {
	b := &fakeBackend{release: make(chan struct{})}
	defer close(b.release)
	e := New(b, Options{Timeout: 20 * time.Millisecond})
	start := time.Now()
	_, err := e.Query(context.Background(), "q", time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v, want about the 20ms timeout", d)
	}
}

func BenchmarkEngineCached(b *testing.B) {
	e := New(&fakeBackend{}, Options{TTL: time.Hour})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Query(ctx, `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// sizedBackend answers query "n" with n samples of one 100-byte label.
type sizedBackend struct{ calls atomic.Int64 }

func (b *sizedBackend) Query(_ context.Context, q string, _ time.Time) (model.Vector, error) {
	b.calls.Add(1)
	var n int
	_, _ = fmt.Sscanf(q, "%d", &n)
	vec := make(model.Vector, n)
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"pod": model.LabelValue(strings.Repeat("p", 100))}, Value: 1}
	}
	return vec, nil
}

func TestCacheMemoryBound(t *testing.T) {
	RegisterMetrics()
	one := budget.VectorSize((&sizedBackend{}).mustQuery(100)) + budget.EntryBytes + int64(len("test-")+len("100 a"))
	if one < 100*(100+40) || one > 100*400 {
		t.Fatalf("VectorSize of 100 samples of a 100-byte label = %d, not near the JSON and structures it keeps", one)
	}
	tests := []struct {
		name    string
		budget  int64
		queries []string // run in order
		again   string   // then this one
		cached  bool     // is it still cached?
		evicted int      // evictions before again
	}{
		{"fits", 12 * one, []string{"100 a", "100 b", "100 c"}, "100 a", true, 0},
		{"least recently used evicted", 9 * one / 2, []string{"100 a", "100 b", "100 c", "100 d", "100 e"}, "100 a", false, 1},
		{"recent use keeps it", 9 * one / 2, []string{"100 a", "100 b", "100 c", "100 d", "100 a", "100 e"}, "100 a", true, 1},
		{"recent use keeps it, the other goes", 9 * one / 2, []string{"100 a", "100 b", "100 c", "100 d", "100 a", "100 e"}, "100 b", false, 1},
		{"larger than a quarter of the budget is not cached", 3 * one, []string{"100 a"}, "100 a", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sizedBackend{}
			e := New(b, Options{TTL: time.Minute, MaxCacheBytes: tt.budget, Backend: "test-"})
			distinct := map[string]bool{}
			for _, q := range tt.queries {
				if _, err := e.Query(context.Background(), q, time.Time{}); err != nil {
					t.Fatal(err)
				}
				distinct[q] = true
			}
			bytes, entries := e.cache.Usage(budget.Answer)
			if bytes > tt.budget {
				t.Errorf("cache holds %d bytes, budget %d", bytes, tt.budget)
			}
			kept := 0 // what was put in: an answer over a quarter of the budget is not
			if tt.budget >= 4*one {
				kept = len(distinct)
			}
			if evicted := kept - int(entries); evicted != tt.evicted {
				t.Errorf("%d entries kept of %d, %d evicted; want %d evicted", entries, kept, evicted, tt.evicted)
			}
			r, err := e.do(context.Background(), tt.again)
			if err != nil {
				t.Fatal(err)
			}
			if r.Cached != tt.cached {
				t.Errorf("%s cached = %v, want %v", tt.again, r.Cached, tt.cached)
			}
			if bytes != int64(entries)*one {
				t.Errorf("accounting: %d bytes in %d entries of %d bytes", bytes, entries, one)
			}
		})
	}
}

func (b *sizedBackend) mustQuery(n int) model.Vector {
	v, _ := b.Query(context.Background(), fmt.Sprint(n), time.Time{})
	return v
}

func TestCacheExpiredEntriesDropped(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	e := New(&sizedBackend{}, Options{TTL: 5 * time.Second, Now: clk.Now})
	for _, q := range []string{"1 a", "1 b"} {
		if _, err := e.Query(context.Background(), q, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(6 * time.Second)
	if _, err := e.Query(context.Background(), "1 c", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, entries := e.cache.Usage(budget.Answer); entries != 1 {
		t.Errorf("after the TTL, the cache holds %d entries; want only the new one", entries)
	}
	if _, ok := e.lookup("1 c"); !ok {
		t.Error("the new entry is not cached")
	}
}
