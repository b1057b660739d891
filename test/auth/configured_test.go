//go:build e2e

package auth

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
)

// testConfiguredBackend: a backend of the configuration file, whose
// credentials are Prometheus' HTTP client configuration (authorization
// credentials_file, tls_config, http_headers for the tenant), against
// vmauth checking token and tenant; its token file is rotated during a
// continuous query loop and no request fails.
func testConfiguredBackend(t *testing.T, e env) {
	dir := t.TempDir()
	servingCA := newCA(t, "vmauth serving CA")
	writeFile(t, dir, "ca.crt", servingCA.certPEM())
	token1, token2, tenant := secret("token-1"), secret("token-2"), secret("tenant")
	header := "X-Scope-OrgID: " + tenant
	user1 := vmUser{name: "token-1", token: token1, upstream: e.upstream, header: header}
	user2 := vmUser{name: "token-2", token: token2, upstream: e.upstream, header: header}
	vmConfig := filepath.Join(dir, "auth.yml")
	writeVMAuthConfig(t, vmConfig, user1)
	vm := startVMAuth(t, "vmauth-configured", vmConfig, servingCA.serverCert(t), false)
	url, hc := "https://"+vm.addr, httpsClient(servingCA.certPEM())
	tokenFile := writeFile(t, dir, "token", []byte(token1))
	secrets := []string{token1, token2, tenant}

	// client loads a configuration file naming one backend, with relative
	// file names (resolved against the file's directory), and builds the
	// backend's client as promgate does.
	client := func(name, tokenName, tenant string) *prom.Client {
		t.Helper()
		path := filepath.Join(dir, name+".yaml")
		text := fmt.Sprintf(`backends:
- name: %s
  url: %s
  http:
    authorization: {credentials_file: %s}
    tls_config: {ca_file: ca.crt}
    http_headers:
      X-Scope-OrgID: {values: [%q]}
`, name, url, tokenName, tenant)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		b := cfg.Backends[0]
		return newClient(t, prom.Options{Name: b.Name, URL: b.URL, HTTPConfig: &b.HTTP})
	}
	writeFile(t, dir, "wrong-token", []byte(secret("wrong")))
	for _, tc := range []struct {
		name, token, tenant string
		want                outcome
	}{
		{"wrong token", "wrong-token", tenant, unauthorized},
		{"wrong tenant", "token", "another-tenant", outcome{kind: prom.BadStatus, code: 400}},
		{"right token and tenant", "token", tenant, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, client("b-"+fmt.Sprint(len(tc.name)), tc.token, tc.tenant), tc.want, secrets...)
		})
	}

	t.Run("rotation", func(t *testing.T) {
		c := client("rotating", "token", tenant)
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
		writeVMAuthConfig(t, vmConfig, user1, user2)
		waitTokenStatus(t, hc, url, token2, 400) // accepted, but no route without the tenant header
		before := served(t, vm.logPath, "token-2")
		writeAtomic(t, tokenFile, []byte(token2))
		waitFor(t, 5*time.Second, "requests with the new token", func() bool {
			return served(t, vm.logPath, "token-2") > before
		})
		writeVMAuthConfig(t, vmConfig, user2)
		waitTokenStatus(t, hc, url, token1, 401)
		revoked := served(t, vm.logPath, "token-2")
		waitFor(t, 5*time.Second, "requests with the new token after the revocation", func() bool {
			return served(t, vm.logPath, "token-2") >= revoked+10
		})
		close(stop)
		(<-res).assertNoFailures(t, 20)
	})
	t.Run("no secret in klog at -v=10", func(t *testing.T) {
		assertNotLogged(t, secrets...)
	})
}
