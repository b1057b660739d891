package promql

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// isolateCases are queries a tenant of namespace team-a may write: the
// rewritten text for those let through, the construct named for those
// refused.
var isolateCases = []struct {
	name  string
	query string
	want  string // the rewritten query; empty: refused
	named string // refused: a part of the construct the error names
}{
	{name: "plain rate", query: `sum(rate(http_requests_total[2m]))`,
		want: `sum(rate(http_requests_total{namespace="team-a"}[2m]))`},
	{name: "its own namespace, kept", query: `queue_depth{namespace="team-a",queue="q1"}`,
		want: `queue_depth{namespace="team-a",queue="q1"}`},
	{name: "selector without a name", query: `{job="api"}`,
		want: `{job="api",namespace="team-a"}`},
	{name: "another namespace", query: `queue_depth{namespace="team-b"}`, named: `namespace="team-b"`},
	{name: "a regular expression on namespace", query: `sum(queue_depth{namespace=~"team-.*"})`, named: `namespace=~"team-.*"`},
	{name: "a regular expression matching only its own", query: `queue_depth{namespace=~"team-a"}`, named: `namespace=~"team-a"`},
	{name: "a negation on namespace", query: `queue_depth{namespace!="team-a"}`, named: `namespace!="team-a"`},
	{name: "two matchers, one disagreeing", query: `queue_depth{namespace="team-a",namespace="team-b"}`, named: `team-b`},
	{name: "the namespace matcher in a quoted name", query: `{"queue_depth","namespace"="team-b"}`, named: `team-b`},
	{name: "label_replace onto namespace", query: `label_replace(queue_depth, "namespace", "team-b", "", "")`, named: "label_replace"},
	{name: "label_replace onto another label", query: `label_replace(queue_depth, "ns", "$1", "namespace", "(.*)")`,
		want: `label_replace(queue_depth{namespace="team-a"}, "ns", "$1", "namespace", "(.*)")`},
	{name: "label_join onto namespace", query: `label_join(queue_depth, "namespace", "", "queue")`, named: "label_join"},
	{name: "count_values naming namespace", query: `count_values("namespace", queue_depth)`, named: "count_values"},
	{name: "count_values naming another label", query: `count_values("depth", queue_depth)`,
		want: `count_values("depth", queue_depth{namespace="team-a"})`},
	{name: "or with an unqualified side", query: `queue_depth{namespace="team-a"} or queue_depth`,
		want: `queue_depth{namespace="team-a"} or queue_depth{namespace="team-a"}`},
	{name: "or with another namespace's side", query: `queue_depth or queue_depth{namespace="team-b"}`, named: "team-b"},
	{name: "or with a number", query: `sum(queue_depth) or vector(0)`,
		want: `sum(queue_depth{namespace="team-a"}) or vector(0)`},
	{name: "subquery", query: `max_over_time(rate(http_requests_total[1m])[10m:1m])`,
		want: `max_over_time(rate(http_requests_total{namespace="team-a"}[1m])[10m:1m])`},
	{name: "subquery over another namespace", query: `max_over_time(rate(http_requests_total{namespace="team-b"}[1m])[10m:1m])`, named: "team-b"},
	{name: "offset and @", query: `rate(http_requests_total[5m] offset 1h) - rate(http_requests_total[5m] @ 1700000000)`,
		want: `rate(http_requests_total{namespace="team-a"}[5m] offset 1h) - rate(http_requests_total{namespace="team-a"}[5m] @ 1700000000.000)`},
	{name: "absent", query: `absent(queue_depth{queue="q1"})`,
		want: `absent(queue_depth{namespace="team-a",queue="q1"})`},
	{name: "group_left copying namespace", query: `queue_depth * on(queue) group_left(namespace) queue_limit`,
		want: `queue_depth{namespace="team-a"} * on (queue) group_left (namespace) queue_limit{namespace="team-a"}`},
	{name: "info", query: `info(rate(http_requests_total[1m]))`, named: "info"},
	{name: "a function promgate does not know", query: `max_of(queue_depth, queue_limit)`, named: "max_of"},
	{name: "does not parse", query: `sum(`, named: "query"},
}

// TestIsolate: what Isolate lets through reads only team-a's series, as
// the expected rewrite says and Isolated checks; what it refuses names the
// construct.
func TestIsolate(t *testing.T) {
	for _, tc := range isolateCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Isolate(tc.query, "namespace", "team-a")
			if tc.want == "" {
				var ie *IsolationError
				if !errors.As(err, &ie) {
					t.Fatalf("Isolate(%q) = %v, %v; want it refused", tc.query, got, err)
				}
				if !strings.Contains(ie.Construct, tc.named) && !strings.Contains(ie.Reason, tc.named) {
					t.Errorf("refused with %q, want it to name %q", err, tc.named)
				}
				return
			}
			if err != nil {
				t.Fatalf("Isolate(%q): %v", tc.query, err)
			}
			if got.String() != tc.want {
				t.Errorf("Isolate(%q) = %s, want %s", tc.query, got, tc.want)
			}
			if err := Isolated(got, "namespace", "team-a"); err != nil {
				t.Errorf("Isolated: %v", err)
			}
			assertPinned(t, got, "namespace", "team-a")
		})
	}
}

// TestIsolatedRefusesWhatIsolateRewrites: the check of a query as sent
// fails on each thing Isolate rewrites or refuses.
func TestIsolatedRefusesWhatIsolateRewrites(t *testing.T) {
	for _, q := range []string{
		`queue_depth`, `queue_depth{namespace="team-b"}`, `queue_depth{namespace=~"team-a"}`,
		`label_replace(queue_depth{namespace="team-a"}, "namespace", "x", "", "")`,
		`count_values("namespace", queue_depth{namespace="team-a"})`, `info(queue_depth{namespace="team-a"})`,
	} {
		expr, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		if Isolated(expr, "namespace", "team-a") == nil {
			t.Errorf("Isolated(%s) = nil, want an error", q)
		}
	}
}

// assertPinned fails unless every vector selector of expr has label="value"
// and no other matcher on label, and nothing in it writes label: whatever
// series it reads have label=value.
func assertPinned(t testing.TB, expr parser.Expr, label, value string) {
	t.Helper()
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			eq := 0
			for _, m := range n.LabelMatchers {
				if m.Name == label {
					if m.Type != labels.MatchEqual || m.Value != value {
						t.Errorf("%s: matcher %s", n, m)
					}
					eq++
				}
			}
			if eq == 0 {
				t.Errorf("%s: no %s=%q matcher", n, label, value)
			}
		case *parser.Call:
			if !isolatedFunctions[n.Func.Name] {
				t.Errorf("%s: function %s", n, n.Func.Name)
			}
			if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
				if s, ok := unparen(n.Args[1]).(*parser.StringLiteral); !ok || s.Val == label {
					t.Errorf("%s writes %s", n, label)
				}
			}
		case *parser.AggregateExpr:
			if n.Op == parser.COUNT_VALUES {
				if s, ok := unparen(n.Param).(*parser.StringLiteral); !ok || s.Val == label {
					t.Errorf("%s writes %s", n, label)
				}
			}
		}
		return nil
	})
}

// FuzzIsolate: whatever a tenant writes, a query Isolate lets through
// reads only series of the tenant's namespace, asserted on its syntax
// tree, and prints to a text that parses to the same tree.
func FuzzIsolate(f *testing.F) {
	for _, tc := range isolateCases {
		f.Add(tc.query)
	}
	for _, q := range []string{
		`sum by (namespace) (rate(x[1m])) / on(namespace) group_left sum(y)`,
		`topk(3, x) unless on(pod) y{namespace="team-a"}`,
		`histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`,
		`label_replace(x, "namespace", "$1", "ns", "(.*)") or x`,
		`absent_over_time(x{namespace=""}[5m])`,
		`scalar(x) * vector(time())`,
		`sort_by_label(x, "namespace")`,
		`{__name__=~"x|y"}`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		expr, err := Isolate(query, "namespace", "team-a")
		if err != nil {
			var ie *IsolationError
			if !errors.As(err, &ie) {
				t.Fatalf("Isolate(%q): %T %v, want an *IsolationError", query, err, err)
			}
			return
		}
		assertPinned(t, expr, "namespace", "team-a")
		text := expr.String()
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("Isolate(%q) printed %q, which does not parse: %v", query, text, err)
		}
		if again.String() != text {
			t.Fatalf("Isolate(%q) printed %q, which parses to %q", query, text, again)
		}
		assertPinned(t, again, "namespace", "team-a")
	})
}
