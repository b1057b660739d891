package promql

import (
	"github.com/prometheus/prometheus/model/labels"
)

// MatchAll reports whether a sample with the given label getter passes
// every matcher; a missing label is the empty string. Matchers must have
// been built with labels.NewMatcher (regular expressions compiled).
func MatchAll(ms []*labels.Matcher, get func(name string) string) bool {
	for _, m := range ms {
		if !m.Matches(get(m.Name)) {
			return false
		}
	}
	return true
}

// Compiled returns copies of ms built with labels.NewMatcher, so that
// their Matches method works for regular expressions too.
func Compiled(ms []*labels.Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, len(ms))
	for i, m := range ms {
		c, err := labels.NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}
