//go:build e2e

package auth

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/prom"
)

// testTokenFile: a bearer token file checked by vmauth in front of
// Prometheus, rotated during a continuous query loop.
func testTokenFile(t *testing.T, e env) {
	dir := t.TempDir()
	servingCA := newCA(t, "vmauth serving CA")
	caFile := writeFile(t, dir, "ca.crt", servingCA.certPEM())
	token1, token2, wrong := secret("token-1"), secret("token-2"), secret("wrong")
	user1 := vmUser{name: "token-1", token: token1, upstream: e.upstream}
	user2 := vmUser{name: "token-2", token: token2, upstream: e.upstream}
	config := filepath.Join(dir, "auth.yml")
	writeVMAuthConfig(t, config, user1)
	vm := startVMAuth(t, "vmauth-token", config, servingCA.serverCert(t), false)
	url, hc := "https://"+vm.addr, httpsClient(servingCA.certPEM())
	tokenFile := writeFile(t, dir, "token", []byte(token1+"\n"))
	wrongFile := writeFile(t, dir, "wrong-token", []byte(wrong))
	secrets := []string{token1, token2, wrong}

	for _, tc := range []struct {
		name string
		opts prom.Options
		want outcome
	}{
		{"no token", prom.Options{URL: url, CAFile: caFile}, unauthorized},
		{"wrong token", prom.Options{URL: url, CAFile: caFile, TokenFile: wrongFile}, unauthorized},
		{"right token", prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile}, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, newClient(t, tc.opts), tc.want, secrets...)
		})
	}

	t.Run("rotation", func(t *testing.T) {
		c := newClient(t, prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile})
		check(t, c, ok)
		stop := make(chan struct{})
		res := loop(c, 20*time.Millisecond, stop)
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
				<-res
			}
		}()

		// 1. vmauth accepts both tokens.
		writeVMAuthConfig(t, config, user1, user2)
		waitTokenStatus(t, hc, url, token2, 200)
		before := served(t, vm.logPath, "token-2")
		// 2. The token file is rotated.
		writeAtomic(t, tokenFile, []byte(token2+"\n"))
		rotated := time.Now()
		// 3. The client's next requests carry the new token.
		waitFor(t, 5*time.Second, "requests with the new token", func() bool {
			return served(t, vm.logPath, "token-2") > before
		})
		t.Logf("the client sent the new token %v after the rotation", time.Since(rotated).Round(time.Millisecond))
		// 4. The old token is revoked.
		writeVMAuthConfig(t, config, user2)
		waitTokenStatus(t, hc, url, token1, 401)
		revoked := served(t, vm.logPath, "token-2")
		waitFor(t, 5*time.Second, "requests with the new token after the revocation", func() bool {
			return served(t, vm.logPath, "token-2") >= revoked+10
		})
		close(stop)
		(<-res).assertNoFailures(t, 20)
		check(t, c, ok)
	})
	t.Run("no secret in klog at -v=10", func(t *testing.T) {
		assertNotLogged(t, secrets...)
	})
}

// testTenantHeader: vmauth proxies a user's requests only when they carry
// the tenant's header value, so the value must reach it; the value is
// never logged, also not by client-go's request logging of the
// kubeconfig path at -v=10.
func testTenantHeader(t *testing.T, e env) {
	dir := t.TempDir()
	servingCA := newCA(t, "vmauth serving CA")
	caFile := writeFile(t, dir, "ca.crt", servingCA.certPEM())
	token, tenant, other := secret("token"), secret("tenant"), secret("other-tenant")
	config := filepath.Join(dir, "auth.yml")
	writeVMAuthConfig(t, config, vmUser{name: "tenant", token: token, upstream: e.upstream, header: "X-Scope-OrgID: " + tenant})
	vm := startVMAuth(t, "vmauth-tenant", config, servingCA.serverCert(t), false)
	url := "https://" + vm.addr
	tokenFile := writeFile(t, dir, "token", []byte(token))
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, kubeconfig, url, caFile, map[string]string{"tokenFile": tokenFile})
	header := func(v string) map[string][]string { return map[string][]string{"X-Scope-OrgID": {v}} }
	missingRoute := outcome{kind: prom.BadStatus, code: 400}

	for _, tc := range []struct {
		name string
		opts prom.Options
		want outcome
	}{
		{"token file, tenant header", prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile, Headers: header(tenant)}, ok},
		{"kubeconfig, tenant header", prom.Options{URL: url, AuthConfigFile: kubeconfig, Headers: header(tenant)}, ok},
		{"token file, GET, tenant header", prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile, Headers: header(tenant), Verb: "GET"}, ok},
		{"another tenant", prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile, Headers: header(other)}, missingRoute},
		{"kubeconfig, another tenant", prom.Options{URL: url, AuthConfigFile: kubeconfig, Headers: header(other)}, missingRoute},
		{"no tenant header", prom.Options{URL: url, CAFile: caFile, TokenFile: tokenFile}, missingRoute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, newClient(t, tc.opts), tc.want, token, tenant, other)
		})
	}
	t.Run("the header reached vmauth", func(t *testing.T) {
		// 3 cases with the tenant's value, a query and a series request each.
		if n := served(t, vm.logPath, "tenant"); n != 6 {
			t.Errorf("vmauth proxied %d requests of the tenant, want 6", n)
		}
	})
	t.Run("no header value in klog at -v=10", func(t *testing.T) {
		out := klogOut.String()
		if !strings.Contains(out, vm.addr+"/api/v1/query") || !strings.Contains(out, "Bearer <masked>") {
			t.Fatal("client-go logged no request headers of the kubeconfig clients: the check below would prove nothing")
		}
		assertNotLogged(t, token, tenant, other)
	})
}

// testCredentialsOverHTTP: credentials for a plain http:// URL are
// refused unless AllowCredentialsOverHTTP, and then reach the server,
// which checks them.
func testCredentialsOverHTTP(t *testing.T, e env) {
	dir := t.TempDir()
	servingCA := newCA(t, "vmauth serving CA")
	token, password := secret("token"), secret("password")
	config := filepath.Join(dir, "auth.yml")
	writeVMAuthConfig(t, config,
		vmUser{name: "bearer", token: token, upstream: e.upstream},
		vmUser{name: "basic", username: "promgate", password: password, upstream: e.upstream})
	vm := startVMAuth(t, "vmauth-http", config, servingCA.serverCert(t), true)
	url := "http://" + vm.plainAddr
	caFile := writeFile(t, dir, "ca.crt", servingCA.certPEM())
	tokenFile := writeFile(t, dir, "token", []byte(token))
	wrongFile := writeFile(t, dir, "wrong-token", []byte(secret("wrong")))
	// The kubeconfig's own server is https://: client-go reads a
	// kubeconfig's credentials only for an https:// server, and promgate
	// sends them to --prometheus-url.
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, kubeconfig, "https://"+vm.addr, caFile, map[string]string{"tokenFile": tokenFile})
	secrets := []string{token, password}

	for _, tc := range []struct {
		name string
		opts prom.Options
	}{
		{"token file", prom.Options{URL: url, TokenFile: tokenFile}},
		{"Authorization header", prom.Options{URL: url, Headers: map[string][]string{"Authorization": {"Bearer " + token}}}},
		{"in-cluster", prom.Options{URL: url, InCluster: true}},
		{"kubeconfig token", prom.Options{URL: url, AuthConfigFile: kubeconfig}},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			_, err := prom.New(tc.opts)
			if err == nil {
				t.Fatal("prom.New accepted credentials for a plain http:// URL")
			}
			t.Logf("prom.New: %v", err)
			if !strings.Contains(err.Error(), prom.FlagAllowCredentialsOverHTTP) || !strings.Contains(err.Error(), "in the clear") {
				t.Errorf("the error does not explain the refusal: %v", err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the error holds a secret: %v", err)
				}
			}
		})
	}

	for _, tc := range []struct {
		name string
		opts prom.Options
		want outcome
	}{
		{"token file", prom.Options{URL: url, TokenFile: tokenFile, AllowCredentialsOverHTTP: true}, ok},
		{"wrong token file", prom.Options{URL: url, TokenFile: wrongFile, AllowCredentialsOverHTTP: true}, unauthorized},
		{"kubeconfig token", prom.Options{URL: url, AuthConfigFile: kubeconfig, AllowCredentialsOverHTTP: true}, ok},
		{"no credentials", prom.Options{URL: url, AllowCredentialsOverHTTP: true}, unauthorized},
	} {
		t.Run("allowed/"+tc.name, func(t *testing.T) {
			check(t, newClient(t, tc.opts), tc.want, secrets...)
		})
	}

	// A password in the URL's user info is a credential like the others:
	// refused over plain http:// unless allowed.
	t.Run("URL user info over http is refused", func(t *testing.T) {
		opts := prom.Options{URL: "http://promgate:" + password + "@" + vm.plainAddr}
		errs := opts.Validate()
		if len(errs) == 0 {
			t.Fatalf("Validate accepted a password in the URL's user info for plain http:// without %s", prom.FlagAllowCredentialsOverHTTP)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
		}
	})
	// The kubeconfig's CA and credentials are used for --prometheus-url
	// whatever server the kubeconfig itself names (client-go would drop
	// them for an http:// one).
	t.Run("kubeconfig whose server is http", func(t *testing.T) {
		kc := filepath.Join(dir, "kubeconfig-http")
		writeKubeconfig(t, kc, "http://"+vm.plainAddr, caFile, map[string]string{"tokenFile": tokenFile})
		c, err := prom.New(prom.Options{URL: "https://" + vm.addr, AuthConfigFile: kc})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if _, err := c.Query(ctx, "vector(1)", time.Time{}); err != nil {
			t.Fatalf("the kubeconfig's CA and token were not used: %v", err)
		}
	})
}

// waitFor polls cond every 50ms until it holds, failing t after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
