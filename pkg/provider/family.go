package provider

import (
	"sync"
	"time"
	"weak"

	"github.com/prometheus/common/model"
)

// families remembers, per query family (Query.Family), the guard histories
// of its recent texts, so that a new text of a family (a shared query
// narrowed to one more namespace, say) starts from what they saw instead of
// asking the backend which of its series are new (promql.Established, about
// twice the query's cost).
//
// The histories themselves live in the budget (budget.Windows) and may be
// evicted there: families holds weak pointers, so it never keeps one
// alive. It is bounded in families and in the bytes of their names
// (family names carry request input: the metric selector), and each family
// keeps its newest maxFamilyTexts histories.
type families struct {
	mu    sync.Mutex
	byKey map[string]*family
	bytes int
}

type family struct {
	texts []weak.Pointer[history]
}

// A family holds the texts of the namespaces waiting to join its shared
// query, one each, beside the shared texts: up to Demand's namespaces
// (100 by default). With 32 texts, the first 18 of 50 namespaces' texts
// were forgotten by the time they joined, and every join asked the backend
// which series were new (make bench's row 40, 2026-12-07: one more query
// per metric in the cycle of the join). Texts count in the bytes bound.
const (
	maxFamilies     = 4096
	maxFamilyBytes  = 1 << 20
	maxFamilyTexts  = 256
	familyEntryCost = 64 // a family's map entry and slice, beside its name
	familyTextCost  = 16 // a text's weak pointer in the slice, and its growth
)

// note records h as a history of family key.
func (f *families) note(key string, h *history) {
	if key == "" {
		return
	}
	p := weak.Make(h)
	f.mu.Lock()
	defer f.mu.Unlock()
	fam, ok := f.byKey[key]
	if !ok {
		cost := len(key) + familyEntryCost
		if len(f.byKey) >= maxFamilies || f.bytes+cost > maxFamilyBytes {
			// Full: start over rather than keep old families forever. A
			// family forgotten costs one Established query at its next
			// text, as without families.
			f.byKey, f.bytes = nil, 0
		}
		if f.byKey == nil {
			f.byKey = map[string]*family{}
		}
		fam = &family{}
		f.byKey[key] = fam
		f.bytes += cost
	}
	if f.bytes+familyTextCost > maxFamilyBytes {
		return // full: a text not noted costs its joins a query, no more
	}
	before := len(fam.texts)
	live := fam.texts[:0]
	for _, t := range fam.texts {
		if v := t.Value(); v != nil && v != h {
			live = append(live, t)
		}
	}
	if len(live) >= maxFamilyTexts {
		live = live[len(live)-maxFamilyTexts+1:]
	}
	fam.texts = append(live, p)
	f.bytes += (len(fam.texts) - before) * familyTextCost
}

// lends reports whether family key has a text other than h's with a
// history, which inherited may lend h (or may, once it is judged).
func (f *families) lends(key string, h *history) bool {
	return len(f.others(key, h)) > 0
}

// others are the live histories of family key other than h.
func (f *families) others(key string, h *history) []*history {
	if key == "" {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*history
	if fam, ok := f.byKey[key]; ok {
		for _, t := range fam.texts {
			if v := t.Value(); v != nil && v != h {
				out = append(out, v)
			}
		}
	}
	return out
}

// inherited returns the first-seen times of data's series (the new
// text's answer) that family key's histories other than h saw within the
// shortest window of g (its query's guard) before at; ok is false unless
// one of them is that recent and together they saw every series of data.
// Only data's series are looked up: the family's texts together hold the
// series of every namespace it reads (at 5,000 HPAs, merging them all
// for each joining text allocated more than anything else). h itself is
// not changed: a new text must not look known to other requests before
// its own answer has been judged (a series none of them saw is new for h,
// served one window later, as a series new to a history is).
func (f *families) inherited(key string, h *history, at time.Time, g *guardResult, data model.Vector) (first map[model.Fingerprint]time.Time, ok bool) {
	others := f.others(key, h)
	if len(others) == 0 {
		return nil, false
	}
	fps := make([]model.Fingerprint, len(data))
	for i, s := range data {
		fps[i] = s.Metric.Fingerprint()
	}
	for _, o := range others {
		o.mu.Lock()
		if o.first != nil && !o.seen.After(at) && at.Sub(o.seen) <= g.shortest {
			if first == nil {
				first = make(map[model.Fingerprint]time.Time, len(fps))
			}
			for _, fp := range fps {
				if t, ok := o.first[fp]; ok {
					if old, ok := first[fp]; !ok || t.Before(old) {
						first[fp] = t
					}
				}
			}
		}
		o.mu.Unlock()
	}
	// The series of an answer are distinct: every one was seen when the
	// map holds as many.
	return first, first != nil && len(first) == len(fps)
}
