package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	base       = "base"
	configCopy = "base/promgate.yaml"
	configSrc  = "../config/promgate.yaml"
	namespace  = "promgate"
	name       = "promgate"
	tlsSecret  = "promgate-tls"
)

// TestConfigCopyInSync fails when deploy/base/promgate.yaml, which kustomize
// needs inside its root, drifts from config/promgate.yaml.
func TestConfigCopyInSync(t *testing.T) {
	src, err := os.ReadFile(configSrc)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip(configSrc + " does not exist yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(configCopy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, cp) {
		t.Fatalf("%s differs from %s; run: cp config/promgate.yaml deploy/base/promgate.yaml", configCopy, configSrc)
	}
}

// kustomization is the part of kustomization.yaml the tests read.
type kustomization struct {
	Namespace          string   `json:"namespace"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name      string   `json:"name"`
		Namespace string   `json:"namespace"`
		Files     []string `json:"files"`
	} `json:"configMapGenerator"`
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(base, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	return k
}

// decodeAll decodes every document of a multi-document YAML stream.
func decodeAll(t *testing.T, r io.Reader) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// objects are a set of manifests, by kind and name.
type objects []*unstructured.Unstructured

func (o objects) get(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range o {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %q in %d objects", kind, name, len(o))
	return nil
}

func (o objects) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range o {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// readBase decodes the resource files that kustomization.yaml lists.
func readBase(t *testing.T) objects {
	t.Helper()
	k := readKustomization(t)
	var objs objects
	for _, f := range k.Resources {
		b, err := os.ReadFile(filepath.Join(base, f))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decodeAll(t, bytes.NewReader(b))...)
	}
	return objs
}

func TestKustomization(t *testing.T) {
	k := readKustomization(t)
	if k.Namespace != "" {
		t.Errorf("kustomization sets namespace %q: it would move the kube-system RoleBinding", k.Namespace)
	}
	if len(k.ConfigMapGenerator) != 1 || k.ConfigMapGenerator[0].Name != "promgate-config" ||
		k.ConfigMapGenerator[0].Namespace != namespace || !slices.Equal(k.ConfigMapGenerator[0].Files, []string{"promgate.yaml"}) {
		t.Errorf("configMapGenerator = %+v", k.ConfigMapGenerator)
	}
	// Every YAML file of the base is used.
	files, err := filepath.Glob(filepath.Join(base, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f = filepath.Base(f)
		if f != "kustomization.yaml" && f != "promgate.yaml" && !slices.Contains(k.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml resources", f)
		}
	}
}

func TestManifests(t *testing.T) {
	objs := renderBase(t)

	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace", "ClusterRole", "ClusterRoleBinding", "APIService":
			if u.GetNamespace() != "" {
				t.Errorf("cluster-scoped %s %s has namespace %q", u.GetKind(), u.GetName(), u.GetNamespace())
			}
		case "RoleBinding":
			if u.GetNamespace() != "kube-system" {
				t.Errorf("RoleBinding %s in %q, want kube-system", u.GetName(), u.GetNamespace())
			}
		default:
			if u.GetNamespace() != namespace {
				t.Errorf("%s %s in namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), namespace)
			}
		}
	}
	objs.get(t, "Namespace", namespace)
	objs.get(t, "ServiceAccount", name)

	t.Run("rbac", func(t *testing.T) {
		// What promgate itself may do is checked by TestLeastPrivilege;
		// here, what it grants others.
		hpa := rbacv1.Subject{Kind: "ServiceAccount", Name: "horizontal-pod-autoscaler", Namespace: "kube-system"}
		b := convert[rbacv1.ClusterRoleBinding](t, objs.get(t, "ClusterRoleBinding", "promgate-hpa-controller"))
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != "promgate-server-resources" || !slices.Equal(b.Subjects, []rbacv1.Subject{hpa}) {
			t.Errorf("ClusterRoleBinding promgate-hpa-controller = %+v %+v", b.RoleRef, b.Subjects)
		}
		server := convert[rbacv1.ClusterRole](t, objs.get(t, "ClusterRole", "promgate-server-resources"))
		for _, g := range []string{"custom.metrics.k8s.io", "external.metrics.k8s.io"} {
			if !allows(server.Rules, g, "pods", "get", "list") {
				t.Errorf("promgate-server-resources does not allow get/list on %s", g)
			}
		}
		agg := convert[rbacv1.ClusterRole](t, objs.get(t, "ClusterRole", "promgate:aggregated-metrics-reader"))
		for _, l := range []string{"view", "edit", "admin"} {
			if agg.Labels["rbac.authorization.k8s.io/aggregate-to-"+l] != "true" {
				t.Errorf("aggregated reader lacks aggregate-to-%s", l)
			}
		}
		for _, r := range []string{"pods", "nodes"} {
			if !allows(agg.Rules, "metrics.k8s.io", r, "get", "list", "watch") {
				t.Errorf("aggregated reader does not allow %s", r)
			}
		}
		if allows(agg.Rules, "custom.metrics.k8s.io", "pods", "get") {
			t.Error("aggregated reader grants custom metrics to view/edit/admin")
		}
	})

	t.Run("workload", func(t *testing.T) {
		d := convert[appsv1.Deployment](t, objs.get(t, "Deployment", name))
		svc := convert[corev1.Service](t, objs.get(t, "Service", name))
		pdb := convert[policyv1.PodDisruptionBudget](t, objs.get(t, "PodDisruptionBudget", name))
		pod := d.Spec.Template

		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("replicas = %v", d.Spec.Replicas)
		}
		for what, sel := range map[string]map[string]string{
			"deployment": d.Spec.Selector.MatchLabels, "service": svc.Spec.Selector, "pdb": pdb.Spec.Selector.MatchLabels,
		} {
			for k, v := range sel {
				if pod.Labels[k] != v {
					t.Errorf("%s selector %v does not match pod labels %v", what, sel, pod.Labels)
				}
			}
			if len(sel) == 0 {
				t.Errorf("%s selector empty", what)
			}
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("pdb minAvailable = %v", pdb.Spec.MinAvailable)
		}
		if pod.Spec.ServiceAccountName != name || pod.Spec.PriorityClassName != "system-cluster-critical" {
			t.Errorf("serviceAccount %q priorityClass %q", pod.Spec.ServiceAccountName, pod.Spec.PriorityClassName)
		}
		if len(pod.Spec.TopologySpreadConstraints) == 0 || pod.Spec.TopologySpreadConstraints[0].TopologyKey != "kubernetes.io/hostname" {
			t.Errorf("topologySpreadConstraints = %+v", pod.Spec.TopologySpreadConstraints)
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("containers = %d", len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		args := argMap(c.Args)
		for k, v := range map[string]string{
			"--secure-port":             "6443",
			"--tls-cert-file":           "/etc/promgate-tls/tls.crt",
			"--tls-private-key-file":    "/etc/promgate-tls/tls.key",
			"--config":                  "/etc/promgate/promgate.yaml",
			"--prometheus-url":          "http://prometheus-k8s.monitoring.svc:9090/",
			"--metrics-relist-interval": "1m",
			"-v":                        "2",
		} {
			if args[k] != v {
				t.Errorf("arg %s = %q, want %q", k, args[k], v)
			}
		}
		if _, ok := args["--cert-dir"]; ok {
			t.Error("--cert-dir set: the base serves the certificate of Secret " + tlsSecret)
		}
		// The port: container 6443 named https, Service 443 -> https, probes
		// over HTTPS on it.
		if len(c.Ports) != 1 || c.Ports[0].Name != "https" || c.Ports[0].ContainerPort != 6443 {
			t.Errorf("container ports = %+v", c.Ports)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" {
			t.Errorf("service ports = %+v", svc.Spec.Ports)
		}
		for path, p := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Port.String() != "https" {
				t.Errorf("probe %s = %+v", path, p)
			}
		}
		// Hardening (Pod Security "restricted", which the Namespace enforces).
		if ns := objs.get(t, "Namespace", namespace); ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace labels %v", ns.GetLabels())
		}
		psc := pod.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
			psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("pod securityContext = %+v", psc)
		}
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.Privileged != nil && *sc.Privileged ||
			sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container securityContext = %+v", sc)
		}
		// Requests cover the measured peak RSS under load (docs/performance.md:
		// up to ~160 MiB); a memory limit bounds a runaway; no CPU limit.
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().Cmp(resource.MustParse("160Mi")) < 0 {
			t.Errorf("resource requests = %v, want cpu and at least 160Mi memory", req)
		}
		if lim.Memory().IsZero() || lim.Memory().Cmp(*req.Memory()) < 0 {
			t.Errorf("memory limit %v, want one at least the request %v", lim.Memory(), req.Memory())
		}
		if !lim.Cpu().IsZero() {
			t.Errorf("cpu limit %v: throttling shows as HPA latency", lim.Cpu())
		}
		// --config and the certificate live on mounted volumes: the
		// ConfigMap (whose generated key is the file name) and the Secret.
		if v := volumeOf(pod.Spec, c, args["--config"]); v == nil || v.ConfigMap == nil || !strings.HasPrefix(v.ConfigMap.Name, "promgate-config-") ||
			filepath.Base(args["--config"]) != "promgate.yaml" {
			t.Errorf("--config %s is not on the promgate-config volume: %+v", args["--config"], v)
		}
		for _, flag := range []string{"--tls-cert-file", "--tls-private-key-file"} {
			if v := volumeOf(pod.Spec, c, args[flag]); v == nil || v.Secret == nil || v.Secret.SecretName != tlsSecret {
				t.Errorf("%s %s is not on Secret %s: %+v", flag, args[flag], tlsSecret, v)
			}
		}
	})

	t.Run("apiservices", func(t *testing.T) {
		want := map[string]int32{ // name -> versionPriority
			"v1beta1.metrics.k8s.io":          100,
			"v1.metrics.k8s.io":               200,
			"v1beta1.custom.metrics.k8s.io":   100,
			"v1beta2.custom.metrics.k8s.io":   200,
			"v1beta1.external.metrics.k8s.io": 100,
		}
		as := objs.ofKind("APIService")
		if len(as) != len(want) {
			t.Errorf("%d APIServices, want %d", len(as), len(want))
		}
		for apiName, prio := range want {
			a := convert[apiService](t, objs.get(t, "APIService", apiName))
			version, group, _ := strings.Cut(apiName, ".")
			if a.Spec.Group != group || a.Spec.Version != version {
				t.Errorf("%s: group %q version %q", apiName, a.Spec.Group, a.Spec.Version)
			}
			if s := a.Spec.Service; s == nil || s.Name != name || s.Namespace != namespace || s.Port == nil || *s.Port != 443 {
				t.Errorf("%s: service %+v", apiName, s)
			}
			if a.Spec.GroupPriorityMinimum != 100 || a.Spec.VersionPriority != prio {
				t.Errorf("%s: priorities %d/%d, want 100/%d", apiName, a.Spec.GroupPriorityMinimum, a.Spec.VersionPriority, prio)
			}
			// Verification is the default: an overlay supplies the CA
			// (TestOverlays), only one opts out.
			if a.Spec.InsecureSkipTLSVerify || len(a.Spec.CABundle) != 0 {
				t.Errorf("%s: insecureSkipTLSVerify %v, caBundle %q; want neither in the base", apiName, a.Spec.InsecureSkipTLSVerify, a.Spec.CABundle)
			}
		}
	})
}

// argMap maps each "--flag=value" argument to its value.
func argMap(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

// volumeOf returns the volume container c mounts at a prefix of path.
func volumeOf(pod corev1.PodSpec, c corev1.Container, path string) *corev1.Volume {
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, m.MountPath+"/") {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return &v
				}
			}
		}
	}
	return nil
}

// apiService is the part of apiregistration.k8s.io/v1 APIService the tests
// read (k8s.io/kube-aggregator is not a dependency).
type apiService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Service *struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			Port      *int32 `json:"port"`
		} `json:"service"`
		GroupPriorityMinimum  int32  `json:"groupPriorityMinimum"`
		VersionPriority       int32  `json:"versionPriority"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
		CABundle              []byte `json:"caBundle"`
	} `json:"spec"`
}

// allows reports whether rules grant every verb on group/resource.
func allows(rules []rbacv1.PolicyRule, group, resource string, verbs ...string) bool {
	for _, verb := range verbs {
		ok := false
		for _, r := range rules {
			if match(r.APIGroups, group) && match(r.Resources, resource) && match(r.Verbs, verb) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func match(list []string, v string) bool {
	return slices.Contains(list, v) || slices.Contains(list, "*")
}

// render builds the kustomization in dir as kubectl apply -k does (kubectl
// embeds the same sigs.k8s.io/kustomize/api).
func render(t *testing.T, dir string) objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return objects(decodeAll(t, bytes.NewReader(out)))
}

func renderBase(t *testing.T) objects {
	t.Helper()
	return render(t, base)
}

// TestKustomizeBuild checks what only rendering shows: the generated
// ConfigMap's hashed name reaches the Deployment and it holds the config.
func TestKustomizeBuild(t *testing.T) {
	objs := renderBase(t)
	if want := len(readBase(t)) + 1; len(objs) != want { // + the ConfigMap
		t.Errorf("rendered %d objects, want %d", len(objs), want)
	}
	cms := objs.ofKind("ConfigMap")
	if len(cms) != 1 || !strings.HasPrefix(cms[0].GetName(), "promgate-config-") || cms[0].GetNamespace() != namespace {
		t.Fatalf("ConfigMaps = %v", cms)
	}
	cm := convert[corev1.ConfigMap](t, cms[0])
	cfg, err := os.ReadFile(configCopy)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["promgate.yaml"] != string(cfg) {
		t.Errorf("ConfigMap data differs from %s", configCopy)
	}
	d := convert[appsv1.Deployment](t, objs.get(t, "Deployment", name))
	found := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			found = v.ConfigMap.Name == cm.Name
		}
	}
	if !found {
		t.Errorf("Deployment does not mount ConfigMap %s: %+v", cm.Name, d.Spec.Template.Spec.Volumes)
	}
	if rb := objs.get(t, "RoleBinding", "promgate-auth-reader"); rb.GetNamespace() != "kube-system" {
		t.Errorf("rendered RoleBinding in %q", rb.GetNamespace())
	}
	for _, u := range objs {
		if u.GetLabels()["app.kubernetes.io/part-of"] != "promgate" {
			t.Errorf("%s %s lacks app.kubernetes.io/part-of=promgate", u.GetKind(), u.GetName())
		}
	}
}
