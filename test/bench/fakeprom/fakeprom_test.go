package fakeprom

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
)

func TestParseLayout(t *testing.T) {
	l, err := ParseLayout("ns-[0-2]=3, other=5,ns-[1-1]=7")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.String(), "ns-0=3,ns-1=7,ns-2=3,other=5"; got != want {
		t.Errorf("layout = %s, want %s", got, want)
	}
	if l.Pods() != 18 {
		t.Errorf("pods = %d, want 18", l.Pods())
	}
	for _, bad := range []string{"", "ns", "ns=-1", "ns-[3-1]=2", "ns-[0-=2", "=3"} {
		if _, err := ParseLayout(bad); err == nil {
			t.Errorf("ParseLayout(%q) succeeded", bad)
		}
	}
}

// newClient serves s and returns promgate's own Prometheus client for it,
// so that the tests check the wire format promgate actually reads.
func newClient(t *testing.T, s *Server, prefix string) *prom.Client {
	t.Helper()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	c, err := prom.New(prom.Options{URL: hs.URL + prefix, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func byLabels(vec model.Vector, names ...string) map[string]*model.Sample {
	out := map[string]*model.Sample{}
	for _, s := range vec {
		var k []string
		for _, n := range names {
			k = append(k, string(s.Metric[model.LabelName(n)]))
		}
		out[strings.Join(k, "/")] = s
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestQueries(t *testing.T) {
	layout, err := ParseLayout("ns-[0-1]=3,ns-2=2")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(NewModel(layout, Options{Nodes: 2, AppMetrics: 2, Queues: 3}), 0)
	c := newClient(t, s, "")
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 500_000_000)
	query := func(q string) model.Vector {
		t.Helper()
		vec, err := c.Query(ctx, q, now)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, smp := range vec {
			if smp.Timestamp.Time().Sub(now).Abs() > time.Millisecond {
				t.Fatalf("%s: timestamp %v, want %v", q, smp.Timestamp.Time(), now)
			}
		}
		return vec
	}

	// The custom provider's batched query: one sample per pod, across namespaces.
	vec := query(`sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`)
	if len(vec) != 8 {
		t.Fatalf("got %d samples, want 8: %v", len(vec), vec)
	}
	got := byLabels(vec, "namespace", "pod")
	for _, k := range []struct {
		key string
		g   int
	}{{"ns-0/pod-0", 0}, {"ns-0/pod-2", 2}, {"ns-1/pod-0", 3}, {"ns-2/pod-1", 7}} {
		if s := got[k.key]; s == nil || !near(float64(s.Value), PodRPS(k.g)) {
			t.Errorf("%s = %v, want %v", k.key, s, PodRPS(k.g))
		}
	}
	if len(vec[0].Metric) != 2 {
		t.Errorf("labels %v, want only namespace and pod", vec[0].Metric)
	}
	// Unbatched, with a namespace and an escaped alternation; 5xx only.
	vec = query(`sum(rate(http_requests_total{namespace="ns-1",pod=~"pod\\-0|pod\\-2",code=~"5.."}[1m])) by (pod)`)
	got = byLabels(vec, "pod")
	if len(vec) != 2 || !near(float64(got["pod-2"].Value), PodRPS(5)*0.1) {
		t.Errorf("5xx query: %v", vec)
	}
	// Generic rule metric.
	vec = query(`sum(rate(app_metric_1_total{pod!=""}[1m])) by (namespace,pod)`)
	if got := byLabels(vec, "namespace", "pod"); len(vec) != 8 || !near(float64(got["ns-2/pod-0"].Value), AppRate(1, 6)) {
		t.Errorf("app metric: %v", vec)
	}

	// Resource rules of config/promgate.yaml: containers only, not pause nor pod cgroup.
	vec = query(`sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{namespace!="",pod!="",container!="",container!="POD",pod!=""}[1m]))`)
	if len(vec) != 8 {
		t.Fatalf("cpu: %d samples, want 8", len(vec))
	}
	if s := byLabels(vec, "namespace", "pod", "container")["ns-1/pod-1/c-0"]; s == nil || !near(float64(s.Value), ContainerCPU(4)) {
		t.Errorf("cpu ns-1/pod-1 = %v, want %v", s, ContainerCPU(4))
	}
	vec = query(`sum by (namespace,pod,container) (container_memory_working_set_bytes{namespace="ns-0",pod=~"pod\\-1|pod\\-2",container!="",container!="POD",pod!=""})`)
	if s := byLabels(vec, "pod")["pod-2"]; len(vec) != 2 || s == nil || !near(float64(s.Value), ContainerMemory(2)) {
		t.Errorf("memory: %v", vec)
	}
	vec = query(`sum by (node) (rate(container_cpu_usage_seconds_total{node!="",id="/"}[1m]))`)
	if s := byLabels(vec, "node")["kwok-node-1"]; len(vec) != 2 || s == nil || !near(float64(s.Value), NodeCPU(1)) {
		t.Errorf("node cpu: %v", vec)
	}

	// External rule: raw series, labels kept.
	vec = query(`queue_messages_unacked{namespace="ns-1",queue="q-2"}`)
	if len(vec) != 1 || !near(float64(vec[0].Value), QueueValue(1, 1, 2)) || vec[0].Metric["__name__"] != "queue_messages_unacked" || vec[0].Metric["queue"] != "q-2" {
		t.Errorf("queue: %v", vec)
	}
	if vec := query(`queue_consumers{}`); len(vec) != 9 {
		t.Errorf("all queues: %d samples, want 9", len(vec))
	}

	// Unsupported PromQL is an error, not a wrong answer.
	if _, err := c.Query(ctx, `sum(a) / sum(b)`, now); err == nil {
		t.Error("binary expression: want an error")
	}

	st := s.Snapshot()
	if st.Queries != 9 || st.ByQuery[`queue_consumers{}`] != 1 || st.Errors != 1 {
		t.Errorf("stats: queries %d errors %d byQuery %v", st.Queries, st.Errors, st.ByQuery)
	}
	s.Reset()
	if st := s.Snapshot(); st.Queries != 0 || len(st.ByQuery) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func countSeries(t *testing.T, c *prom.Client, match string) (int, map[string]int) {
	t.Helper()
	n := 0
	names := map[string]int{}
	err := c.Series(context.Background(), match, time.Now().Add(-time.Minute), time.Now(), func(name string, lbls []prom.Label) {
		n++
		names[name]++
		if name == "" || len(lbls) == 0 {
			t.Fatalf("series without name or labels: %q %v", name, lbls)
		}
	})
	if err != nil {
		t.Fatalf("%s: %v", match, err)
	}
	return n, names
}

func TestSeries(t *testing.T) {
	layout, _ := ParseLayout("ns-[0-1]=5")
	s := NewServer(NewModel(layout, Options{AppMetrics: 3, Queues: 2}), 0)
	c := newClient(t, s, "")
	// The selectors of config/promgate.yaml.
	if n, _ := countSeries(t, c, `http_requests_total{namespace!="",pod!=""}`); n != 20 {
		t.Errorf("http_requests_total: %d series, want 20", n)
	}
	n, names := countSeries(t, c, `{__name__=~"^.+_total$",__name__!~"^(http_requests_total|container_.*)$",namespace!="",pod!=""}`)
	if n != 30 || len(names) != 3 || names["app_metric_2_total"] != 10 {
		t.Errorf("generic rule: %d series %v, want 30 of 3 names", n, names)
	}
	if n, names := countSeries(t, c, `{__name__=~"^queue_.+",namespace!=""}`); n != 16 || len(names) != 4 {
		t.Errorf("queues: %d series %v, want 16 of 4 names", n, names)
	}
	if st := s.Snapshot(); st.SeriesRequests != 3 || st.SeriesReturned != 66 {
		t.Errorf("stats: %+v", st)
	}
	// Model.Series counts everything.
	if n, _ := countSeries(t, c, `{__name__=~".+"}`); n != s.Model().Series() {
		t.Errorf("all series: %d, Model.Series() = %d", n, s.Model().Series())
	}
}

func TestUniverse(t *testing.T) {
	s := NewServer(NewModel(Layout{{Name: "a", Pods: 1}}, Options{}), 0)
	c := newClient(t, s, "/disco/12345/")
	n, names := countSeries(t, c, `{__name__=~"^.+_total$",__name__!~"^(http_requests_total|container_.*)$",namespace!="",pod!=""}`)
	if n != 12345 || len(names) != DiscoFamilies {
		t.Errorf("generic rule: %d series of %d names, want 12345 of %d", n, len(names), DiscoFamilies)
	}
	if n, _ := countSeries(t, c, `http_requests_total{namespace!="",pod!=""}`); n != 0 {
		t.Errorf("http_requests_total: %d series, want 0", n)
	}
}

func TestControl(t *testing.T) {
	s := NewServer(NewModel(Layout{{Name: "a", Pods: 1}}, Options{}), 0)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	post := func(path string) {
		t.Helper()
		resp, err := http.Post(hs.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
	}
	post("/control/layout?layout=ns-[0-9]=30&nodes=4")
	post("/control/latency?d=15ms")
	resp, err := http.Get(hs.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Layout, "ns-0=30,ns-1=30") || st.Latency != "15ms" || s.Model().Options().Nodes != 4 {
		t.Errorf("stats after control: %+v", st)
	}
	start := time.Now()
	if _, err := s.Model().Eval(`up`); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, "")
	if _, err := c.Query(context.Background(), `queue_consumers{}`, time.Now()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 15*time.Millisecond {
		t.Errorf("query took %v, want at least the 15ms latency", d)
	}
}

func TestFailures(t *testing.T) {
	layout, _ := ParseLayout("ns-0=3")
	const q = `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`
	for _, tc := range []struct {
		kind FailureKind
		want prom.Kind
	}{
		{FailUnavailable, prom.BadStatus},
		{FailTimeout, prom.Timeout},
		{FailTruncated, prom.InvalidResponse},
		{FailInvalid, prom.InvalidResponse},
		{FailWarning, prom.PartialResponse},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			s := NewServer(NewModel(layout, Options{}), 0)
			if err := s.SetFailures(Failures{Ratio: 1, Kinds: []FailureKind{tc.kind}, Hang: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(s.Handler())
			t.Cleanup(hs.Close)
			c, err := prom.New(prom.Options{URL: hs.URL, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Query(context.Background(), q, time.Now())
			if got := prom.KindOf(err); got != tc.want {
				t.Errorf("promgate's client saw %q (%v), want %q", got, err, tc.want)
			}
			if st := s.Snapshot(); st.Injected[string(tc.kind)] != 1 {
				t.Errorf("injected %v, want one %s", st.Injected, tc.kind)
			}
		})
	}
}

func TestFailureRatio(t *testing.T) {
	layout, _ := ParseLayout("ns-0=3")
	s := NewServer(NewModel(layout, Options{}), 0)
	c := newClient(t, s, "")
	kinds, err := ParseFailureKinds("503,invalid,warning")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetFailures(Failures{Ratio: 0.25, Kinds: kinds}); err != nil {
		t.Fatal(err)
	}
	const n = 800
	failed := 0
	for range n {
		if _, err := c.Query(context.Background(), `queue_consumers{}`, time.Now()); err != nil {
			failed++
		}
	}
	// 200 expected; 5 standard deviations (sqrt(800*0.25*0.75) ≈ 12.2) either side.
	if failed < 139 || failed > 261 {
		t.Errorf("%d of %d queries failed, want about 25%%", failed, n)
	}
	st := s.Snapshot()
	total := int64(0)
	for _, k := range kinds {
		total += st.Injected[string(k)]
		// The kinds are taken in turn: their counts differ by at most one.
		if d := st.Injected[string(k)] - int64(failed/len(kinds)); d < 0 || d > 1 {
			t.Errorf("injected %v: %s not about a third of %d", st.Injected, k, failed)
		}
	}
	if total != int64(failed) {
		t.Errorf("injected %v, %d in all; %d queries failed", st.Injected, total, failed)
	}
	if err := s.SetFailures(Failures{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), `queue_consumers{}`, time.Now()); err != nil {
		t.Errorf("with failures off: %v", err)
	}
	if err := s.SetFailures(Failures{Ratio: 1.5}); err == nil {
		t.Error("ratio 1.5 accepted")
	}
	if err := s.SetFailures(Failures{Ratio: 0.5, OversizeBytes: -1}); err == nil {
		t.Error("oversize of -1 bytes accepted")
	}
}

func TestParseFailureKinds(t *testing.T) {
	all := AllFailureKinds
	for _, tc := range []struct {
		spec    string
		want    []FailureKind
		wantErr bool
	}{
		{spec: "", want: all},
		{spec: "all", want: all},
		{spec: "all,oversize", want: append(append([]FailureKind(nil), all...), FailOversize)},
		{spec: "oversize", want: []FailureKind{FailOversize}},
		{spec: "503, oversize ,warning", want: []FailureKind{FailUnavailable, FailOversize, FailWarning}},
		{spec: "503,nope", wantErr: true},
		{spec: "timeouts", wantErr: true},
		{spec: "oversized", wantErr: true},
		{spec: "all,", wantErr: true},
	} {
		got, err := ParseFailureKinds(tc.spec)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParseFailureKinds(%q) = %v, want an error", tc.spec, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFailureKinds(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	// "all" is the classic five: the oversize kind is asked for by name.
	for _, k := range AllFailureKinds {
		if k == FailOversize {
			t.Error("AllFailureKinds holds oversize")
		}
	}
}

// An oversize failure's default is larger than promgate's client accepts
// at its defaults; an oversize answer past the client's limit is too large
// to it (the transfer is kept small: 3 MiB against a 1 MiB limit, so that a
// loaded machine does not turn it into a timeout).
func TestOversizeTooLarge(t *testing.T) {
	if DefaultOversizeBytes <= prom.DefaultMaxResponseBytes {
		t.Fatalf("oversize answers of %d bytes by default, not past promgate's %d", DefaultOversizeBytes, prom.DefaultMaxResponseBytes)
	}
	layout, _ := ParseLayout("ns-0=3")
	s := NewServer(NewModel(layout, Options{}), 0)
	if err := s.SetFailures(Failures{Ratio: 1, Kinds: []FailureKind{FailOversize}, OversizeBytes: 3 << 20}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, "").WithLimits(prom.Limits{MaxResponseBytes: 1 << 20})
	_, err := c.Query(context.Background(), `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`, time.Now())
	if prom.KindOf(err) != prom.TooLarge || !strings.Contains(prom.Summary(err), "too large") {
		t.Errorf("promgate's client saw %q (%v), want %q", prom.KindOf(err), err, prom.TooLarge)
	}
	if st := s.Snapshot(); st.Injected[string(FailOversize)] != 1 {
		t.Errorf("injected %v, want one oversize", st.Injected)
	}
}

// An oversize answer read to its end is a well-formed vector of the size
// asked for, streamed: the fake allocates a small part of it.
func TestOversizeAnswer(t *testing.T) {
	layout, _ := ParseLayout("ns-0=3")
	s := NewServer(NewModel(layout, Options{}), 0)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	get := func(size int64, body io.Writer) {
		t.Helper()
		if err := s.SetFailures(Failures{Ratio: 1, Kinds: []FailureKind{FailOversize}, OversizeBytes: size}); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(hs.URL + "/api/v1/query?query=" + url.QueryEscape(`queue_consumers{}`))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		if _, err := io.Copy(body, resp.Body); err != nil {
			t.Fatal(err)
		}
	}

	const size = 256 << 10
	var buf bytes.Buffer
	get(size, &buf)
	if n := buf.Len(); n < size || n > size+2<<10 {
		t.Errorf("answer of %d bytes, want %d and at most one sample more", n, size)
	}
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string         `json:"resultType"`
			Result     []model.Sample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(buf.Bytes(), &ans); err != nil {
		t.Fatalf("not valid JSON: %v", err)
	}
	pods := map[string]bool{}
	for _, smp := range ans.Data.Result {
		pods[string(smp.Metric["pod"])] = true
	}
	if ans.Status != "success" || ans.Data.ResultType != "vector" || len(ans.Data.Result) < 200 || len(pods) != len(ans.Data.Result) {
		t.Errorf("status %q, %s of %d samples, %d pods: want a vector of about 1 KiB samples, one per pod",
			ans.Status, ans.Data.ResultType, len(ans.Data.Result), len(pods))
	}

	// 32 MiB streamed: the server's allocations (with the client's, which
	// discards) stay a small part of it.
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var n countingWriter
	get(32<<20, &n)
	runtime.ReadMemStats(&after)
	if n < 32<<20 {
		t.Errorf("streamed %d bytes, want 32 MiB", n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("a 32 MiB answer allocated %d KiB: it is held, not streamed", alloc>>10)
	}
}

// countingWriter counts and discards what is written to it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// promgate's partial-window guard leaves the fake's answers as they are: its
// series have complete windows.
func TestGuardedQueries(t *testing.T) {
	layout, _ := ParseLayout("ns-[0-1]=3")
	m := NewModel(layout, Options{Nodes: 2, AppMetrics: 1, Queues: 2})
	for _, q := range []string{
		`sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`,
		`sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{namespace!="",pod!="",container!="",container!="POD",pod!=""}[1m]))`,
		`sum(increase(app_metric_0_total{namespace="ns-1"}[2m])) by (pod)`,
	} {
		expr, err := promql.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		guarded, ok := promql.RequireCompleteWindows(expr)
		if !ok || guarded.String() == expr.String() {
			t.Fatalf("%s: not guarded", q)
		}
		want, err := m.Eval(q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Eval(guarded.String())
		if err != nil {
			t.Fatalf("guarded %s: %v", q, err)
		}
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("guarded %s: %d samples, want the %d of the query itself", q, len(got), len(want))
		}
	}
	// Other binary expressions stay unsupported.
	for _, q := range []string{`up and (up == 2)`, `up and (up == bool 1)`, `up or (up == 1)`} {
		if _, err := m.Eval(q); err == nil {
			t.Errorf("%s: want an error", q)
		}
	}
}

// TestExposition parses /metrics with prometheus/common's text parser: every
// series of the model is there once, with the model's labels, counters at
// rate × age and gauges at their value.
func TestExposition(t *testing.T) {
	layout, err := ParseLayout("ns-[0-1]=3")
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel(layout, Options{Nodes: 2})
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	if err := m.WriteExposition(bw, 100*time.Second, Shard{}); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		n += len(f.GetMetric())
	}
	if n != m.Series() {
		t.Errorf("exposition holds %d series, the model %d", n, m.Series())
	}
	age := counterAge + 100.0
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"http_requests_total", map[string]string{"namespace": "ns-1", "pod": "pod-2", "code": "200", "service": AppName(2)}, PodRPS(5) * 0.9 * age},
		{"container_memory_working_set_bytes", map[string]string{"namespace": "ns-0", "pod": "pod-1", "container": "c-0"}, ContainerMemory(1)},
		{"queue_messages_ready", map[string]string{"namespace": "ns-1", "queue": QueueName(3)}, QueueValue(0, 1, 3)},
	} {
		f, ok := fams[tc.family]
		if !ok {
			t.Errorf("no family %s", tc.family)
			continue
		}
		found := false
		for _, mt := range f.GetMetric() {
			lbls := map[string]string{}
			for _, l := range mt.GetLabel() {
				lbls[l.GetName()] = l.GetValue()
			}
			match := true
			for k, v := range tc.labels {
				match = match && lbls[k] == v
			}
			if !match {
				continue
			}
			found = true
			got := mt.GetGauge().GetValue()
			if f.GetType() == dto.MetricType_COUNTER {
				got = mt.GetCounter().GetValue()
			}
			if !near(got, tc.want) {
				t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
			}
		}
		if !found {
			t.Errorf("%s%v missing", tc.family, tc.labels)
		}
	}
}

// TestExpositionShards scrapes /metrics as a real Prometheus would with
// per-target shard parameters: every series of the model is in exactly one
// shard, and the whole model (no parameters) is their union.
func TestExpositionShards(t *testing.T) {
	layout, err := ParseLayout("ns-[0-9]=3")
	if err != nil {
		t.Fatal(err)
	}
	m := NewModel(layout, Options{Nodes: 3})
	srv := httptest.NewServer(NewServer(m, 0).Handler())
	defer srv.Close()
	scrape := func(query string) map[string]bool {
		t.Helper()
		resp, err := http.Get(srv.URL + "/metrics" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics%s: %s", query, resp.Status)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for name, f := range fams {
			for _, mt := range f.GetMetric() {
				key := name
				for _, l := range mt.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				out[key] = true
			}
		}
		return out
	}
	whole := scrape("")
	if len(whole) != m.Series() {
		t.Fatalf("whole model: %d series, want %d", len(whole), m.Series())
	}
	const of = 4
	seen := map[string]int{}
	for i := 0; i < of; i++ {
		part := scrape(fmt.Sprintf("?shard=%d&of=%d", i, of))
		if len(part) == 0 || len(part) == len(whole) {
			t.Errorf("shard %d of %d holds %d of %d series", i, of, len(part), len(whole))
		}
		for k := range part {
			seen[k]++
		}
	}
	for k := range whole {
		if seen[k] != 1 {
			t.Errorf("%s is in %d shards, want 1", k, seen[k])
		}
	}
	if len(seen) != len(whole) {
		t.Errorf("the shards hold %d distinct series, the model %d", len(seen), len(whole))
	}
	for _, q := range []string{"?shard=4&of=4", "?shard=-1&of=2", "?of=2", "?shard=x&of=2"} {
		resp, err := http.Get(srv.URL + "/metrics" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /metrics%s: %s, want 400", q, resp.Status)
		}
	}
}

// TestUpstream puts a Server in front of another (standing in for a real
// Prometheus): queries and series are forwarded, as GET or POST, and
// counted by the front one.
func TestUpstream(t *testing.T) {
	layout, _ := ParseLayout("ns-0=2")
	back := httptest.NewServer(NewServer(NewModel(layout, Options{}), 0).Handler())
	defer back.Close()
	u, _ := url.Parse(back.URL)
	front := NewServer(NewModel(layout, Options{}), 0)
	front.SetUpstream(u)
	fs := httptest.NewServer(front.Handler())
	defer fs.Close()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		form := url.Values{"query": {`sum by (pod) (rate(http_requests_total{namespace="ns-0"}[1m]))`}}
		var resp *http.Response
		var err error
		if method == http.MethodGet {
			resp, err = http.Get(fs.URL + "/api/v1/query?" + form.Encode())
		} else {
			resp, err = http.PostForm(fs.URL+"/api/v1/query", form)
		}
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status string
			Data   struct{ Result []json.RawMessage }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || body.Status != "success" || len(body.Data.Result) != 2 {
			t.Errorf("%s through the front: %v %+v, want 2 samples", method, err, body)
		}
	}
	resp, err := http.Get(fs.URL + "/api/v1/series?" + url.Values{"match[]": {"http_requests_total"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"pod":"pod-1"`) {
		t.Errorf("series through the front: %s", b)
	}
	st := front.Snapshot()
	if st.Queries != 2 || st.SeriesRequests != 1 || st.Errors != 0 {
		t.Errorf("front counted %+v, want 2 queries and 1 series request", st)
	}
	if back := front.Snapshot(); back.QuerySeconds.N != 2 {
		t.Errorf("front timed %d queries, want 2", back.QuerySeconds.N)
	}
}

// Queries over 4 KiB (the hostile soak's, distinct and some 150 kB each)
// are counted under a short key; shorter ones under their text.
func TestQueryKey(t *testing.T) {
	short := `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`
	long := func(i int) string {
		return `sum(rate(http_requests_total{code=~"` + strings.Repeat("x", 5000) + strconv.Itoa(i) + `"}[1m]))`
	}
	for _, tc := range []struct {
		name string
		q    string
		same bool // counted under its own text
	}{
		{"short", short, true},
		{"at the bound", strings.Repeat("y", maxQueryKeyBytes), true},
		{"long", long(1), false},
	} {
		k := queryKey(tc.q)
		if (k == tc.q) != tc.same {
			t.Errorf("%s: key %.80q", tc.name, k)
		}
		if !tc.same && (len(k) > 160 || !strings.HasPrefix(k, tc.q[:64]) || !strings.Contains(k, strconv.Itoa(len(tc.q))+" bytes")) {
			t.Errorf("%s: key %q, want the start, the length and a hash", tc.name, k)
		}
	}
	if queryKey(long(1)) == queryKey(long(2)) {
		t.Error("two long queries share a key")
	}
	layout, _ := ParseLayout("ns-0=3")
	s := NewServer(NewModel(layout, Options{}), 0)
	c := newClient(t, s, "")
	for i := range 3 {
		q := `queue_consumers{queue=~"q-0|` + strings.Repeat("z", 5000) + strconv.Itoa(i) + `"}`
		if vec, err := c.Query(context.Background(), q, time.Now()); err != nil || len(vec) != 1 {
			t.Fatalf("long query: %v, %v", vec, err)
		}
	}
	st := s.Snapshot()
	size := 0
	for k := range st.ByQuery {
		size += len(k)
	}
	if len(st.ByQuery) != 3 || size > 3*160 {
		t.Errorf("byQuery: %d keys of %d bytes, want 3 short ones", len(st.ByQuery), size)
	}
	s.cacheMu.Lock()
	cached := s.cacheBytes
	s.cacheMu.Unlock()
	if cached < 15000 {
		t.Errorf("eval cache counts %d bytes of keys, want the 3 queries'", cached)
	}
}

// TestUpstreamIndex: in front of a real Prometheus, the label API (the
// index discovery reads) is passed through.
func TestUpstreamIndex(t *testing.T) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"status":"success","data":[%q]}`, r.URL.Path)
	}))
	defer back.Close()
	u, _ := url.Parse(back.URL)
	layout, _ := ParseLayout("ns-0=1")
	front := NewServer(NewModel(layout, Options{}), 0)
	front.SetUpstream(u)
	fs := httptest.NewServer(front.Handler())
	defer fs.Close()
	for _, path := range []string{"/api/v1/labels", "/api/v1/label/namespace/values"} {
		resp, err := http.Get(fs.URL + path + "?match[]=x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), path) {
			t.Errorf("GET %s through the front: %s %s", path, resp.Status, b)
		}
	}
}
