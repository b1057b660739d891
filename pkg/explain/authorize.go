package explain

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/rules"
)

// The API groups and versions of the reads explain authorizes.
const (
	// ExternalGroup is the external metrics API's group.
	ExternalGroup = "external.metrics.k8s.io"
	// CustomVersion is the custom metrics API version asked about when
	// the explain request's own version is not known.
	CustomVersion = "v1beta2"
	// ExternalVersion is the external metrics API's version.
	ExternalVersion = "v1beta1"
)

// Authorizer decides whether a user may do what the attributes describe.
// In a running promgate it is the server's delegating authorizer: a
// SubjectAccessReview to kube-apiserver per question, with its cache; the
// same that authorized the request for explain itself.
type Authorizer interface {
	Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error)
}

// Access is what a caller must be allowed for an explanation of a request.
// Its attributes have no user; the handler sets the caller's.
type Access struct {
	// Reads are the reads of the metrics API the explanation is about,
	// as kube-apiserver classifies them: the caller must be allowed every
	// one, or the explanation is refused.
	Reads []authorizer.AttributesRecord
	// Wide is the read of the metric in every namespace, on every
	// resource (custom) or at the cluster scope (external). The series
	// explain asks the backends for (named like the metric, matched by a
	// rule's seriesQuery) and the dropped-series examples of the
	// discovery are about every namespace: a report holds them only for a
	// caller allowed every one of these too. Empty when Reads cover them.
	Wide []authorizer.AttributesRecord
}

// Access returns what a caller must be allowed for an explanation of req:
// the attributes kube-apiserver's RequestInfoFactory and authorization
// filter give a read of the metric req explains. customVersion is the
// custom metrics API version of the explain request ("" for
// CustomVersion).
//
//   - A custom metric of a resource: the read
//     /apis/custom.metrics.k8s.io/{v}/namespaces/{ns}/{resource}/{name}/{metric},
//     verb get, resource the group-qualified plural ("pods",
//     "deployments.apps", what the custom metrics client sends), name the
//     object or "*", subresource the metric, in namespace ns; without
//     namespace the cluster-scoped path
//     /apis/custom.metrics.k8s.io/{v}/{resource}/{name}/{metric}, so that
//     a namespaced metric asked about without a namespace is authorized
//     at the cluster scope (all namespaces).
//   - A metric of a namespace (resource namespaces): the read
//     /apis/custom.metrics.k8s.io/{v}/namespaces/{ns}/metrics/{metric},
//     verb get, resource "metrics", name the metric, in the namespace the
//     metric is about (name, else namespace).
//   - An external metric: the read
//     /apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric},
//     verb list, resource the metric, in namespace ns (cluster scope
//     without one), with the request's labelSelector.
//   - A metric without resource and not external, which explain looks
//     for on every resource and in both APIs: its read on every resource
//     (resource "*", name "*", subresource the metric) and as an external
//     metric, both at the cluster scope.
//   - No metric (the whole discovery, every rule's series): every custom
//     and external metric (resource "*", subresource "*") at the cluster
//     scope.
func (e *Explainer) Access(req Request, customVersion string) Access {
	if customVersion == "" {
		customVersion = CustomVersion
	}
	customWide := func(subresource string) authorizer.AttributesRecord {
		return customRead(customVersion, "", "*", "*", subresource)
	}
	externalWide := func(metric string) authorizer.AttributesRecord {
		return externalRead("", metric, "")
	}
	switch {
	case req.Metric == "":
		return Access{Reads: []authorizer.AttributesRecord{customWide("*"), externalWide("*")}}
	case req.External:
		read := externalRead(req.Namespace, req.Metric, req.LabelSelector)
		return Access{Reads: []authorizer.AttributesRecord{read}, Wide: unless(read, externalWide(req.Metric))}
	case req.Resource == "":
		return Access{Reads: []authorizer.AttributesRecord{customWide(req.Metric), externalWide(req.Metric)}}
	}
	var read authorizer.AttributesRecord
	gr := schema.ParseGroupResource(req.Resource)
	if gr == rules.NamespacesResource {
		// As target: the metric is about namespace name, else the
		// request's namespace; the client reads it at
		// /namespaces/{ns}/metrics/{metric}.
		ns := req.Name
		if ns == "" || ns == "*" {
			ns = req.Namespace
		}
		read = namespaceRead(customVersion, ns, req.Metric)
	} else {
		info := cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: req.Namespace != "", Metric: req.Metric}
		if e.Mapper != nil {
			if norm, _, err := info.Normalized(e.Mapper); err == nil {
				gr = norm.GroupResource
			}
		}
		name := req.Name
		if name == "" {
			name = "*"
		}
		read = customRead(customVersion, req.Namespace, gr.String(), name, req.Metric)
	}
	return Access{Reads: []authorizer.AttributesRecord{read}, Wide: unless(read, customWide(req.Metric))}
}

// unless returns []{wide}, or nil when read is wide itself.
func unless(read, wide authorizer.AttributesRecord) []authorizer.AttributesRecord {
	if sameAttributes(read, wide) {
		return nil
	}
	return []authorizer.AttributesRecord{wide}
}

func sameAttributes(a, b authorizer.AttributesRecord) bool {
	return a.Verb == b.Verb && a.APIGroup == b.APIGroup && a.APIVersion == b.APIVersion && a.Namespace == b.Namespace &&
		a.Resource == b.Resource && a.Subresource == b.Subresource && a.Name == b.Name &&
		len(a.LabelSelectorRequirements) == 0 && len(b.LabelSelectorRequirements) == 0 &&
		a.LabelSelectorParsingErr == nil && b.LabelSelectorParsingErr == nil
}

// customRead is a GET of a custom metric of objects: namespaced, or at the
// cluster scope when namespace is "".
func customRead(version, namespace, resource, name, metric string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		Verb: "get", APIGroup: Group, APIVersion: version, Namespace: namespace,
		Resource: resource, Name: name, Subresource: metric, ResourceRequest: true,
		Path: apiPath(Group, version, namespace, resource, name, metric),
	}
}

// namespaceRead is a GET of a metric describing a namespace.
func namespaceRead(version, namespace, metric string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		Verb: "get", APIGroup: Group, APIVersion: version, Namespace: namespace,
		Resource: "metrics", Name: metric, ResourceRequest: true,
		Path: apiPath(Group, version, namespace, "metrics", metric),
	}
}

// externalRead is a GET of an external metric, which kube-apiserver
// classifies as a list (no object name), with the request's label
// selector as its authorization filter does.
func externalRead(namespace, metric, selector string) authorizer.AttributesRecord {
	a := authorizer.AttributesRecord{
		Verb: "list", APIGroup: ExternalGroup, APIVersion: ExternalVersion, Namespace: namespace,
		Resource: metric, ResourceRequest: true,
		Path: apiPath(ExternalGroup, ExternalVersion, namespace, metric),
	}
	if selector != "" {
		sel, err := labels.Parse(selector)
		if err != nil {
			a.LabelSelectorParsingErr = err
		} else if reqs, _ := sel.Requirements(); len(reqs) > 0 {
			a.LabelSelectorRequirements = reqs
		}
	}
	return a
}

// apiPath is /apis/{group}/{version}[/namespaces/{namespace}]/{parts...},
// unescaped like the Path of kube-apiserver's attributes.
func apiPath(group, version, namespace string, parts ...string) string {
	segs := []string{"", "apis", group, version}
	if namespace != "" {
		segs = append(segs, "namespaces", namespace)
	}
	return strings.Join(append(segs, parts...), "/")
}
