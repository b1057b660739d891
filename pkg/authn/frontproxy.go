// Package authn makes the authentication of kube-apiserver's proxied
// requests cheaper without changing its outcome.
//
// Every request the aggregation layer proxies to promgate carries the
// front proxy's client certificate, and the API library's request-header
// authenticator verifies its chain on every request (an ECDSA signature
// check, about a tenth of a Pods request's CPU). The chain of a
// connection does not change between its requests, so FrontProxy
// remembers, per certificate and CA bundle, that the library's
// authenticator accepted it, and then checks only what can change per
// request: the certificate's validity period, the allowed common names and
// the identity headers.
package authn

import (
	"crypto/sha256"
	"crypto/x509"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/request/union"
)

// verifiedFor bounds how long a verified chain is remembered (within the
// certificates' validity).
const verifiedFor = 5 * time.Minute

// maxVerified bounds the chains remembered: kube-apiserver presents one
// front-proxy certificate (two during a rotation); a client presenting
// others only ever takes the library's path once the memo is full.
const maxVerified = 16

// Wrap returns an authenticator that accepts what next (the server's
// authenticator, built from cfg) accepts, answering proxied requests whose
// certificate it has seen verified from memory. Without a request-header
// configuration it returns next.
func Wrap(next authenticator.Request, cfg *authenticatorfactory.RequestHeaderConfig) authenticator.Request {
	if next == nil || cfg == nil || cfg.CAContentProvider == nil {
		return next
	}
	// The library adds system:authenticated to what its authenticators
	// accept; so does this one. Anything it does not accept goes to next.
	return union.New(group.NewAuthenticatedGroupAdder(newFrontProxy(cfg)), next)
}

func newFrontProxy(cfg *authenticatorfactory.RequestHeaderConfig) *frontProxy {
	return &frontProxy{
		cfg:      cfg,
		verifier: headerrequest.NewDynamicVerifyOptionsSecure(cfg.CAContentProvider.VerifyOptions, cfg.AllowedClientNames, cfg.UsernameHeaders, cfg.UIDHeaders, cfg.GroupHeaders, cfg.ExtraHeaderPrefixes),
		headers:  headerrequest.NewDynamic(cfg.UsernameHeaders, cfg.UIDHeaders, cfg.GroupHeaders, cfg.ExtraHeaderPrefixes),
		now:      time.Now,
		verified: map[[sha256.Size]byte]verdict{},
	}
}

type frontProxy struct {
	cfg      *authenticatorfactory.RequestHeaderConfig
	verifier authenticator.Request // the library's request-header authenticator
	headers  authenticator.Request // its identity headers alone
	now      func() time.Time

	mu       sync.Mutex
	verified map[[sha256.Size]byte]verdict

	// last is the certificate last hashed, and its hash: the requests
	// of a connection share its parsed certificate, so its hash is
	// computed once per connection, not per request (about 3 % of a
	// proxied request's CPU).
	last atomic.Pointer[hashed]
}

// hashed is a certificate and the SHA-256 of its DER bytes.
type hashed struct {
	cert *x509.Certificate
	sum  [sha256.Size]byte
}

// keyOf returns the SHA-256 of leaf's DER bytes, computed once per parsed
// certificate in a row.
func (f *frontProxy) keyOf(leaf *x509.Certificate) [sha256.Size]byte {
	if h := f.last.Load(); h != nil && h.cert == leaf {
		return h.sum
	}
	h := &hashed{cert: leaf, sum: sha256.Sum256(leaf.Raw)}
	f.last.Store(h)
	return h.sum
}

// verdict is a chain the library verified against roots, good until
// expires.
type verdict struct {
	roots   *x509.CertPool
	expires time.Time
}

// AuthenticateRequest answers (nil, false, nil) for anything it does not
// accept, so that the server's own authenticator decides, with its own
// errors.
func (f *frontProxy) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	opts, ok := f.cfg.CAContentProvider.VerifyOptions()
	if !ok {
		return nil, false, nil
	}
	leaf := req.TLS.PeerCertificates[0]
	key := f.keyOf(leaf)
	now := f.now()
	f.mu.Lock()
	v, seen := f.verified[key]
	f.mu.Unlock()
	if !seen || v.roots != opts.Roots || !now.Before(v.expires) {
		resp, ok, err := f.verifier.AuthenticateRequest(req)
		if err != nil {
			return nil, false, nil
		}
		f.remember(key, opts.Roots, req.TLS.PeerCertificates, now)
		return resp, ok, nil
	}
	if now.Before(leaf.NotBefore) || !f.allowed(leaf.Subject.CommonName) {
		return nil, false, nil
	}
	return f.headers.AuthenticateRequest(req)
}

// allowed is the library's common-name check (x509.Verifier).
func (f *frontProxy) allowed(cn string) bool {
	if f.cfg.AllowedClientNames == nil {
		return true
	}
	names := f.cfg.AllowedClientNames.Value()
	return len(names) == 0 || slices.Contains(names, cn)
}

// remember keeps a verified chain until the earliest of verifiedFor and
// the expiry of the certificates presented (the root's is checked again
// when the chain is verified again).
func (f *frontProxy) remember(key [sha256.Size]byte, roots *x509.CertPool, certs []*x509.Certificate, now time.Time) {
	expires := now.Add(verifiedFor)
	for _, c := range certs {
		if c.NotAfter.Before(expires) {
			expires = c.NotAfter
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.verified[key]; !ok && len(f.verified) >= maxVerified {
		for k, v := range f.verified {
			if !now.Before(v.expires) {
				delete(f.verified, k)
			}
		}
		if len(f.verified) >= maxVerified {
			return
		}
	}
	f.verified[key] = verdict{roots: roots, expires: expires}
}
