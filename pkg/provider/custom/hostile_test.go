package custom

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/promql"
)

// placeholderCollisionFixed says promql.Build keeps a metric label value
// that contains its placeholder text (__promgate_v<N>__) as it is; the
// cases that need it are skipped until then.
const placeholderCollisionFixed = true

// invalidNames are object names no Kubernetes object has.
var invalidNames = []string{
	"",
	`a"`,
	`a"} or vector(1) #`,
	`a"}) or vector(1) #`,
	`a\`,
	"a\nb",
	".*",
	"a|b",
	"a b",
	"..",
	"a\u2028b",
	"\xff",
	"a/b",
	strings.Repeat("a", 254),
	strings.Repeat("x", 100_000),
}

// invalidNamespaces are namespaces no Kubernetes namespace has.
var invalidNamespaces = append([]string{
	"ns1.x", // a namespace is a DNS label: no dots
	"NS1",
	"ns1_x",
	"-ns1",
	strings.Repeat("n", 64),
}, invalidNames[1:]...)

// trickyNames are valid object names that are regex-like or long.
var trickyNames = []string{
	"ip-10-0-0-1.ec2.internal",
	"ip-10-0-0-11.ec2.internal",
	"a.b",
	"system:node:ip-10-0-0-1.ec2.internal", // names of the lenient alphabet
	"Web_1",
	strings.Repeat("a.", 126) + "z", // 253 bytes, the longest DNS subdomain
}

func TestHostileNamesAreRefusedBeforeAnyQuery(t *testing.T) {
	type call struct {
		name string
		run  func(p *Provider) error
	}
	var calls []call
	for _, n := range invalidNames {
		calls = append(calls,
			call{"pod " + n, func(p *Provider) error {
				_, err := p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns1", Name: n}, podsInfo, labels.Everything())
				return err
			}},
			call{"node " + n, func(p *Provider) error {
				_, err := p.GetMetricByName(context.Background(), types.NamespacedName{Name: n}, nodeInfo, labels.Everything())
				return err
			}},
			call{"namespace object " + n, func(p *Provider) error {
				_, err := p.GetMetricByName(context.Background(), types.NamespacedName{Name: n}, nsInfo, labels.Everything())
				return err
			}},
		)
	}
	for _, ns := range invalidNamespaces {
		calls = append(calls,
			call{"by name in namespace " + ns, func(p *Provider) error {
				_, err := p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: ns, Name: "a"}, podsInfo, labels.Everything())
				return err
			}},
			call{"by selector in namespace " + ns, func(p *Provider) error {
				_, err := p.GetMetricBySelector(context.Background(), ns, labels.Everything(), podsInfo, labels.Everything())
				return err
			}},
		)
	}
	// Metric label selectors PromQL cannot spell.
	for _, sel := range []string{"app.kubernetes.io/name=web", "code>500", "code<500", "a-b=c"} {
		calls = append(calls,
			call{"metricLabelSelector " + sel, func(p *Provider) error {
				_, err := p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns1", Name: "a"}, podsInfo, mustSelector(t, sel))
				return err
			}},
			call{"metricLabelSelector by selector " + sel, func(p *Provider) error {
				_, err := p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), podsInfo, mustSelector(t, sel))
				return err
			}},
		)
	}
	for _, batch := range []bool{false, true} {
		f := newFixture(t)
		f.p.Batch = batch
		for _, c := range calls {
			err := c.run(f.p)
			if !apierrors.IsBadRequest(err) {
				t.Errorf("%.120q (batch %v): error %v, want a 400", c.name, batch, err)
			}
			if q := f.srv.Queries(); len(q) > 0 {
				t.Errorf("%.120q (batch %v): queries were sent: %.300q", c.name, batch, q)
			}
			f.srv.Reset()
		}
	}
}

func TestTrickyNamesSelectExactlyThemselves(t *testing.T) {
	for _, batch := range []bool{false, true} {
		f := newFixture(t)
		f.p.Batch = batch
		for _, n := range trickyNames {
			f.objects.Add(
				kubetest.Object{Resource: kubetest.Pods, Namespace: "tricky-ns", Name: n},
				kubetest.Object{Resource: kubetest.Nodes, Name: n},
			)
		}
		longNS := strings.Repeat("n", 63)
		f.objects.Add(kubetest.Object{Resource: kubetest.Pods, Namespace: longNS, Name: "a.b"})

		type want struct {
			label  string
			values []string // nil: every non-empty value (a batched query)
		}
		type hostileCase struct {
			name  string
			run   func() error
			wants []want
		}
		tests := []hostileCase{
			{
				name: "pods of a namespace",
				run: func() error {
					_, err := f.p.GetMetricBySelector(context.Background(), "tricky-ns", labels.Everything(), podsInfo, labels.Everything())
					return err
				},
				wants: []want{{"namespace", []string{"tricky-ns"}}, {"pod", trickyNames}},
			},
			{
				name: "nodes",
				run: func() error {
					_, err := f.p.GetMetricBySelector(context.Background(), "", labels.Everything(), nodeInfo, labels.Everything())
					return err
				},
				wants: []want{{"node", append([]string{"n1", "n2"}, trickyNames...)}},
			},
			{
				name: "metric label selector values with dots",
				run: func() error {
					_, err := f.p.GetMetricBySelector(context.Background(), longNS, labels.Everything(), podsInfo, mustSelector(t, "code in (2.0,5-0),path=a.b"))
					return err
				},
				wants: []want{{"namespace", []string{longNS}}, {"pod", []string{"a.b"}}, {"code", []string{"2.0", "5-0"}}, {"path", []string{"a.b"}}},
			},
		}
		for _, n := range trickyNames {
			tests = append(tests,
				hostileCase{
					name: "pod " + n,
					run: func() error {
						_, err := f.p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "tricky-ns", Name: n}, podsInfo, labels.Everything())
						return err
					},
					wants: []want{{"namespace", []string{"tricky-ns"}}, {"pod", []string{n}}},
				},
				hostileCase{
					name: "node " + n,
					run: func() error {
						_, err := f.p.GetMetricByName(context.Background(), types.NamespacedName{Name: n}, nodeInfo, labels.Everything())
						return err
					},
					wants: []want{{"node", []string{n}}},
				},
			)
		}
		for _, tt := range tests {
			f.srv.Reset()
			// No fixture answers: the fake Prometheus refuses the query,
			// which is enough to read what was sent.
			_ = tt.run()
			sent := f.srv.Queries()
			if len(sent) != 1 {
				t.Errorf("%.80s (batch %v): %d queries sent, want 1", tt.name, batch, len(sent))
				continue
			}
			for _, w := range tt.wants {
				values := w.values
				if batch && (w.label == "pod" || w.label == "node" || w.label == "namespace") {
					values = nil // batched: every object, filtered afterwards
					if w.label == "namespace" {
						continue // grouped by, not matched
					}
				}
				for _, p := range selectionProblems(t, sent[0], w.label, values) {
					t.Errorf("%.80s (batch %v): %s", tt.name, batch, p)
				}
			}
		}
	}
}

// TestDottedNamesEndToEnd: the escaped alternation is the query sent, and
// a series of a name one dot away is not an answer.
func TestDottedNamesEndToEnd(t *testing.T) {
	f := newFixture(t)
	f.objects.Add(
		kubetest.Object{Resource: kubetest.Pods, Namespace: "tricky-ns", Name: "ip-10-0-0-1.ec2.internal"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "tricky-ns", Name: "ip-10-0-0-11.ec2.internal"},
	)
	query := `sum(rate(http_requests_total{namespace="tricky-ns",pod=~"ip-10-0-0-1\\.ec2\\.internal|ip-10-0-0-11\\.ec2\\.internal"}[1m])) by (pod)`
	f.srv.Vector(query, sample("1", "pod", "ip-10-0-0-1.ec2.internal"), sample("2", "pod", "ip-10-0-0-11.ec2.internal"))
	list, err := f.p.GetMetricBySelector(context.Background(), "tricky-ns", labels.Everything(), podsInfo, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	f.checkQueries(t, query)
	var got []string
	for _, it := range list.Items {
		got = append(got, it.DescribedObject.Name+"="+it.Value.String())
	}
	if want := "ip-10-0-0-1.ec2.internal=1 ip-10-0-0-11.ec2.internal=2"; strings.Join(got, " ") != want {
		t.Errorf("items %q, want %s", got, want)
	}
}

// TestMetricLabelValueHoldingPlaceholder: a metric label value that is
// Build's placeholder text must select itself, batched or not.
func TestMetricLabelValueHoldingPlaceholder(t *testing.T) {
	if !placeholderCollisionFixed {
		t.Skip("known bug: metricLabelSelector code=x__promgate_v1__x is sent as code=\"xns1x\"; batched, code in (x__promgate_v1__x,ok) as code=~\"ok|x(?:.+)x\"")
	}
	for _, batch := range []bool{false, true} {
		for _, sel := range []string{"code=x__promgate_v1__x", "code in (x__promgate_v1__x,ok)", "code in (x__promgate_v2__x,ok)"} {
			f := newFixture(t)
			f.p.Batch = batch
			_, _ = f.p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns1", Name: "a"}, podsInfo, mustSelector(t, sel))
			sent := f.srv.Queries()
			if len(sent) != 1 {
				t.Errorf("%s (batch %v): %d queries sent, want 1", sel, batch, len(sent))
				continue
			}
			want := []string{"x__promgate_v1__x"}
			switch sel {
			case "code in (x__promgate_v1__x,ok)":
				want = []string{"x__promgate_v1__x", "ok"}
			case "code in (x__promgate_v2__x,ok)":
				want = []string{"x__promgate_v2__x", "ok"}
			}
			for _, p := range selectionProblems(t, sent[0], "code", want) {
				t.Errorf("%s (batch %v): %s", sel, batch, p)
			}
		}
	}
}

// selectionProblems parses query and says how its matchers on label fail
// to select exactly values (every non-empty value when values is nil).
// A query without a matcher on label is a problem.
func selectionProblems(t *testing.T, query, label string, values []string) []string {
	t.Helper()
	expr, err := promql.Parse(query)
	if err != nil {
		return []string{"the query sent does not parse: " + err.Error()}
	}
	var out []string
	var found int
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != label {
				continue
			}
			found++
			out = append(out, matcherProblems(m, values)...)
		}
		return nil
	})
	if found == 0 {
		out = append(out, "no matcher on "+label+" in "+clip(query))
	}
	return out
}

func matcherProblems(m *plabels.Matcher, values []string) []string {
	if values == nil {
		if !m.Matches("anything") || m.Matches("") {
			return []string{clip(m.String()) + " does not select exactly every non-empty value"}
		}
		return nil
	}
	var out []string
	given := map[string]bool{}
	for _, v := range values {
		given[v] = true
		if !m.Matches(v) {
			out = append(out, clip(m.String())+" does not select "+clip(v))
		}
	}
	misses := []string{"", ".*", "x", strings.Join(values, "|")}
	for _, v := range values {
		misses = append(misses, v+"x", "x"+v, strings.ReplaceAll(v, ".", "x"), strings.ToUpper(v), v[:len(v)-1])
	}
	for _, miss := range misses {
		if !given[miss] && m.Matches(miss) {
			out = append(out, clip(m.String())+" also selects "+clip(miss))
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
