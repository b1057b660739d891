package provider

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ValidNamespace refuses, with a 400, a namespace that is not a valid
// Kubernetes namespace name: request input is checked before any query is
// built from it.
func ValidNamespace(ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("namespace %q is not a valid namespace name: %s", truncate(ns), strings.Join(errs, "; ")))
	}
	return nil
}

// ValidObjectName refuses, with a 400, an object name that no Kubernetes
// object can have. Most resources name objects as DNS subdomains; a few
// (RBAC roles, for instance) also allow ':' and upper case, so names of that
// wider alphabet are let through too. Nothing outside [A-Za-z0-9.:_-] ever
// reaches a query.
func ValidObjectName(gr schema.GroupResource, name string) error {
	if len(validation.IsDNS1123Subdomain(name)) == 0 {
		return nil
	}
	if len(name) > 0 && len(name) <= validation.DNS1123SubdomainMaxLength && lenientName(name) {
		return nil
	}
	return apierrors.NewBadRequest(fmt.Sprintf("%q is not a valid name for %s", truncate(name), gr))
}

func lenientName(s string) bool {
	if s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == ':', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// truncate keeps error messages about hostile input short.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Limits of a label selector whose requirements become query matchers (a
// custom metric's metricLabelSelector, an external metric's
// labelSelector). A selector that HPAs use names a few labels and values;
// kube-apiserver lets through selectors of up to about 1 MiB, and every
// value of one goes into the query sent to the backend, repeated in each
// selector the partial-window guard adds (some 30 for a rate). Bounded
// here, a request's query is at most a few hundred kB, whatever the
// selector.
const (
	// MaxSelectorValues bounds the values of all requirements together.
	MaxSelectorValues = 100
	// MaxSelectorBytes bounds the keys and values of all requirements
	// together, in bytes.
	MaxSelectorBytes = 4096
)

// ValidSelector refuses, with a 400 naming the limit, a selector (of query
// parameter param) over MaxSelectorValues values or MaxSelectorBytes bytes.
func ValidSelector(param string, sel labels.Selector) error {
	if sel == nil {
		return nil
	}
	reqs, _ := sel.Requirements()
	values, size := 0, 0
	for _, r := range reqs {
		size += len(r.Key()) + len(r.Operator())
		for _, v := range r.ValuesUnsorted() {
			values++
			size += len(v) + 1
		}
	}
	switch {
	case values > MaxSelectorValues:
		return apierrors.NewBadRequest(fmt.Sprintf("%s has %d values; at most %d are accepted (docs/security.md#request-limits)", param, values, MaxSelectorValues))
	case size > MaxSelectorBytes:
		return apierrors.NewBadRequest(fmt.Sprintf("%s is %d bytes long; at most %d are accepted (docs/security.md#request-limits)", param, size, MaxSelectorBytes))
	}
	return nil
}
