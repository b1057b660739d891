package resource

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/pkg/promql"
)

// placedRules are testRules with the pod queries written with
// .LabelValuesByName, as some prometheus-adapter configs have them: their
// queries are not shared, but sent per namespace.
var placedRules = strings.NewReplacer(
	`{<<.LabelMatchers>>,container!="",container!="POD",pod!=""}`,
	`{namespace="<<.LabelValuesByName.namespace>>",pod=~"^<<.LabelValuesByName.pod>>$",container!="",container!="POD"}`,
).Replace(testRules)

// hostileNames are names an informer never holds; resource metrics get
// their objects from one, so nothing validates them: the queries must
// still select exactly them.
var hostileNames = []string{
	`a"`,
	`a"} or vector(1) #`,
	`a"}) or vector(1) #`,
	`a\`,
	"a\nb",
	".*",
	"a|b",
	"a\u2028b",
	"ip-10-0-0-1.ec2.internal",
	strings.Repeat("a.", 126) + "z",
	strings.Repeat("x", 100_000),
}

func TestHostilePodNamesSelectExactlyThemselves(t *testing.T) {
	type config struct {
		name  string
		rules string
		opts  Options
	}
	configs := []config{
		{"shared", testRules, Options{}},
		{"batched", testRules, Options{Batch: true}},
		{"per namespace", placedRules, Options{}},
	}
	var cases [][]*metav1.PartialObjectMetadata
	for _, n := range hostileNames {
		if len(n) > 1000 { // slow to compile with -race: two cases
			cases = append(cases,
				[]*metav1.PartialObjectMetadata{pod("default", n), pod("default", "web")},
				[]*metav1.PartialObjectMetadata{pod(n, "web")},
			)
			continue
		}
		cases = append(cases,
			[]*metav1.PartialObjectMetadata{pod("default", n)},
			[]*metav1.PartialObjectMetadata{pod("default", n), pod("default", "web")},
			[]*metav1.PartialObjectMetadata{pod(n, "web")},
			[]*metav1.PartialObjectMetadata{pod(n, n), pod("other", "web.v1")},
		)
	}
	for _, c := range configs {
		for _, pods := range cases {
			// The fake answers every query with the pods asked for and
			// their near misses.
			var cpu, mem []series
			for _, p := range pods {
				add := func(ns, name string) {
					cpu = append(cpu, ctr(ns, name, "app", "0.5"))
					mem = append(mem, ctr(ns, name, "app", mi20))
				}
				add(p.Namespace, p.Name)
				for _, n := range nearMisses(p.Name) {
					add(p.Namespace, n)
				}
				for _, ns := range nearMisses(p.Namespace) {
					add(ns, p.Name)
				}
			}
			f := &fakeProm{respond: byMetric(cpu, mem)}
			p, _ := newTestProvider(t, c.rules, c.opts, f)
			got, err := p.GetPodMetrics(pods...)
			what := c.name + " " + describePods(pods)
			if err != nil {
				t.Errorf("%s: %v", what, err)
				continue
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Namespace+"/"+m.Name)
			}
			var want []string
			for _, p := range pods {
				want = append(want, p.Namespace+"/"+p.Name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("%s: metrics for %.300q, want %.300q", what, names, want)
			}
			sent := f.sent()
			if len(sent) == 0 {
				t.Errorf("%s: no query sent", what)
			}
			byNamespace := map[string][]string{}
			for _, p := range pods {
				byNamespace[p.Namespace] = append(byNamespace[p.Namespace], p.Name)
			}
			if c.name == "per namespace" && len(sent) != 2*len(byNamespace) {
				t.Errorf("%s: %d queries sent, want one per resource and namespace", what, len(sent))
			}
			for _, text := range sent {
				q, err := promql.Parse(text)
				if err != nil {
					t.Errorf("%s: the query sent does not parse: %v", what, err)
					continue
				}
				namespaces := slices.Sorted(maps.Keys(byNamespace))
				var podNames []string
				if c.name == "per namespace" {
					// One namespace, exactly, and exactly its pods.
					for _, ns := range namespaces {
						if len(selectionProblems(q, "namespace", []string{ns}, false)) == 0 {
							podNames = byNamespace[ns]
						}
					}
					if podNames == nil {
						t.Errorf("%s: %.300s does not select exactly one of the namespaces", what, text)
						continue
					}
				} else {
					for _, ns := range namespaces {
						podNames = append(podNames, byNamespace[ns]...)
					}
					for _, problem := range selectionProblems(q, "namespace", namespaces, c.opts.Batch) {
						t.Errorf("%s: %s", what, problem)
					}
				}
				for _, problem := range selectionProblems(q, "pod", podNames, c.opts.Batch) {
					t.Errorf("%s: %s", what, problem)
				}
			}
		}
	}
}

// A name that is not valid UTF-8 is either sent escaped, selecting
// exactly itself, or refused without a query.
func TestInvalidUTF8PodName(t *testing.T) {
	for _, rules := range []string{testRules, placedRules} {
		for _, pods := range [][]*metav1.PartialObjectMetadata{
			{pod("default", "a\xff")},
			{pod("default", "a\xff"), pod("default", "b")},
			{pod("a\xff", "web")},
		} {
			f := &fakeProm{respond: byMetric(nil, nil)}
			p, _ := newTestProvider(t, rules, Options{}, f)
			_, err := p.GetPodMetrics(pods...)
			sent := f.sent()
			t.Logf("%s: %v, %d queries", describePods(pods), err, len(sent))
			var names []string
			for _, p := range pods {
				names = append(names, p.Name)
			}
			for _, text := range sent {
				if !utf8.ValidString(text) {
					t.Errorf("query with invalid UTF-8 sent: %q", text)
				}
				q, err := promql.Parse(text)
				if err != nil {
					t.Errorf("%s: the query sent does not parse: %v", describePods(pods), err)
					continue
				}
				for _, problem := range selectionProblems(q, "pod", names, false) {
					t.Errorf("%s: %s", describePods(pods), problem)
				}
				for _, problem := range selectionProblems(q, "namespace", []string{pods[0].Namespace}, false) {
					t.Errorf("%s: %s", describePods(pods), problem)
				}
			}
		}
	}
}

func TestHostileNodeNamesSelectExactlyThemselves(t *testing.T) {
	for _, batch := range []bool{false, true} {
		for _, n := range hostileNames {
			nodes := []string{n, "n1"}
			var cpu, mem []series
			for _, name := range nodes {
				for _, m := range append(nearMisses(name), name) {
					cpu = append(cpu, node(m, "0.5"))
					mem = append(mem, node(m, mi20))
				}
			}
			f := &fakeProm{respond: byMetric(cpu, mem)}
			p, _ := newTestProvider(t, testRules, Options{Batch: batch}, f)
			got, err := p.GetNodeMetrics(nodeObj(n), nodeObj("n1"))
			if err != nil {
				t.Errorf("node %.80q: %v", n, err)
				continue
			}
			var names []string
			for _, m := range got {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, nodes) {
				t.Errorf("node %.80q: metrics for %.300q", n, names)
			}
			for _, text := range f.sent() {
				q, err := promql.Parse(text)
				if err != nil {
					t.Errorf("node %.80q: the query sent does not parse: %v", n, err)
					continue
				}
				for _, problem := range selectionProblems(q, "node", nodes, batch) {
					t.Errorf("node %.80q (batch %v): %s", n, batch, problem)
				}
			}
			if len(f.sent()) != 2 {
				t.Errorf("node %.80q: %d queries sent, want 2", n, len(f.sent()))
			}
		}
	}
}

func describePods(pods []*metav1.PartialObjectMetadata) string {
	var b strings.Builder
	for _, p := range pods {
		s := p.Namespace + "/" + p.Name
		if len(s) > 60 {
			s = s[:60] + "..."
		}
		b.WriteString(strings.ReplaceAll(s, "\n", `\n`) + " ")
	}
	return b.String()
}

// nearMisses are values one step away from v.
func nearMisses(v string) []string {
	var out []string
	for _, n := range []string{"", "x", v + "x", "x" + v, strings.ReplaceAll(v, ".", "x"), strings.ToUpper(v), v[:len(v)-1], v + "|" + v} {
		if n != v {
			out = append(out, n)
		}
	}
	return out
}

// selectionProblems says how each selector's matchers on
// label, together, fail to select exactly values. With any, a selector
// may select more (a batched or namespace-wide query, filtered
// afterwards), but still all of values.
func selectionProblems(expr parser.Expr, label string, values []string, any bool) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		var ms []*plabels.Matcher
		for _, m := range vs.LabelMatchers {
			if m.Name == label {
				ms = append(ms, m)
			}
		}
		var problems []string
		switch {
		case any:
			for _, v := range values {
				if !selects(ms, v) {
					problems = append(problems, describeMatchers(ms)+" does not select "+v)
				}
			}
		default:
			problems = exactProblems(ms, values)
		}
		for _, p := range problems {
			if len(p) > 300 {
				p = p[:300] + "..."
			}
			out = append(out, p)
		}
		return nil
	})
	return out
}

// selects reports whether a series whose label has value v passes ms.
func selects(ms []*plabels.Matcher, v string) bool {
	for _, m := range ms {
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

func describeMatchers(ms []*plabels.Matcher) string {
	if len(ms) == 0 {
		return "no matcher"
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.String())
	}
	return strings.Join(parts, ",")
}

// exactProblems says how ms fail to select exactly values: each of them,
// none of their near misses.
func exactProblems(ms []*plabels.Matcher, values []string) []string {
	var out []string
	given := map[string]bool{}
	for _, v := range values {
		given[v] = true
		if !selects(ms, v) {
			out = append(out, describeMatchers(ms)+" does not select "+v)
		}
	}
	misses := []string{".*", "anything", strings.Join(values, "|")}
	for _, v := range values {
		misses = append(misses, nearMisses(v)...)
	}
	for _, miss := range misses {
		if !given[miss] && selects(ms, miss) {
			out = append(out, describeMatchers(ms)+" also selects "+miss)
		}
	}
	return out
}
