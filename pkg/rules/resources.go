package rules

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/config"
)

// NamespacesResource is the group-resource of Namespace objects.
var NamespacesResource = schema.GroupResource{Resource: "namespaces"}

// groupSanitizer is how a resource template sees API group names.
var groupSanitizer = strings.NewReplacer(".", "_", "-", "_")

// ResourceMap associates series labels with Kubernetes resources, through
// explicit overrides and a label template (prometheus-adapter's
// resources.overrides and resources.template), reading labels exactly as
// prometheus-adapter does. When several labels could name the same resource,
// the override whose label sorts first wins, so the choice never depends on
// map iteration order.
type ResourceMap struct {
	tmpl *template.Template
	// extract is the template rendered with non-greedy groups in place of
	// its fields, anchored: prometheus-adapter's reading of a label. Nil
	// without a template.
	extract               *regexp.Regexp
	groupIdx, resourceIdx int        // submatch indexes; groupIdx is -1 without <<.Group>>
	overrides             []override // sorted by label
}

type override struct {
	label string
	gr    schema.GroupResource
}

// NewResourceMap compiles a resources block; path locates it in errors.
//
// A label has the template's form when it matches the template rendered with
// the regular expressions (?P<group>.+?) and (?P<resource>.+?) for <<.Group>>
// and <<.Resource>>, anchored at both ends; the rest of the template is
// itself read as a regular expression, as prometheus-adapter reads it. So
// with "kube_<<.Group>>_<<.Resource>>" the group is the shortest non-empty
// prefix: kube_apps_deployment is apps/deployment, and neither kube__pod
// (empty group) nor kube_networking_k8s_io_ingress (group "networking") name
// a resource.
func NewResourceMap(path string, m config.ResourceMapping) (*ResourceMap, error) {
	rm := &ResourceMap{groupIdx: -1, resourceIdx: -1}
	if m.Template != "" {
		t, err := template.New("resource").Delims("<<", ">>").Parse(m.Template)
		if err != nil {
			return nil, config.Fieldf(path+".template", "%v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, schema.GroupResource{Group: "(?P<group>.+?)", Resource: "(?P<resource>.+?)"}); err != nil {
			return nil, config.Fieldf(path+".template", "%v", err)
		}
		if buf.Len() == 0 {
			return nil, config.Fieldf(path+".template", "%q renders an empty label", m.Template)
		}
		re, err := regexp.Compile("^" + buf.String() + "$")
		if err != nil {
			return nil, config.Fieldf(path+".template", "%q does not make a regular expression matching labels: %v", m.Template, err)
		}
		for i, name := range re.SubexpNames() { // the last of a repeated field counts
			switch name {
			case "group":
				rm.groupIdx = i
			case "resource":
				rm.resourceIdx = i
			}
		}
		if rm.resourceIdx < 0 {
			return nil, config.Fieldf(path+".template", "%q must use <<.Resource>>", m.Template)
		}
		rm.tmpl, rm.extract = t, re
	}
	for label, gr := range m.Overrides {
		rm.overrides = append(rm.overrides, override{label: label, gr: schema.GroupResource{Group: gr.Group, Resource: gr.Resource}})
	}
	sort.Slice(rm.overrides, func(i, j int) bool { return rm.overrides[i].label < rm.overrides[j].label })
	return rm, nil
}

// ResourceForLabel returns the resource a label names, normalized through
// mapper (so "pod" and "pods" both give "pods"), or false if it names none
// the cluster knows. An override of the label wins over the template.
func (m *ResourceMap) ResourceForLabel(label string, mapper apimeta.RESTMapper) (schema.GroupResource, bool) {
	for _, o := range m.overrides {
		if o.label == label {
			return normalize(o.gr, mapper)
		}
	}
	if gr, ok := m.templateResource(label); ok {
		return normalize(gr, mapper)
	}
	return schema.GroupResource{}, false
}

// templateResource reads label with the template, without asking whether
// the cluster knows the result.
func (m *ResourceMap) templateResource(label string) (schema.GroupResource, bool) {
	if m.extract == nil {
		return schema.GroupResource{}, false
	}
	sub := m.extract.FindStringSubmatch(label)
	if sub == nil {
		return schema.GroupResource{}, false
	}
	gr := schema.GroupResource{Resource: sub[m.resourceIdx]}
	if m.groupIdx >= 0 {
		gr.Group = sub[m.groupIdx]
	}
	return gr, true
}

// LabelForResource returns the label that names objects of gr.
func (m *ResourceMap) LabelForResource(gr schema.GroupResource, mapper apimeta.RESTMapper) (string, error) {
	for _, o := range m.overrides {
		if n, ok := normalize(o.gr, mapper); ok && n == gr {
			return o.label, nil
		}
	}
	if m.tmpl == nil {
		return "", fmt.Errorf("no label is mapped to resource %s (no override and no template)", gr)
	}
	singular, err := mapper.ResourceSingularizer(gr.Resource)
	if err != nil {
		return "", fmt.Errorf("resource %s: %w", gr, err)
	}
	var buf bytes.Buffer
	if err := m.tmpl.Execute(&buf, schema.GroupResource{Group: groupSanitizer.Replace(gr.Group), Resource: singular}); err != nil {
		return "", err
	}
	if buf.Len() == 0 {
		return "", fmt.Errorf("resource template gave an empty label for %s", gr)
	}
	return buf.String(), nil
}

// NamespaceLabel returns the label holding the namespace, "namespace" if
// nothing maps one.
func (m *ResourceMap) NamespaceLabel(mapper apimeta.RESTMapper) string {
	if l, err := m.LabelForResource(NamespacesResource, mapper); err == nil {
		return l
	}
	return "namespace"
}

// normalize resolves gr through mapper as prometheus-adapter's
// CustomMetricInfo.Normalized does: the mapper must know the resource and
// its singular name. Without a mapper gr is taken as it is.
func normalize(gr schema.GroupResource, mapper apimeta.RESTMapper) (schema.GroupResource, bool) {
	if mapper == nil {
		return gr, gr.Resource != ""
	}
	gvr, err := mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return schema.GroupResource{}, false
	}
	if _, err := mapper.ResourceSingularizer(gvr.Resource); err != nil {
		return schema.GroupResource{}, false
	}
	return gvr.GroupResource(), true
}

// OverrideLabels returns the labels that overrides map, sorted.
func (m *ResourceMap) OverrideLabels() []string {
	out := make([]string, 0, len(m.overrides))
	for _, o := range m.overrides {
		out = append(out, o.label)
	}
	return out
}
