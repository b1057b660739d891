package explain

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
)

// WriteText writes r for people: the answer of `promgate explain` and of
// the explain endpoint's text/plain.
func (r *Report) WriteText(w io.Writer) error {
	tw := &errWriter{w: w}
	if r.Request.Metric == "" {
		r.writeDiscovery(tw)
		return tw.err
	}
	tw.printf("%s (discovery of %s)\n", r.Request.heading(), timeText(r.Discovery))
	r.writeServed(tw)
	r.writeRules(tw)
	if r.Plan != nil {
		writePlan(tw, r.Plan)
	}
	if r.PlanError != "" {
		tw.printf("request: %s\n", r.PlanError)
	}
	for _, n := range r.Notes {
		tw.printf("note: %s\n", n)
	}
	return tw.err
}

// heading names the request: the metric, its API or resource, and the
// parameters set.
func (r Request) heading() string {
	head := "metric " + r.Metric
	switch {
	case r.External:
		head += ", external"
	case r.Resource != "":
		head += ", resource " + r.Resource
	}
	for _, kv := range [][2]string{{"namespace", r.Namespace}, {"name", r.Name}, {"labelSelector", r.LabelSelector}, {"metricLabelSelector", r.MetricLabelSelector}} {
		if kv[1] != "" {
			head += fmt.Sprintf(", %s %s", kv[0], kv[1])
		}
	}
	return head
}

// writeServed writes which rules serve the metric, and as what.
func (r *Report) writeServed(tw *errWriter) {
	tw.printf("served:\n")
	if len(r.Served) == 0 {
		tw.printf("  nowhere: no rule serves a metric of that name\n")
	}
	for _, s := range r.Served {
		tw.printf("  %s by %s (series %s; %s)\n", s.what(), s.Rule, s.Series, s.Sharing)
	}
}

// writeRules writes each rule's finding: whether it serves the metric,
// and why.
func (r *Report) writeRules(tw *errWriter) {
	if len(r.Rules) > 0 {
		tw.printf("rules:\n")
	}
	for _, f := range r.Rules {
		verdict := "does not serve it"
		if f.Serves {
			verdict = "serves it"
		}
		on := ""
		if f.Backend != "" && f.Backend != "default" {
			on = "  backend: " + f.Backend
		}
		tw.printf("  %s  seriesQuery: %s%s\n    %s\n", f.Rule, f.SeriesQuery, on, verdict)
		for _, reason := range f.Reasons {
			tw.printf("    - %s\n", reason)
		}
	}
}

// writePlan writes the query a request sends: where it goes, what it
// reads, whether it is shared and, when it ran, what it returned.
func writePlan(tw *errWriter, p *Plan) {
	tw.printf("query")
	if p.Backend != "" {
		tw.printf(" (sent to %s)", p.Backend)
	}
	tw.printf(":\n  %s\n  from %s, series %s", p.Query, p.Rule, p.Series)
	if p.Objects != nil {
		tw.printf(", for %d objects", *p.Objects)
	}
	tw.printf("\n  guard: %s\n", p.Guard)
	if p.Sent != "" {
		tw.printf("  sent: the query with the guard, %d bytes (in the JSON report: sent)\n", len(p.Sent))
	}
	if p.Shared {
		tw.printf("  shared: one query for all requests for the metric, filtered in promgate\n")
	} else {
		tw.printf("  %s\n", p.SharedReason)
	}
	if p.Ran {
		tw.printf("  ran: %d values\n", p.Samples)
	}
}

// what names a served metric: its API or resource, name and scope.
func (s Serving) what() string {
	if s.API == "external" {
		return "external " + s.Metric
	}
	return fmt.Sprintf("%s/%s (%s)", s.Resource, s.Metric, scope(s.Namespaced))
}

// writeDiscovery writes every rule's discovery report with the metrics it
// serves.
func (r *Report) writeDiscovery(tw *errWriter) {
	tw.printf("discovery of %s\n", timeText(r.Discovery))
	byRule := map[string][]Serving{}
	for _, s := range r.Served {
		byRule[s.Rule] = append(byRule[s.Rule], s)
	}
	for _, rep := range r.Reports {
		writeRuleReport(tw, rep, byRule[rep.Path])
	}
}

// writeRuleReport writes one rule's discovery report: its failure, the
// shapes it saw and kept, those it dropped and why, what it serves and
// what a later rule serves instead.
func writeRuleReport(tw *errWriter, r catalog.RuleReport, served []Serving) {
	tw.printf("%s  seriesQuery: %s\n", r.Path, r.SeriesQuery)
	if r.Err != "" {
		since := "it never succeeded"
		if !r.LastSuccess.IsZero() {
			since = "using the result of " + r.LastSuccess.Format(time.RFC3339)
		}
		tw.printf("  ERROR: %s (%s)\n", r.Err, since)
	}
	switch r.Method {
	case config.MethodIndex:
		tw.printf("  shapes (name and resource labels, from the index in %d requests; series not counted): %d, kept: %d\n", r.Requests, r.Series, r.Kept)
	default:
		tw.printf("  series shapes: %d, kept: %d\n", r.Series, r.Kept)
	}
	reasons := make([]string, 0, len(r.Dropped))
	for reason := range r.Dropped {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	for _, reason := range reasons {
		tw.printf("  dropped %d: %s (e.g. %s)\n", r.Dropped[reason], reason, strings.Join(r.Examples[reason], ", "))
	}
	for _, s := range served {
		tw.printf("  serves %s (series %s; %s)\n", s.what(), s.Series, s.Sharing)
	}
	for _, o := range r.Overridden {
		what := "external " + o.Metric
		if o.Resource.Resource != "" {
			what = fmt.Sprintf("%s/%s (%s)", o.Resource, o.Metric, scope(o.Namespaced))
		}
		tw.printf("  overridden %s: %s serves it (the last rule naming a metric wins)\n", what, o.By)
	}
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "never: the first discovery has not finished"
	}
	return t.UTC().Format(time.RFC3339)
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
