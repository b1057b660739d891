package provider

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDemand(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type ask struct {
		key, ns string
		at      time.Duration
		want    []string // nil: the whole cluster; alone: the namespace alone
	}
	alone := []string{"(alone)"}
	tests := []struct {
		name string
		d    *Demand
		asks []ask
	}{
		{"grows, sorted, per query", &Demand{JoinEvery: time.Nanosecond}, []ask{
			{"q", "b", 0, []string{"b"}},
			{"q", "a", time.Second, []string{"a", "b"}},
			{"q", "b", 2 * time.Second, []string{"a", "b"}},
			{"r", "c", 2 * time.Second, []string{"c"}},
		}},
		{"joins in batches: the first at once, the next ones JoinEvery later, together", &Demand{}, []ask{
			{"q", "m", 0, []string{"m"}},
			{"q", "b", time.Second, alone},
			{"q", "a", 2 * time.Second, alone},
			{"q", "m", 3 * time.Second, []string{"m"}},
			{"q", "b", 15 * time.Second, []string{"a", "b", "m"}},
			{"q", "c", 16 * time.Second, alone},
			{"q", "a", 17 * time.Second, []string{"a", "b", "m"}},
			{"q", "m", 30 * time.Second, []string{"a", "b", "c", "m"}},
		}},
		{"forgets after TTL", &Demand{TTL: time.Minute, JoinEvery: time.Nanosecond}, []ask{
			{"q", "a", 0, []string{"a"}},
			{"q", "b", 50 * time.Second, []string{"a", "b"}},
			{"q", "b", 70 * time.Second, []string{"b"}},
			{"q", "a", 71 * time.Second, []string{"a", "b"}},
		}},
		{"past MaxNamespaces: the whole cluster, until some are forgotten", &Demand{MaxNamespaces: 2, TTL: time.Minute, JoinEvery: time.Nanosecond}, []ask{
			{"q", "a", 0, []string{"a"}},
			{"q", "b", time.Millisecond, []string{"a", "b"}},
			{"q", "c", 2 * time.Millisecond, nil},
			{"q", "a", 30 * time.Second, nil},
			{"q", "a", 65 * time.Second, []string{"a"}},
		}},
		{"past MaxBytes: the whole cluster", &Demand{MaxBytes: 6, JoinEvery: time.Nanosecond}, []ask{
			{"q", "aa", 0, []string{"aa"}},
			{"q", "bbbb", 0, nil},
			{"r", "c", 0, []string{"c"}},
			{"s", "dd", 0, nil},
		}},
		{"nil", nil, []ask{{"q", "a", 0, nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range tc.asks {
				r := tc.d.Ask(a.key, a.ns, nil, t0.Add(a.at))
				got := r.Namespaces
				if r.Alone {
					got = alone
				}
				if !slices.Equal(got, a.want) || (got == nil) != (a.want == nil) || r.Wide() != (a.want == nil) {
					t.Errorf("%s asks %s at %v: %v, want %v", a.key, a.ns, a.at, got, a.want)
				}
			}
		})
	}
}

// TestDemandObjects: with MaxObjects a query reads the objects asked
// about in the namespaces asked about; objects join in the namespaces'
// batches, are forgotten after TTL, and past MaxObjects the query reads
// whole namespaces.
func TestDemandObjects(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type ask struct {
		ns      string
		objects []string
		at      time.Duration
		want    string // "alone", "wide", or namespaces "/" objects ("*": all)
	}
	tests := []struct {
		name string
		d    *Demand
		asks []ask
	}{
		{"objects join with their namespaces", &Demand{MaxObjects: 10}, []ask{
			{"a", []string{"p1", "p2"}, 0, "a/p1,p2"},
			{"a", []string{"p1"}, time.Second, "a/p1,p2"},
			{"b", []string{"p1", "q1"}, 2 * time.Second, "alone"},
			{"a", []string{"p1", "p3"}, 3 * time.Second, "alone"},
			{"a", []string{"p2"}, 4 * time.Second, "a/p1,p2"},
			{"b", []string{"q1"}, 15 * time.Second, "a,b/p1,p2,p3,q1"},
			{"a", []string{"p1", "p3"}, 16 * time.Second, "a,b/p1,p2,p3,q1"},
		}},
		{"without objects: whole namespaces", &Demand{MaxObjects: 10, JoinEvery: time.Nanosecond}, []ask{
			{"a", []string{"p1"}, 0, "a/p1"},
			{"a", nil, time.Second, "a/*"},
		}},
		{"past MaxObjects: whole namespaces, then objects again after TTL", &Demand{MaxObjects: 3, TTL: time.Minute, JoinEvery: time.Nanosecond}, []ask{
			{"a", []string{"p1", "p2"}, 0, "a/p1,p2"},
			{"a", []string{"p3", "p4"}, time.Second, "a/*"},
			{"a", []string{"p1"}, 2 * time.Second, "a/*"},
			{"a", []string{"p1"}, 60 * time.Second, "a/*"},
			{"a", []string{"p1"}, 76 * time.Second, "a/p1"}, // the first sweep a TTL after
		}},
		{"objects forgotten after TTL", &Demand{MaxObjects: 10, TTL: time.Minute, JoinEvery: time.Nanosecond}, []ask{
			{"a", []string{"p1", "p2"}, 0, "a/p1,p2"},
			{"a", []string{"p2"}, 50 * time.Second, "a/p1,p2"},
			{"a", []string{"p2"}, 70 * time.Second, "a/p2"},
			{"a", []string{"p1", "p2"}, 71 * time.Second, "a/p1,p2"},
		}},
		{"no MaxObjects: whole namespaces", &Demand{JoinEvery: time.Nanosecond}, []ask{
			{"a", []string{"p1"}, 0, "a/*"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, a := range tc.asks {
				r := tc.d.Ask("q", a.ns, a.objects, t0.Add(a.at))
				var got string
				switch {
				case r.Alone:
					got = "alone"
				case r.Wide():
					got = "wide"
				case r.Objects == nil:
					got = strings.Join(r.Namespaces, ",") + "/*"
				default:
					got = strings.Join(r.Namespaces, ",") + "/" + strings.Join(r.Objects, ",")
				}
				if got != a.want {
					t.Errorf("%s %v at %v: %s, want %s", a.ns, a.objects, a.at, got, a.want)
				}
			}
		})
	}
}

// TestDemandBounded: whatever requests name, the names kept stay within
// MaxBytes, and forgotten ones free their bytes.
func TestDemandBounded(t *testing.T) {
	d := &Demand{MaxBytes: 4096, MaxObjects: 1000, TTL: time.Minute}
	t0 := time.Unix(0, 0)
	for i := range 10000 {
		objects := []string{strings.Repeat("o", i%40) + fmt.Sprint(i), strings.Repeat("p", i%30) + fmt.Sprint(i)}
		d.Ask(fmt.Sprintf("q%d", i%50), strings.Repeat("n", i%60)+fmt.Sprint(i), objects, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if d.bytes > 4096 {
		t.Errorf("%d bytes kept, bound 4096", d.bytes)
	}
	d.Ask("q", "a", nil, t0.Add(time.Hour))
	if d.bytes != len("q")+len("a") || len(d.sets) != 1 {
		t.Errorf("after the TTL: %d bytes, %d sets; want only the last", d.bytes, len(d.sets))
	}
}
