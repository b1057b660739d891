package rules

import (
	"bytes"
	"fmt"
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
	pattern   *labelPattern // the template inverted; nil without a template
	overrides []override    // sorted by label
}

// labelPattern is a resource template rendered with markers in place of its
// fields: a label it produced is prefix, field, [middle, field,] suffix.
type labelPattern struct {
	prefix, middle, suffix string
	fields                 []string // "group" and/or "resource", in order
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
		out := buf.String()
		if !strings.Contains(out, resourceMarker) {
			return nil, config.Fieldf(path+".template", "%q must use <<.Resource>>", m.Template)
		}
		if strings.Count(out, resourceMarker) > 1 || strings.Count(out, groupMarker) > 1 {
			return nil, config.Fieldf(path+".template", "%q: <<.Group>> and <<.Resource>> may each appear once", m.Template)
		}
		rm.tmpl, rm.pattern = t, newLabelPattern(out)
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
	if m.pattern == nil {
		return schema.GroupResource{}, false
	}
	// With both fields, where the group ends is ambiguous ("kube_<<.Group>>_<<.Resource>>"
	// gives kube_networking_k8s_io_ingress): try every split, in order.
	for _, gr := range m.pattern.candidates(label) {
		if g, ok := normalize(gr, mapper); ok {
			return g, true
		}
		if strings.Contains(gr.Group, "_") { // the template saw dots as underscores
			gr.Group = strings.ReplaceAll(gr.Group, "_", ".")
			if g, ok := normalize(gr, mapper); ok {
				return g, true
			}
		}
	}
	return schema.GroupResource{}, false
}

func newLabelPattern(rendered string) *labelPattern {
	p := &labelPattern{}
	rest := rendered
	for i := 0; ; i++ {
		gi, ri := strings.Index(rest, groupMarker), strings.Index(rest, resourceMarker)
		at, marker, field := gi, groupMarker, "group"
		if gi < 0 || (ri >= 0 && ri < gi) {
			at, marker, field = ri, resourceMarker, "resource"
		}
		if at < 0 {
			break
		}
		if i == 0 {
			p.prefix = rest[:at]
		} else {
			p.middle = rest[:at]
		}
		p.fields = append(p.fields, field)
		rest = rest[at+len(marker):]
	}
	p.suffix = rest
	return p
}

// candidates returns the group-resources label could have been rendered
// from, in order; the resource is never empty (the group may be, for the
// core group).
func (p *labelPattern) candidates(label string) []schema.GroupResource {
	if len(label) < len(p.prefix)+len(p.suffix) || !strings.HasPrefix(label, p.prefix) || !strings.HasSuffix(label, p.suffix) {
		return nil
	}
	mid := label[len(p.prefix) : len(label)-len(p.suffix)]
	set := func(gr *schema.GroupResource, field, v string) {
		if field == "group" {
			gr.Group = v
		} else {
			gr.Resource = v
		}
	}
	var out []schema.GroupResource
	if len(p.fields) == 1 {
		var gr schema.GroupResource
		set(&gr, p.fields[0], mid)
		if gr.Resource != "" {
			out = append(out, gr)
		}
		return out
	}
	for i := 0; i+len(p.middle) <= len(mid); i++ {
		if !strings.HasPrefix(mid[i:], p.middle) {
			continue
		}
		var gr schema.GroupResource
		set(&gr, p.fields[0], mid[:i])
		set(&gr, p.fields[1], mid[i+len(p.middle):])
		if gr.Resource != "" {
			out = append(out, gr)
		}
	}
	return out
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
