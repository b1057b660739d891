package promql

import "github.com/prometheus/prometheus/model/labels"

// Sharing is the decision whether the requests for a metric may all send
// one shared query, each filtering its own samples from the answer, or must
// each send their own, as prometheus-adapter does.
type Sharing struct {
	OK bool
	// Reason says why the query cannot be shared; empty when it can.
	Reason string
}

// String is how check and explain show the decision.
func (s Sharing) String() string {
	if s.OK {
		return "shared by all requests: one query per metric, filtered in promgate"
	}
	return "sent per request, as prometheus-adapter sends it: " + s.Reason
}

// Sharing decides whether t's query for one request (one, with sample
// values) may be replaced by the query shared by all requests (all),
// filtered afterwards by the labels of one's parts: t must place no
// request value outside the matchers, and the two renderings must be
// equivalent once filtered (Shareable). The decision depends only on the
// template and the labels selected on, so callers make it once per rule
// and shape of request. The error is that of rendering one: a template
// that cannot serve a request at all.
func (t *Template) Sharing(one, all Request) (Sharing, error) {
	full, err := t.Build(one)
	if err != nil {
		return Sharing{}, err
	}
	if !full.Checked {
		return Sharing{Reason: "the query is not parsed as PromQL"}, nil
	}
	for _, p := range one.Parts {
		if full.Placed[p.Matcher.Name] {
			return Sharing{Reason: "the template uses .LabelValuesByName." + p.Matcher.Name}, nil
		}
	}
	shared, err := t.Build(all)
	if err != nil {
		return Sharing{Reason: err.Error()}, nil
	}
	ok, why := Shareable(full.Expr, shared.Expr, Matchers(one.Parts), Matchers(all.Parts))
	return Sharing{OK: ok, Reason: why}, nil
}

// Matchers returns the matchers of parts.
func Matchers(parts []Part) []*labels.Matcher {
	if len(parts) == 0 {
		return nil
	}
	ms := make([]*labels.Matcher, len(parts))
	for i, p := range parts {
		ms[i] = p.Matcher
	}
	return ms
}
