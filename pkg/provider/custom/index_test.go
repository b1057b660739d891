package custom

import (
	"strconv"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/budget"
)

func TestIndex(t *testing.T) {
	s := func(ns, pod, v string) *model.Sample {
		m := model.Metric{"pod": model.LabelValue(pod)}
		if ns != "" {
			m["namespace"] = model.LabelValue(ns)
		}
		f, _ := strconv.ParseFloat(v, 64)
		return &model.Sample{Metric: m, Value: model.SampleValue(f)}
	}
	vec := model.Vector{s("ns1", "a", "1"), s("ns2", "a", "2"), s("ns1", "b", "3"), s("ns1", "a", "4")}
	x := budget.New(1 << 20)
	idx := indexOf(x, "q", vec, "namespace", "pod")
	for _, tt := range []struct {
		ns, name string
		want     string
	}{{"ns1", "a", "4"}, {"ns2", "a", "2"}, {"ns1", "b", "3"}, {"ns2", "b", ""}} {
		got, ok := idx.lookup(tt.ns, tt.name, true)
		if (tt.want == "") == ok || (ok && (got.s.Value.String() != tt.want || got.q.String() != tt.want)) {
			t.Errorf("lookup(%s, %s) = %v, %v; want %q", tt.ns, tt.name, got, ok, tt.want)
		}
	}
	if indexOf(x, "q", vec, "namespace", "pod") != idx {
		t.Error("the same answer was indexed again")
	}
	other := model.Vector{s("ns1", "a", "9")}
	if got, _ := indexOf(x, "q", other, "namespace", "pod").lookup("ns1", "a", true); got.s.Value.String() != "9" {
		t.Errorf("a new answer was not indexed: %v", got)
	}
	// One namespace selected, grouped by pod only: no namespace label.
	one := model.Vector{s("", "a", "5")}
	if got, ok := indexOf(x, "q1", one, "namespace", "pod").lookup("ns1", "a", false); !ok || got.s.Value.String() != "5" {
		t.Errorf("namespace-less answer: %v, %v", got, ok)
	}
}
