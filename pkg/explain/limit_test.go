package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/klogtest"
	"github.com/promgate/promgate/pkg/prom"
)

// blockingLister is a backend whose series listings find nothing and
// end only when released or when their context ends.
type blockingLister struct {
	release chan struct{}
	started chan struct{}

	mu                    sync.Mutex
	inFlight, most, calls int
}

func newBlockingLister() *blockingLister {
	return &blockingLister{release: make(chan struct{}), started: make(chan struct{}, 100)}
}

func (l *blockingLister) Series(ctx context.Context, _ string, _, _ time.Time, _ prom.SeriesFunc) error {
	l.mu.Lock()
	l.inFlight++
	l.calls++
	l.most = max(l.most, l.inFlight)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
	}()
	l.started <- struct{}{}
	select {
	case <-l.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *blockingLister) stats() (inFlight, most, calls int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight, l.most, l.calls
}

// probing is a request whose report asks the backend for series: a
// metric no rule serves.
var probing = Request{Metric: "queue_nope", External: true}

// TestExplainConcurrencyLimit checks that explain's own backend calls
// are bounded: at most MaxConcurrent explanations ask at once, another
// waits at most QueueWait and its context, and a full limit is ErrBusy, a
// 429 of the handler.
func TestExplainConcurrencyLimit(t *testing.T) {
	t.Run("at most MaxConcurrent explanations ask the backends at once", func(t *testing.T) {
		f := newFixture(t)
		l := newBlockingLister()
		f.e.Backends = only(l)
		f.e.MaxConcurrent, f.e.QueueWait = 2, time.Minute
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Go(func() {
				_, err := f.e.Explain(context.Background(), probing)
				errs <- err
			})
		}
		<-l.started
		<-l.started
		time.Sleep(200 * time.Millisecond) // time for others to start, were they let
		if inFlight, _, _ := l.stats(); inFlight != 2 {
			t.Errorf("%d listings in flight, want 2", inFlight)
		}
		close(l.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("an explanation that waited its turn: %v", err)
			}
		}
		if _, most, calls := l.stats(); most != 2 || calls != 12 {
			t.Errorf("at most %d listings at once of %d, want 2 of 12 (two per explanation)", most, calls)
		}
	})

	t.Run("a full limit is ErrBusy after QueueWait, a 429 with Retry-After", func(t *testing.T) {
		f := newFixture(t)
		l := newBlockingLister()
		defer close(l.release)
		f.e.Backends = only(l)
		f.e.MaxConcurrent, f.e.QueueWait = 1, 50*time.Millisecond
		go func() { _, _ = f.e.Explain(context.Background(), probing) }()
		<-l.started

		start := time.Now()
		_, err := f.e.Explain(context.Background(), probing)
		if !errors.Is(err, ErrBusy) || time.Since(start) < 50*time.Millisecond || time.Since(start) > 5*time.Second {
			t.Errorf("after %s: %v, want ErrBusy after 50ms", time.Since(start), err)
		}

		s := newServer(t, f.e, allowAll())
		resp, body := s.getAs(t, "admin", explainURI(probing.Values().Encode()), "")
		var st metav1.Status
		_ = json.Unmarshal([]byte(body), &st)
		want := "explain: too many explanations are asking the backends for series: 1 already are, and none finished within 50ms; retry shortly"
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" ||
			st.Reason != metav1.StatusReasonTooManyRequests || st.Message != want || st.Details == nil || st.Details.RetryAfterSeconds != 1 {
			t.Errorf("%d Retry-After %q %+v\nwant 429, Retry-After 1, %q", resp.StatusCode, resp.Header.Get("Retry-After"), st, want)
		}
		if _, _, calls := l.stats(); calls != 1 {
			t.Errorf("%d listings, want only the first explanation's", calls)
		}
	})

	t.Run("the caller's context ends the wait and the listing", func(t *testing.T) {
		f := newFixture(t)
		l := newBlockingLister()
		defer close(l.release)
		f.e.Backends = only(l)
		f.e.MaxConcurrent, f.e.QueueWait = 1, time.Minute
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := f.e.Explain(ctx, probing)
			first <- err
		}()
		<-l.started

		waiting, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer stop()
		start := time.Now()
		if _, err := f.e.Explain(waiting, probing); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("after %s: %v, want the context's end", time.Since(start), err)
		}

		cancel() // the first caller goes away: its listing ends, its turn is free
		select {
		case <-first:
		case <-time.After(5 * time.Second):
			t.Fatal("the listing of a caller that went away goes on")
		}
		done := make(chan error, 1)
		go func() {
			_, err := f.e.Explain(context.Background(), probing)
			done <- err
		}()
		<-l.started
		l.release <- struct{}{} // recent
		l.release <- struct{}{} // older
		if err := <-done; err != nil {
			t.Errorf("after the turn was given back: %v", err)
		}
	})

	t.Run("a report without the series of every namespace asks nothing and takes no turn", func(t *testing.T) {
		f := newFixture(t)
		l := newBlockingLister()
		defer close(l.release)
		f.e.Backends = only(l)
		f.e.MaxConcurrent, f.e.QueueWait = 1, time.Minute
		go func() { _, _ = f.e.Explain(context.Background(), probing) }()
		<-l.started
		rep, err := f.e.Scoped(context.Background(), probing, Scope{Withheld: "withheld"})
		if err != nil || len(rep.Notes) != 1 || rep.Notes[0] != "withheld" {
			t.Errorf("%v %+v", err, rep)
		}
		if _, _, calls := l.stats(); calls != 1 {
			t.Errorf("%d listings, want only the first explanation's", calls)
		}
	})
}

// endlessLister has, for every selector, endless series named like the
// metric within the look-back and recent ones only when recent is set,
// each of another shape, and counts the series it handed out.
type endlessLister struct {
	recent bool
	maxAge time.Duration

	mu               sync.Mutex
	handed, listings int
	sawCanceled      int
}

func (l *endlessLister) Series(ctx context.Context, match string, start, end time.Time, fn prom.SeriesFunc) error {
	l.mu.Lock()
	l.listings++
	l.mu.Unlock()
	if end.Sub(start) <= l.maxAge && !l.recent {
		return nil
	}
	name := strings.TrimSuffix(match[strings.LastIndex(match, `__name__="`)+len(`__name__="`):], `"}`)
	for i := 0; i < 1_000_000; i++ {
		if ctx.Err() != nil {
			l.mu.Lock()
			l.sawCanceled++
			l.mu.Unlock()
			return &prom.Error{Backend: "b", Op: "series", Err: ctx.Err()}
		}
		l.mu.Lock()
		l.handed++
		l.mu.Unlock()
		fn(name, []prom.Label{{Name: fmt.Sprintf("l%d", i), Value: "v"}})
	}
	return nil
}

// TestExplainProbeBounded checks that a probe reads at most
// MaxProbeSeries series, and the look-back one series, abandoning the
// listing.
func TestExplainProbeBounded(t *testing.T) {
	t.Run("recent", func(t *testing.T) {
		f := newFixture(t)
		l := &endlessLister{recent: true, maxAge: f.e.MaxAge}
		f.e.Backends = only(l)
		f.e.MaxProbeSeries = 10
		rep, err := f.e.Explain(context.Background(), probing)
		if err != nil {
			t.Fatal(err)
		}
		if l.listings != 1 || l.handed > 11 || l.sawCanceled != 1 {
			t.Errorf("%d listings, %d series handed out, canceled %d times; want one listing abandoned after 10 series", l.listings, l.handed, l.sawCanceled)
		}
		var b strings.Builder
		_ = rep.WriteText(&b)
		if !strings.Contains(b.String(), "- ... and 7 more series shapes among the first 10 series (explain reads no more)\n") || len(rep.Notes) != 0 {
			t.Errorf("report:\n%s", b.String())
		}
	})
	t.Run("look-back", func(t *testing.T) {
		f := newFixture(t)
		l := &endlessLister{maxAge: f.e.MaxAge}
		f.e.Backends = only(l)
		rep, err := f.e.Explain(context.Background(), probing)
		if err != nil {
			t.Fatal(err)
		}
		if l.listings != 2 || l.handed > 2 || l.sawCanceled != 1 {
			t.Errorf("%d listings, %d series handed out, canceled %d times; want the look-back abandoned after one series", l.listings, l.handed, l.sawCanceled)
		}
		var b strings.Builder
		_ = rep.WriteText(&b)
		if !strings.Contains(b.String(), "- series queue_nope{l0} matched by its seriesQuery have no samples in the last 10m0s (--metrics-max-age), only within 24h0m0s: too old to be discovered\n") {
			t.Errorf("report:\n%s", b.String())
		}
	})
}

// failingLister fails every listing with err.
type failingLister struct{ err error }

func (l failingLister) Series(context.Context, string, time.Time, time.Time, prom.SeriesFunc) error {
	return l.err
}

// TestExplainBackendFailureText checks that a report names the backend
// and the kind of a failure, and that only the log has the backend's own
// text (which can name other namespaces' series).
func TestExplainBackendFailureText(t *testing.T) {
	const raw = `series of namespace payroll: {namespace="payroll",pod="salaries-0"}`
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"bad status", &prom.Error{Backend: "thanos", Op: "series", Err: &prom.KindError{Kind: prom.BadStatus, Code: 422, Err: errors.New(raw)}},
			"prometheus backend thanos: series failed: bad status (HTTP 422)"},
		{"timeout", &prom.Error{Backend: "thanos", Op: "series", Err: fmt.Errorf("%s: %w", raw, context.DeadlineExceeded)},
			"prometheus backend thanos: series failed: timeout"},
		{"too large", &prom.Error{Backend: "thanos", Op: "series", Err: &prom.KindError{Kind: prom.TooLarge, Err: errors.New(raw)}},
			"prometheus backend thanos: series failed: too large"},
		{"not a backend's error", errors.New(raw), "the backend failed: unreachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := klogtest.Capture(t, 0)
			f := newFixture(t)
			f.e.Backends = only(failingLister{err: tt.err})
			rep, err := f.e.Explain(context.Background(), probing)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			_ = rep.WriteText(&b)
			js, _ := json.Marshal(rep)
			want := `note: asking Prometheus for series named like the metric failed for seriesQuery {__name__=~"^queue_.*"}: ` + tt.want + "\n"
			if !strings.Contains(b.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, b.String())
			}
			for _, answer := range []string{b.String(), string(js)} {
				if strings.Contains(answer, "payroll") {
					t.Errorf("the answer holds the backend's text:\n%s", answer)
				}
			}
			klog.Flush()
			if !strings.Contains(log.String(), "payroll") {
				t.Errorf("the log lacks the backend's text:\n%s", log.String())
			}
		})
	}

	t.Run("discovery's failure, text and JSON", func(t *testing.T) {
		f := newFixture(t) // rules[2]'s seriesQuery fails with "boom"
		for _, req := range []Request{{}, {Metric: "app_requests_total", Resource: "pods", Namespace: "ns1"}} {
			rep, err := f.e.Explain(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			_ = rep.WriteText(&b)
			js, _ := json.Marshal(rep)
			for _, answer := range []string{b.String(), string(js)} {
				if strings.Contains(answer, "boom") || !strings.Contains(answer, "series failed; the backend's answer is in promgate's log") {
					t.Errorf("%+v: the answer:\n%s", req, answer)
				}
			}
		}
	})
}

func TestFailureTexts(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"prometheus backend http://p:9090: series failed: HTTP 500 Internal Server Error: payroll",
			"prometheus backend http://p:9090: series failed; the backend's answer is in promgate's log"},
		{"discovery method index: prometheus backend b: label values failed: payroll",
			"discovery method index: prometheus backend b: label values failed; the backend's answer is in promgate's log"},
		{`discovery method index: the lister of backend "b" does not read the index`,
			`discovery method index: the lister of backend "b" does not read the index`},
		{"", ""},
	} {
		if got := discoveryFailure(tt.in); got != tt.want {
			t.Errorf("discoveryFailure(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	pe := &prom.Error{Backend: "b", Op: "query", Err: &prom.KindError{Kind: prom.QueueFull, Err: errors.New("payroll")}}
	if got := planFailure(fmt.Errorf("planning: %w", pe)); got != "prometheus backend b: query failed: queue full" {
		t.Errorf("planFailure of a backend failure: %q", got)
	}
	if got := planFailure(apierrors.NewServiceUnavailable(prom.Summary(pe))); got != "prometheus backend b: query failed: queue full" {
		t.Errorf("planFailure of a status: %q", got)
	}
}

// only is the default backend, asked for series through l.
func only(l catalog.SeriesLister) map[string]ExplainBackend {
	return map[string]ExplainBackend{config.DefaultBackend: {Series: l}}
}
