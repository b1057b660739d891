package resource

import (
	"errors"
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/rules"
)

// rule is one compiled resource rule (cpu or memory).
type rule struct {
	path           string // "resourceRules.cpu"
	containerQuery *promql.Template
	nodeQuery      *promql.Template
	namespaceLabel string
	podLabel       string
	containerLabel string
	nodeLabel      string
	// shareContainer and shareNode say whether the queries may be shared
	// by all pods (nodes) and filtered here; otherwise they are sent as
	// prometheus-adapter sends them (pods: one query per namespace).
	shareContainer, shareNode promql.Sharing
	// Warnings are what could not be checked statically.
	Warnings []string
}

func compileRule(path string, r config.ResourceRule, mapper apimeta.RESTMapper, dialect string) (*rule, error) {
	out := &rule{path: path, containerLabel: r.ContainerLabel}
	var errs []error
	newTemplate := promql.NewTemplate
	if dialect == config.DialectMetricsQL {
		newTemplate = promql.NewMetricsQLTemplate
	}
	compile := func(field, text string) *promql.Template {
		if strings.TrimSpace(text) == "" {
			errs = append(errs, config.Fieldf(path+"."+field, "is required"))
			return nil
		}
		t, warnings, err := newTemplate(text)
		if err != nil {
			errs = append(errs, config.Fieldf(path+"."+field, "%v", err))
		}
		for _, w := range warnings {
			out.Warnings = append(out.Warnings, path+"."+field+": "+w)
		}
		return t
	}
	out.containerQuery = compile("containerQuery", r.ContainerQuery)
	out.nodeQuery = compile("nodeQuery", r.NodeQuery)
	switch {
	case r.ContainerLabel == "":
		errs = append(errs, config.Fieldf(path+".containerLabel", "is required"))
	case !promql.ValidLabelName(r.ContainerLabel):
		errs = append(errs, config.Fieldf(path+".containerLabel", "%q is not a valid Prometheus label name", r.ContainerLabel))
	}
	rm, err := rules.NewResourceMap(path+".resources", r.Resources)
	if err != nil {
		errs = append(errs, err)
	} else {
		label := func(gr fmt.Stringer, l string, err error) string {
			switch {
			case err != nil:
				errs = append(errs, config.Fieldf(path+".resources", "no label names %s: %v", gr, err))
			case !promql.ValidLabelName(l):
				errs = append(errs, config.Fieldf(path+".resources", "label %q for %s is not a valid Prometheus label name", l, gr))
			}
			return l
		}
		l, err := rm.LabelForResource(podsResource, mapper)
		out.podLabel = label(podsResource, l, err)
		l, err = rm.LabelForResource(nodesResource, mapper)
		out.nodeLabel = label(nodesResource, l, err)
		out.namespaceLabel = label(namespacesResource, rm.NamespaceLabel(mapper), nil)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Render each query for one request and shared by all now, so that a
	// template that cannot handle one fails at startup, and decide whether
	// each may be shared.
	var err2 error
	out.shareContainer, err2 = out.containerQuery.Sharing(
		out.podRequest("promgate-sample", []string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.podLabel)}, GroupBy: out.sharedPodGroupBy()})
	if err2 != nil {
		return nil, config.Fieldf(path+".containerQuery", "%v", err2)
	}
	out.shareNode, err2 = out.nodeQuery.Sharing(
		out.nodeRequest([]string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.nodeLabel)}, GroupBy: []string{out.nodeLabel}})
	if err2 != nil {
		return nil, config.Fieldf(path+".nodeQuery", "%v", err2)
	}
	if !out.shareContainer.OK {
		klog.InfoS("Resource metrics pod query is sent per namespace, as prometheus-adapter does: it cannot be shared by all pods",
			"field", path+".containerQuery", "reason", out.shareContainer.Reason)
	}
	return out, nil
}

// podRequest is what prometheus-adapter renders the container query with
// for pods of one namespace: the namespace and the pods, grouped by pod and
// container.
func (r *rule) podRequest(namespace string, pods []string) promql.Request {
	return promql.Request{
		Parts:   []promql.Part{promql.EqualPart(r.namespaceLabel, namespace), promql.OneOfPart(r.podLabel, pods)},
		GroupBy: []string{r.podLabel, r.containerLabel},
	}
}

// sharedPodGroupBy groups a query over pods of several namespaces.
func (r *rule) sharedPodGroupBy() []string {
	return []string{r.namespaceLabel, r.podLabel, r.containerLabel}
}

// nodeRequest is what prometheus-adapter renders the node query with.
func (r *rule) nodeRequest(nodes []string) promql.Request {
	return promql.Request{Parts: []promql.Part{promql.OneOfPart(r.nodeLabel, nodes)}, GroupBy: []string{r.nodeLabel}}
}

// oneOf matches the given values of label, or every value when batching or
// when there are more than MaxNamesInQuery of them (the caller then filters
// the result). Only for queries that may be shared.
func (p *Provider) oneOf(label string, values []string) promql.Part {
	if p.batch || len(values) > p.maxNames {
		return promql.AnyPart(label)
	}
	return promql.OneOfPart(label, values)
}
