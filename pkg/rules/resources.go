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
// resources.overrides and resources.template). When several labels could
// name the same resource, the override whose label sorts first wins, so the
// choice never depends on map iteration order.
type ResourceMap struct {
	tmpl      *template.Template
	extract   *regexp.Regexp
	overrides []override // sorted by label
}

type override struct {
	label string
	gr    schema.GroupResource
}

const (
	groupMarker    = "\x00group\x00"
	resourceMarker = "\x00resource\x00"
)

// NewResourceMap compiles a resources block; path locates it in errors.
func NewResourceMap(path string, m config.ResourceMapping) (*ResourceMap, error) {
	rm := &ResourceMap{}
	if m.Template != "" {
		t, err := template.New("resource").Delims("<<", ">>").Option("missingkey=error").Parse(m.Template)
		if err != nil {
			return nil, config.Fieldf(path+".template", "%v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, schema.GroupResource{Group: groupMarker, Resource: resourceMarker}); err != nil {
			return nil, config.Fieldf(path+".template", "%v", err)
		}
		pattern := regexp.QuoteMeta(buf.String())
		if !strings.Contains(pattern, resourceMarker) {
			return nil, config.Fieldf(path+".template", "%q must use <<.Resource>>", m.Template)
		}
		pattern = strings.Replace(pattern, groupMarker, `(?P<group>.+?)`, 1)
		pattern = strings.Replace(pattern, resourceMarker, `(?P<resource>.+?)`, 1)
		re, err := regexp.Compile("^" + pattern + "$")
		if err != nil {
			return nil, config.Fieldf(path+".template", "%q: each field may appear once: %v", m.Template, err)
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
// the cluster knows.
func (m *ResourceMap) ResourceForLabel(label string, mapper apimeta.RESTMapper) (schema.GroupResource, bool) {
	for _, o := range m.overrides {
		if o.label == label {
			return normalize(o.gr, mapper)
		}
	}
	if m.extract == nil {
		return schema.GroupResource{}, false
	}
	sub := m.extract.FindStringSubmatch(label)
	if sub == nil {
		return schema.GroupResource{}, false
	}
	var gr schema.GroupResource
	for i, n := range m.extract.SubexpNames() {
		switch n {
		case "group":
			gr.Group = sub[i]
		case "resource":
			gr.Resource = sub[i]
		}
	}
	if g, ok := normalize(gr, mapper); ok {
		return g, true
	}
	if strings.Contains(gr.Group, "_") { // the template saw dots as underscores
		gr.Group = strings.ReplaceAll(gr.Group, "_", ".")
		return normalize(gr, mapper)
	}
	return schema.GroupResource{}, false
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

func normalize(gr schema.GroupResource, mapper apimeta.RESTMapper) (schema.GroupResource, bool) {
	if mapper == nil {
		return gr, gr.Resource != ""
	}
	gvr, err := mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return schema.GroupResource{}, false
	}
	return gvr.GroupResource(), true
}
