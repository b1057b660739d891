package promql

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func TestFilterable(t *testing.T) {
	moved := []*labels.Matcher{Equal("queue", "orders"), Equal("namespace", "shop"),
		regexMatcher(labels.MatchRegexp, "zone", `a|b`)}
	const ms = `queue="orders",namespace="shop",zone=~"a|b"`
	tests := []struct {
		name          string
		batched, full string
		want          bool
	}{
		{"selector", `q{}`, `q{` + ms + `}`, true},
		{"selector with a fixed matcher", `q{env!="dev"}`, `q{env!="dev",` + ms + `}`, true},
		{"matchers in another order", `q{env!="dev"}`, `q{zone=~"a|b",env!="dev",namespace="shop",queue="orders"}`, true},
		{"rate", `rate(q_total{}[2m])`, `rate(q_total{` + ms + `}[2m])`, true},
		{"over_time and arithmetic", `100 * (avg_over_time(q{}[5m]))`, `100 * (avg_over_time(q{` + ms + `}[5m]))`, true},
		{"clamp with numbers", `clamp(q{}, 0, 10)`, `clamp(q{` + ms + `}, 0, 10)`, true},
		{"aggregation", `sum(q{}) by (queue)`, `sum(q{` + ms + `}) by (queue)`, false},
		{"label_replace", `label_replace(q{}, "a", "$1", "queue", "(.*)")`, `label_replace(q{` + ms + `}, "a", "$1", "queue", "(.*)")`, false},
		{"two selectors", `q{} / r{}`, `q{` + ms + `} / r{` + ms + `}`, false},
		{"a matcher missing", `q{}`, `q{queue="orders",namespace="shop"}`, false},
		{"a matcher changed", `q{}`, `q{queue="orders",namespace="shop",zone=~"a|c"}`, false},
		{"an extra matcher", `q{}`, `q{` + ms + `,x="1"}`, false},
		{"another range", `rate(q_total{}[1m])`, `rate(q_total{` + ms + `}[2m])`, false},
		{"another function", `irate(q_total{}[2m])`, `rate(q_total{` + ms + `}[2m])`, false},
		{"template used the values elsewhere", `q{queue=""}`, `q{queue="orders",` + ms + `}`, false},
		{"another metric", `q{}`, `r{` + ms + `}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(tt.batched)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(tt.full)
			if err != nil {
				t.Fatal(err)
			}
			before := b.String()
			if got := Filterable(b, f, moved); got != tt.want {
				t.Errorf("Filterable(%s, %s) = %v, want %v", tt.batched, tt.full, got, tt.want)
			}
			if b.String() != before {
				t.Errorf("Filterable changed batched: %s", b)
			}
		})
	}
	b, _ := Parse(`q{}`)
	f, _ := Parse(`q{__name__="q"}`)
	if Filterable(b, f, []*labels.Matcher{Equal("__name__", "q")}) {
		t.Error("a __name__ matcher was moved")
	}
}

func TestMatchAll(t *testing.T) {
	ms, err := Compiled([]*labels.Matcher{
		{Type: labels.MatchEqual, Name: "queue", Value: "orders"},
		{Type: labels.MatchRegexp, Name: "zone", Value: "a|b"},
		{Type: labels.MatchNotEqual, Name: "env", Value: "dev"},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(m map[string]string) func(string) string { return func(n string) string { return m[n] } }
	for _, tt := range []struct {
		lbls map[string]string
		want bool
	}{
		{map[string]string{"queue": "orders", "zone": "b"}, true},
		{map[string]string{"queue": "orders", "zone": "ab"}, false}, // anchored
		{map[string]string{"queue": "orders", "zone": "a", "env": "dev"}, false},
		{map[string]string{"zone": "a"}, false},
	} {
		if got := MatchAll(ms, get(tt.lbls)); got != tt.want {
			t.Errorf("MatchAll(%v) = %v, want %v", tt.lbls, got, tt.want)
		}
	}
	if _, err := Compiled([]*labels.Matcher{{Type: labels.MatchRegexp, Name: "x", Value: "("}}); err == nil {
		t.Error("Compiled accepted a bad regexp")
	}
}
