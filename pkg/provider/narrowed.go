package provider

import (
	"time"

	"github.com/promgate/promgate/pkg/budget"
)

// Narrowed keeps the shared queries rendered for a Reach, so that a
// shared query's text is rendered once per narrowing, not per request.
// With sharing, every request of a metric reads one text until a
// namespace or an object joins it, and rendering that text (the template,
// then a parse of the result) cost more than the rest of a request
// answered from the cache (9 % of promgate's CPU in make bench-scale's
// row 50, 2026-12-07). The texts are kept in the memory budget
// (budget.Sharing), since request input (metric selectors, the namespaces
// and objects asked about) makes them: one per shared query (scope) and
// slot (the shared text, and the text of each namespace waiting to join,
// Reach.Alone), charged for the text, its parsed tree and the lists it
// holds. A nil Budget keeps nothing.
type Narrowed struct {
	Budget *budget.Budget
}

// NarrowedFor is what a rendered text depends on: an owner, compared by
// identity (what the template came from: a rule, a resolution), and the
// lists Reach.Narrowing gave. Demand replaces its lists rather than
// changing them, so a list's identity tells whether it is the same; the
// entry holding a list keeps it from being freed and its memory reused.
type NarrowedFor struct {
	Owner               any
	Namespaces, Objects []string
}

func (k NarrowedFor) same(o NarrowedFor) bool {
	return k.Owner == o.Owner && sameList(k.Namespaces, o.Namespaces) && sameList(k.Objects, o.Objects)
}

// slot names k's entry in its scope: one for the shared (or the whole
// cluster's) text, one per namespace read alone.
func (k NarrowedFor) slot() string {
	if len(k.Namespaces) == 1 && k.Objects == nil {
		return k.Namespaces[0]
	}
	return "\x00shared"
}

// sameList reports whether a and b are the same list: both nil, the same
// slice, or one equal name (a request's own namespace while it waits).
func sameList(a, b []string) bool {
	switch {
	case len(a) != len(b) || (a == nil) != (b == nil):
		return false
	case len(a) == 0:
		return true
	}
	return &a[0] == &b[0] || len(a) == 1 && a[0] == b[0]
}

// narrowedEntry is a kept text with what it was rendered for.
type narrowedEntry struct {
	k NarrowedFor
	v any
}

// narrowedLifetime bounds how long a text is kept: the owner of a text
// replaced by a reload is let go of within it.
const narrowedLifetime = 30 * time.Second

// Get returns what was kept for scope and k, if anything.
func (n Narrowed) Get(scope string, k NarrowedFor) (any, bool) {
	v, ok := n.Budget.GetIn(budget.Sharing, scope, k.slot())
	if !ok {
		return nil, false
	}
	e := v.(*narrowedEntry)
	if !e.k.same(k) {
		return nil, false
	}
	return e.v, true
}

// Put keeps v, rendered for scope and k, whose query text is textBytes
// long: charged for the text and its tree (4 × the text, as the external
// provider's shared queries) and the names of k's lists.
func (n Narrowed) Put(scope string, k NarrowedFor, v any, textBytes int) {
	size := 4 * int64(textBytes)
	for _, l := range [][]string{k.Namespaces, k.Objects} {
		for _, name := range l {
			size += int64(len(name)) + 16
		}
	}
	n.Budget.PutIn(budget.Sharing, scope, k.slot(), &narrowedEntry{k: k, v: v}, size, time.Now().Add(narrowedLifetime))
}
