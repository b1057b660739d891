package resource

import (
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/rules"
)

// rule is one compiled resource rule (cpu or memory).
type rule = rules.ResourceRule

// oneOf matches the given values of label, or every value when batching or
// when there are more than MaxNamesInQuery of them (the caller then filters
// the result). Only for queries that may be shared.
func (p *Provider) oneOf(label string, values []string) promql.Part {
	if p.batch || len(values) > p.maxNames {
		return promql.AnyPart(label)
	}
	return promql.OneOfPart(label, values)
}
