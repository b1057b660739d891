package workload

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
)

// gatherers are the two ways of publishing a model: a registry holding a
// Collector, and the direct Gatherer that /metrics uses.
var gatherers = []struct {
	name string
	new  func(*Model) prometheus.Gatherer
}{
	{"collector", func(m *Model) prometheus.Gatherer { return NewRegistry(m) }},
	{"gatherer", Gatherer},
}

// scrape GETs /metrics from a promhttp handler of g over HTTP, as Prometheus
// does (asking for the text format), and decodes it with expfmt.
func scrape(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("format %q, want text", format)
	}
	dec := expfmt.NewDecoder(resp.Body, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		fams[mf.GetName()] = mf
	}
	return fams
}

// seriesKey renders a metric's labels as name{k="v",...} with sorted keys,
// leaving out empty values as Prometheus does on ingestion.
func seriesKey(name string, m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		if l.GetValue() != "" {
			parts = append(parts, l.GetName()+"="+`"`+l.GetValue()+`"`)
		}
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

func TestScrape(t *testing.T) {
	for _, g := range gatherers {
		t.Run(g.name, func(t *testing.T) { testScrape(t, g.new) })
	}
}

func testScrape(t *testing.T, newGatherer func(*Model) prometheus.Gatherer) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	p := testPod("shop", "web-1", "web", map[string]string{
		AnnotationRPS:           "8",
		AnnotationErrorRatio:    "0.125",
		AnnotationCPU:           "250m",
		AnnotationMemory:        "100Mi",
		AnnotationSwap + ".app": "16Mi",
	}, "app", "side")
	m.UpsertPod(p)
	pending := testPod("shop", "pending", "web", nil, "app")
	pending.Status.Phase = corev1.PodPending
	m.UpsertPod(pending)
	m.UpsertNode(testNode("node-1", map[string]string{AnnotationSwap: "1Gi"}))
	m.SetQueue(QueueKey{Namespace: "shop", Queue: "orders"}, 42)
	m.SetIngress(IngressKey{Namespace: "shop", Service: "web"}, 5)
	clk.Advance(20 * time.Second)

	fams := scrape(t, newGatherer(m))
	wantTypes := map[string]dto.MetricType{
		MetricHTTPRequests:     dto.MetricType_COUNTER,
		MetricCPUUsage:         dto.MetricType_COUNTER,
		MetricMemoryWorkingSet: dto.MetricType_GAUGE,
		MetricMemoryUsage:      dto.MetricType_GAUGE,
		MetricMemorySwap:       dto.MetricType_GAUGE,
		MetricQueueMessages:    dto.MetricType_GAUGE,
		MetricIngressRequests:  dto.MetricType_COUNTER,
	}
	if len(fams) != len(wantTypes) {
		t.Errorf("families %d, want %d", len(fams), len(wantTypes))
	}
	got := map[string]float64{}
	for name, typ := range wantTypes {
		mf, ok := fams[name]
		if !ok {
			t.Fatalf("family %s missing", name)
		}
		if mf.GetType() != typ {
			t.Errorf("%s type %v, want %v", name, mf.GetType(), typ)
		}
		for _, met := range mf.GetMetric() {
			got[seriesKey(name, met)] = metricValue(met)
		}
	}

	const mi = 1 << 20
	podCg := "/kubepods/burstable/pod" + string(p.UID)
	appID, sideID, pauseID := ContainerID(p.UID, "app"), ContainerID(p.UID, "side"), ContainerID(p.UID, PauseContainer)
	cadv := func(metric, container, id, image, name string) string {
		labels := map[string]string{"container": container, "id": id, "image": image, "name": name, "namespace": "shop", "node": "node-1", "pod": "web-1"}
		if id == "/" {
			labels["namespace"], labels["pod"] = "", ""
		}
		var parts []string
		for k, v := range labels {
			if v != "" {
				parts = append(parts, k+`="`+v+`"`)
			}
		}
		sort.Strings(parts)
		return metric + "{" + strings.Join(parts, ",") + "}"
	}
	want := map[string]float64{
		`http_requests_total{code="200",namespace="shop",pod="web-1",service="web"}`:                   8 * 0.875 * 20,
		`http_requests_total{code="500",namespace="shop",pod="web-1",service="web"}`:                   8 * 0.125 * 20,
		`queue_messages_ready{namespace="shop",queue="orders"}`:                                        42,
		`nginx_ingress_controller_requests{ingress="web",namespace="shop",service="web",status="200"}`: 5 * 20,
	}
	for _, c := range []struct {
		container, id, image, name string
		cores                      float64
		ws, usage, swap            float64 // swap -1: none
	}{
		{"app", podCg + "/" + appID, "example.com/app:1", appID, 0.25, 100 * mi, 110 * mi, 16 * mi},
		{"side", podCg + "/" + sideID, "example.com/side:1", sideID, 0.25, 100 * mi, 110 * mi, -1},
		{PauseContainer, podCg + "/" + pauseID, PauseImage, pauseID, 0.005, 1 * mi, 11 * mi, -1},
		{"", podCg, "", "", 0.505, 201 * mi, 231 * mi, 16 * mi},
		{"", "/", "", "", 1.5, 3 << 30, 3<<30 + 10*mi, 1 << 30},
	} {
		if c.swap >= 0 {
			want[cadv(MetricMemorySwap, c.container, c.id, c.image, c.name)] = c.swap
		}
		want[cadv(MetricCPUUsage, c.container, c.id, c.image, c.name)] = c.cores * 20
		want[cadv(MetricMemoryWorkingSet, c.container, c.id, c.image, c.name)] = c.ws
		want[cadv(MetricMemoryUsage, c.container, c.id, c.image, c.name)] = c.usage
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("series %s missing", k)
			continue
		}
		approx(t, k, g, v)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s", k)
		}
	}

	// Hiding one container removes exactly its three series.
	m.SetHidden(AppKey{Namespace: "shop", App: "web"}, "side", true)
	n := 0
	for _, mf := range scrape(t, newGatherer(m)) {
		n += len(mf.GetMetric())
	}
	if n != len(want)-3 {
		t.Errorf("after hiding side: %d series, want %d", n, len(want)-3)
	}
}

// TestGathererMatchesCollector checks that the direct Gatherer publishes the
// very families, types, help texts, label sets (empty values included) and
// values that a registry holding the Collector does.
func TestGathererMatchesCollector(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	for i, app := range []string{"web", "web", "api", ""} {
		p := testPod("ns", fmt.Sprintf("p%d", i), app, map[string]string{AnnotationRPS: fmt.Sprint(i + 1), AnnotationErrorRatio: "0.5", AnnotationSwap + ".main": "8Mi"}, "main", "side")
		p.Spec.NodeName = fmt.Sprintf("node-%d", i%2)
		m.UpsertPod(p)
	}
	m.UpsertNode(testNode("node-0", nil))
	m.UpsertNode(testNode("node-1", map[string]string{AnnotationCPU: "2", AnnotationSwap: "1Gi"}))
	m.SetQueue(QueueKey{"ns", "q1"}, 1)
	m.SetQueue(QueueKey{"other", "q1"}, 2)
	m.SetIngress(IngressKey{"ns", "web"}, 3)
	m.SetIngress(IngressKey{"other", "api"}, 0)
	m.SetHidden(AppKey{"ns", "api"}, "side", true)
	clk.Advance(7 * time.Second)

	flatten := func(fams []*dto.MetricFamily) map[string]string {
		out := map[string]string{}
		for _, f := range fams {
			out[f.GetName()] = f.GetType().String() + " " + f.GetHelp()
			for _, met := range f.GetMetric() {
				var labels []string
				for _, l := range met.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				out[f.GetName()+"{"+strings.Join(labels, ",")+"}"] = fmt.Sprint(metricValue(met))
			}
		}
		return out
	}
	want, err := NewRegistry(m).Gather()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Gatherer(m).Gather()
	if err != nil {
		t.Fatal(err)
	}
	w, g := flatten(want), flatten(got)
	if len(w) < 50 {
		t.Fatalf("only %d entries from the collector", len(w))
	}
	for k, v := range w {
		if g[k] != v {
			t.Errorf("%s: gatherer %q, collector %q", k, g[k], v)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: only from the gatherer", k)
		}
	}
}

// BenchmarkGather measures one scrape's collection for the e2e world's large
// case: 3,000 pods of two containers on 100 nodes (~39k series).
func BenchmarkGather(b *testing.B) {
	m := NewModel(nil)
	for i := range 3000 {
		p := testPod("bench", fmt.Sprintf("pod-%d", i), fmt.Sprintf("app-%d", i%50), nil, "main", "side")
		p.Spec.NodeName = fmt.Sprintf("node-%d", i%100)
		m.UpsertPod(p)
	}
	for i := range 100 {
		m.UpsertNode(testNode(fmt.Sprintf("node-%d", i), nil))
	}
	for _, g := range gatherers {
		b.Run(g.name, func(b *testing.B) {
			gatherer := g.new(m)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gatherer.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
