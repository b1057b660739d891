package provider_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/rules"
)

const hostileConfig = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (queue, namespace)'
`

// hostileBackend speaks Prometheus' HTTP API. A query that selects
// status="oversize" gets an answer of 256 MiB,
// streamed; every other query gets one sample per pod of a cluster of
// pods pods (the victim's among them), as a shared query would.
type hostileBackend struct {
	pods      int
	oversized atomic.Int64 // oversized answers begun
}

func (b *hostileBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	switch r.URL.Path {
	case "/api/v1/series":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success","data":[`+
			`{"__name__":"http_requests_total","namespace":"victim","pod":"v0"},`+
			`{"__name__":"queue_depth","namespace":"victim","queue":"q0"}]}`)
	case "/api/v1/query":
		q := r.Form.Get("query")
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(q, `"oversize"`) {
			b.oversized.Add(1)
			_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[`)
			chunk := []byte(`{"metric":{"namespace":"victim","pod":"` + strings.Repeat("p", 1000) + `"},"value":[1700000000,"1"]},`)
			for written := 0; written < 256<<20; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return // promgate hung up: what the limit is for
				}
			}
			_, _ = io.WriteString(w, `{"metric":{},"value":[1700000000,"1"]}]}}`)
			return
		}
		ts := float64(time.Now().UnixMilli()) / 1000
		var sb strings.Builder
		sb.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
		for i := range b.pods {
			if i > 0 {
				sb.WriteByte(',')
			}
			if strings.Contains(q, "queue") {
				fmt.Fprintf(&sb, `{"metric":{"namespace":"victim","queue":"q%d"},"value":[%.3f,"%d"]}`, i, ts, i)
			} else {
				fmt.Fprintf(&sb, `{"metric":{"namespace":"victim","pod":"v%d"},"value":[%.3f,"%d"]}`, i, ts, i)
			}
		}
		sb.WriteString(`]}}`)
		_, _ = io.WriteString(w, sb.String())
	default:
		http.NotFound(w, r)
	}
}

// TestHostileLoad is a hostile caller against promgate's request path, as
// production wires it (the real Prometheus client and its limits, one
// query engine, one memory budget, the partial-window guard on, answers
// shared): thousands of requests to the custom and external APIs, each
// with a distinct selector at the limits (100 values, 4 KiB), some with
// selectors over them, and some whose backend answer is 256 MiB. While
// they run, a victim polls its own metric.
//
// It asserts that every over-limit selector is a 400 and every oversized
// answer a 503 naming the backend and the limit; that the victim's every
// request is answered, with its values; and that the live heap never
// grows past the budget plus 64 MiB. The budget here is 32 MiB (production:
// --query-cache-max-bytes, 256 MiB); 64 MiB covers, beyond the budget's
// estimates, what requests in flight hold: a decoded answer and a guarded
// query each, for 8 workers. Before the limits, the guard's memo and the
// indexes kept what requests asked for beside the budget (hundreds of MiB
// for tens of requests), and one oversized series answer held 1 GiB.
func TestHostileLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("hostile load: seconds of CPU")
	}
	const (
		limit   = 32 << 20
		slack   = 64 << 20
		workers = 8
	)
	requests := 1500
	if raceEnabled {
		requests = 300 // the race detector makes each request many times dearer
	}

	backend := &hostileBackend{pods: 500}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)

	cfg, err := config.Parse([]byte(hostileConfig))
	if err != nil {
		t.Fatal(err)
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := prom.New(prom.Options{Name: "hostile", URL: srv.URL, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lc := client.WithLimits(prom.Limits{MaxResponseBytes: 4 << 20, MaxSamples: 100_000})
	b := budget.New(limit)
	eng := query.New(lc, query.Options{Backend: "hostile", TTL: time.Minute, Budget: b, MaxConcurrent: workers})
	mapper := kubetest.Mapper()
	disc := catalog.New(customRules, externalRules, catalog.Single(lc), mapper, time.Hour)
	disc.Refresh(context.Background())

	objects := &kubetest.Objects{}
	objects.Add(kubetest.Object{Resource: kubetest.Pods, Namespace: "victim", Name: "v7"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "victim", Name: "v8"})
	run := &provider.Runner{Backends: provider.Single(eng), Budget: b}
	cp := custom.New(disc, run, objects, mapper)
	cp.Batch = true
	ep := external.New(disc, run, mapper)
	ep.Batch = true

	podsInfo := cmprovider.CustomMetricInfo{GroupResource: kubetest.Pods, Namespaced: true, Metric: "http_requests_per_second"}
	queueInfo := cmprovider.ExternalMetricInfo{Metric: "queue_depth"}
	selector := func(key string, i, n, size int) labels.Selector {
		if size == 0 { // the backend answers this one with 256 MiB
			return labels.SelectorFromSet(labels.Set{key: "oversize"})
		}
		return kubetest.WideSelector(t, key, i, n, size)
	}

	base := heapInUse()
	var peak atomic.Int64
	var counts sync.Map // outcome -> *atomic.Int64
	count := func(k string) { v, _ := counts.LoadOrStore(k, new(atomic.Int64)); v.(*atomic.Int64).Add(1) }
	ctx := context.Background()
	attack := func(i int) {
		var err error
		switch {
		case i%50 == 7: // an oversized answer
			_, err = cp.GetMetricBySelector(ctx, "victim", labels.Everything(), podsInfo, selector("status", i, 1, 0))
			if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "too large") || !strings.Contains(err.Error(), "hostile") {
				t.Errorf("oversized answer: %v; want a 503 naming the backend and the limit", err)
			}
			count("503 too large")
			return
		case i%50 == 8: // a selector over the limits
			_, err = cp.GetMetricBySelector(ctx, "victim", labels.Everything(), podsInfo, selector("status", i, 8000, 12))
			if !apierrors.IsBadRequest(err) {
				t.Errorf("8,000-value selector: %v; want a 400", err)
			}
			count("400 over the limits")
			return
		case i%2 == 0:
			_, err = cp.GetMetricBySelector(ctx, "victim", labels.Everything(), podsInfo, selector("status", i, provider.MaxSelectorValues, 38))
		default:
			_, err = ep.GetExternalMetric(ctx, "victim", selector("queue", i, provider.MaxSelectorValues, 38), queueInfo)
		}
		if err != nil {
			t.Errorf("request %d at the limits: %v", i, err)
		}
		count("200 at the limits")
	}

	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				attack(i)
			}
		}()
	}
	// The victim, and the heap sampled, every 25 attacking requests.
	victim := 0
	for i := range requests {
		work <- i
		if i%25 == 0 {
			v, err := cp.GetMetricByName(ctx, types.NamespacedName{Namespace: "victim", Name: "v7"}, podsInfo, labels.Everything())
			if err != nil || v.Value.String() != "7" {
				t.Errorf("victim's request during the attack: %v, %v; want 7", v, err)
			}
			victim++
			peak.Store(max(peak.Load(), heapInUse()-base))
		}
	}
	close(work)
	wg.Wait()
	peak.Store(max(peak.Load(), heapInUse()-base))

	var summary []string
	counts.Range(func(k, v any) bool {
		summary = append(summary, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	t.Logf("%d requests in %v (%s), %d victim requests answered; %d oversized answers begun; live heap peak +%d MiB (bound %d MiB); budget holds %d MiB",
		requests, time.Since(start).Round(time.Millisecond), strings.Join(summary, ", "), victim, backend.oversized.Load(),
		peak.Load()>>20, (limit+slack)>>20, b.Bytes()>>20)
	for _, k := range []budget.Kind{budget.Answer, budget.Guarded, budget.Index, budget.Sharing} {
		by, n := b.Usage(k)
		t.Logf("budget: %s: %d entries, %d kB", k, n, by>>10)
	}
	if peak.Load() > limit+slack {
		t.Errorf("live heap grew by %d MiB, over the %d MiB budget plus %d MiB", peak.Load()>>20, limit>>20, slack>>20)
	}
	if b.Bytes() > limit {
		t.Errorf("the budget holds %d bytes, over its %d", b.Bytes(), limit)
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
