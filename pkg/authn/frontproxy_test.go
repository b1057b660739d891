package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// authority is a test CA.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial atomic.Int64

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate for cn, valid until notAfter.
func (a *authority) client(t *testing.T, cn string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// rotatingCA is a CA bundle that can be replaced, as a file-backed one is.
type rotatingCA struct {
	opts atomic.Pointer[x509.VerifyOptions]
}

func (r *rotatingCA) set(t *testing.T, a *authority) {
	t.Helper()
	c, err := dynamiccertificates.NewStaticCAContent("test", a.pem)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := c.VerifyOptions()
	r.opts.Store(&o)
}
func (r *rotatingCA) Name() string                              { return "test" }
func (r *rotatingCA) CurrentCABundleContent() []byte            { return nil }
func (r *rotatingCA) VerifyOptions() (x509.VerifyOptions, bool) { return *r.opts.Load(), true }
func (r *rotatingCA) AddListener(dynamiccertificates.Listener)  {}

var _ dynamiccertificates.CAContentProvider = (*rotatingCA)(nil)

func config(ca dynamiccertificates.CAContentProvider) *authenticatorfactory.RequestHeaderConfig {
	return &authenticatorfactory.RequestHeaderConfig{
		UsernameHeaders:     headerrequest.StaticStringSlice{"X-Remote-User"},
		UIDHeaders:          headerrequest.StaticStringSlice{"X-Remote-Uid"},
		GroupHeaders:        headerrequest.StaticStringSlice{"X-Remote-Group"},
		ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
		CAContentProvider:   ca,
		AllowedClientNames:  headerrequest.StaticStringSlice{"front-proxy-client"},
	}
}

// library is the server's own authenticator for cfg: the library's
// delegating authenticator with request-header authentication alone.
func library(t *testing.T, cfg *authenticatorfactory.RequestHeaderConfig) authenticator.Request {
	t.Helper()
	a, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{RequestHeaderConfig: cfg}.New()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(certs []*x509.Certificate, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/apis/custom.metrics.k8s.io/v1beta2", nil)
	if certs != nil {
		r.TLS = &tls.ConnectionState{PeerCertificates: certs}
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

type outcome struct {
	user   string
	groups []string
	extra  map[string][]string
	ok     bool
	failed bool
}

func run(a authenticator.Request, r *http.Request) outcome {
	resp, ok, err := a.AuthenticateRequest(r)
	o := outcome{ok: ok, failed: err != nil}
	if resp != nil {
		o.user, o.groups, o.extra = resp.User.GetName(), resp.User.GetGroups(), resp.User.GetExtra()
	}
	return o
}

// TestSameAsLibrary: for every request, Wrap's answer is the library's,
// from the first request on a certificate and from memory afterwards.
func TestSameAsLibrary(t *testing.T) {
	ca, other := newAuthority(t, "front-proxy-ca"), newAuthority(t, "other-ca")
	rot := &rotatingCA{}
	rot.set(t, ca)
	cfg := config(rot)
	lib := library(t, cfg)
	wrapped := Wrap(lib, cfg)
	later := time.Now().Add(24 * time.Hour)
	proxy := ca.client(t, "front-proxy-client", later)
	user := map[string]string{"X-Remote-User": "alice", "X-Remote-Group": "team-a", "X-Remote-Extra-Scopes": "x"}
	for _, c := range []struct {
		name    string
		certs   []*x509.Certificate
		headers map[string]string
		wantOK  bool
	}{
		{"proxied request", []*x509.Certificate{proxy}, user, true},
		{"the same certificate again (from memory)", []*x509.Certificate{proxy}, user, true},
		{"another user on the same connection", []*x509.Certificate{proxy}, map[string]string{"X-Remote-User": "bob"}, true},
		{"no identity headers", []*x509.Certificate{proxy}, nil, false},
		{"a common name not allowed", []*x509.Certificate{ca.client(t, "someone-else", later)}, user, false},
		{"an untrusted authority", []*x509.Certificate{other.client(t, "front-proxy-client", later)}, user, false},
		{"no client certificate", nil, user, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, got := run(lib, request(c.certs, c.headers)), run(wrapped, request(c.certs, c.headers))
			if want.ok != c.wantOK {
				t.Fatalf("the library's answer: %+v, want ok=%v", want, c.wantOK)
			}
			if want.ok != got.ok || want.user != got.user || !reflect.DeepEqual(want.groups, got.groups) || !reflect.DeepEqual(want.extra, got.extra) {
				t.Errorf("library %+v, wrapped %+v", want, got)
			}
		})
	}
	t.Run("after the CA bundle changes, a remembered certificate is verified again", func(t *testing.T) {
		rot.set(t, other)
		if o := run(wrapped, request([]*x509.Certificate{proxy}, user)); o.ok {
			t.Errorf("accepted a certificate of the old authority: %+v", o)
		}
	})
}

// countingVerifier counts the chain verifications the library performs.
type countingVerifier struct {
	authenticator.Request
	n atomic.Int32
}

func (c *countingVerifier) AuthenticateRequest(r *http.Request) (*authenticator.Response, bool, error) {
	c.n.Add(1)
	return c.Request.AuthenticateRequest(r)
}

// TestVerifiedOnce: a certificate is verified once per verifiedFor and
// CA bundle, not once per request, and again once it has expired.
func TestVerifiedOnce(t *testing.T) {
	ca := newAuthority(t, "front-proxy-ca")
	rot := &rotatingCA{}
	rot.set(t, ca)
	f := newFrontProxy(config(rot))
	counted := &countingVerifier{Request: f.verifier}
	f.verifier = counted
	now := time.Now()
	f.now = func() time.Time { return now }
	proxy := ca.client(t, "front-proxy-client", now.Add(time.Hour))
	user := map[string]string{"X-Remote-User": "alice"}
	for range 5 {
		if o := run(f, request([]*x509.Certificate{proxy}, user)); !o.ok || o.user != "alice" {
			t.Fatalf("refused: %+v", o)
		}
	}
	if n := counted.n.Load(); n != 1 {
		t.Errorf("verified %d times in 5 requests, want 1", n)
	}
	now = now.Add(verifiedFor)
	run(f, request([]*x509.Certificate{proxy}, user))
	if n := counted.n.Load(); n != 2 {
		t.Errorf("after verifiedFor: verified %d times, want 2", n)
	}
	// A certificate expiring before verifiedFor is remembered until it
	// expires, then verified again (by the library, on its own clock).
	short := ca.client(t, "front-proxy-client", now.Add(verifiedFor/2))
	run(f, request([]*x509.Certificate{short}, user))
	run(f, request([]*x509.Certificate{short}, user))
	if n := counted.n.Load(); n != 3 {
		t.Errorf("a short-lived certificate: verified %d times in all, want 3", n)
	}
	now = now.Add(verifiedFor / 2)
	run(f, request([]*x509.Certificate{short}, user))
	if n := counted.n.Load(); n != 4 {
		t.Errorf("a certificate past its expiry was not verified again (%d verifications)", n)
	}
}

// TestMemoBounded: certificates beyond maxVerified are not remembered.
func TestMemoBounded(t *testing.T) {
	ca := newAuthority(t, "front-proxy-ca")
	rot := &rotatingCA{}
	rot.set(t, ca)
	f := newFrontProxy(config(rot))
	for i := range maxVerified + 8 {
		c := ca.client(t, "front-proxy-client", time.Now().Add(time.Hour))
		if o := run(f, request([]*x509.Certificate{c}, map[string]string{"X-Remote-User": fmt.Sprint(i)})); !o.ok {
			t.Fatalf("certificate %d refused", i)
		}
	}
	if n := len(f.verified); n != maxVerified {
		t.Errorf("%d certificates remembered, want %d", n, maxVerified)
	}
}

// TestKeyOf: a certificate's key is its DER bytes' hash, whether it is the
// certificate hashed last, another parse of the same bytes or another
// certificate.
func TestKeyOf(t *testing.T) {
	ca := newAuthority(t, "front-proxy-ca")
	f := newFrontProxy(config(&rotatingCA{}))
	a := ca.client(t, "front-proxy-client", time.Now().Add(time.Hour))
	b := ca.client(t, "front-proxy-client", time.Now().Add(time.Hour))
	a2, err := x509.ParseCertificate(a.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []*x509.Certificate{a, a, b, a2, a, b, b} {
		if got, want := f.keyOf(c), sha256.Sum256(c.Raw); got != want {
			t.Errorf("certificate %d: key %x, want %x", i, got, want)
		}
	}
}
