package query

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
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
			r, err := e.Do(context.Background(), "q")
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

func TestCallerDeadlineDoesNotCancelSharedQuery(t *testing.T) {
	b := &fakeBackend{release: make(chan struct{})}
	e := New(b, Options{TTL: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := e.Query(ctx, "q", time.Time{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
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
