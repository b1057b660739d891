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
	api  string // "pods", "external", "resource" or "hostile"
	path string
	// marker occurs once per item of the answer; want is the exact count.
	marker string
	want   int
	// overLimit: a hostile request whose metricLabelSelector is over
	// promgate's request limits, which must be refused with a 400.
	overLimit bool
}

// The APIs (shares of the mix), in the order the mix names them. hostile
// is the custom-metrics Pods API of pods with a distinct metricLabelSelector
// per request at promgate's request limits, and one in overLimitEvery
// over them (see planner.hostile).
var apis = []string{"pods", "external", "resource", "hostile"}

// promgate's request limits of a selector that becomes query matchers
// (pkg/provider: MaxSelectorValues, MaxSelectorBytes of keys, operators and
// values with a separator each). The hostile share's selectors are at them;
// TestHostileSelectors checks them against promgate's own check.
const (
	limitValues = 100
	limitBytes  = 4096
	// overLimitValues is how many values an over-limit selector has (as
	// pkg/provider's TestHostileLoad), each overLimitValueBytes long.
	overLimitValues     = 8000
	overLimitValueBytes = 12
	// overLimitEvery: hostile request h (the h-th of the share) is over
	// the limits when h % overLimitEvery == overLimitEvery-1.
	overLimitEvery = 20
)

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
	rank    []int    // of each slot: how many earlier slots of the turn have its api
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
		p.rank = append(p.rank, count(p.cycle, apis[best]))
		p.cycle = append(p.cycle, apis[best])
	}
	return p, nil
}

// count returns how many of xs are x.
func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// hostile reports whether the mix has a hostile share.
func (p *planner) hostile() bool { return p.weights[indexOf(apis, "hostile")] > 0 }

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

// metricLabel returns a label every series of a Pods metric of the fake
// Prometheus has, and its value there: a metricLabelSelector naming that
// value among others selects every pod's series (one of http_requests_total's
// two codes), so its answer has the same items as the pods share's.
func metricLabel(metric string) (key, value string) {
	if metric == "http_requests_per_second" {
		return "code", "200" // http_requests_total{code, namespace, pod, service}
	}
	return "job", "app" // app_metric_<m>_total{job, namespace, pod}
}

// atLimitSelector returns the metricLabelSelector of hostile request h: key
// in (value and limitValues-1 values of its own), the values padded so that
// the selector is as long as promgate accepts. No two requests share one.
func atLimitSelector(key, value string, h int) string {
	// key, "in", then each value and a separator (as promgate counts).
	room := limitBytes - len(key) - len("in") - (len(value) + 1)
	width := room/(limitValues-1) - 1
	vals := make([]string, 0, limitValues)
	vals = append(vals, value)
	for v := 1; v < limitValues; v++ {
		vals = append(vals, pad(fmt.Sprintf("h%d-%d-", h, v), width))
	}
	return key + " in (" + strings.Join(vals, ",") + ")"
}

// overLimitSelector returns the metricLabelSelector of hostile request h
// when it is over the limits: overLimitValues values.
func overLimitSelector(key string, h int) string {
	vals := make([]string, overLimitValues)
	for v := range vals {
		vals[v] = pad(fmt.Sprintf("o%d-%d-", h, v), overLimitValueBytes)
	}
	return key + " in (" + strings.Join(vals, ",") + ")"
}

// pad extends s with x to width bytes (a label value ends in an
// alphanumeric).
func pad(s string, width int) string {
	if len(s) >= width {
		return s + "x"
	}
	return s + strings.Repeat("x", width-len(s))
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
	case "hostile":
		// The pods share's walk, with a distinct metricLabelSelector: no
		// query, answer or sharing decision serves two requests. (The
		// hostile slots of one turn share j; h numbers them apart.)
		h := j*p.weights[indexOf(apis, api)] + p.rank[i%len(p.cycle)]
		k := (j / len(p.layout)) % fakeprom.AppLabelValues
		m := p.metrics[(j*7)%len(p.metrics)]
		key, value := metricLabel(m)
		sel.Set("labelSelector", "app="+fakeprom.AppName(k))
		r := request{api: api, marker: "describedObject", want: podsWith(ns.Pods, k)}
		if h%overLimitEvery == overLimitEvery-1 {
			r.overLimit = true
			sel.Set("metricLabelSelector", overLimitSelector(key, h))
		} else {
			sel.Set("metricLabelSelector", atLimitSelector(key, value, h))
		}
		r.path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns.Name + "/pods/*/" + m + "?" + sel.Encode()
		return r
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
	// class400 is a selector over the limits refused as it must be: a
	// 400 naming the limit.
	class400 = "400 expected"
)

// outcome is what one request got.
type outcome struct {
	api     string
	latency time.Duration
	class   string // class2xx, class503, class400 or classOther
	detail  string // for classOther: what it was
	// incomplete: a 2xx answer without the expected number of items.
	incomplete bool
	// tooLarge: a 503 saying a backend answer was too large.
	tooLarge bool
	// overLimit: the request's selector was over the limits; unrefused:
	// and it was answered 2xx.
	overLimit, unrefused bool
}

func (r request) do(ctx context.Context, t target) outcome {
	start := time.Now()
	code, body, err := t.get(ctx, r.path, "application/json")
	return r.classify(time.Since(start), code, body, err)
}

// classify judges an answer to r.
func (r request) classify(latency time.Duration, code int, body []byte, err error) outcome {
	o := outcome{api: r.api, latency: latency, overLimit: r.overLimit}
	switch {
	case err != nil:
		o.class, o.detail = classOther, classifyErr(err)
		if r.overLimit {
			o.detail = "over-limit selector: " + o.detail
		}
	case r.overLimit:
		// Refused before any query is built, whatever the backend does.
		switch {
		case code == 400 && bytes.Contains(body, []byte("at most")):
			o.class = class400
		case code >= 200 && code <= 299:
			o.class, o.detail, o.unrefused = classOther, fmt.Sprintf("over-limit selector: HTTP %d, not refused", code), true
		case code == 400:
			o.class, o.detail = classOther, "over-limit selector: HTTP 400 not naming the limit"
		default:
			o.class, o.detail = classOther, fmt.Sprintf("over-limit selector: HTTP %d", code)
		}
	case code == 503:
		o.class = class503
		o.tooLarge = bytes.Contains(body, []byte("too large"))
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

// classifyErr names a transport error.
func classifyErr(err error) string {
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
