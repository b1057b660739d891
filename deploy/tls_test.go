package deploy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const (
	securityDoc  = "../docs/security.md"
	caBundleComp = "components/ca-bundle"
	injectCAFrom = "cert-manager.io/inject-ca-from"
)

// variant is one way to install promgate, rendered.
type variant struct {
	name string // directory under deploy/
	objs objects
	// For components/ca-bundle: the fixture's CA and serving certificate.
	caPEM   []byte
	serving *x509.Certificate
}

// variants renders the base, every overlay in overlays/, and the
// ca-bundle component applied to the base with a fixture Secret.
func variants(t *testing.T) []variant {
	t.Helper()
	vs := []variant{{name: base, objs: renderBase(t)}}
	dirs, err := filepath.Glob("overlays/*/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no overlays")
	}
	for _, k := range dirs {
		dir := filepath.Dir(k)
		vs = append(vs, variant{name: dir, objs: render(t, dir)})
	}
	caPEM, serving, dir := caBundleFixture(t, true)
	return append(vs, variant{name: caBundleComp, objs: render(t, dir), caPEM: caPEM, serving: serving})
}

// caBundleFixture writes a kustomization using the base and the ca-bundle
// component, with (or without) a Secret promgate-tls holding a serving
// certificate for promgate.promgate.svc issued by a fresh CA, as the
// component's comment and docs/security.md describe.
func caBundleFixture(t *testing.T, withSecret bool) (caPEM []byte, serving *x509.Certificate, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dns := "promgate.promgate.svc"
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if serving, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	b64 := base64.StdEncoding.EncodeToString

	dir = t.TempDir()
	// kustomize takes other kustomizations by relative path only.
	rel := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(dir, a)
		if err != nil {
			t.Fatal(err)
		}
		return rel
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + rel(base) + "\n"
	if withSecret {
		k += "- promgate-tls.yaml\n"
		secret := `apiVersion: v1
kind: Secret
metadata:
  name: promgate-tls
  namespace: promgate
type: kubernetes.io/tls
data:
  tls.crt: ` + b64(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + `
  tls.key: ` + b64(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})) + `
  ca.crt: ` + b64(caPEM) + "\n"
		if err := os.WriteFile(filepath.Join(dir, "promgate-tls.yaml"), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k += "components:\n- " + rel(caBundleComp) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	return caPEM, serving, dir
}

// TestCABundleNeedsSecret checks that the ca-bundle component refuses to
// render without the Secret, rather than leave caBundle empty.
func TestCABundleNeedsSecret(t *testing.T) {
	_, _, dir := caBundleFixture(t, false)
	_, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err == nil || !strings.Contains(err.Error(), "promgate-tls") {
		t.Errorf("kustomize build without the Secret: %v, want an error naming promgate-tls", err)
	}
}

// TestOverlays checks each install variant's TLS set-up: kube-apiserver
// verifies promgate by a CA in every variant but the explicit opt-out.
func TestOverlays(t *testing.T) {
	baseObjs := renderBase(t)
	baseDeploy := convert[appsv1.Deployment](t, baseObjs.get(t, "Deployment", name))

	checks := map[string]func(t *testing.T, v variant){
		base: func(t *testing.T, v variant) {}, // TestManifests
		"overlays/cert-manager": func(t *testing.T, v variant) {
			sameDeployment(t, baseDeploy, v)
			for _, a := range v.objs.ofKind("APIService") {
				api := convert[apiService](t, a)
				ref := a.GetAnnotations()[injectCAFrom]
				ns, certName, _ := strings.Cut(ref, "/")
				if ns != namespace || api.Spec.InsecureSkipTLSVerify || len(api.Spec.CABundle) != 0 {
					t.Errorf("APIService %s: %s=%q insecureSkipTLSVerify=%v caBundle=%q", a.GetName(), injectCAFrom, ref, api.Spec.InsecureSkipTLSVerify, api.Spec.CABundle)
					continue
				}
				cert := v.objs.get(t, "Certificate", certName)
				if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s != tlsSecret {
					t.Errorf("Certificate %s writes Secret %q, the Deployment mounts %q", certName, s, tlsSecret)
				}
				dnsNames, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if want := api.Spec.Service.Name + "." + api.Spec.Service.Namespace + ".svc"; !slices.Contains(dnsNames, want) {
					t.Errorf("Certificate %s dnsNames %v lack %s, which kube-apiserver verifies for APIService %s", certName, dnsNames, want, a.GetName())
				}
				if usages, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "usages"); !slices.Contains(usages, "server auth") {
					t.Errorf("Certificate %s usages %v", certName, usages)
				}
				checkIssuerChain(t, v.objs, cert)
			}
		},
		"overlays/insecure-skip-tls-verify": func(t *testing.T, v variant) {
			for _, a := range v.objs.ofKind("APIService") {
				api := convert[apiService](t, a)
				if !api.Spec.InsecureSkipTLSVerify {
					t.Errorf("APIService %s verifies a certificate nobody issued", a.GetName())
				}
			}
			// The base's Deployment, with a self-signed certificate in an
			// emptyDir instead of Secret promgate-tls.
			want := baseDeploy.DeepCopy()
			pod := &want.Spec.Template.Spec
			c := &pod.Containers[0]
			c.Args = slices.DeleteFunc(c.Args, func(a string) bool {
				return strings.HasPrefix(a, "--tls-cert-file=") || strings.HasPrefix(a, "--tls-private-key-file=")
			})
			c.Args = slices.Insert(c.Args, 1, "--cert-dir=/tmp/certs")
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/promgate-tls" })
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "certs", MountPath: "/tmp/certs"})
			pod.Volumes = slices.DeleteFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Secret != nil })
			pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "certs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			got := convert[appsv1.Deployment](t, v.objs.get(t, "Deployment", name))
			for _, d := range []*appsv1.Deployment{got, want} { // order is not meaning
				slices.SortFunc(d.Spec.Template.Spec.Volumes, func(a, b corev1.Volume) int { return strings.Compare(a.Name, b.Name) })
				slices.SortFunc(d.Spec.Template.Spec.Containers[0].VolumeMounts, func(a, b corev1.VolumeMount) int { return strings.Compare(a.Name, b.Name) })
			}
			if !equality.Semantic.DeepEqual(got, want) {
				gc, wc := got.Spec.Template.Spec.Containers[0], want.Spec.Template.Spec.Containers[0]
				t.Errorf("Deployment differs from the base's beyond the certificate:\n got args %q mounts %+v volumes %+v\nwant args %q mounts %+v volumes %+v",
					gc.Args, gc.VolumeMounts, got.Spec.Template.Spec.Volumes, wc.Args, wc.VolumeMounts, want.Spec.Template.Spec.Volumes)
			}
			if vol := volumeOf(got.Spec.Template.Spec, got.Spec.Template.Spec.Containers[0], "/tmp/certs/x"); vol == nil || vol.EmptyDir == nil {
				t.Errorf("--cert-dir is not on an emptyDir: %+v", vol)
			}
		},
		caBundleComp: func(t *testing.T, v variant) {
			sameDeployment(t, baseDeploy, v)
			for _, a := range v.objs.ofKind("APIService") {
				api := convert[apiService](t, a)
				if !bytes.Equal(api.Spec.CABundle, v.caPEM) {
					t.Errorf("APIService %s caBundle = %q, want the Secret's ca.crt", a.GetName(), api.Spec.CABundle)
					continue
				}
				// What kube-apiserver checks when it dials the Service.
				roots := x509.NewCertPool()
				if !roots.AppendCertsFromPEM(api.Spec.CABundle) {
					t.Fatalf("APIService %s caBundle holds no certificate", a.GetName())
				}
				dns := api.Spec.Service.Name + "." + api.Spec.Service.Namespace + ".svc"
				if _, err := v.serving.Verify(x509.VerifyOptions{DNSName: dns, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
					t.Errorf("APIService %s: serving certificate does not verify for %s: %v", a.GetName(), dns, err)
				}
			}
		},
	}

	vs := variants(t)
	if len(vs) != len(checks) {
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i] = v.name
		}
		t.Errorf("variants %v, checks for %v: add a check for each new overlay", names, sortedKeys(checks))
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			check, ok := checks[v.name]
			if !ok {
				t.Fatalf("no check for %s", v.name)
			}
			if len(v.objs.ofKind("APIService")) != 5 {
				t.Errorf("%d APIServices", len(v.objs.ofKind("APIService")))
			}
			for _, a := range v.objs.ofKind("APIService") {
				// kube-apiserver's validation.
				if api := convert[apiService](t, a); api.Spec.InsecureSkipTLSVerify && len(api.Spec.CABundle) > 0 {
					t.Errorf("APIService %s sets both insecureSkipTLSVerify and caBundle", a.GetName())
				}
			}
			check(t, v)
		})
	}
}

// sameDeployment fails unless v's Deployment is the base's.
func sameDeployment(t *testing.T, want *appsv1.Deployment, v variant) {
	t.Helper()
	if got := convert[appsv1.Deployment](t, v.objs.get(t, "Deployment", name)); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("%s changes the Deployment", v.name)
	}
}

// checkIssuerChain follows cert's issuerRef to a namespaced CA Issuer whose
// key pair is a CA Certificate issued by a self-signed Issuer.
func checkIssuerChain(t *testing.T, objs objects, cert *unstructured.Unstructured) {
	t.Helper()
	issuerOf := func(c *unstructured.Unstructured) *unstructured.Unstructured {
		kind, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "kind")
		n, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "name")
		if kind != "Issuer" {
			t.Fatalf("Certificate %s issuerRef kind %q, want Issuer", c.GetName(), kind)
		}
		return objs.get(t, "Issuer", n)
	}
	caIssuer := issuerOf(cert)
	caSecret, _, _ := unstructured.NestedString(caIssuer.Object, "spec", "ca", "secretName")
	var caCert *unstructured.Unstructured
	for _, c := range objs.ofKind("Certificate") {
		if s, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); s == caSecret && caSecret != "" {
			caCert = c
		}
	}
	if caCert == nil {
		t.Fatalf("Issuer %s: no Certificate writes its ca.secretName %q", caIssuer.GetName(), caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(caCert.Object, "spec", "isCA"); !isCA {
		t.Errorf("Certificate %s is not a CA", caCert.GetName())
	}
	if _, ok, _ := unstructured.NestedMap(issuerOf(caCert).Object, "spec", "selfSigned"); !ok {
		t.Errorf("Certificate %s is not self-signed", caCert.GetName())
	}
}

// extractYAML returns the first ```yaml block of the Markdown file that
// contains marker.
func extractYAML(t *testing.T, file, marker string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("%s has no yaml block containing %q", file, marker)
	return ""
}
