package promql

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// sentinelCollisionFixed says Build keeps a request value that contains
// its own placeholder text (__promgate_v<N>__) as it is. Until it does,
// such values, which Kubernetes label values may be, are skipped here; the
// table below still lists them.
const sentinelCollisionFixed = true

// hostileShape is a documented prometheus-adapter template shape and the
// request parts it is rendered with.
type hostileShape struct {
	name string
	tmpl string
	// external: the parts are the metric selector and the namespace (no
	// objects), as the external provider passes them.
	external bool
	// shared: the objects are every object (AnyPart), as batched custom
	// queries select them.
	shared bool
	// literal is the index, among the query's string literals in Inspect
	// order, of the one that receives the objects' names; -1 for none.
	literal int
}

var hostileShapes = []hostileShape{
	{name: "default", tmpl: DefaultMetricsQuery, literal: -1},
	{name: "rate", tmpl: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`, literal: -1},
	{name: "LabelValuesByName", tmpl: `sum(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>",pod=~"<<.LabelValuesByName.pod>>"}) by (<<.GroupBy>>)`, literal: -1},
	{name: "index", tmpl: `sum(<<.Series>>{namespace="<<index .LabelValuesByName "namespace">>",pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>)`, literal: -1},
	{name: "LabelMatchers and anchored regex", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>,pod=~"^<<.LabelValuesByName.pod>>$"}) by (<<.GroupBy>>)`, literal: -1},
	{name: "LabelMatchers and regex", tmpl: `sum(rate(<<.Series>>{<<.LabelMatchers>>,pod=~"<<index .LabelValuesByName "pod">>"}[5m])) by (<<.GroupBy>>)`, literal: -1},
	{name: "label_replace literal", tmpl: `label_replace(sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>), "object", "<<.LabelValuesByName.pod>>", "", "")`, literal: 1},
	{name: "external", tmpl: `<<.Series>>{<<.LabelMatchers>>}`, external: true, literal: -1},
	{name: "external rate", tmpl: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (topic)`, external: true, literal: -1},
	{name: "shared default", tmpl: DefaultMetricsQuery, shared: true, literal: -1},
	{name: "shared anchored regex", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>,pod=~"^<<.LabelValuesByName.pod>>$"}) by (<<.GroupBy>>)`, shared: true, literal: -1},
}

// hostileInput is what a request controls: the namespace, the object
// names and one metric label selector value.
type hostileInput struct {
	ns    string
	names []string
	code  string
}

// parts is what a provider hands Build for in and shape s, in
// prometheus-adapter's order: the metric selector (code in (in.code, ok)
// for external rules and shared queries, code=in.code otherwise), the
// namespace, the objects.
func (s hostileShape) parts(in hostileInput) []Part {
	switch {
	case s.external:
		return []Part{OneOfPart("code", []string{in.code, "ok"}), EqualPart("namespace", in.ns)}
	case s.shared:
		return []Part{OneOfPart("code", []string{in.code, "ok"}), AnyPart("pod")}
	}
	return []Part{EqualPart("code", in.code), EqualPart("namespace", in.ns), OneOfPart("pod", in.names)}
}

// want is, per label the request selects on, the values the query must
// select exactly; a nil slice means every non-empty value.
func (s hostileShape) want(in hostileInput) map[string][]string {
	switch {
	case s.external:
		return map[string][]string{"code": {in.code, "ok"}, "namespace": {in.ns}}
	case s.shared:
		return map[string][]string{"code": {in.code, "ok"}, "pod": nil}
	}
	return map[string][]string{"code": {in.code}, "namespace": {in.ns}, "pod": in.names}
}

func benignInput(n int) hostileInput {
	in := hostileInput{ns: "benign-ns", code: "c200"}
	for i := range n {
		in.names = append(in.names, fmt.Sprintf("p%d", i))
	}
	return in
}

// checkBuild renders shape s for in and fails t unless the query sent
// selects exactly what in names, with the tree of the query rendered for
// benign values. An error from Build is accepted only for values PromQL
// cannot carry (invalid UTF-8), and then no query may come with it.
func checkBuild(t *testing.T, s hostileShape, in hostileInput) {
	t.Helper()
	tmpl := mustTemplate(s.tmpl)
	const series = "x"
	groupBy := []string{"pod"}
	if s.shared {
		groupBy = []string{"namespace", "pod"}
	}
	benign, err := tmpl.Build(Request{Series: series, Parts: s.parts(benignInput(len(in.names))), GroupBy: groupBy})
	if err != nil {
		t.Fatalf("%s: benign Build: %v", s.name, err)
	}
	q, err := tmpl.Build(Request{Series: series, Parts: s.parts(in), GroupBy: groupBy})
	if err != nil {
		if q.Text != "" || q.Expr != nil {
			t.Fatalf("%s: Build failed (%v) but returned the query %q", s.name, err, q.Text)
		}
		if !validUTF8(in) {
			return
		}
		t.Fatalf("%s: Build refused valid UTF-8 input %s: %v", s.name, describe(in), err)
	}
	if !q.Checked {
		t.Fatalf("%s: query %q was not checked", s.name, q.Text)
	}
	if q.Expr.String() != q.Text {
		t.Fatalf("%s: the tree returned prints %q, the text sent is %q", s.name, q.Expr.String(), q.Text)
	}
	expr, err := Parse(q.Text)
	if err != nil {
		t.Fatalf("%s: the query sent does not parse: %v\n%s", s.name, err, clip(q.Text))
	}
	if again := expr.String(); again != q.Text {
		t.Fatalf("%s: the query sent does not print back to itself:\n sent %s\n read %s", s.name, clip(q.Text), clip(again))
	}
	want := s.want(in)
	requestLabels := map[string]bool{}
	for l := range want {
		requestLabels[l] = true
	}
	gotShape, gotLiterals := skeleton(expr, requestLabels)
	wantShape, wantLiterals := skeleton(benign.Expr, requestLabels)
	if !slices.Equal(gotShape, wantShape) {
		t.Fatalf("%s: for %s the query's tree differs from the benign one:\n got %q\nwant %q\nquery %s",
			s.name, describe(in), gotShape, wantShape, clip(q.Text))
	}
	for i := range gotLiterals {
		w := wantLiterals[i]
		if i == s.literal {
			w = strings.Join(in.names, "|")
		}
		if gotLiterals[i] != w {
			t.Fatalf("%s: string literal %d is %q, want %q", s.name, i, clip(gotLiterals[i]), clip(w))
		}
	}
	selectors := 0
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		if vs.Name != series {
			t.Errorf("%s: selector of %q, want %q", s.name, vs.Name, series)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel {
				if m.Type != labels.MatchEqual || m.Value != series {
					t.Errorf("%s: matcher %s, want __name__=%q", s.name, m, series)
				}
				continue
			}
			values, ok := want[m.Name]
			if !ok {
				continue // the template's own matcher, compared by skeleton
			}
			checkSelects(t, s.name, m, values)
		}
		return nil
	})
	if w := len(benignSelectors(benign.Expr)); selectors != w || selectors == 0 {
		t.Errorf("%s: %d selectors, want %d", s.name, selectors, w)
	}
}

func benignSelectors(e parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// checkSelects fails t unless m matches exactly the given values.
func checkSelects(t *testing.T, shape string, m *labels.Matcher, values []string) {
	t.Helper()
	for _, p := range selectProblems(m, values) {
		t.Errorf("%s: %s", shape, p)
	}
}

// selectProblems says how m fails to match exactly the given values
// (every non-empty value when values is nil): each of them, and none of
// their near misses.
func selectProblems(m *labels.Matcher, values []string) []string {
	var out []string
	if values == nil {
		if !m.Matches("anything") || !m.Matches("ip-10-0-0-1.ec2.internal") || m.Matches("") {
			out = append(out, fmt.Sprintf("%s must select every non-empty value and no empty one", clip(m.String())))
		}
		return out
	}
	given := map[string]bool{}
	for _, v := range values {
		given[v] = true
		if !m.Matches(v) {
			out = append(out, fmt.Sprintf("%s does not select %q", clip(m.String()), clip(v)))
		}
	}
	for _, miss := range nearMisses(values) {
		if !given[miss] && m.Matches(miss) {
			out = append(out, fmt.Sprintf("%s selects %q, which the request did not name (it named %q)", clip(m.String()), clip(miss), clipAll(values)))
		}
	}
	return out
}

// TestSelectProblems shows that the near misses catch what an unescaped
// or misplaced value selects.
func TestSelectProblems(t *testing.T) {
	tests := []struct {
		typ    labels.MatchType
		value  string
		values []string
		ok     bool
	}{
		{labels.MatchRegexp, `a\.b|c`, []string{"a.b", "c"}, true},
		{labels.MatchEqual, "a.b", []string{"a.b"}, true},
		{labels.MatchRegexp, `a.b|c`, []string{"a.b", "c"}, false}, // unescaped dot
		{labels.MatchRegexp, `a\.b|c|.*`, []string{"a.b", "c"}, false},
		{labels.MatchRegexp, `.+`, []string{"a"}, false},
		{labels.MatchEqual, "a|b", []string{"a", "b"}, false}, // the joined text as a literal
		{labels.MatchRegexp, `(?:a|b)-[0-9]+`, []string{"a", "b"}, false},
		{labels.MatchRegexp, `a.*`, []string{"a"}, false},
		{labels.MatchRegexp, `(?i)abc`, []string{"abc"}, false},
		{labels.MatchRegexp, `ab?c`, []string{"abc"}, false},
		{labels.MatchNotEqual, "", []string{"a"}, false},
		{labels.MatchNotEqual, "", nil, true},
		{labels.MatchRegexp, ".*", nil, false},
	}
	for _, tt := range tests {
		m, err := labels.NewMatcher(tt.typ, "pod", tt.value)
		if err != nil {
			t.Fatal(err)
		}
		if p := selectProblems(m, tt.values); (len(p) == 0) != tt.ok {
			t.Errorf("selectProblems(%s, %q) = %q, want ok %v", m, tt.values, p, tt.ok)
		}
	}
}

// nearMisses are values a matcher for values must not select unless they
// are among them: each value extended, shortened, with a byte removed or
// changed, doubled, upper-cased; the values joined as a regex; wildcards;
// empty.
func nearMisses(values []string) []string {
	out := []string{"", ".*", ".+", "x", "anything", strings.Join(values, "|"), strings.Join(values, "")}
	for _, v := range values {
		out = append(out, v+"x", "x"+v, v+"\n", "\n"+v, v+v, strings.ToUpper(v), strings.ToLower(v))
		if v != "" {
			mid := len(v) / 2
			out = append(out, v[1:], v[:len(v)-1], v[:mid]+v[mid+1:], changeAt(v, 0), changeAt(v, len(v)-1), changeAt(v, mid))
		}
		// Each of the first few dots changed: a dot is a regex wildcard.
		for i, n := 0, 0; i < len(v) && n < 4; i++ {
			if v[i] == '.' {
				out = append(out, changeAt(v, i))
				n++
			}
		}
	}
	return out
}

// changeAt returns s with the byte at i changed to another printable one.
func changeAt(s string, i int) string {
	c := byte('x')
	if s[i] == 'x' {
		c = 'y'
	}
	return s[:i] + string(c) + s[i+1:]
}

// skeleton describes e node by node, in Inspect order, leaving out the
// values of matchers on request labels (checked by checkSelects) and of
// string literals (returned apart).
func skeleton(e parser.Expr, request map[string]bool) (shape, literals []string) {
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch x := n.(type) {
		case *parser.VectorSelector:
			ms := make([]string, 0, len(x.LabelMatchers))
			for _, m := range x.LabelMatchers {
				if request[m.Name] {
					ms = append(ms, m.Name+m.Type.String())
				} else {
					ms = append(ms, m.String())
				}
			}
			slices.Sort(ms)
			shape = append(shape, fmt.Sprintf("selector %s %q offset=%v at=%v/%v", x.Name, ms, x.OriginalOffset, x.Timestamp, x.StartOrEnd))
		case *parser.MatrixSelector:
			shape = append(shape, fmt.Sprintf("range %v", x.Range))
		case *parser.SubqueryExpr:
			shape = append(shape, fmt.Sprintf("subquery %v:%v offset=%v", x.Range, x.Step, x.OriginalOffset))
		case *parser.Call:
			shape = append(shape, fmt.Sprintf("call %s/%d", x.Func.Name, len(x.Args)))
		case *parser.AggregateExpr:
			shape = append(shape, fmt.Sprintf("aggregate %s without=%v %q", x.Op, x.Without, x.Grouping))
		case *parser.BinaryExpr:
			shape = append(shape, fmt.Sprintf("binary %s bool=%v %+v", x.Op, x.ReturnBool, x.VectorMatching))
		case *parser.StringLiteral:
			shape = append(shape, "string")
			literals = append(literals, x.Val)
		case *parser.NumberLiteral:
			shape = append(shape, "number "+x.String())
		case nil:
		default:
			shape = append(shape, fmt.Sprintf("%T", n))
		}
		return nil
	})
	return shape, literals
}

func validUTF8(in hostileInput) bool {
	return utf8.ValidString(in.ns) && utf8.ValidString(in.code) && !slices.ContainsFunc(in.names, func(s string) bool { return !utf8.ValidString(s) })
}

func collides(in hostileInput) bool {
	has := func(s string) bool { return strings.Contains(s, "__promgate_v") }
	return has(in.ns) || has(in.code) || slices.ContainsFunc(in.names, has)
}

func describe(in hostileInput) string {
	return fmt.Sprintf("namespace %q, names %q, code %q", clip(in.ns), clipAll(in.names), clip(in.code))
}

func clip(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%s...(%d bytes)", s[:200], len(s))
	}
	return s
}

func clipAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = clip(s)
	}
	return out
}

// hostileValues are values no request should be able to select more with.
var hostileValues = []string{
	`a"`,
	`a\`,
	`a\"`,
	"a\nb",
	`"}`,
	`a"} or vector(1) or x{y="`,
	`}) or vector(1) #`,
	`"}) or vector(1) #`,
	`a|b`,
	`|`,
	`.*`,
	`.+`,
	`^a$`,
	`a)|(.*`,
	`(?i)a`,
	`[a-z]+`,
	`\`,
	`$1`,
	"a\u2028b",
	"a\u2029b",
	"a\x00b",
	"\xff\xfe",
	"a\xc3",
	"ip-10-0-0-1.ec2.internal",
	"kube-system",
	"",
}

// collisionValues contain Build's own placeholder text; valid Kubernetes
// label values may.
var collisionValues = []string{
	"x__promgate_v0__x",
	"x__promgate_v1__x",
	"a__promgate_v2__a",
	"__promgate_v9__",
}

// hostileInputs puts each hostile value in every request position.
func hostileInputs(values []string) []hostileInput {
	var out []hostileInput
	for _, v := range values {
		out = append(out,
			hostileInput{ns: v, names: []string{"a"}, code: "200"},
			hostileInput{ns: "ns1", names: []string{v}, code: "200"},
			hostileInput{ns: "ns1", names: []string{v, "b"}, code: "200"},
			hostileInput{ns: "ns1", names: []string{"a", "b.c", v}, code: "200"},
			hostileInput{ns: "ns1", names: []string{"a"}, code: v},
			hostileInput{ns: v, names: []string{v, v + "-2"}, code: v},
		)
	}
	return out
}

// TestBuildHostile runs the fuzz target's checks on hostile inputs, so
// that every test run does.
func TestBuildHostile(t *testing.T) {
	values := append(slices.Clone(hostileValues), collisionValues...)
	for _, s := range hostileShapes {
		t.Run(s.name, func(t *testing.T) {
			for _, in := range hostileInputs(values) {
				if !sentinelCollisionFixed && collides(in) {
					continue
				}
				checkBuild(t, s, in)
			}
		})
	}
}

// longValue is a name of 100 kB; longDotted one with a dot every other
// byte, whose escaped alternation is slow to compile (half a second with
// -race), so it is tried on the shape with both kinds of pod matcher.
var (
	longValue  = strings.Repeat("x", 100_000)
	longDotted = strings.Repeat("a.", 50_000)
)

// TestBuildLongValues checks 100 kB values in every position.
func TestBuildLongValues(t *testing.T) {
	for _, s := range hostileShapes {
		for _, in := range []hostileInput{
			{ns: longValue, names: []string{"a"}, code: "200"},
			{ns: "ns1", names: []string{longValue, "b"}, code: "200"},
			{ns: "ns1", names: []string{"a"}, code: longValue},
		} {
			checkBuild(t, s, in)
		}
		if s.name == "LabelMatchers and anchored regex" { // both pod matchers
			checkBuild(t, s, hostileInput{ns: "ns1", names: []string{longDotted, "b"}, code: "200"})
		}
	}
}

// TestBuildPlaceholderCollision documents that a request value holding
// Build's placeholder text must select itself; skipped until Build does.
func TestBuildPlaceholderCollision(t *testing.T) {
	if !sentinelCollisionFixed {
		t.Skip("known bug: a value containing __promgate_v<N>__ is rewritten (code=x__promgate_v1__x is sent as code=\"x<namespace>x\")")
	}
	for _, s := range hostileShapes {
		t.Run(s.name, func(t *testing.T) {
			for _, in := range hostileInputs(collisionValues) {
				t.Run("", func(t *testing.T) { checkBuild(t, s, in) })
			}
		})
	}
}

// FuzzBuild renders every template shape with fuzzed request values and
// checks, on the parsed query, that it selects exactly them.
func FuzzBuild(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v, v, "b", "c", uint8(1), "200")
		f.Add("ns1", "a", v, "c", uint8(2), v)
	}
	f.Add(longValue, longValue, "b", "c", uint8(2), longValue)
	f.Add("ns1", "ip-10-0-0-1.ec2.internal", "ip-10-0-0-2.ec2.internal", "a.b", uint8(3), "2xx")
	f.Fuzz(func(t *testing.T, ns, n1, n2, n3 string, count uint8, code string) {
		in := hostileInput{ns: ns, names: []string{n1, n2, n3}[:1+count%3], code: code}
		if !sentinelCollisionFixed && collides(in) {
			t.Skip()
		}
		for _, s := range hostileShapes {
			checkBuild(t, s, in)
		}
	})
}
