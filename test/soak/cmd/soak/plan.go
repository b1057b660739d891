package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// request is one API call of the soak and the answer it must get when it
// succeeds.
type request struct {
	api  string // "pods", "external" or "resource"
	path string
	// marker occurs once per item of the answer; want is the exact count.
	marker string
	want   int
}

// The three APIs, in the order the mix names them.
var apis = []string{"pods", "external", "resource"}

// podsMetrics are the Pods metrics config/promgate.yaml serves from the
// fake Prometheus' series.
func podsMetrics(appMetrics int) []string {
	ms := []string{"http_requests_per_second"}
	for m := range appMetrics {
		ms = append(ms, fmt.Sprintf("app_metric_%d_per_second", m))
	}
	return ms
}

// planner builds the i-th request of the soak: the APIs in the proportions
// of weights, and within each API a walk over namespaces, label selectors
// and metrics, as many HPAs with different targets would send.
type planner struct {
	layout  fakeprom.Layout
	weights []int // per api
	metrics []string
	queues  int
	cycle   []string // api of each slot of one turn of the mix
}

func newPlanner(layout fakeprom.Layout, mix string, appMetrics, queues int) (*planner, error) {
	p := &planner{layout: layout, metrics: podsMetrics(appMetrics), queues: queues, weights: make([]int, len(apis))}
	if len(layout) == 0 || queues <= 0 {
		return nil, fmt.Errorf("need namespaces and queues")
	}
	for _, part := range strings.Split(mix, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		i := indexOf(apis, k)
		if !ok || err != nil || n < 0 || i < 0 {
			return nil, fmt.Errorf("--mix %q: want API=WEIGHT,... with APIs %v", mix, apis)
		}
		p.weights[i] = n
	}
	total := 0
	for _, w := range p.weights {
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("--mix %q: every weight is 0", mix)
	}
	// Smooth weighted round robin (as nginx spreads requests over
	// upstreams): each slot goes to the API with the most credit.
	credit := make([]int, len(apis))
	for range total {
		best := -1
		for i, w := range p.weights {
			credit[i] += w
			if w > 0 && (best < 0 || credit[i] > credit[best]) {
				best = i
			}
		}
		credit[best] -= total
		p.cycle = append(p.cycle, apis[best])
	}
	return p, nil
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// podsWith returns how many pods of a namespace of n pods have app=app-k.
func podsWith(n, k int) int {
	if k >= n {
		return 0
	}
	return (n-1-k)/fakeprom.AppLabelValues + 1
}

// at returns request i.
func (p *planner) at(i int) request {
	api := p.cycle[i%len(p.cycle)]
	j := i / len(p.cycle) // the how-manieth request of this turn position
	// Spread over namespaces first, then selectors and metrics, with
	// co-prime strides so that consecutive turns differ in all of them.
	ns := p.layout[j%len(p.layout)]
	sel := url.Values{}
	switch api {
	case "pods":
		k := (j / len(p.layout)) % fakeprom.AppLabelValues
		m := p.metrics[(j*7)%len(p.metrics)]
		sel.Set("labelSelector", "app="+fakeprom.AppName(k))
		return request{api: api, marker: "describedObject", want: podsWith(ns.Pods, k),
			path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns.Name + "/pods/*/" + m + "?" + sel.Encode()}
	case "external":
		q := (j / len(p.layout)) % p.queues
		m := fakeprom.QueueMetrics[(j*3)%len(fakeprom.QueueMetrics)]
		sel.Set("labelSelector", "queue="+fakeprom.QueueName(q))
		return request{api: api, marker: "metricName", want: 1,
			path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns.Name + "/" + m + "?" + sel.Encode()}
	default:
		k := (j / len(p.layout)) % fakeprom.AppLabelValues
		sel.Set("labelSelector", "app="+fakeprom.AppName(k))
		return request{api: api, marker: "containers", want: podsWith(ns.Pods, k),
			path: "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns.Name + "/pods?" + sel.Encode()}
	}
}

// outcome classes.
const (
	class2xx   = "2xx"
	class503   = "503"
	classOther = "other"
)

// outcome is what one request got.
type outcome struct {
	api     string
	latency time.Duration
	class   string // class2xx, class503 or classOther
	detail  string // for classOther: what it was
	// incomplete: a 2xx answer without the expected number of items.
	incomplete bool
}

func (r request) do(ctx context.Context, t target) outcome {
	start := time.Now()
	code, body, err := t.get(ctx, r.path, "application/json")
	o := outcome{api: r.api, latency: time.Since(start)}
	switch {
	case err != nil:
		o.class, o.detail = classOther, classify(err)
	case code == 503:
		o.class = class503
	case code < 200 || code > 299:
		o.class, o.detail = classOther, fmt.Sprintf("HTTP %d", code)
	default:
		// An answer is complete or an error: a 2xx with fewer items is a bug.
		if n := bytes.Count(body, []byte(`"`+r.marker+`"`)); n != r.want {
			o.class, o.detail, o.incomplete = classOther, fmt.Sprintf("%s: HTTP %d with %d items, want %d", r.api, code, n, r.want), true
		} else {
			o.class = class2xx
		}
	}
	return o
}

func classify(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "deadline exceeded"), strings.Contains(s, "Timeout"):
		return "client timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}
