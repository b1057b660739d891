package explain

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/promgate/promgate/pkg/catalog"
)

// WriteText writes r for people: the answer of `promgate explain` and of
// the explain endpoint's text/plain.
func (r *Report) WriteText(w io.Writer) error {
	tw := &errWriter{w: w}
	if r.Request.Metric == "" {
		r.writeDiscovery(tw)
		return tw.err
	}
	q := r.Request
	head := "metric " + q.Metric
	switch {
	case q.External:
		head += ", external"
	case q.Resource != "":
		head += ", resource " + q.Resource
	}
	for _, kv := range [][2]string{{"namespace", q.Namespace}, {"name", q.Name}, {"labelSelector", q.LabelSelector}, {"metricLabelSelector", q.MetricLabelSelector}} {
		if kv[1] != "" {
			head += fmt.Sprintf(", %s %s", kv[0], kv[1])
		}
	}
	tw.printf("%s (discovery of %s)\n", head, timeText(r.Discovery))
	tw.printf("served:\n")
	if len(r.Served) == 0 {
		tw.printf("  nowhere: no rule serves a metric of that name\n")
	}
	for _, s := range r.Served {
		tw.printf("  %s by %s (series %s; %s)\n", s.what(), s.Rule, s.Series, s.Sharing)
	}
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
	if p := r.Plan; p != nil {
		tw.printf("query")
		if p.Backend != "" {
			tw.printf(" (sent to %s)", p.Backend)
		}
		tw.printf(":\n  %s\n  from %s, series %s", p.Query, p.Rule, p.Series)
		if p.Objects != nil {
			tw.printf(", for %d objects", *p.Objects)
		}
		tw.printf("\n")
		if p.Shared {
			tw.printf("  shared: one query for all requests for the metric, filtered in promgate\n")
		} else {
			tw.printf("  %s\n", p.SharedReason)
		}
		if p.Ran {
			tw.printf("  ran: %d values\n", p.Samples)
		}
	}
	if r.PlanError != "" {
		tw.printf("request: %s\n", r.PlanError)
	}
	for _, n := range r.Notes {
		tw.printf("note: %s\n", n)
	}
	return tw.err
}

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
	case catalog.MethodIndex:
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
