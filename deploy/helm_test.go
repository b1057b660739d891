package deploy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/pkg/config"
)

const (
	chartDir       = "helm/promgate"
	chartConfig    = "helm/promgate/files/promgate.yaml"
	release        = "promgate"
	configMapStem  = "promgate-config-"
	partOfLabel    = "app.kubernetes.io/part-of"
	chartNameLabel = "app.kubernetes.io/name"
)

// helmLabels are the labels the chart may add to an object's metadata
// (never to selectors or pod templates): Helm's, and the base's two on the
// objects kustomize does not label (generated, or from an overlay).
var helmLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart", chartNameLabel, partOfLabel}

// TestChartConfigCopyInSync fails when the chart's default rules drift from
// config/promgate.yaml (Helm, like kustomize, reads files inside the chart
// only).
func TestChartConfigCopyInSync(t *testing.T) {
	src, err := os.ReadFile(configSrc)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(chartConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, cp) {
		t.Fatalf("%s differs from %s; run: cp config/promgate.yaml deploy/%s", chartConfig, configSrc, chartConfig)
	}
}

// renderChartErr renders the chart as `helm template --namespace ns name
// deploy/helm/promgate --values ...` does: values merged over values.yaml and
// checked against values.schema.json, no cluster (lookup finds nothing).
func renderChartErr(t *testing.T, name, ns string, vals map[string]any) (objects, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	caps := *chartutil.DefaultCapabilities
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: name, Namespace: ns, IsInstall: true, Revision: 1}, &caps)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	var objs objects
	for _, f := range sortedKeys(out) {
		if !strings.HasSuffix(f, ".yaml") || strings.HasPrefix(filepath.Base(f), "_") {
			continue
		}
		objs = append(objs, decodeAll(t, strings.NewReader(out[f]))...)
	}
	return objs, nil
}

// renderChart renders release "promgate" in namespace "promgate" with vals,
// YAML (as a --values file).
func renderChart(t *testing.T, vals string) objects {
	t.Helper()
	objs, err := renderChartErr(t, release, namespace, parseValues(t, vals))
	if err != nil {
		t.Fatalf("helm template with values\n%s\n: %v", vals, err)
	}
	return objs
}

func parseValues(t *testing.T, vals string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(vals), &m); err != nil {
		t.Fatalf("values %q: %v", vals, err)
	}
	return m
}

// fixtureTLS returns the certificate, key and CA (PEM) of the Secret that
// caBundleFixture wrote into dir.
func fixtureTLS(t *testing.T, dir string) (cert, key, ca string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "promgate-tls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := convert[corev1.Secret](t, decodeAll(t, bytes.NewReader(b))[0])
	return string(s.Data["tls.crt"]), string(s.Data["tls.key"]), string(s.Data["ca.crt"])
}

// indent makes PEM text a YAML block scalar's content.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad) + "\n"
}

// TestChartMatchesKustomize is the one-source-of-truth check: for each TLS
// route, the chart with the values that pick it renders the objects of the
// kustomize variant that does the same, object by object (kind, name,
// namespace, every field), but for the labels Helm adds, the content hash in
// the ConfigMap's name and, where both generate a certificate, its bytes.
func TestChartMatchesKustomize(t *testing.T) {
	_, _, caDir := caBundleFixture(t, true)
	cert, key, ca := fixtureTLS(t, caDir)
	withoutKind := func(objs objects, kind string) objects {
		return slices.DeleteFunc(slices.Clone(objs), func(u *unstructured.Unstructured) bool { return u.GetKind() == kind })
	}
	caBundleObjs := render(t, caDir)
	clone := func(objs objects) objects {
		out := make(objects, len(objs))
		for i, u := range objs {
			out[i] = u.DeepCopy()
		}
		return out
	}

	tests := []struct {
		name   string
		values string
		want   objects
		// generated: both hold a Secret promgate-tls with a certificate of
		// their own; compared for its keys and type, and caBundle for being
		// its ca.crt.
		generated bool
	}{
		{
			name: "default values: generated certificate, as base + components/ca-bundle (no Namespace)",
			want: withoutKind(caBundleObjs, "Namespace"), generated: true,
		},
		{
			name:   "namespace.create",
			values: "namespace: {create: true}",
			want:   caBundleObjs, generated: true,
		},
		{
			name:   "tls.mode cert-manager, as overlays/cert-manager",
			values: "namespace: {create: true}\ntls: {mode: cert-manager}",
			want:   render(t, "overlays/cert-manager"),
		},
		{
			name:   "certManager.enabled (prometheus-adapter chart key)",
			values: "namespace: {create: true}\ncertManager: {enabled: true}",
			want:   render(t, "overlays/cert-manager"),
		},
		{
			name:   "tls.mode insecure-skip-tls-verify, as overlays/insecure-skip-tls-verify",
			values: "namespace: {create: true}\ntls: {mode: insecure-skip-tls-verify}",
			want:   render(t, "overlays/insecure-skip-tls-verify"),
		},
		{
			name:   "tls.mode secret with certificate and key, as base + components/ca-bundle",
			values: "namespace: {create: true}\ntls:\n  mode: secret\n  certificate: |\n" + indent(cert, 4) + "  key: |\n" + indent(key, 4) + "  ca: |\n" + indent(ca, 4),
			want:   caBundleObjs,
		},
		{
			name:   "tls.enable with ca, certificate and key (prometheus-adapter chart keys)",
			values: "namespace: {create: true}\ntls:\n  enable: true\n  certificate: |\n" + indent(cert, 4) + "  key: |\n" + indent(key, 4) + "  ca: |\n" + indent(ca, 4),
			want:   caBundleObjs,
		},
		{
			name:   "tls.mode secret with an existing Secret, as base + components/ca-bundle but the Secret",
			values: "namespace: {create: true}\ntls:\n  mode: secret\n  existingSecret: promgate-tls\n  ca: |\n" + indent(ca, 4),
			want:   withoutKind(caBundleObjs, "Secret"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := renderChart(t, tt.values), clone(tt.want)
			if tt.generated {
				checkGeneratedTLS(t, got)
				// The kustomize side's caBundle is the fixture's ca.crt;
				// the chart's, its own generated one.
				for _, objs := range []objects{want, got} {
					blankTLS(t, objs)
				}
			}
			for _, p := range diffObjects(t, want, got) {
				t.Error(p)
			}
		})
	}
}

// checkGeneratedTLS checks what kube-apiserver will: the serving
// certificate in Secret promgate-tls verifies for promgate.promgate.svc
// against every APIService's caBundle, and its key is the certificate's.
func checkGeneratedTLS(t *testing.T, objs objects) {
	t.Helper()
	s := convert[corev1.Secret](t, objs.get(t, "Secret", tlsSecret))
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret %s type %q", tlsSecret, s.Type)
	}
	if _, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
		t.Errorf("Secret %s: tls.crt and tls.key are no key pair: %v", tlsSecret, err)
	}
	block, _ := pem.Decode(s.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s: tls.crt is not PEM", tlsSecret)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	apis := objs.ofKind("APIService")
	if len(apis) != 5 {
		t.Errorf("%d APIServices", len(apis))
	}
	for _, a := range apis {
		api := convert[apiService](t, a)
		if !bytes.Equal(api.Spec.CABundle, s.Data["ca.crt"]) {
			t.Errorf("APIService %s caBundle is not Secret %s's ca.crt", a.GetName(), tlsSecret)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(api.Spec.CABundle) {
			t.Fatalf("APIService %s caBundle holds no certificate", a.GetName())
		}
		dns := api.Spec.Service.Name + "." + api.Spec.Service.Namespace + ".svc"
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: dns, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("APIService %s: the generated certificate does not verify for %s: %v", a.GetName(), dns, err)
		}
	}
}

// blankTLS replaces the bytes of Secret promgate-tls and of every
// APIService's caBundle (checked to be that Secret's ca.crt) by their names.
func blankTLS(t *testing.T, objs objects) {
	t.Helper()
	s := objs.get(t, "Secret", tlsSecret)
	ca, _, _ := unstructured.NestedString(s.Object, "data", "ca.crt")
	data, _, _ := unstructured.NestedStringMap(s.Object, "data")
	for k := range data {
		data[k] = k
	}
	if err := unstructured.SetNestedStringMap(s.Object, data, "data"); err != nil {
		t.Fatal(err)
	}
	for _, a := range objs.ofKind("APIService") {
		if b, _, _ := unstructured.NestedString(a.Object, "spec", "caBundle"); b != ca {
			t.Errorf("APIService %s caBundle is not Secret %s's ca.crt", a.GetName(), tlsSecret)
		}
		if err := unstructured.SetNestedField(a.Object, "ca.crt", "spec", "caBundle"); err != nil {
			t.Fatal(err)
		}
	}
}

// objectKey names an object as kubectl does.
func objectKey(u *unstructured.Unstructured) string {
	k := u.GetKind() + " " + u.GetName()
	if u.GetNamespace() != "" {
		k = u.GetNamespace() + "/" + k
	}
	return k
}

// normalize returns a copy of u without what may differ between the
// kustomize and the Helm rendering: the ConfigMap's content hash, and the
// order of volumes and mounts (a strategic merge patch reorders them).
func normalize(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	u = u.DeepCopy()
	if u.GetKind() == "ConfigMap" && strings.HasPrefix(u.GetName(), configMapStem) {
		u.SetName(configMapStem + "HASH")
	}
	if u.GetKind() != "Deployment" {
		return u
	}
	byName := func(a, b any) int {
		return strings.Compare(fmt.Sprint(a.(map[string]any)["name"]), fmt.Sprint(b.(map[string]any)["name"]))
	}
	spec := u.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	if vols, ok := spec["volumes"].([]any); ok {
		for _, v := range vols {
			if cm, ok := v.(map[string]any)["configMap"].(map[string]any); ok && strings.HasPrefix(fmt.Sprint(cm["name"]), configMapStem) {
				cm["name"] = configMapStem + "HASH"
			}
		}
		slices.SortFunc(vols, byName)
	}
	for _, c := range spec["containers"].([]any) {
		if mounts, ok := c.(map[string]any)["volumeMounts"].([]any); ok {
			slices.SortFunc(mounts, byName)
		}
	}
	return u
}

// diffObjects lists every difference between the kustomize rendering want
// and the Helm rendering got. The chart's objects carry the base's labels
// and may add helmLabels (and only those) to their metadata.
func diffObjects(t *testing.T, want, got objects) []string {
	t.Helper()
	index := func(objs objects) map[string]*unstructured.Unstructured {
		m := map[string]*unstructured.Unstructured{}
		for _, u := range objs {
			m[objectKey(normalize(t, u))] = normalize(t, u)
		}
		return m
	}
	w, g := index(want), index(got)
	var out []string
	for _, k := range sortedKeys(w) {
		if _, ok := g[k]; !ok {
			out = append(out, "the chart lacks "+k)
		}
	}
	for _, k := range sortedKeys(g) {
		gu, ok := g[k]
		if !ok {
			continue
		}
		wu, ok := w[k]
		if !ok {
			out = append(out, "the chart adds "+k)
			continue
		}
		labels := gu.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for lk, lv := range wu.GetLabels() {
			if labels[lk] != lv {
				out = append(out, fmt.Sprintf("%s: label %s=%q, want %q", k, lk, labels[lk], lv))
			}
		}
		for lk := range labels {
			if _, ok := wu.GetLabels()[lk]; !ok {
				if !slices.Contains(helmLabels, lk) {
					out = append(out, fmt.Sprintf("%s: label %s not in the kustomize rendering", k, lk))
				}
				delete(labels, lk)
			}
		}
		if len(labels) == 0 {
			labels = nil
		}
		gu.SetLabels(labels)
		for _, d := range diffValues(wu.Object, gu.Object, "") {
			out = append(out, k+": "+d)
		}
	}
	return out
}

// diffValues lists the paths where two decoded YAML documents differ.
func diffValues(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s = %v, want %v", path, got, want)}
		}
		var out []string
		keys := sortedKeys(w)
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			out = append(out, diffValues(w[k], g[k], path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s = %v, want %v", path, got, want)}
		}
		var out []string
		for i := range w {
			out = append(out, diffValues(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s = %v, want %v", path, got, want)}
	}
	return nil
}

// TestDiffObjectsCatches checks that the comparison above fails for the
// drifts it is there to catch.
func TestDiffObjectsCatches(t *testing.T) {
	tests := []struct {
		name string
		edit func(objs objects)
		want string
	}{
		{"an argument", func(objs objects) {
			d := objs.get(t, "Deployment", name)
			c := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			c["args"] = append(c["args"].([]any), "--query-cache-ttl=0")
		}, "Deployment promgate: .spec.template.spec.containers[0].args"},
		{"an RBAC rule", func(objs objects) {
			cr := objs.get(t, "ClusterRole", "promgate-metadata-reader:core")
			rules := cr.Object["rules"].([]any)
			rules[0].(map[string]any)["verbs"] = []any{"get", "list", "watch", "delete"}
		}, "ClusterRole promgate-metadata-reader:core: .rules[0].verbs"},
		{"a label", func(objs objects) {
			objs.get(t, "Service", name).SetLabels(map[string]string{chartNameLabel: "other"})
		}, "label app.kubernetes.io/name"},
		{"an object", func(objs objects) {
			u := objs.get(t, "ClusterRole", "promgate-server-resources")
			u.SetName("renamed")
		}, "the chart lacks ClusterRole promgate-server-resources"},
	}
	want := render(t, "overlays/cert-manager")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderChart(t, "namespace: {create: true}\ntls: {mode: cert-manager}")
			if d := diffObjects(t, want, got); len(d) != 0 {
				t.Fatalf("unedited: %q", d)
			}
			tt.edit(got)
			d := diffObjects(t, want, got)
			if !slices.ContainsFunc(d, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("differences %q, want one containing %q", d, tt.want)
			}
		})
	}
}

// ciValues are the value sets deploy/helm/helm.mk lints and templates.
func ciValues(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/ci/*-values.yaml: %v", chartDir, err)
	}
	m := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(f)] = string(b)
	}
	return m
}

// TestChartLeastPrivilege runs the least-privilege check of rbac_test.go on
// the chart's RBAC: with every value set CI templates, and with a release
// of another name in another namespace.
func TestChartLeastPrivilege(t *testing.T) {
	type variant struct {
		name, release, namespace, values string
		needs                            []request
	}
	vs := []variant{
		{name: "default values", release: release, namespace: namespace},
		{name: "all APIs off", release: release, namespace: namespace, values: "apis: {custom: false, external: false, resource: false}"},
		{name: "release metrics in namespace monitoring", release: "metrics", namespace: "monitoring"},
	}
	for f, v := range ciValues(t) {
		vs = append(vs, variant{name: f, release: release, namespace: namespace, values: v})
	}
	kafka := append(slices.Clone(needed), request{verb: "list", group: "kafka.strimzi.io", resource: "kafkatopics"},
		request{verb: "watch", group: "kafka.strimzi.io", resource: "kafkatopics"})
	for i := range vs {
		if strings.Contains(vs[i].values, "kafkatopics") {
			vs[i].needs = kafka
		}
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			objs, err := renderChartErr(t, v.release, v.namespace, parseValues(t, v.values))
			if err != nil {
				t.Fatal(err)
			}
			sa := rbacv1.Subject{Kind: "ServiceAccount", Name: convert[appsv1.Deployment](t, objs.ofKind("Deployment")[0]).Spec.Template.Spec.ServiceAccountName, Namespace: v.namespace}
			if v.release != release && sa.Name != "metrics-promgate" {
				t.Errorf("service account %q, want metrics-promgate", sa.Name)
			}
			needs := v.needs
			if needs == nil {
				needs = needed
			}
			grants, err := policyOf(t, objs).grants(sa)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range violations(grants) {
				t.Error(p)
			}
			for _, req := range notAllowed {
				if allowed(grants, req) {
					t.Errorf("allowed: %s", req)
				}
			}
			for _, req := range needs {
				if !allowed(grants, req) {
					t.Errorf("not allowed: %s", req)
				}
			}
		})
	}
}

// TestChartRefuses checks values the chart refuses to render, each with a
// message naming the value.
func TestChartRefuses(t *testing.T) {
	tests := []struct{ name, values, want string }{
		{"unknown tls.mode", "tls: {mode: self-signed}", "/tls/mode"},
		{"secret without ca", "tls: {mode: secret}", "tls.ca"},
		{"existingSecret and certificate", "tls: {mode: secret, ca: x, existingSecret: s, certificate: c, key: k}", "not both"},
		{"certificate without key", "tls: {mode: secret, ca: x, certificate: c}", "tls.key is required"},
		{"two Prometheus CAs", "prometheus: {ca: {configMapName: a, secretName: b}}", "prometheus.ca"},
		{"token Secret and token file", "prometheus: {tokenFile: /t, bearerToken: {secretName: s}}", "tokenFile"},
		{"read rule on Secrets", `rbac: {extraReadRules: [{apiGroups: [""], resources: [pods, secrets]}]}`, `rbac.extraReadRules[0].resources: "secrets": promgate never reads Secrets`},
		{"read rule with a wildcard", `rbac: {extraReadRules: [{apiGroups: [example.com], resources: ["*"]}]}`, `no "*"`},
		{"read rule with verbs", `rbac: {extraReadRules: [{apiGroups: [apps], resources: [deployments], verbs: [delete]}]}`, "verbs of an extra read rule are get, list and watch"},
		{"not a URL", "prometheus: {url: prometheus:9090}", "/prometheus/url"},
		{"a string for replicas", "replicas: two", "/replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChartErr(t, release, namespace, parseValues(t, tt.values))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestChartExtraReadRules checks rbac.extraReadRules against least
// privilege: they let promgate get, list and watch the objects of a CRD
// its rules describe, and the chart refuses every rule that would give
// more (a subresource: nodes/proxy, pods/exec, pods/log; a wildcard in
// apiGroups, resources or verbs; a verb other than get, list and watch;
// core Secrets), with a message naming the rule and the value.
func TestChartExtraReadRules(t *testing.T) {
	refused := []struct{ name, rule, want string }{
		{"nodes/proxy", `{apiGroups: [""], resources: [nodes/proxy]}`, `rbac.extraReadRules[1].resources: "nodes/proxy" is a subresource`},
		{"pods/exec", `{apiGroups: [""], resources: [pods, pods/exec]}`, `rbac.extraReadRules[1].resources: "pods/exec" is a subresource`},
		{"pods/log", `{apiGroups: [""], resources: [pods/log]}`, `rbac.extraReadRules[1].resources: "pods/log" is a subresource`},
		{"a CRD's status", `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics/status]}`, `rbac.extraReadRules[1].resources: "kafkatopics/status" is a subresource`},
		{"every subresource", `{apiGroups: [""], resources: ["pods/*"]}`, `rbac.extraReadRules[1].resources: "pods/*" is a wildcard`},
		{"wildcard resource", `{apiGroups: [kafka.strimzi.io], resources: ["*"]}`, `rbac.extraReadRules[1].resources: "*" is a wildcard`},
		{"wildcard group", `{apiGroups: ["*"], resources: [kafkatopics]}`, `rbac.extraReadRules[1].apiGroups: "*" is a wildcard`},
		{"wildcard verb", `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics], verbs: ["*"]}`, `rbac.extraReadRules[1].verbs: "*" is refused`},
		{"write verb", `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics], verbs: [get, update]}`, `rbac.extraReadRules[1].verbs: "update" is refused`},
		{"escalate", `{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}`, `rbac.extraReadRules[1].verbs: "escalate" is refused`},
		{"core Secrets", `{apiGroups: [apps, ""], resources: [secrets]}`, `rbac.extraReadRules[1].resources: "secrets": promgate never reads Secrets`},
		{"no groups", `{apiGroups: [], resources: [kafkatopics]}`, `rbac.extraReadRules[1].apiGroups: name the API groups`},
		{"resourceNames", `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics], resourceNames: [a]}`, `rbac.extraReadRules[1]: give apiGroups, resources and (get, list, watch) verbs only`},
	}
	const crd = `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics]}`
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderChartErr(t, release, namespace, parseValues(t, "rbac: {extraReadRules: ["+crd+", "+tt.rule+"]}"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render: %v, want an error containing %q", err, tt.want)
			}
		})
	}

	accepted := []struct {
		name, rule string
		want       rbacv1.PolicyRule
	}{
		{"a CRD", crd, rbacv1.PolicyRule{APIGroups: []string{"kafka.strimzi.io"}, Resources: []string{"kafkatopics"}, Verbs: []string{"get", "list", "watch"}}},
		{"fewer verbs", `{apiGroups: [kafka.strimzi.io], resources: [kafkatopics, kafkausers], verbs: [get]}`, rbacv1.PolicyRule{APIGroups: []string{"kafka.strimzi.io"}, Resources: []string{"kafkatopics", "kafkausers"}, Verbs: []string{"get"}}},
		{"core objects", `{apiGroups: [""], resources: [persistentvolumeclaims]}`, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list", "watch"}}},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := renderChartErr(t, release, namespace, parseValues(t, "rbac: {extraReadRules: ["+tt.rule+"]}"))
			if err != nil {
				t.Fatal(err)
			}
			role := convert[rbacv1.ClusterRole](t, objs.get(t, "ClusterRole", name+"-metadata-reader:extra"))
			if len(role.Rules) != 1 || !equality.Semantic.DeepEqual(role.Rules[0], tt.want) {
				t.Errorf("rules %+v, want [%+v]", role.Rules, tt.want)
			}
		})
	}
}

// rendered is what TestChartValues looks at in one rendering.
type rendered struct {
	objs   objects
	deploy *appsv1.Deployment
	args   []string
	config *config.Config // nil when the chart renders no ConfigMap
}

func renderValues(t *testing.T, vals string) rendered {
	t.Helper()
	r := rendered{objs: renderChart(t, vals)}
	r.deploy = convert[appsv1.Deployment](t, r.objs.get(t, "Deployment", name))
	r.args = r.deploy.Spec.Template.Spec.Containers[0].Args
	if cms := r.objs.ofKind("ConfigMap"); len(cms) > 0 {
		cm := convert[corev1.ConfigMap](t, cms[0])
		cfg, err := config.Parse([]byte(cm.Data["promgate.yaml"]))
		if err != nil {
			t.Fatalf("rendered config: %v\n%s", err, cm.Data["promgate.yaml"])
		}
		r.config = cfg
	}
	return r
}

func (r rendered) apiServices() []string {
	var names []string
	for _, a := range r.objs.ofKind("APIService") {
		names = append(names, a.GetName())
	}
	slices.Sort(names)
	return names
}

func (r rendered) volume(t *testing.T, name string) *corev1.Volume {
	t.Helper()
	for _, v := range r.deploy.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &v
		}
	}
	t.Fatalf("no volume %q in %+v", name, r.deploy.Spec.Template.Spec.Volumes)
	return nil
}

func mustParseConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestChartValues checks what each value changes in the rendering,
// prometheus-adapter chart keys included.
func TestChartValues(t *testing.T) {
	defaults, err := os.ReadFile(configSrc)
	if err != nil {
		t.Fatal(err)
	}
	def := mustParseConfig(t, string(defaults))
	custom := `
- seriesQuery: 'jobs_total{namespace!=""}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^(.*)_total$", as: "${1}_rate"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
`
	external := `
- seriesQuery: 'queue_depth{queue!=""}'
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>})'
`
	resource := `
cpu:
  containerQuery: 'sum(rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m])) by (<<.GroupBy>>)'
  nodeQuery: 'sum(rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[3m])) by (<<.GroupBy>>)'
  resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
  containerLabel: container
memory:
  containerQuery: 'sum(container_memory_working_set_bytes{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
  nodeQuery: 'sum(container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"}) by (<<.GroupBy>>)'
  resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
  containerLabel: container
window: 3m
`
	block := func(key, yamlText string) string {
		return "  " + key + ":\n" + indent(strings.TrimPrefix(yamlText, "\n"), 4)
	}
	customCfg := mustParseConfig(t, "rules:\n"+indent(strings.TrimPrefix(custom, "\n"), 2))
	externalCfg := mustParseConfig(t, "externalRules:\n"+indent(strings.TrimPrefix(external, "\n"), 2))
	resourceCfg := mustParseConfig(t, "resourceRules:\n"+indent(strings.TrimPrefix(resource, "\n"), 2))
	allAPIs := []string{"v1.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"}
	resourceAPI := func(s string) bool { return strings.HasSuffix(s, ".metrics.k8s.io") && strings.Count(s, ".") == 3 }

	tests := []struct {
		name   string
		values string
		check  func(t *testing.T, r rendered)
	}{
		{"prometheus-adapter url, port and path", "prometheus: {url: 'http://prometheus.{{ .Release.Namespace }}.svc', port: 9090, path: /prom/}", func(t *testing.T, r rendered) {
			wantArg(t, r.args, "--prometheus-url", "http://prometheus.promgate.svc:9090/prom/")
		}},
		{"no port, no path", "prometheus: {url: 'https://mimir.example', port: null, path: ''}", func(t *testing.T, r rendered) {
			wantArg(t, r.args, "--prometheus-url", "https://mimir.example")
		}},
		{"listenPort, logLevel, metricsRelistInterval", "listenPort: 7443\nlogLevel: 4\nmetricsRelistInterval: 30s", func(t *testing.T, r rendered) {
			wantArg(t, r.args, "--secure-port", "7443")
			wantArg(t, r.args, "-v", "4")
			wantArg(t, r.args, "--metrics-relist-interval", "30s")
			if p := r.deploy.Spec.Template.Spec.Containers[0].Ports; p[0].ContainerPort != 7443 {
				t.Errorf("ports %+v", p)
			}
		}},
		{"extraArgs and extraArguments, after the chart's", "extraArgs: [--query-cache-ttl=0]\nextraArguments: [--prometheus-verb=GET]", func(t *testing.T, r rendered) {
			if n := len(r.args); n < 2 || r.args[n-2] != "--query-cache-ttl=0" || r.args[n-1] != "--prometheus-verb=GET" {
				t.Errorf("args %q", r.args)
			}
		}},
		{"bearer token Secret, CA ConfigMap, client certificate, headers", `
prometheus:
  url: https://prometheus.example
  timeout: 20s
  bearerToken: {secretName: prom-token, key: tok}
  ca: {configMapName: prom-ca}
  clientCert: {secretName: prom-client}
  headers: {X-Scope-OrgID: tenant-a, X-Other: "b=c"}
`, func(t *testing.T, r rendered) {
			wantArg(t, r.args, "--prometheus-timeout", "20s")
			wantArg(t, r.args, "--prometheus-token-file", "/etc/promgate-prometheus/token/tok")
			wantArg(t, r.args, "--prometheus-ca-file", "/etc/promgate-prometheus/ca/ca.crt")
			wantArg(t, r.args, "--prometheus-client-tls-cert-file", "/etc/promgate-prometheus/client/tls.crt")
			wantArg(t, r.args, "--prometheus-client-tls-key-file", "/etc/promgate-prometheus/client/tls.key")
			for _, h := range []string{"--prometheus-header=X-Other=b=c", "--prometheus-header=X-Scope-OrgID=tenant-a"} {
				if !slices.Contains(r.args, h) {
					t.Errorf("args %q lack %s", r.args, h)
				}
			}
			c := r.deploy.Spec.Template.Spec.Containers[0]
			for flag, src := range map[string]string{"--prometheus-token-file": "prom-token", "--prometheus-ca-file": "prom-ca", "--prometheus-client-tls-cert-file": "prom-client"} {
				v := volumeOf(r.deploy.Spec.Template.Spec, c, argMap(r.args)[flag])
				if v == nil || (v.Secret == nil || v.Secret.SecretName != src) && (v.ConfigMap == nil || v.ConfigMap.Name != src) {
					t.Errorf("%s is not on a volume of %s: %+v", flag, src, v)
				}
			}
		}},
		{"CA Secret, token file, in-cluster, credentials over HTTP", "prometheus: {tokenFile: /var/run/secrets/tokens/prom, ca: {secretName: prom-ca, key: bundle.pem}, inCluster: true, allowCredentialsOverHTTP: true}", func(t *testing.T, r rendered) {
			wantArg(t, r.args, "--prometheus-token-file", "/var/run/secrets/tokens/prom")
			wantArg(t, r.args, "--prometheus-ca-file", "/etc/promgate-prometheus/ca/bundle.pem")
			wantArg(t, r.args, "--prometheus-auth-incluster", "true")
			wantArg(t, r.args, "--prometheus-allow-credentials-over-http", "true")
			if v := r.volume(t, "prometheus-ca"); v.Secret == nil || v.Secret.SecretName != "prom-ca" {
				t.Errorf("prometheus-ca volume %+v", v)
			}
		}},
		{"image, replicas, resources, priorityClassName", "image: {repository: registry.example/promgate, digest: 'sha256:0123abcd'}\nreplicas: 3\nresources: {requests: {cpu: 1, memory: 1Gi}, limits: null}\npriorityClassName: ''", func(t *testing.T, r rendered) {
			pod := r.deploy.Spec.Template.Spec
			if c := pod.Containers[0]; c.Image != "registry.example/promgate@sha256:0123abcd" || c.Resources.Requests.Memory().String() != "1Gi" || len(c.Resources.Limits) != 0 {
				t.Errorf("image %q resources %+v", c.Image, c.Resources)
			}
			if *r.deploy.Spec.Replicas != 3 || pod.PriorityClassName != "" {
				t.Errorf("replicas %d priorityClassName %q", *r.deploy.Spec.Replicas, pod.PriorityClassName)
			}
		}},
		{"PDB maxUnavailable (prometheus-adapter's default) wins", "podDisruptionBudget: {enabled: true, maxUnavailable: 1}", func(t *testing.T, r rendered) {
			pdb := convert[policyv1.PodDisruptionBudget](t, r.objs.get(t, "PodDisruptionBudget", name))
			if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("pdb spec %+v", pdb.Spec)
			}
		}},
		{"PDB off", "podDisruptionBudget: {enabled: false}", func(t *testing.T, r rendered) {
			if pdbs := r.objs.ofKind("PodDisruptionBudget"); len(pdbs) != 0 {
				t.Errorf("PodDisruptionBudgets %v", pdbs)
			}
		}},
		{"topologySpreadConstraints", "topologySpreadConstraints: [{maxSkew: 2, topologyKey: zone, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {tier: x}}}, {maxSkew: 1, topologyKey: rack, whenUnsatisfiable: ScheduleAnyway}]", func(t *testing.T, r rendered) {
			tsc := r.deploy.Spec.Template.Spec.TopologySpreadConstraints
			if len(tsc) != 2 || tsc[0].LabelSelector.MatchLabels["tier"] != "x" || tsc[1].LabelSelector.MatchLabels[chartNameLabel] != name {
				t.Errorf("topologySpreadConstraints %+v", tsc)
			}
		}},
		{"no topologySpreadConstraints", "topologySpreadConstraints: []", func(t *testing.T, r rendered) {
			if tsc := r.deploy.Spec.Template.Spec.TopologySpreadConstraints; len(tsc) != 0 {
				t.Errorf("topologySpreadConstraints %+v", tsc)
			}
		}},
		{"default rules and custom and external ones", "rules:\n  default: true\n" + block("custom", custom) + block("external", external), func(t *testing.T, r rendered) {
			want := *def
			want.Rules = append(slices.Clone(def.Rules), customCfg.Rules...)
			want.ExternalRules = append(slices.Clone(def.ExternalRules), externalCfg.ExternalRules...)
			if !reflect.DeepEqual(r.config, &want) {
				t.Errorf("config = %+v\nwant %+v", r.config, &want)
			}
			if got := r.apiServices(); !slices.Equal(got, allAPIs) {
				t.Errorf("APIServices %v", got)
			}
		}},
		{"resource rules replace the default ones", "rules:\n" + block("resource", resource), func(t *testing.T, r rendered) {
			want := *def
			want.ResourceRules = resourceCfg.ResourceRules
			if !reflect.DeepEqual(r.config, &want) {
				t.Errorf("config = %+v\nwant %+v", r.config, &want)
			}
		}},
		{"prometheus-adapter rules: no defaults, custom, external and resource", "rules:\n  default: false\n" + block("custom", custom) + block("external", external) + block("resource", resource), func(t *testing.T, r rendered) {
			want := config.Config{Rules: customCfg.Rules, ExternalRules: externalCfg.ExternalRules, ResourceRules: resourceCfg.ResourceRules}
			if !reflect.DeepEqual(r.config, &want) {
				t.Errorf("config = %+v\nwant %+v", r.config, &want)
			}
		}},
		{"prometheus-adapter rules without resource: metrics.k8s.io left alone", "rules:\n  default: false\n" + block("custom", custom), func(t *testing.T, r rendered) {
			if !reflect.DeepEqual(r.config, customCfg) {
				t.Errorf("config = %+v\nwant %+v", r.config, customCfg)
			}
			if got := r.apiServices(); slices.ContainsFunc(got, resourceAPI) {
				t.Errorf("APIServices %v register metrics.k8s.io without resourceRules", got)
			}
			wantArg(t, r.args, "--enable-resource-metrics", "false")
			if len(r.objs.ofKind("ClusterRole")) == 0 || slices.ContainsFunc(r.objs.ofKind("ClusterRole"), func(u *unstructured.Unstructured) bool {
				return strings.HasSuffix(u.GetName(), ":aggregated-metrics-reader")
			}) {
				t.Error("aggregated metrics reader without metrics.k8s.io")
			}
		}},
		{"rules.existing", "rules: {existing: adapter-config}", func(t *testing.T, r rendered) {
			if r.config != nil {
				t.Error("a ConfigMap rendered next to rules.existing")
			}
			if v := r.volume(t, "config"); v.ConfigMap == nil || v.ConfigMap.Name != "adapter-config" {
				t.Errorf("config volume %+v", v)
			}
			wantArg(t, r.args, "--config", "/etc/promgate/config.yaml")
		}},
		{"apis.resource off (metrics-server keeps metrics.k8s.io)", "apis: {resource: false}", func(t *testing.T, r rendered) {
			if got, want := r.apiServices(), slices.DeleteFunc(slices.Clone(allAPIs), resourceAPI); !slices.Equal(got, want) {
				t.Errorf("APIServices %v, want %v", got, want)
			}
			wantArg(t, r.args, "--enable-resource-metrics", "false")
		}},
		{"apis.custom off", "apis: {custom: false}", func(t *testing.T, r rendered) {
			if got := r.apiServices(); !slices.Equal(got, []string{"v1.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta1.metrics.k8s.io"}) {
				t.Errorf("APIServices %v", got)
			}
			role := convert[rbacv1.ClusterRole](t, r.objs.get(t, "ClusterRole", "promgate-server-resources"))
			if allows(role.Rules, "custom.metrics.k8s.io", "pods", "get") || !allows(role.Rules, "external.metrics.k8s.io", "pods", "get") {
				t.Errorf("HPA controller rules %+v", role.Rules)
			}
		}},
		{"custom and external off", "apis: {custom: false, external: false}", func(t *testing.T, r rendered) {
			if got := r.apiServices(); !slices.Equal(got, []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}) {
				t.Errorf("APIServices %v", got)
			}
			if slices.ContainsFunc(r.objs, func(u *unstructured.Unstructured) bool {
				return strings.HasPrefix(u.GetName(), "promgate-hpa-controller")
			}) {
				t.Error("HPA controller binding without custom or external metrics")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, renderValues(t, tt.values))
		})
	}
}

func wantArg(t *testing.T, args []string, flag, want string) {
	t.Helper()
	if got, ok := argMap(args)[flag]; !ok || got != want {
		t.Errorf("%s=%q (set: %v), want %q; args %q", flag, got, ok, want, args)
	}
}

// TestChartConfigMapName checks that the ConfigMap's name changes with the
// rules (so that changing them rolls the Deployment) and that the
// Deployment mounts it.
func TestChartConfigMapName(t *testing.T) {
	nameOf := func(vals string) string {
		objs := renderChart(t, vals)
		cms := objs.ofKind("ConfigMap")
		if len(cms) != 1 || !strings.HasPrefix(cms[0].GetName(), configMapStem) {
			t.Fatalf("ConfigMaps %v", cms)
		}
		d := convert[appsv1.Deployment](t, objs.get(t, "Deployment", name))
		if v := volumeOf(d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0], "/etc/promgate/promgate.yaml"); v == nil || v.ConfigMap == nil || v.ConfigMap.Name != cms[0].GetName() {
			t.Errorf("the Deployment mounts %+v, not ConfigMap %s", v, cms[0].GetName())
		}
		return cms[0].GetName()
	}
	a, b := nameOf(""), nameOf("rules: {external: [{seriesQuery: 'up', metricsQuery: 'up'}]}")
	if a == b {
		t.Errorf("ConfigMap %s keeps its name when the rules change", a)
	}
	if a != nameOf("") {
		t.Errorf("ConfigMap name not stable across renderings")
	}
}

// TestChartCI renders every value set of ci/ (what helm.mk templates) and
// checks each is a complete install: one Deployment whose --config and
// certificate are mounted, and APIServices verified unless the opt-out.
func TestChartCI(t *testing.T) {
	for f, vals := range ciValues(t) {
		t.Run(f, func(t *testing.T) {
			r := renderValues(t, vals)
			for _, a := range r.objs.ofKind("APIService") {
				api := convert[apiService](t, a)
				verified := len(api.Spec.CABundle) > 0 || a.GetAnnotations()[injectCAFrom] != ""
				if verified == api.Spec.InsecureSkipTLSVerify {
					t.Errorf("APIService %s: caBundle %d bytes, %s %q, insecureSkipTLSVerify %v", a.GetName(), len(api.Spec.CABundle), injectCAFrom, a.GetAnnotations()[injectCAFrom], api.Spec.InsecureSkipTLSVerify)
				}
				if api.Spec.InsecureSkipTLSVerify != strings.Contains(vals, "mode: insecure-skip-tls-verify") {
					t.Errorf("APIService %s insecureSkipTLSVerify %v", a.GetName(), api.Spec.InsecureSkipTLSVerify)
				}
				if len(api.Spec.CABundle) > 0 {
					if _, err := base64.StdEncoding.DecodeString(string(api.Spec.CABundle)); err == nil && !bytes.HasPrefix(api.Spec.CABundle, []byte("-----BEGIN")) {
						t.Errorf("APIService %s caBundle is base64 twice", a.GetName())
					}
				}
			}
			c := r.deploy.Spec.Template.Spec.Containers[0]
			if v := volumeOf(r.deploy.Spec.Template.Spec, c, argMap(r.args)["--config"]); v == nil || v.ConfigMap == nil {
				t.Errorf("--config %s not on a ConfigMap", argMap(r.args)["--config"])
			}
			if eq := equality.Semantic.DeepEqual(c.SecurityContext, renderValues(t, "").deploy.Spec.Template.Spec.Containers[0].SecurityContext); !eq {
				t.Errorf("container securityContext %+v differs from the default", c.SecurityContext)
			}
		})
	}
}
