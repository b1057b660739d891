package rules

import (
	"errors"
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
)

var (
	podsResource       = schema.GroupResource{Resource: "pods"}
	nodesResource      = schema.GroupResource{Resource: "nodes"}
	namespacesResource = schema.GroupResource{Resource: "namespaces"}
)

// ResourceRule is a compiled resource rule (resourceRules.cpu or
// resourceRules.memory): its container and node queries, the labels that
// name namespaces, pods, containers and nodes, and whether each query may
// be shared by all pods (nodes) and filtered, or must be sent as
// prometheus-adapter sends it (pods: one query per namespace).
type ResourceRule struct {
	Path                      string // "resourceRules.cpu"
	ContainerQuery, NodeQuery *promql.Template
	NamespaceLabel            string
	PodLabel                  string
	ContainerLabel            string
	NodeLabel                 string
	ShareContainer, ShareNode promql.Sharing
	// NarrowNamespaces: the shared container query may be narrowed to a
	// set of namespaces (all their pods); NarrowPods: to a set of
	// namespaces and a set of pod names in them. Both are proven on the
	// syntax tree like ShareContainer (narrowedPodRequest).
	NarrowNamespaces, NarrowPods bool
	// Warnings are what could not be checked statically.
	Warnings []string
}

// CompileResourceRule compiles the resource rule at path. mapper resolves
// the resources block's labels to pods, namespaces and nodes; dialect is
// the backend's query language. Each query is rendered for one request and
// for all now, so that a template that cannot serve one fails at start, and
// whether each may be shared is decided. Errors name the field at fault,
// such as "resourceRules.cpu.containerQuery".
func CompileResourceRule(path string, r config.ResourceRule, mapper apimeta.RESTMapper, dialect string) (*ResourceRule, error) {
	out, err := compileResourceFields(path, r, mapper, dialect)
	if err != nil {
		return nil, err
	}
	out.ShareContainer, err = out.ContainerQuery.Sharing(
		out.PodRequest("promgate-sample", []string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.PodLabel)}, GroupBy: out.SharedPodGroupBy()})
	if err != nil {
		return nil, config.Fieldf(path+".containerQuery", "%v", err)
	}
	out.ShareNode, err = out.NodeQuery.Sharing(
		out.NodeRequest([]string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.NodeLabel)}, GroupBy: []string{out.NodeLabel}})
	if err != nil {
		return nil, config.Fieldf(path+".nodeQuery", "%v", err)
	}
	if out.ShareContainer.OK {
		out.NarrowNamespaces = out.narrowable(false)
		out.NarrowPods = out.NarrowNamespaces && out.narrowable(true)
	}
	if !out.ShareContainer.OK {
		klog.InfoS("Resource metrics pod query is sent per namespace, as prometheus-adapter does: it cannot be shared by all pods",
			"field", path+".containerQuery", "reason", out.ShareContainer.Reason)
	}
	return out, nil
}

// compileResourceFields parses the rule's templates and checks its labels,
// reporting every field at fault.
func compileResourceFields(path string, r config.ResourceRule, mapper apimeta.RESTMapper, dialect string) (*ResourceRule, error) {
	out := &ResourceRule{Path: path, ContainerLabel: r.ContainerLabel}
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
	out.ContainerQuery = compile("containerQuery", r.ContainerQuery)
	out.NodeQuery = compile("nodeQuery", r.NodeQuery)
	switch {
	case r.ContainerLabel == "":
		errs = append(errs, config.Fieldf(path+".containerLabel", "is required"))
	case !promql.ValidLabelName(r.ContainerLabel):
		errs = append(errs, config.Fieldf(path+".containerLabel", "%q is not a valid Prometheus label name", r.ContainerLabel))
	}
	rm, err := NewResourceMap(path+".resources", r.Resources)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
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
	out.PodLabel = label(podsResource, l, err)
	l, err = rm.LabelForResource(nodesResource, mapper)
	out.NodeLabel = label(nodesResource, l, err)
	out.NamespaceLabel = label(namespacesResource, rm.NamespaceLabel(mapper), nil)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// PodRequest is what prometheus-adapter renders the container query with
// for pods of one namespace: the namespace and the pods, grouped by pod and
// container.
func (r *ResourceRule) PodRequest(namespace string, pods []string) promql.Request {
	return promql.Request{
		Parts:   []promql.Part{promql.EqualPart(r.NamespaceLabel, namespace), promql.OneOfPart(r.PodLabel, pods)},
		GroupBy: []string{r.PodLabel, r.ContainerLabel},
	}
}

// narrowable decides whether the shared container query, narrowed to two
// namespaces (and, with pods, to three pod names), is equivalent to the
// query for one request once filtered, as the whole cluster's is.
func (r *ResourceRule) narrowable(pods bool) bool {
	podPart := promql.AnyPart(r.PodLabel)
	if pods {
		podPart = promql.OneOfPart(r.PodLabel, []string{"sample-a", "sample-b", "sample-c"})
	}
	s, err := r.ContainerQuery.Sharing(
		r.PodRequest("promgate-sample", []string{"sample-a", "sample-b"}),
		r.NarrowedPodRequest([]string{"promgate-other", "promgate-sample"}, podPart))
	return err == nil && s.OK
}

// NarrowedPodRequest renders the shared container query for the pods part
// (all pods, or some by name) of the given namespaces.
func (r *ResourceRule) NarrowedPodRequest(namespaces []string, pods promql.Part) promql.Request {
	return promql.Request{
		Parts:   []promql.Part{promql.OneOfPart(r.NamespaceLabel, namespaces), pods},
		GroupBy: r.SharedPodGroupBy(),
	}
}

// SharedPodGroupBy groups a query over pods of several namespaces.
func (r *ResourceRule) SharedPodGroupBy() []string {
	return []string{r.NamespaceLabel, r.PodLabel, r.ContainerLabel}
}

// NodeRequest is what prometheus-adapter renders the node query with.
func (r *ResourceRule) NodeRequest(nodes []string) promql.Request {
	return promql.Request{Parts: []promql.Part{promql.OneOfPart(r.NodeLabel, nodes)}, GroupBy: []string{r.NodeLabel}}
}
