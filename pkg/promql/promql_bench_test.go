package promql

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func benchNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("web-%d-7d4b9c-%05d", i%7, i)
	}
	return names
}

// BenchmarkOneOf builds the matcher for 300 object names: a sorted, escaped
// alternation, compiled.
func BenchmarkOneOf(b *testing.B) {
	names := benchNames(300)
	b.ReportAllocs()
	for b.Loop() {
		if m := OneOf("pod", names); len(m.Value) < 300 {
			b.Fatal("short alternation")
		}
	}
}

// BenchmarkAlternation is OneOf's string building alone.
func BenchmarkAlternation(b *testing.B) {
	names := benchNames(300)
	b.ReportAllocs()
	for b.Loop() {
		if s := Alternation(names); len(s) < 300 {
			b.Fatal("short alternation")
		}
	}
}

// BenchmarkRender renders and parses a rule's query with a 300-name
// alternation, as every unbatched request does.
func BenchmarkRender(b *testing.B) {
	t, err := NewTemplate(`sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`)
	if err != nil {
		b.Fatal(err)
	}
	args := TemplateArgs{
		Series:        "http_requests_total",
		LabelMatchers: JoinMatchers([]*labels.Matcher{Equal("namespace", "shop"), OneOf("pod", benchNames(300))}),
		GroupBy:       "pod",
		GroupBySlice:  []string{"pod"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := t.Render(args); err != nil {
			b.Fatal(err)
		}
	}
}
