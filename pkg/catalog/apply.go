package catalog

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/rules"
)

// The reasons a rule drops a shape (RuleReport.Dropped's keys), which
// DropKind sorts into kinds.
const (
	reasonFiltered   = "filtered by " // then the filter
	reasonNaming     = "naming: "     // then why the series gets no metric name
	reasonNoResource = "no label maps to a Kubernetes resource"
)

// maxExamples is how many series names a report keeps per drop reason.
const maxExamples = 3

// build applies the rules to the shapes listed for their seriesQuery:
// custom rules, then external ones, each in config order, so that the last
// rule to give a metric serves it, as in prometheus-adapter.
func (d *Discoverer) build(rs *ruleSet, results map[seriesKey]queryResult) *Snapshot {
	snap := &Snapshot{custom: map[CustomKey]Entry{}, external: map[string]Entry{}, CustomRules: rs.custom, ExternalRules: rs.external}
	customKeys := make([][]CustomKey, len(rs.custom)) // per rule, what it produced
	for i, r := range rs.custom {
		rep, entries := d.customRule(r, results[keyOf(r)])
		snap.Reports = append(snap.Reports, rep)
		for _, ke := range entries {
			snap.custom[ke.key] = ke.entry // the last rule wins, as in prometheus-adapter
			customKeys[i] = append(customKeys[i], ke.key)
		}
	}
	externalNames := make([][]string, len(rs.external))
	for i, r := range rs.external {
		rep, entries := d.externalRule(r, results[keyOf(r)])
		snap.Reports = append(snap.Reports, rep)
		for _, me := range entries {
			snap.external[me.metric] = me.entry // the last series of the last rule wins
			externalNames[i] = append(externalNames[i], me.metric)
		}
	}
	snap.overrides(rs, customKeys, externalNames)
	snap.list()
	return snap
}

// overrides fills each report's Overridden: the metrics the rule produced
// (customKeys and externalNames, per rule) that a later rule serves.
func (s *Snapshot) overrides(rs *ruleSet, customKeys [][]CustomKey, externalNames [][]string) {
	for i, r := range rs.custom {
		rep := &s.Reports[i]
		for _, k := range customKeys[i] {
			if e := s.custom[k]; e.Rule != r {
				rep.Overridden = append(rep.Overridden, Override{Resource: k.Resource, Namespaced: k.Namespaced, Metric: k.Metric, By: e.Rule.Path})
			}
		}
	}
	for i, r := range rs.external {
		rep := &s.Reports[len(rs.custom)+i]
		for _, m := range externalNames[i] {
			if e := s.external[m]; e.Rule != r {
				rep.Overridden = append(rep.Overridden, Override{Metric: m, By: e.Rule.Path})
			}
		}
	}
	for i := range s.Reports {
		sortOverrides(&s.Reports[i])
	}
}

// sortOverrides sorts and deduplicates rep.Overridden (a rule gives a key
// once per series that has it).
func sortOverrides(rep *RuleReport) {
	o := rep.Overridden
	sort.Slice(o, func(i, j int) bool {
		if a, b := o[i].Resource.String(), o[j].Resource.String(); a != b {
			return a < b
		}
		if o[i].Metric != o[j].Metric {
			return o[i].Metric < o[j].Metric
		}
		return !o[i].Namespaced && o[j].Namespaced
	})
	rep.Overridden = slices.Compact(o)
}

// metricEntry is an external metric a series gives.
type metricEntry struct {
	metric string
	entry  Entry
}

// externalRule names the rule's series; every named series gives its
// metric, whatever its labels, as in prometheus-adapter.
func (d *Discoverer) externalRule(r *rules.Rule, res queryResult) (RuleReport, []metricEntry) {
	rep := newReport(r, res)
	var out []metricEntry
	names := map[string]bool{}
	for _, sh := range res.shapes {
		metric, ok := d.nameFor(r, sh, &rep)
		if !ok {
			continue
		}
		rep.Kept++
		out = append(out, metricEntry{metric: metric, entry: Entry{Rule: r, Series: sh.name}})
		if !names[metric] {
			names[metric] = true
			rep.Metrics = append(rep.Metrics, metric)
		}
	}
	sort.Strings(rep.Metrics)
	return rep, out
}

// newReport starts r's report from the result of its seriesQuery.
func newReport(r *rules.Rule, res queryResult) RuleReport {
	rep := RuleReport{Path: r.Path, SeriesQuery: r.SeriesQuery, Backend: r.Backend, LastSuccess: res.at, Series: len(res.shapes),
		Method: res.method, Requests: res.requests,
		Dropped: map[string]int{}, Examples: map[string][]string{}}
	if res.err != nil {
		rep.Err = res.err.Error()
	}
	return rep
}

// drop counts a dropped shape under reason, keeping its series as an
// example while there are fewer than maxExamples.
func (rep *RuleReport) drop(reason, series string) {
	rep.Dropped[reason]++
	if len(rep.Examples[reason]) < maxExamples {
		rep.Examples[reason] = append(rep.Examples[reason], series)
	}
}

// nameFor returns the metric r names sh, or drops sh in rep, filtered or
// unnamed.
func (d *Discoverer) nameFor(r *rules.Rule, sh shape, rep *RuleReport) (string, bool) {
	if ok, why := r.Keep(sh.name); !ok {
		rep.drop(reasonFiltered+why, sh.name)
		return "", false
	}
	metric, err := r.MetricName(sh.name)
	if err != nil {
		rep.drop(reasonNaming+err.Error(), sh.name)
		return "", false
	}
	return metric, true
}

// keyEntry is a custom metric a series gives.
type keyEntry struct {
	key   CustomKey
	entry Entry
}

// customRule names the rule's series and associates them with resources, in
// series order: a key given by several series is the last one's.
func (d *Discoverer) customRule(r *rules.Rule, res queryResult) (RuleReport, []keyEntry) {
	rep := newReport(r, res)
	var out []keyEntry
	labelRes := map[string]*schema.GroupResource{}
	metrics := map[string]bool{}
	for _, sh := range res.shapes {
		metric, ok := d.nameFor(r, sh, &rep)
		if !ok {
			continue
		}
		n := len(out)
		for _, l := range sh.labels {
			gr, cached := labelRes[l]
			if !cached {
				if g, ok := r.Resources.ResourceForLabel(l, d.mapper); ok {
					gr = &g
				}
				labelRes[l] = gr
			}
			if gr != nil {
				k := CustomKey{Resource: *gr, Metric: metric, Namespaced: Namespaced(*gr)}
				out = append(out, keyEntry{key: k, entry: Entry{Rule: r, Series: sh.name}})
			}
		}
		if len(out) == n {
			rep.drop(reasonNoResource, fmt.Sprintf("%s{%s}", sh.name, strings.Join(sh.labels, ",")))
			continue
		}
		rep.Kept++
		metrics[metric] = true
	}
	for m := range metrics {
		rep.Metrics = append(rep.Metrics, m)
	}
	sort.Strings(rep.Metrics)
	return rep, out
}

// rootResources are the resources whose metrics prometheus-adapter lists as
// not namespaced.
var rootResources = map[schema.GroupResource]bool{
	rules.NamespacesResource:        true,
	{Resource: "nodes"}:             true,
	{Resource: "persistentvolumes"}: true,
}

// Namespaced reports whether the catalog lists metrics about gr as
// namespaced. As in prometheus-adapter, they all are except those about
// namespaces, nodes and persistentvolumes, whatever the series' labels and
// the resource's scope: a pod metric whose series have no namespace label is
// namespaced, and a metric about another cluster-scoped resource (a
// StorageClass, a cluster-scoped custom resource) is listed as namespaced
// too.
func Namespaced(gr schema.GroupResource) bool { return !rootResources[gr] }
