package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// aggregateLabel selects the ClusterRoles aggregated into
// promgate-metadata-reader.
const aggregateLabel = "rbac.promgate.io/aggregate-to-metadata-reader"

// serviceAccount is promgate's identity.
var serviceAccount = rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: namespace}

// bootstrapClusterRoles and bootstrapRoles are the rules of the roles that
// the manifests bind but do not ship: kube-apiserver's bootstrap policy
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy). A binding to any other
// role the manifests do not hold is an error: what it grants is unknown.
var (
	bootstrapClusterRoles = map[string][]rbacv1.PolicyRule{
		"system:auth-delegator": {
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
		},
	}
	bootstrapRoles = map[string][]rbacv1.PolicyRule{
		"kube-system/extension-apiserver-authentication-reader": {
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"extension-apiserver-authentication"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
)

// grant is one rule a subject holds, in namespace ("" for all namespaces
// and cluster-scoped resources: a ClusterRoleBinding), and how it got it.
type grant struct {
	rule      rbacv1.PolicyRule
	namespace string
	via       string
}

func (g grant) String() string {
	where := "cluster-wide"
	if g.namespace != "" {
		where = "in namespace " + g.namespace
	}
	return fmt.Sprintf("%s %s (%s)", ruleString(g.rule), where, g.via)
}

func ruleString(r rbacv1.PolicyRule) string {
	if len(r.NonResourceURLs) > 0 {
		return fmt.Sprintf("%v on %v", r.Verbs, r.NonResourceURLs)
	}
	s := fmt.Sprintf("%v on %v in groups %q", r.Verbs, r.Resources, r.APIGroups)
	if len(r.ResourceNames) > 0 {
		s += fmt.Sprintf(" named %v", r.ResourceNames)
	}
	return s
}

// rbacPolicy is the RBAC objects of a set of manifests.
type rbacPolicy struct {
	clusterRoles        map[string]rbacv1.ClusterRole
	roles               map[string]rbacv1.Role // namespace/name
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	roleBindings        []rbacv1.RoleBinding
}

func policyOf(t *testing.T, objs objects) rbacPolicy {
	t.Helper()
	p := rbacPolicy{clusterRoles: map[string]rbacv1.ClusterRole{}, roles: map[string]rbacv1.Role{}}
	for _, u := range objs {
		if u.GroupVersionKind().Group != rbacv1.GroupName {
			continue
		}
		switch u.GetKind() {
		case "ClusterRole":
			p.clusterRoles[u.GetName()] = *convert[rbacv1.ClusterRole](t, u)
		case "Role":
			p.roles[u.GetNamespace()+"/"+u.GetName()] = *convert[rbacv1.Role](t, u)
		case "ClusterRoleBinding":
			p.clusterRoleBindings = append(p.clusterRoleBindings, *convert[rbacv1.ClusterRoleBinding](t, u))
		case "RoleBinding":
			p.roleBindings = append(p.roleBindings, *convert[rbacv1.RoleBinding](t, u))
		}
	}
	return p
}

// clusterRoleRules returns the rules a ClusterRole grants once the
// aggregation controller has run: for an aggregated role, the union of the
// rules of every ClusterRole its selectors match (its own rules are
// overwritten), recursively.
func (p rbacPolicy) clusterRoleRules(roleName string, seen map[string]bool) ([]rbacv1.PolicyRule, error) {
	if rules, ok := bootstrapClusterRoles[roleName]; ok {
		return rules, nil
	}
	cr, ok := p.clusterRoles[roleName]
	if !ok {
		return nil, fmt.Errorf("ClusterRole %s is neither in the manifests nor a known bootstrap role: what it grants is unknown", roleName)
	}
	if cr.AggregationRule == nil {
		return cr.Rules, nil
	}
	if seen[roleName] {
		return nil, nil
	}
	seen[roleName] = true
	var rules []rbacv1.PolicyRule
	for _, ls := range cr.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return nil, fmt.Errorf("ClusterRole %s: aggregationRule: %w", roleName, err)
		}
		if sel.Empty() {
			return nil, fmt.Errorf("ClusterRole %s: an empty clusterRoleSelector aggregates every ClusterRole", roleName)
		}
		for _, other := range sortedKeys(p.clusterRoles) {
			if other == roleName || !sel.Matches(labels.Set(p.clusterRoles[other].Labels)) {
				continue
			}
			r, err := p.clusterRoleRules(other, seen)
			if err != nil {
				return nil, err
			}
			rules = append(rules, r...)
		}
	}
	return rules, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// boundTo reports whether a binding's subject s includes the service
// account sa: itself, or one of the groups every service account of its
// namespace, every service account, or every authenticated user is in.
func boundTo(s, sa rbacv1.Subject) bool {
	switch s.Kind {
	case "ServiceAccount":
		return s.Name == sa.Name && s.Namespace == sa.Namespace
	case "Group":
		switch s.Name {
		case "system:serviceaccounts", "system:serviceaccounts:" + sa.Namespace, "system:authenticated":
			return true
		}
	case "User":
		return s.Name == "system:serviceaccount:"+sa.Namespace+":"+sa.Name
	}
	return false
}

// grants returns every rule sa holds through the policy's bindings.
func (p rbacPolicy) grants(sa rbacv1.Subject) ([]grant, error) {
	var out []grant
	for _, b := range p.clusterRoleBindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return boundTo(s, sa) }) {
			continue
		}
		if b.RoleRef.Kind != "ClusterRole" {
			return nil, fmt.Errorf("ClusterRoleBinding %s refers to a %s", b.Name, b.RoleRef.Kind)
		}
		rules, err := p.clusterRoleRules(b.RoleRef.Name, map[string]bool{})
		if err != nil {
			return nil, fmt.Errorf("ClusterRoleBinding %s: %w", b.Name, err)
		}
		for _, r := range rules {
			out = append(out, grant{r, "", "ClusterRoleBinding " + b.Name + " -> ClusterRole " + b.RoleRef.Name})
		}
	}
	for _, b := range p.roleBindings {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return boundTo(s, sa) }) {
			continue
		}
		var rules []rbacv1.PolicyRule
		var err error
		switch b.RoleRef.Kind {
		case "ClusterRole":
			rules, err = p.clusterRoleRules(b.RoleRef.Name, map[string]bool{})
		case "Role":
			key := b.Namespace + "/" + b.RoleRef.Name
			if r, ok := bootstrapRoles[key]; ok {
				rules = r
			} else if r, ok := p.roles[key]; ok {
				rules = r.Rules
			} else {
				err = fmt.Errorf("Role %s is neither in the manifests nor a known bootstrap role: what it grants is unknown", key)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("RoleBinding %s/%s: %w", b.Namespace, b.Name, err)
		}
		for _, r := range rules {
			out = append(out, grant{r, b.Namespace, "RoleBinding " + b.Namespace + "/" + b.Name + " -> " + b.RoleRef.Kind + " " + b.RoleRef.Name})
		}
	}
	return out, nil
}

// request is one API request, as the RBAC authorizer sees it. An empty
// namespace is a cluster-wide request (all namespaces, or a cluster-scoped
// resource).
type request struct {
	verb, group, resource, namespace, name string
}

func (r request) String() string {
	s := fmt.Sprintf("%s %s", r.verb, r.resource)
	if r.group != "" {
		s += "." + r.group
	}
	if r.name != "" {
		s += " " + r.name
	}
	if r.namespace != "" {
		s += " in namespace " + r.namespace
	}
	return s
}

// allowed reports whether any grant allows req, with the RBAC authorizer's
// matching rules ("*" matches anything; resourceNames restrict by name).
func allowed(grants []grant, req request) bool {
	for _, g := range grants {
		r := g.rule
		if g.namespace != "" && g.namespace != req.namespace {
			continue
		}
		if match(r.Verbs, req.verb) && match(r.APIGroups, req.group) && match(r.Resources, req.resource) &&
			(len(r.ResourceNames) == 0 || req.name != "" && slices.Contains(r.ResourceNames, req.name)) {
			return true
		}
	}
	return false
}

// writes promgate needs: delegated authentication and authorization.
var allowedWrites = []request{
	{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
	{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
}

// violations lists what a grant allows beyond least privilege: a wildcard (a
// rule that would cover resources added later, Secrets among them), Secrets,
// or a verb other than get, list and watch outside delegated authn/authz.
func violations(grants []grant) []string {
	var out []string
	for _, g := range grants {
		r := g.rule
		if len(r.NonResourceURLs) > 0 {
			out = append(out, "non-resource URLs: "+g.String())
			continue
		}
		for _, field := range []struct {
			name   string
			values []string
		}{{"apiGroups", r.APIGroups}, {"resources", r.Resources}, {"verbs", r.Verbs}} {
			if slices.Contains(field.values, "*") {
				out = append(out, fmt.Sprintf("%s \"*\": %s", field.name, g))
			}
		}
		if slices.Contains(r.APIGroups, "") && slices.ContainsFunc(r.Resources, func(res string) bool {
			return res == "secrets" || strings.HasPrefix(res, "secrets/")
		}) {
			out = append(out, "Secrets: "+g.String())
		}
		for _, verb := range r.Verbs {
			if verb == "get" || verb == "list" || verb == "watch" || verb == "*" {
				continue
			}
			for _, group := range r.APIGroups {
				for _, res := range r.Resources {
					if !slices.Contains(allowedWrites, request{verb: verb, group: group, resource: res}) {
						out = append(out, fmt.Sprintf("verb %s on %s: %s", verb, res, g))
					}
				}
			}
		}
	}
	return out
}

// needed is what promgate must be able to do with the base: delegated
// authn/authz, the authentication ConfigMap, and listing and watching the
// objects the default config and common prometheus-adapter configs describe
// (docs/security.md explains the choice).
var needed = func() []request {
	reqs := []request{
		{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
		{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
		{verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication"},
		{verb: "list", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication"},
		{verb: "watch", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication"},
	}
	for group, resources := range map[string][]string{
		"":                  {"pods", "nodes", "namespaces", "services", "endpoints"},
		"apps":              {"deployments", "statefulsets", "replicasets", "daemonsets"},
		"batch":             {"jobs"},
		"networking.k8s.io": {"ingresses"},
	} {
		for _, res := range resources {
			for _, verb := range []string{"get", "list", "watch"} {
				reqs = append(reqs, request{verb: verb, group: group, resource: res})
			}
		}
	}
	return reqs
}()

// notAllowed must stay out of reach in every variant.
var notAllowed = []request{
	{verb: "get", resource: "secrets", namespace: "kube-system", name: "x"},
	{verb: "list", resource: "secrets"},
	{verb: "list", resource: "secrets", namespace: namespace},
	{verb: "watch", resource: "secrets"},
	{verb: "list", resource: "configmaps"},
	{verb: "get", resource: "configmaps", namespace: "kube-system", name: "kubeadm-config"},
	{verb: "list", resource: "serviceaccounts"},
	{verb: "create", resource: "serviceaccounts/token", namespace: "kube-system"},
	{verb: "list", group: "example.com", resource: "widgets"},
	{verb: "update", group: "apps", resource: "deployments"},
	{verb: "create", resource: "pods", namespace: namespace},
}

// checkLeastPrivilege returns every way in which what promgate's service
// account may do in objs is wrong.
func checkLeastPrivilege(t *testing.T, objs objects, needs []request) []string {
	t.Helper()
	grants, err := policyOf(t, objs).grants(serviceAccount)
	if err != nil {
		return []string{err.Error()}
	}
	problems := violations(grants)
	for _, req := range notAllowed {
		if allowed(grants, req) {
			problems = append(problems, "allowed: "+req.String())
		}
	}
	for _, req := range needs {
		if !allowed(grants, req) {
			problems = append(problems, "not allowed: "+req.String())
		}
	}
	return problems
}

// TestLeastPrivilege computes what promgate's service account may do in the
// base and in every overlay: the rules of every ClusterRole and Role bound to
// it (directly or through its groups), with aggregated ClusterRoles resolved
// as the aggregation controller does.
func TestLeastPrivilege(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			for _, p := range checkLeastPrivilege(t, v.objs, needed) {
				t.Error(p)
			}
		})
	}
}

// TestLeastPrivilegeCatches checks that the check above fails for each way
// Secrets or a wildcard could become readable.
func TestLeastPrivilegeCatches(t *testing.T) {
	clusterRole := func(name string, lbls map[string]string, rules ...rbacv1.PolicyRule) runtime.Object {
		return &rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
			Rules:      rules,
		}
	}
	labelled := map[string]string{aggregateLabel: "true"}
	rule := func(groups, resources, verbs []string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
	}
	read := []string{"get", "list", "watch"}
	clusterBinding := func(role string, subject rbacv1.Subject) runtime.Object {
		return &rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "extra-" + role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}
	}
	tests := []struct {
		name string
		add  []runtime.Object
		edit func(objects)
		want string
	}{
		{
			name: "labelled ClusterRole reading Secrets",
			add:  []runtime.Object{clusterRole("extra", labelled, rule([]string{""}, []string{"secrets"}, read))},
			want: "Secrets:",
		},
		{
			name: "labelled ClusterRole with every resource of a group",
			add:  []runtime.Object{clusterRole("extra", labelled, rule([]string{"example.com"}, []string{"*"}, read))},
			want: `resources "*"`,
		},
		{
			name: "labelled ClusterRole with every group",
			add:  []runtime.Object{clusterRole("extra", labelled, rule([]string{"*"}, []string{"widgets"}, read))},
			want: `apiGroups "*"`,
		},
		{
			name: "labelled ClusterRole with a write verb",
			add:  []runtime.Object{clusterRole("extra", labelled, rule([]string{"apps"}, []string{"deployments"}, []string{"get", "update"}))},
			want: "verb update on deployments",
		},
		{
			name: "labelled role aggregated by an aggregated, labelled role",
			add: []runtime.Object{
				&rbacv1.ClusterRole{
					TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
					ObjectMeta: metav1.ObjectMeta{Name: "middle", Labels: labelled},
					AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
						{MatchLabels: map[string]string{"example.com/inner": "true"}},
					}},
				},
				clusterRole("inner", map[string]string{"example.com/inner": "true"}, rule([]string{""}, []string{"secrets"}, []string{"list"})),
			},
			want: "Secrets:",
		},
		{
			name: "aggregation selecting every ClusterRole",
			edit: func(objs objects) {
				for _, u := range objs {
					if u.GetKind() == "ClusterRole" && u.GetName() == "promgate-metadata-reader" {
						_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{}}, "aggregationRule", "clusterRoleSelectors")
					}
				}
			},
			want: "empty clusterRoleSelector",
		},
		{
			name: "Role reading Secrets in one namespace",
			add: []runtime.Object{
				&rbacv1.Role{
					TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
					ObjectMeta: metav1.ObjectMeta{Name: "secrets", Namespace: namespace},
					Rules:      []rbacv1.PolicyRule{rule([]string{""}, []string{"secrets"}, []string{"get"})},
				},
				&rbacv1.RoleBinding{
					TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
					ObjectMeta: metav1.ObjectMeta{Name: "secrets", Namespace: namespace},
					RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secrets"},
					Subjects:   []rbacv1.Subject{serviceAccount},
				},
			},
			want: "Secrets:",
		},
		{
			name: "ClusterRole bound to every service account of the namespace",
			add: []runtime.Object{
				clusterRole("sa-group", nil, rule([]string{""}, []string{"secrets"}, []string{"watch"})),
				clusterBinding("sa-group", rbacv1.Subject{Kind: "Group", Name: "system:serviceaccounts:" + namespace}),
			},
			want: "Secrets:",
		},
		{
			name: "binding to a role the manifests do not hold",
			add:  []runtime.Object{clusterBinding("view", serviceAccount)},
			want: "ClusterRole view is neither in the manifests",
		},
		{
			name: "a resource promgate needs taken away",
			edit: func(objs objects) {
				for _, u := range objs {
					if u.GetName() == "promgate-metadata-reader:workloads" {
						u.SetLabels(nil)
					}
				}
			},
			want: "not allowed: list deployments.apps",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := renderBase(t)
			for _, o := range tt.add {
				m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
				if err != nil {
					t.Fatal(err)
				}
				objs = append(objs, &unstructured.Unstructured{Object: m})
			}
			if tt.edit != nil {
				tt.edit(objs)
			}
			problems := checkLeastPrivilege(t, objs, needed)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems = %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

// TestMetadataReaderExample checks the example of docs/security.md: one
// labelled ClusterRole lets promgate describe a CRD's objects.
func TestMetadataReaderExample(t *testing.T) {
	example := extractYAML(t, securityDoc, "kind: ClusterRole")
	objs := append(renderBase(t), decodeAll(t, strings.NewReader(example))...)
	want := append(slices.Clone(needed), request{verb: "list", group: "kafka.strimzi.io", resource: "kafkatopics"},
		request{verb: "watch", group: "kafka.strimzi.io", resource: "kafkatopics"})
	for _, p := range checkLeastPrivilege(t, objs, want) {
		t.Error(p)
	}
}
