package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/rules"
)

// fakeAuthorizer records what it is asked and answers with decide.
type fakeAuthorizer struct {
	decide func(authorizer.Attributes) (authorizer.Decision, string, error)
	mu     sync.Mutex
	asked  []string
}

func (f *fakeAuthorizer) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	f.mu.Lock()
	f.asked = append(f.asked, attrString(a))
	f.mu.Unlock()
	return f.decide(a)
}

func (f *fakeAuthorizer) reset() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.asked
	f.asked = nil
	return out
}

// attrString is every attribute kube-apiserver's authorizers (RBAC, a
// SubjectAccessReview) see.
func attrString(a authorizer.Attributes) string {
	sel, selErr := a.GetLabelSelector()
	user := "<none>"
	if a.GetUser() != nil {
		user = a.GetUser().GetName()
	}
	return fmt.Sprintf("user=%s %s %s/%s ns=%q resource=%q name=%q sub=%q sel=%q selErr=%v resourceRequest=%v path=%s",
		user, a.GetVerb(), a.GetAPIGroup(), a.GetAPIVersion(), a.GetNamespace(), a.GetResource(), a.GetName(), a.GetSubresource(),
		sel.String(), selErr, a.IsResourceRequest(), a.GetPath())
}

func allowAll() *fakeAuthorizer {
	return &fakeAuthorizer{decide: func(authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionAllow, "", nil
	}}
}

// grant is an RBAC rule bound to a user: namespace "" is a
// ClusterRoleBinding (every namespace and the cluster scope), otherwise a
// RoleBinding in that namespace. resource is matched as RBAC does: "*",
// "resource/subresource", "*/subresource".
type grant struct {
	user, verb, group, resource, namespace string
}

// rbac allows what grants allow and has no opinion otherwise.
func rbac(grants ...grant) *fakeAuthorizer {
	return &fakeAuthorizer{decide: func(a authorizer.Attributes) (authorizer.Decision, string, error) {
		combined := a.GetResource()
		if a.GetSubresource() != "" {
			combined += "/" + a.GetSubresource()
		}
		for _, g := range grants {
			if g.user != a.GetUser().GetName() || g.verb != a.GetVerb() || g.group != a.GetAPIGroup() ||
				(g.namespace != "" && g.namespace != a.GetNamespace()) {
				continue
			}
			if g.resource == "*" || g.resource == combined || (strings.HasPrefix(g.resource, "*/") && g.resource[2:] == a.GetSubresource()) {
				return authorizer.DecisionAllow, "", nil
			}
		}
		return authorizer.DecisionNoOpinion, "", nil
	}}
}

func decideAll(d authorizer.Decision, reason string, err error) *fakeAuthorizer {
	return &fakeAuthorizer{decide: func(authorizer.Attributes) (authorizer.Decision, string, error) { return d, reason, err }}
}

func explainURI(q string) string { return Path + "?" + q }

// TestHandlerAuthorization checks the attributes explain asks about for
// each kind of metric (those of a real read of it, by kube-apiserver's
// RequestInfoFactory), and its answers to the authorizer's decisions.
func TestHandlerAuthorization(t *testing.T) {
	const (
		custom   = "custom.metrics.k8s.io"
		external = "external.metrics.k8s.io"
		rps      = "requests_per_second"
	)
	attrs := func(verb, group, version, ns, resource, name, sub, sel, path string) string {
		return fmt.Sprintf("user=alice %s %s/%s ns=%q resource=%q name=%q sub=%q sel=%q selErr=<nil> resourceRequest=true path=%s",
			verb, group, version, ns, resource, name, sub, sel, path)
	}
	customWide := func(metric string) string {
		return attrs("get", custom, "v1beta2", "", "*", "*", metric, "", "/apis/custom.metrics.k8s.io/v1beta2/*/*/"+metric)
	}
	externalWide := func(metric string) string {
		return attrs("list", external, "v1beta1", "", metric, "", "", "", "/apis/external.metrics.k8s.io/v1beta1/"+metric)
	}
	podsIn := func(ns string) grant { return grant{"alice", "get", custom, "pods/" + rps, ns} }
	withheldNote := func(what string) string {
		return "note: the series named like the metric that the backends hold and the discovery's dropped-series examples are left out: " +
			`they are about every namespace, and User "alice" cannot ` + what
	}

	tests := []struct {
		name string
		user string
		uri  string
		a    *fakeAuthorizer
		// asked are the attributes the authorizer is asked about, in
		// order.
		asked []string
		code  int
		// message is the Status message of an error; body, parts of the
		// report; notBody, what it must not hold.
		message       string
		body, notBody []string
	}{
		{
			name: "custom metric of one object in a namespace: allowed there only, so without the series of every namespace",
			uri:  explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0"),
			a:    rbac(podsIn("ns1")),
			asked: []string{
				attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps),
				customWide(rps),
			},
			code: http.StatusOK,
			body: []string{"rules[0]  seriesQuery: {job=\"app\"}\n    serves it\n", "for 1 objects",
				withheldNote(`get resource "*/requests_per_second" in API group "custom.metrics.k8s.io" at the cluster scope`)},
		},
		{
			name: "all objects of a namespace, through v1beta1, by a cluster-wide reader",
			uri:  "/apis/custom.metrics.k8s.io/v1beta1/explain?metric=" + rps + "&resource=pods&namespace=ns1",
			a:    rbac(grant{"alice", "get", custom, "*/" + rps, ""}),
			asked: []string{
				attrs("get", custom, "v1beta1", "ns1", "pods", "*", rps, "", "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns1/pods/*/"+rps),
				attrs("get", custom, "v1beta1", "", "*", "*", rps, "", "/apis/custom.metrics.k8s.io/v1beta1/*/*/"+rps),
			},
			code:    http.StatusOK,
			body:    []string{"serves it", "for 2 objects"},
			notBody: []string{"left out"},
		},
		{
			name:    "denied: kube-apiserver's 403",
			uri:     explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0&run=true"),
			a:       rbac(),
			asked:   []string{attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps)},
			code:    http.StatusForbidden,
			message: `pods.custom.metrics.k8s.io "web-0" is forbidden: User "alice" cannot get resource "pods/requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "ns1"`,
		},
		{
			name:    "no opinion with a reason: the reason ends the message",
			uri:     explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0"),
			a:       decideAll(authorizer.DecisionNoOpinion, "no policy matched", nil),
			asked:   []string{attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps)},
			code:    http.StatusForbidden,
			message: `pods.custom.metrics.k8s.io "web-0" is forbidden: User "alice" cannot get resource "pods/requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "ns1": no policy matched`,
		},
		{
			name:    "an explicit deny",
			uri:     explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0"),
			a:       decideAll(authorizer.DecisionDeny, "", nil),
			asked:   []string{attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps)},
			code:    http.StatusForbidden,
			message: `pods.custom.metrics.k8s.io "web-0" is forbidden: User "alice" cannot get resource "pods/requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "ns1"`,
		},
		{
			name:    "an authorizer error without an allow is a 500, as in kube-apiserver",
			uri:     explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0"),
			a:       decideAll(authorizer.DecisionNoOpinion, "", errors.New("webhook unreachable")),
			asked:   []string{attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps)},
			code:    http.StatusInternalServerError,
			message: `explain: could not authorize user "alice" to get resource "pods/requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "ns1": webhook unreachable`,
		},
		{
			name: "an allow stands despite an error",
			uri:  explainURI("metric=" + rps + "&resource=pods&namespace=ns1&name=web-0"),
			a:    decideAll(authorizer.DecisionAllow, "", errors.New("one of the union failed")),
			asked: []string{
				attrs("get", custom, "v1beta2", "ns1", "pods", "web-0", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/web-0/"+rps),
				customWide(rps),
			},
			code: http.StatusOK,
			body: []string{"serves it"},
		},
		{
			name:  "cluster-scoped resource",
			uri:   explainURI("metric=load&resource=nodes&name=n1"),
			a:     rbac(grant{"alice", "get", custom, "nodes/load", ""}),
			asked: []string{attrs("get", custom, "v1beta2", "", "nodes", "n1", "load", "", "/apis/custom.metrics.k8s.io/v1beta2/nodes/n1/load"), customWide("load")},
			code:  http.StatusOK,
			body:  []string{"metric load, resource nodes, name n1", withheldNote(`get resource "*/load" in API group "custom.metrics.k8s.io" at the cluster scope`)},
		},
		{
			name:  "a metric of a namespace: /namespaces/{ns}/metrics/{metric}",
			uri:   explainURI("metric=" + rps + "&resource=namespaces&namespace=ns1"),
			a:     rbac(grant{"alice", "get", custom, "metrics", "ns1"}),
			asked: []string{attrs("get", custom, "v1beta2", "ns1", "metrics", rps, "", "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/metrics/"+rps), customWide(rps)},
			code:  http.StatusOK,
			body:  []string{"serves it", "for 1 objects"},
		},
		{
			name:    "a metric of namespace name: authorized in that namespace, not the request's",
			uri:     explainURI("metric=" + rps + "&resource=namespaces&namespace=ns1&name=payroll"),
			a:       rbac(grant{"alice", "get", custom, "metrics", "ns1"}),
			asked:   []string{attrs("get", custom, "v1beta2", "payroll", "metrics", rps, "", "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/payroll/metrics/"+rps)},
			code:    http.StatusForbidden,
			message: `metrics.custom.metrics.k8s.io "requests_per_second" is forbidden: User "alice" cannot get resource "metrics" in API group "custom.metrics.k8s.io" in the namespace "payroll"`,
		},
		{
			name: "external metric: a list of the metric, with the label selector",
			uri:  explainURI("metric=queue_depth&external=true&namespace=ns1&labelSelector=queue%3Da"),
			a:    rbac(grant{"alice", "list", external, "queue_depth", "ns1"}),
			asked: []string{
				attrs("list", external, "v1beta1", "ns1", "queue_depth", "", "", "queue=a", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns1/queue_depth"),
				externalWide("queue_depth"),
			},
			code: http.StatusOK,
			body: []string{"externalRules[0]  seriesQuery: {__name__=~\"^queue_.*\"}\n    serves it\n",
				withheldNote(`list resource "queue_depth" in API group "external.metrics.k8s.io" at the cluster scope`)},
		},
		{
			name:  "external metric without a namespace: the cluster scope, which covers every namespace",
			uri:   explainURI("metric=queue_depth&external=true"),
			a:     rbac(grant{"alice", "list", external, "queue_depth", ""}),
			asked: []string{externalWide("queue_depth")},
			code:  http.StatusOK,
			body:  []string{"serves it"},
		},
		{
			name:    "a namespaced metric asked about without a namespace: the cluster scope",
			uri:     explainURI("metric=" + rps + "&resource=pods"),
			a:       rbac(podsIn("ns1")),
			asked:   []string{attrs("get", custom, "v1beta2", "", "pods", "*", rps, "", "/apis/custom.metrics.k8s.io/v1beta2/pods/*/"+rps)},
			code:    http.StatusForbidden,
			message: `pods.custom.metrics.k8s.io "*" is forbidden: User "alice" cannot get resource "pods/requests_per_second" in API group "custom.metrics.k8s.io" at the cluster scope`,
		},
		{
			name:    "a metric without resource: every resource and the external API, cluster-wide",
			uri:     explainURI("metric=" + rps),
			a:       rbac(grant{"alice", "get", custom, "*/" + rps, ""}),
			asked:   []string{customWide(rps), externalWide(rps)},
			code:    http.StatusForbidden,
			message: `requests_per_second.external.metrics.k8s.io is forbidden: User "alice" cannot list resource "requests_per_second" in API group "external.metrics.k8s.io" at the cluster scope`,
		},
		{
			name:  "a metric without resource, by a reader of it everywhere",
			uri:   explainURI("metric=" + rps),
			a:     rbac(grant{"alice", "get", custom, "*/" + rps, ""}, grant{"alice", "list", external, rps, ""}),
			asked: []string{customWide(rps), externalWide(rps)},
			code:  http.StatusOK,
			body:  []string{"rules[0]  seriesQuery: {job=\"app\"}\n    serves it\n"},
		},
		{
			name: "the whole discovery: every metric of both APIs, cluster-wide",
			uri:  explainURI(""),
			a:    rbac(grant{"alice", "get", custom, "*", ""}, grant{"alice", "list", external, "*", ""}),
			asked: []string{
				attrs("get", custom, "v1beta2", "", "*", "*", "*", "", "/apis/custom.metrics.k8s.io/v1beta2/*/*/*"),
				externalWide("*"),
			},
			code: http.StatusOK,
			body: []string{"dropped 2: filtered by name.matches ^app_(.*)_total$ (e.g. app_queue_length, app_build_info)"},
		},
		{
			name:    "the whole discovery, by a reader of one namespace",
			uri:     explainURI("format=json"),
			a:       rbac(podsIn("ns1")),
			asked:   []string{attrs("get", custom, "v1beta2", "", "*", "*", "*", "", "/apis/custom.metrics.k8s.io/v1beta2/*/*/*")},
			code:    http.StatusForbidden,
			message: `*.custom.metrics.k8s.io "*" is forbidden: User "alice" cannot get resource "*/*" in API group "custom.metrics.k8s.io" at the cluster scope`,
		},
		{
			name:    "the resource as the custom metrics client names it",
			uri:     explainURI("metric=m&resource=deployments&namespace=ns1"),
			a:       rbac(),
			asked:   []string{attrs("get", custom, "v1beta2", "ns1", "deployments.apps", "*", "m", "", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/deployments.apps/*/m")},
			code:    http.StatusForbidden,
			message: `deployments.apps.custom.metrics.k8s.io "*" is forbidden: User "alice" cannot get resource "deployments.apps/m" in API group "custom.metrics.k8s.io" in the namespace "ns1"`,
		},
		{
			name:    "no user",
			user:    "-",
			uri:     explainURI("metric=" + rps + "&resource=pods&namespace=ns1"),
			a:       allowAll(),
			code:    http.StatusInternalServerError,
			message: "explain: no user in the request's context",
		},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, f.e, tt.a)
			u := tt.user
			switch u {
			case "":
				u = "alice"
			case "-":
				u = ""
			}
			resp, body := s.getAs(t, u, tt.uri, "")
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d\n%s", resp.StatusCode, tt.code, body)
			}
			if got := tt.a.reset(); strings.Join(got, "\n") != strings.Join(tt.asked, "\n") {
				t.Errorf("asked\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.asked, "\n  "))
			}
			if tt.message != "" {
				var st metav1.Status
				if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" || st.Code != int32(tt.code) {
					t.Fatalf("not a Status of %d: %v\n%s", tt.code, err, body)
				}
				if st.Message != tt.message {
					t.Errorf("message\n  %s\nwant\n  %s", st.Message, tt.message)
				}
				if tt.code == http.StatusForbidden && st.Reason != metav1.StatusReasonForbidden {
					t.Errorf("reason %q, want Forbidden", st.Reason)
				}
			}
			for _, want := range tt.body {
				if !strings.Contains(body, want) {
					t.Errorf("the answer lacks %q:\n%s", want, body)
				}
			}
			for _, not := range tt.notBody {
				if strings.Contains(body, not) {
					t.Errorf("the answer holds %q:\n%s", not, body)
				}
			}
		})
	}
}

// TestHandlerOtherNamespace is the finding: a caller allowed to read the
// metric in namespace ns2 only learns nothing of ns1, where the pods and
// their series are, whatever it asks; asking about ns2 it gets counts of
// ns2 only, and neither the series of every namespace nor discovery's
// examples.
func TestHandlerOtherNamespace(t *testing.T) {
	f := newFixture(t)
	a := rbac(grant{"alice", "get", Group, "pods/requests_per_second", "ns2"}, grant{"alice", "get", Group, "pods/app_queue_length", "ns2"},
		grant{"alice", "get", Group, "metrics", "ns2"}, grant{"alice", "list", ExternalGroup, "queue_depth", "ns2"},
		grant{"admin", "get", Group, "*", ""}, grant{"admin", "list", ExternalGroup, "*", ""})
	s := newServer(t, f.e, a)

	// What ns1 holds: two pods with series of the metric (web-0, web-1),
	// one with app_queue_length; and what the series of every namespace
	// and discovery's examples would say.
	secrets := []string{"for 1 objects", "for 2 objects", "ran: ", `"objects": 1`, `"objects": 2`, `"ran": true`,
		"{job,namespace,pod}", "{job,version}", " dropped: ", "dropped 1:", "dropped 2:", "e.g."}
	f.srv.Vector(`sum by (namespace, pod) (rate(app_requests_total{pod!=""}[1m]))`,
		promtest.Sample{Labels: map[string]string{"namespace": "ns1", "pod": "web-0"}, Value: "1"})
	// What an administrator learns of ns1, and alice must not.
	for _, q := range []string{"metric=requests_per_second&resource=pods&namespace=ns1&run=true", "metric=app_queue_length&resource=pods&namespace=ns1", ""} {
		_, body := s.getAs(t, "admin", explainURI(q), "")
		told := false
		for _, secret := range secrets {
			told = told || strings.Contains(body, secret)
		}
		if !told {
			t.Errorf("%s: an administrator is told none of %q:\n%s", q, secrets, body)
		}
	}
	for _, q := range []url.Values{
		{"metric": {"requests_per_second"}, "resource": {"pods"}, "namespace": {"ns1"}, "run": {"true"}},
		{"metric": {"requests_per_second"}, "resource": {"pods"}, "namespace": {"ns1"}, "name": {"web-0"}, "run": {"true"}},
		{"metric": {"requests_per_second"}, "resource": {"pods"}, "namespace": {"ns1"}, "labelSelector": {"app=web"}},
		{"metric": {"requests_per_second"}, "resource": {"pods"}, "run": {"true"}},
		{"metric": {"requests_per_second"}, "resource": {"namespaces"}, "namespace": {"ns2"}, "name": {"ns1"}, "run": {"true"}},
		{"metric": {"app_queue_length"}, "resource": {"pods"}, "namespace": {"ns1"}},
		{"metric": {"requests_per_second"}},
		{},
	} {
		for _, format := range []string{"text", "json"} {
			q.Set("format", format)
			resp, body := s.getAs(t, "alice", explainURI(q.Encode()), "")
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d, want 403\n%s", q.Encode(), resp.StatusCode, body)
			}
			for _, secret := range secrets {
				if strings.Contains(body, secret) {
					t.Errorf("%s: the answer tells %q:\n%s", q.Encode(), secret, body)
				}
			}
		}
	}

	for _, q := range []url.Values{
		{"metric": {"requests_per_second"}, "resource": {"pods"}, "namespace": {"ns2"}, "run": {"true"}},
		{"metric": {"app_queue_length"}, "resource": {"pods"}, "namespace": {"ns2"}},
		{"metric": {"queue_depth"}, "external": {"true"}, "namespace": {"ns2"}},
	} {
		for _, format := range []string{"text", "json"} {
			q.Set("format", format)
			resp, body := s.getAs(t, "alice", explainURI(q.Encode()), "")
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "left out") {
				t.Errorf("%s: %d, want 200 saying what was left out\n%s", q.Encode(), resp.StatusCode, body)
			}
			for _, secret := range secrets {
				if strings.Contains(body, secret) {
					t.Errorf("%s: the answer tells %q:\n%s", q.Encode(), secret, body)
				}
			}
		}
	}
}

// TestAccessCoversTarget checks, for every request the handler tests
// ask, that the namespace authorized is the one the plan is about.
func TestAccessCoversTarget(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		req Request
		ns  string
	}{
		{Request{Metric: "m", Resource: "pods", Namespace: "a"}, "a"},
		{Request{Metric: "m", Resource: "pods", Namespace: "a", Name: "x"}, "a"},
		{Request{Metric: "m", Resource: "pods"}, ""},
		{Request{Metric: "m", Resource: "nodes", Name: "n"}, ""},
		{Request{Metric: "m", Resource: "namespaces", Namespace: "a"}, "a"},
		{Request{Metric: "m", Resource: "namespaces", Namespace: "a", Name: "*"}, "a"},
		{Request{Metric: "m", Resource: "namespaces", Namespace: "a", Name: "b"}, "b"},
		{Request{Metric: "m", Resource: "namespaces", Name: "b"}, "b"},
		{Request{Metric: "m", Resource: "namespaces"}, ""},
		{Request{Metric: "m", External: true, Namespace: "a"}, "a"},
		{Request{Metric: "m", External: true}, ""},
	} {
		acc := f.e.Access(tt.req, "")
		if len(acc.Reads) != 1 || acc.Reads[0].Namespace != tt.ns {
			t.Errorf("%+v: reads %+v, want one in namespace %q", tt.req, acc.Reads, tt.ns)
			continue
		}
		tgt, err := f.e.target(tt.req)
		if !tt.req.External && err == nil && tgt.key.Resource == rules.NamespacesResource && tgt.name != tt.ns {
			t.Errorf("%+v: the plan is about namespace %q, the read is in %q", tt.req, tgt.name, tt.ns)
		}
		if !tt.req.External && err == nil && tgt.key.Resource != rules.NamespacesResource && tgt.nsParam != tt.ns {
			t.Errorf("%+v: the plan is in namespace %q, the read in %q", tt.req, tgt.nsParam, tt.ns)
		}
	}
}
