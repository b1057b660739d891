package promql

import (
	"fmt"
	"testing"
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

// BenchmarkBuild renders and parses a rule's query with a 300-name
// alternation, as a request for 300 pods does.
func BenchmarkBuild(b *testing.B) {
	t := mustTemplate(`sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`)
	r := Request{
		Series:  "http_requests_total",
		Parts:   []Part{EqualPart("namespace", "shop"), OneOfPart("pod", benchNames(300))},
		GroupBy: []string{"pod"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.Build(r); err != nil {
			b.Fatal(err)
		}
	}
}
