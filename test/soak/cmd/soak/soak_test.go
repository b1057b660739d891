package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/test/bench/fakeprom"
)

func TestQuarter(t *testing.T) {
	d := 4 * time.Minute
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {59 * time.Second, 1}, {time.Minute, 2}, {119 * time.Second, 2}, {3 * time.Minute, 4}, {d, 4}, {d + time.Second, 4}} {
		if got := quarter(tc.at, d); got != tc.want {
			t.Errorf("quarter(%v, %v) = %d, want %d", tc.at, d, got, tc.want)
		}
	}
}

// samples returns one sample every 10s of a 4-minute run, with goroutines
// and RSS given per quarter.
func samples(goroutines, rssMiB [4]float64) []sample {
	var out []sample
	for at := time.Duration(0); at <= 4*time.Minute; at += 10 * time.Second {
		q := quarter(at, 4*time.Minute) - 1
		out = append(out, sample{At: at, selfMetrics: selfMetrics{Goroutines: goroutines[q], RSSBytes: rssMiB[q] * (1 << 20)}})
	}
	return out
}

func TestJudge(t *testing.T) {
	rssC, gorC := criterion{Rel: 0.10}, criterion{Abs: 10}
	rss := func(m selfMetrics) float64 { return m.RSSBytes }
	gor := func(m selfMetrics) float64 { return m.Goroutines }
	for _, tc := range []struct {
		name           string
		goroutines     [4]float64
		rssMiB         [4]float64
		wantGor, wantR bool
	}{
		{"steady", [4]float64{100, 120, 121, 125}, [4]float64{80, 100, 104, 109}, true, true},
		{"warm-up growth is not counted", [4]float64{20, 120, 120, 120}, [4]float64{10, 100, 100, 100}, true, true},
		{"falling is flat", [4]float64{100, 150, 130, 110}, [4]float64{100, 120, 110, 90}, true, true},
		{"goroutine leak", [4]float64{100, 120, 140, 160}, [4]float64{100, 100, 100, 100}, false, true},
		{"RSS growth", [4]float64{100, 100, 100, 100}, [4]float64{100, 100, 110, 111}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := samples(tc.goroutines, tc.rssMiB)
			if g := judge("goroutines", s, 4*time.Minute, gorC, gor); g.Flat != tc.wantGor || !g.Judgable {
				t.Errorf("goroutines: %s, want flat=%v", g, tc.wantGor)
			}
			if r := judge("RSS", s, 4*time.Minute, rssC, rss); r.Flat != tc.wantR || !r.Judgable {
				t.Errorf("RSS: %s, want flat=%v", r, tc.wantR)
			}
		})
	}
	// A sample taken while a hung backend query holds requests is load, not a leak.
	s := samples([4]float64{110, 113, 113, 113}, [4]float64{100, 100, 100, 100})
	s[len(s)-3].Goroutines = 360
	if g := judge("goroutines", s, 4*time.Minute, gorC, gor); !g.Flat {
		t.Errorf("one spike: %s, want flat", g)
	}
	// Too few samples: inconclusive, hence not flat.
	few := []sample{{At: 0}, {At: 90 * time.Second}, {At: 4 * time.Minute}}
	if g := judge("goroutines", few, 4*time.Minute, gorC, gor); g.Judgable || g.Flat || !strings.Contains(g.String(), "INCONCLUSIVE") {
		t.Errorf("3 samples: %s", g)
	}
}

func TestParseSelfMetrics(t *testing.T) {
	body := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 104
go_memstats_heap_inuse_bytes 3.6e+07
go_gc_duration_seconds{quantile="0"} 1e-05
process_open_fds 17
process_resident_memory_bytes 1.02117376e+08
process_resident_memory_bytes_other 5
`
	m, err := parseSelfMetrics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Goroutines != 104 || m.RSSBytes != 1.02117376e+08 || m.HeapBytes != 3.6e7 || m.OpenFDs != 17 {
		t.Errorf("parsed %+v", m)
	}
	if _, err := parseSelfMetrics([]byte("go_goroutines 3\n")); err == nil || !strings.Contains(err.Error(), "process_resident_memory_bytes") {
		t.Errorf("without RSS: %v", err)
	}
}

func TestPlan(t *testing.T) {
	layout, err := fakeprom.ParseLayout("ns-[0-9]=100")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlanner(layout, "pods=2,external=1,resource=1", 12, 20)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	byAPI := map[string]int{}
	paths := map[string]bool{}
	for i := range n {
		r := p.at(i)
		byAPI[r.api]++
		paths[r.path] = true
		u, err := url.Parse(r.path)
		if err != nil {
			t.Fatal(err)
		}
		sel := u.Query().Get("labelSelector")
		switch r.api {
		case "pods", "resource":
			// pod j of a namespace has app=app-<j mod 20>: 100 pods, 5 per app.
			if !strings.HasPrefix(sel, "app=app-") || r.want != 5 {
				t.Fatalf("%s: selector %q, want %d", r.path, sel, r.want)
			}
		case "external":
			if !strings.HasPrefix(sel, "queue=q-") || r.want != 1 {
				t.Fatalf("%s: selector %q, want %d", r.path, sel, r.want)
			}
		}
	}
	if byAPI["pods"] != n/2 || byAPI["external"] != n/4 || byAPI["resource"] != n/4 {
		t.Errorf("requests by API: %v, want 2:1:1", byAPI)
	}
	// Consecutive requests of one API differ: many distinct queries, as many HPAs send.
	if len(paths) < 1000 {
		t.Errorf("%d distinct paths in %d requests", len(paths), n)
	}
	if a, b := p.at(0).api, p.at(1).api; a == b {
		t.Errorf("requests 0 and 1 both %s: the mix is not interleaved", a)
	}
	for _, bad := range []string{"pods=x", "nodes=1", "pods=0,external=0,resource=0", "pods"} {
		if _, err := newPlanner(layout, bad, 12, 20); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
}

func TestPodsWith(t *testing.T) {
	for _, tc := range []struct{ n, k, want int }{{100, 0, 5}, {100, 19, 5}, {10, 9, 1}, {10, 10, 0}, {21, 0, 2}, {21, 1, 1}, {0, 0, 0}} {
		if got := podsWith(tc.n, tc.k); got != tc.want {
			t.Errorf("podsWith(%d, %d) = %d, want %d", tc.n, tc.k, got, tc.want)
		}
	}
}

func TestHostilePlan(t *testing.T) {
	layout, err := fakeprom.ParseLayout("ns-[0-9]=100")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlanner(layout, "pods=2,external=1,resource=1,hostile=2", 12, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !p.hostile() {
		t.Fatal("the mix has a hostile share; hostile() = false")
	}
	model := fakeprom.NewModel(layout, fakeprom.Options{AppMetrics: 12, Queues: 20})
	const n = 1800
	byAPI := map[string]int{}
	selectors := map[string]bool{}
	over := 0
	for i := range n {
		r := p.at(i)
		byAPI[r.api]++
		if r.api != "hostile" {
			if r.overLimit {
				t.Fatalf("%s request %d over the limits", r.api, i)
			}
			continue
		}
		u, err := url.Parse(r.path)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		metric := u.Path[strings.LastIndex(u.Path, "/")+1:]
		if !strings.HasPrefix(u.Path, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-") || !strings.Contains(u.Path, "/pods/*/") ||
			!strings.HasPrefix(q.Get("labelSelector"), "app=app-") || r.want != 5 || r.marker != "describedObject" {
			t.Fatalf("%s: not a Pods request as the pods share's (want %d)", r.path, r.want)
		}
		raw := q.Get("metricLabelSelector")
		if selectors[raw] {
			t.Fatalf("request %d repeats a metricLabelSelector", i)
		}
		selectors[raw] = true
		if r.overLimit {
			over++
			if over > 3 { // parsing 8,000 values is slow under -race: a few suffice
				if strings.Count(raw, ",")+1 != overLimitValues {
					t.Fatalf("over-limit request %d: %d values, want %d", i, strings.Count(raw, ",")+1, overLimitValues)
				}
				continue
			}
		}
		sel, err := labels.Parse(raw)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		reqs, _ := sel.Requirements()
		values := reqs[0].Values().List()
		verr := provider.ValidSelector("metricLabelSelector", sel)
		if r.overLimit {
			if len(values) != overLimitValues || !apierrors.IsBadRequest(verr) {
				t.Fatalf("over-limit request %d: %d values, promgate's check: %v; want %d values and a 400", i, len(values), verr, overLimitValues)
			}
			continue
		}
		if verr != nil {
			t.Fatalf("at-limit request %d refused by promgate's check: %v", i, verr)
		}
		size := len(reqs[0].Key()) + len(reqs[0].Operator())
		for _, v := range values {
			size += len(v) + 1
		}
		key, value := metricLabel(metric)
		if len(reqs) != 1 || reqs[0].Key() != key || len(values) != provider.MaxSelectorValues ||
			size > provider.MaxSelectorBytes || size < provider.MaxSelectorBytes-100 || !reqs[0].Values().Has(value) {
			t.Fatalf("at-limit request %d: %d requirements on %q, %d values, %d bytes; want %s in (%s, ...) at %d values and about %d bytes",
				i, len(reqs), reqs[0].Key(), len(values), size, key, value, provider.MaxSelectorValues, provider.MaxSelectorBytes)
		}
		// The fake Prometheus answers it: every selected pod, as without it.
		if i < 60 {
			ns := u.Path[len("/apis/custom.metrics.k8s.io/v1beta2/namespaces/"):]
			ns = ns[:strings.IndexByte(ns, '/')]
			series := "http_requests_total"
			if metric != "http_requests_per_second" {
				series = strings.TrimSuffix(metric, "_per_second") + "_total"
			}
			app := strings.TrimPrefix(q.Get("labelSelector"), "app=")
			var pods []string
			for j := range 100 {
				if fakeprom.AppName(j) == app {
					pods = append(pods, fakeprom.PodName(j))
				}
			}
			query := fmt.Sprintf(`sum(rate(%s{namespace=%q,pod=~%q,%s=~%q}[1m])) by (pod)`, series, ns, strings.Join(pods, "|"), key, strings.Join(values, "|"))
			got, err := model.Eval(query)
			if err != nil || len(got) != r.want {
				t.Fatalf("request %d: the fake answers %d samples (%v), want %d", i, len(got), err, r.want)
			}
		}
	}
	if byAPI["hostile"] != n/3 || byAPI["pods"] != n/3 || byAPI["external"] != n/6 || byAPI["resource"] != n/6 {
		t.Errorf("requests by API: %v, want 2:1:1:2", byAPI)
	}
	if over != byAPI["hostile"]/overLimitEvery {
		t.Errorf("%d of %d hostile requests over the limits, want 1 in %d", over, byAPI["hostile"], overLimitEvery)
	}
	// The first turn of the mix (the requests that must succeed before the
	// load starts) is at the limits.
	for k := range p.cycle {
		if p.at(k).overLimit {
			t.Errorf("request %d of the first turn is over the limits", k)
		}
	}
	for _, tc := range []struct {
		mix  string
		ok   bool
		host bool
	}{
		{"hostile=1", true, true},
		{"pods=2,external=1,resource=1", true, false},
		{"pods=1,hostile=0", true, false},
		{"hostile=-1", false, false},
		{"hostiles=1", false, false},
	} {
		p, err := newPlanner(layout, tc.mix, 12, 20)
		if (err == nil) != tc.ok || (err == nil && p.hostile() != tc.host) {
			t.Errorf("mix %q: %v (want ok=%v hostile=%v)", tc.mix, err, tc.ok, tc.host)
		}
	}
}

func TestClassify(t *testing.T) {
	at := request{api: "hostile", marker: "describedObject", want: 2}
	over := request{api: "hostile", marker: "describedObject", want: 2, overLimit: true}
	pods := request{api: "pods", marker: "describedObject", want: 2}
	two := []byte(`{"items":[{"describedObject":{}},{"describedObject":{}}]}`)
	one := []byte(`{"items":[{"describedObject":{}}]}`)
	refused := []byte(`{"kind":"Status","code":400,"message":"metricLabelSelector has 8000 values; at most 100 are accepted (docs/security.md#request-limits)"}`)
	tooLarge := []byte(`{"kind":"Status","code":503,"message":"prometheus backend default: query failed: too large (64 MiB: --prometheus-max-response-bytes)"}`)
	for _, tc := range []struct {
		name  string
		r     request
		code  int
		body  []byte
		err   error
		class string
		// detail of classOther; flags
		detail                         string
		incomplete, large, unref, over bool
	}{
		{name: "at the limits, answered", r: at, code: 200, body: two, class: class2xx},
		{name: "at the limits, incomplete", r: at, code: 200, body: one, class: classOther, detail: "hostile: HTTP 200 with 1 items, want 2", incomplete: true},
		{name: "at the limits, 400", r: at, code: 400, body: refused, class: classOther, detail: "HTTP 400"},
		{name: "at the limits, too large", r: at, code: 503, body: tooLarge, class: class503, large: true},
		{name: "at the limits, 503", r: at, code: 503, body: []byte(`unavailable`), class: class503},
		{name: "at the limits, 500", r: at, code: 500, class: classOther, detail: "HTTP 500"},
		{name: "over the limits, refused", r: over, code: 400, body: refused, class: class400, over: true},
		{name: "over the limits, 400 without the limit", r: over, code: 400, body: []byte(`bad`), class: classOther, detail: "over-limit selector: HTTP 400 not naming the limit", over: true},
		{name: "over the limits, answered", r: over, code: 200, body: two, class: classOther, detail: "over-limit selector: HTTP 200, not refused", unref: true, over: true},
		{name: "over the limits, 503", r: over, code: 503, body: tooLarge, class: classOther, detail: "over-limit selector: HTTP 503", over: true},
		{name: "over the limits, timeout", r: over, err: context.DeadlineExceeded, class: classOther, detail: "over-limit selector: client timeout", over: true},
		{name: "pods, too large", r: pods, code: 503, body: tooLarge, class: class503, large: true},
		{name: "pods, 400", r: pods, code: 400, body: refused, class: classOther, detail: "HTTP 400"},
		{name: "pods, connection refused", r: pods, err: errors.New("dial tcp: connection refused"), class: classOther, detail: "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.r.classify(time.Millisecond, tc.code, tc.body, tc.err)
			if o.class != tc.class || o.detail != tc.detail || o.incomplete != tc.incomplete || o.tooLarge != tc.large || o.unrefused != tc.unref || o.overLimit != tc.over {
				t.Errorf("got %+v", o)
			}
		})
	}
}

func TestTallyHostile(t *testing.T) {
	a, b := newTally(), newTally()
	a.add(outcome{api: "hostile", class: class2xx})
	a.add(outcome{api: "hostile", class: class503, tooLarge: true})
	a.add(outcome{api: "hostile", class: class400, overLimit: true})
	b.add(outcome{api: "hostile", class: classOther, detail: "over-limit selector: HTTP 200, not refused", overLimit: true, unrefused: true})
	b.add(outcome{api: "pods", class: class503, tooLarge: true})
	b.add(outcome{api: "pods", class: class2xx})
	a.merge(b)
	want := map[string]map[string]int{
		atLimits:   {class2xx: 1, class503: 1},
		overLimits: {class400: 1, classOther: 1},
	}
	if !reflect.DeepEqual(a.hostile, want) || a.tooLarge != 2 || a.unrefused != 1 || a.requests() != 6 ||
		a.classes[class2xx] != 2 || a.classes[class400] != 1 || a.details["over-limit selector: HTTP 200, not refused"] != 1 {
		t.Errorf("merged tally: hostile %v, too large %d, unrefused %d, %d requests, classes %v, details %v",
			a.hostile, a.tooLarge, a.unrefused, a.requests(), a.classes, a.details)
	}
}

func TestParseBudget(t *testing.T) {
	body := `go_goroutines 104
process_resident_memory_bytes 4.5e+08
# HELP promgate_memory_budget_bytes Estimated memory kept within the budget, by kind.
# TYPE promgate_memory_budget_bytes gauge
promgate_memory_budget_bytes{kind="answer"} 1.048576e+06
promgate_memory_budget_bytes{kind="guarded"} 2.097152e+08
promgate_memory_budget_bytes{kind="sharing"} 3.145728e+06
promgate_memory_budget_entries{kind="answer"} 12
promgate_memory_budget_limit_bytes 2.68435456e+08
`
	m, err := parseSelfMetrics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	wantKinds := map[string]float64{"answer": 1 << 20, "guarded": 200 << 20, "sharing": 3 << 20}
	if m.BudgetBytes != 204<<20 || m.BudgetLimit != 256<<20 || !reflect.DeepEqual(m.BudgetByKind, wantKinds) {
		t.Errorf("budget %v of %v, by kind %v", m.BudgetBytes, m.BudgetLimit, m.BudgetByKind)
	}
	if _, err := parseSelfMetrics([]byte(body + `promgate_memory_budget_bytes{kind="index"} x` + "\n")); err == nil {
		t.Error("an unreadable budget value was accepted")
	}
	// Without a budget (an older promgate): zero, not an error.
	if m, err := parseSelfMetrics([]byte("go_goroutines 3\nprocess_resident_memory_bytes 5\n")); err != nil || m.BudgetBytes != 0 || m.BudgetByKind != nil {
		t.Errorf("without a budget: %+v, %v", m, err)
	}

	s := []sample{
		{At: time.Minute, selfMetrics: selfMetrics{RSSBytes: 300 << 20, BudgetBytes: 100 << 20, BudgetLimit: 256 << 20}},
		{At: 2 * time.Minute, selfMetrics: selfMetrics{RSSBytes: 400 << 20, BudgetBytes: 90 << 20, BudgetLimit: 256 << 20}},
		{At: 3 * time.Minute, selfMetrics: m},
	}
	p := peaksOf(s)
	if p.RSSBytes != 450e6 || p.RSSAt != 3*time.Minute || p.BudgetBytes != 204<<20 || p.BudgetAt != 3*time.Minute ||
		p.BudgetLimit != 256<<20 || p.BudgetByKind["guarded"] != 200<<20 {
		t.Errorf("peaks %+v", p)
	}
}

// Each run of the loader goes on with the plan: the measured load repeats
// none of the warm-up's requests (a hostile selector is never sent twice).
func TestLoaderGoesOn(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.RequestURI()]++
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	layout, _ := fakeprom.ParseLayout("ns-0=100")
	p, err := newPlanner(layout, "hostile=1", 12, 20)
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{t: target{base: srv.URL, client: srv.Client(), header: http.Header{}}, plan: p, rps: 400, maxInFlight: 100}
	l.run(context.Background(), 100*time.Millisecond)
	first := l.swap()
	l.run(context.Background(), 100*time.Millisecond)
	second := l.swap()
	if first.requests() != 40 || second.requests() != 40 || l.next != 80 {
		t.Errorf("%d and %d requests, next %d; want 40, 40 and 80", first.requests(), second.requests(), l.next)
	}
	for uri, n := range seen {
		if n > 1 {
			t.Errorf("sent %d times: %.100s", n, uri)
		}
	}
	if len(seen) != 80 {
		t.Errorf("%d distinct requests, want 80", len(seen))
	}
}

func TestPrintTotalsHostile(t *testing.T) {
	flat := trend{Name: "RSS", Q2: 100, Q4: 101, N2: 3, N4: 3, Limit: 110, Flat: true, Judgable: true}
	base := report{
		Target: "direct", Requests: 1000, hostile: true, TooLarge: 4,
		Classes: map[string]int{class2xx: 900, class503: 40, class400: 50, classOther: 10},
		Hostile: map[string]map[string]int{atLimits: {class2xx: 300, class503: 10}, overLimits: {class400: 50}},
		Trends:  []trend{flat, flat, flat},
		Peaks:   peaks{RSSBytes: 500 << 20, RSSAt: time.Minute, BudgetBytes: 255 << 20, BudgetAt: 2 * time.Minute, BudgetLimit: 256 << 20, BudgetByKind: map[string]float64{"guarded": 250 << 20, "answer": 5 << 20}},
		Pass:    true,
	}
	for _, tc := range []struct {
		name string
		edit func(*report)
		want []string
	}{
		{"pass", func(*report) {}, []string{
			"503 40 (4.00%), too large 4  400 expected 50 (5.00%)  other 10 (1.00%)",
			"hostile     selectors at the limits 310 (2xx 300, 503 10); over the limits 50 (400 expected 50)",
			"peaks       RSS 500.0 MiB (at 1m0s); memory budget 255.0 MiB of 256 MiB (at 2m0s: answer 5.0, guarded 250.0)",
			"soak verdict: PASS: RSS and goroutines ended flat; every 2xx answer was complete; no selector over the limits was answered",
		}},
		{"unrefused", func(r *report) { r.Unrefused, r.Pass = 2, false }, []string{"soak verdict: FAIL: 2 selectors over the limits answered"}},
		{"budget over", func(r *report) { r.Peaks.BudgetBytes = 256<<20 + 19786 }, []string{"memory budget 256.0 MiB of 256 MiB (at 2m0s: answer 5.0, guarded 250.0) over it by 19.3 KiB"}},
		{"not hostile", func(r *report) { r.hostile = false }, []string{"503 40 (4.00%)  other 10 (1.00%)", "every 2xx answer was complete\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			var b strings.Builder
			printTotals(&b, &r, time.Minute)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			if !r.hostile && strings.Contains(b.String(), "hostile") {
				t.Errorf("a soak without a hostile share reports one:\n%s", b.String())
			}
		})
	}
}
