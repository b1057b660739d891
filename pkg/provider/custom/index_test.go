package custom

import (
	"math"
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
	idx := indexOf(x, "default", "q", vec, "namespace", "pod")
	for _, tt := range []struct {
		ns, name string
		want     string
	}{{"ns1", "a", "4"}, {"ns2", "a", "2"}, {"ns1", "b", "3"}, {"ns2", "b", ""}} {
		got, ok := idx.lookup(tt.ns, tt.name, true)
		if (tt.want == "") == ok || (ok && (got.s.Value.String() != tt.want || got.q.String() != tt.want)) {
			t.Errorf("lookup(%s, %s) = %v, %v; want %q", tt.ns, tt.name, got, ok, tt.want)
		}
	}
	if indexOf(x, "default", "q", vec, "namespace", "pod") != idx {
		t.Error("the same answer was indexed again")
	}
	other := model.Vector{s("ns1", "a", "9")}
	if got, _ := indexOf(x, "default", "q", other, "namespace", "pod").lookup("ns1", "a", true); got.s.Value.String() != "9" {
		t.Errorf("a new answer was not indexed: %v", got)
	}
	// One namespace selected, grouped by pod only: no namespace label.
	one := model.Vector{s("", "a", "5")}
	if got, ok := indexOf(x, "default", "q1", one, "namespace", "pod").lookup("ns1", "a", false); !ok || got.s.Value.String() != "5" {
		t.Errorf("namespace-less answer: %v, %v", got, ok)
	}
}

// TestIndexBounded: an index is charged for its entries, the answer it
// keeps and what its values hold (their text, big values' digits, error
// messages), and a budget too small for it does not keep it.
func TestIndexBounded(t *testing.T) {
	var vec model.Vector
	for i := range 1000 {
		v := model.SampleValue(float64(i) + 0.123456789012)
		if i == 7 {
			v = model.SampleValue(math.NaN())
		}
		if i == 8 {
			v = 1e300 // beyond an int64: a decimal of 301 digits
		}
		vec = append(vec, &model.Sample{Metric: model.Metric{"namespace": "ns", "pod": model.LabelValue(strconv.Itoa(i))}, Value: v})
	}
	want := int64(len(vec))*indexEntryBytes + budget.VectorSize(vec)
	heap := int64(0)
	for _, s := range vec {
		f := foundOf(s)
		heap += f.heapBytes()
	}
	if heap < 2*300 {
		t.Fatalf("values hold %d bytes beyond their structs; the 1e300 alone has 301 digits", heap)
	}
	x := budget.New(1 << 30)
	indexOf(x, "default", "q", vec, "namespace", "pod")
	if got, _ := x.Usage(budget.Index); got != want+heap+budget.EntryBytes+int64(len("default")+len("q")) {
		t.Errorf("index charged %d bytes, want %d", got, want+heap+budget.EntryBytes+int64(len("default")+len("q")))
	}
	small := budget.New(want)
	indexOf(small, "default", "q", vec, "namespace", "pod")
	if got, _ := small.Usage(budget.Index); got > want {
		t.Errorf("a budget of %d bytes holds %d", want, got)
	}
}
