//go:build e2e

package auth

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/prom"
)

// The modes of Prometheus' own --web.config.file, which Prometheus 2.42
// (exporter-toolkit) reads again for every TLS handshake and every
// request: the tests change it while Prometheus runs.

// webTLS is the tls_server_config of a web config.
func webTLS(certFile, keyFile, clientCAFile string) string {
	s := fmt.Sprintf("tls_server_config:\n  cert_file: %q\n  key_file: %q\n", certFile, keyFile)
	if clientCAFile != "" {
		s += fmt.Sprintf("  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %q\n", clientCAFile)
	}
	return s
}

// testServerTLS: the server's certificate is checked against CAFile.
func testServerTLS(t *testing.T, _ env) {
	dir := t.TempDir()
	servingCA, otherCA := newCA(t, "prometheus serving CA"), newCA(t, "another CA")
	certFile, keyFile := servingCA.serverCert(t).write(t, dir, "serving")
	web := writeFile(t, dir, "web.yml", []byte(webTLS(certFile, keyFile, "")))
	addr := startPrometheus(t, "prometheus-tls", web, false)
	caFile := writeFile(t, dir, "ca.crt", servingCA.certPEM())
	otherFile := writeFile(t, dir, "other-ca.crt", otherCA.certPEM())

	for _, tc := range []struct {
		name string
		opts prom.Options
		want outcome
	}{
		{"the serving CA", prom.Options{URL: "https://" + addr, CAFile: caFile}, ok},
		{"another CA", prom.Options{URL: "https://" + addr, CAFile: otherFile}, tlsFailure("certificate signed by unknown authority")},
		{"the system roots", prom.Options{URL: "https://" + addr}, tlsFailure("certificate signed by unknown authority")},
		{"plain http to the TLS port", prom.Options{URL: "http://" + addr}, outcome{kind: prom.BadStatus, code: 400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, newClient(t, tc.opts), tc.want)
		})
	}
}

// testMutualTLS: client_auth_type RequireAndVerifyClientCert, and the
// rotation of the client's certificate on disk.
//
// The client certificates come from one root CA (client_ca_file) through
// two intermediates: the old certificate from the first, the new one from
// the second. After the rotation the server's client_ca_file becomes the
// second intermediate alone, which revokes the old certificate: the
// rotated client passes only if it presents the new one. Prometheus runs
// with a 1s idle timeout, so that no keep-alive connection of a handshake
// with the old certificate survives the switch; a control client that
// keeps the old certificate must then fail, which proves the switch took
// effect.
func testMutualTLS(t *testing.T, _ env) {
	dir := t.TempDir()
	servingCA := newCA(t, "prometheus serving CA")
	clientRoot := newCA(t, "client root CA")
	issuer1, issuer2 := clientRoot.intermediate(t, "client issuer 1"), clientRoot.intermediate(t, "client issuer 2")
	otherCA := newCA(t, "another client CA")

	certFile, keyFile := servingCA.serverCert(t).write(t, dir, "serving")
	rootFile := writeFile(t, dir, "client-root.crt", clientRoot.certPEM())
	issuer2File := writeFile(t, dir, "client-issuer-2.crt", issuer2.certPEM())
	web := writeFile(t, dir, "web.yml", []byte(webTLS(certFile, keyFile, rootFile)))
	addr := startPrometheus(t, "prometheus-mtls", web, false)
	url, caFile := "https://"+addr, writeFile(t, dir, "ca.crt", servingCA.certPEM())

	oldPair, newPair := issuer1.clientCert(t, "promgate-old"), issuer2.clientCert(t, "promgate-new")
	oldCert, oldKey := oldPair.write(t, dir, "old")
	otherCert, otherKey := otherCA.clientCert(t, "intruder").write(t, dir, "other")
	// The rotating client reads its files from a directory laid out like a
	// mounted secret, whose files all change in one rename.
	secret := &secretDir{dir: mustMkdir(t, filepath.Join(dir, "secret"))}
	secret.update(t, map[string][]byte{"tls.crt": oldPair.cert, "tls.key": oldPair.key})

	for _, tc := range []struct {
		name string
		opts prom.Options
		want outcome
	}{
		// With TLS 1.3 the server refuses the client's certificate after the
		// client's handshake is done: the client learns it from an alert
		// ("tls: bad certificate") or only from a broken connection.
		{"no client certificate", prom.Options{URL: url, CAFile: caFile}, tlsFailure("")},
		{"a certificate of another CA", prom.Options{URL: url, CAFile: caFile, CertFile: otherCert, KeyFile: otherKey}, tlsFailure("")},
		{"the right certificate", prom.Options{URL: url, CAFile: caFile, CertFile: oldCert, KeyFile: oldKey}, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, newClient(t, tc.opts), tc.want)
		})
	}

	t.Run("rotation", func(t *testing.T) {
		rotating := newClient(t, prom.Options{URL: url, CAFile: caFile, CertFile: secret.path("tls.crt"), KeyFile: secret.path("tls.key")})
		control := newClient(t, prom.Options{URL: url, CAFile: caFile, CertFile: oldCert, KeyFile: oldKey})
		check(t, rotating, ok)
		check(t, control, ok)

		stop := make(chan struct{})
		res := loop(rotating, 20*time.Millisecond, stop)
		time.Sleep(300 * time.Millisecond)
		secret.update(t, map[string][]byte{"tls.crt": newPair.cert, "tls.key": newPair.key})
		t.Logf("rotated the client certificate: serial %x (issuer 1) -> %x (issuer 2)", oldPair.serial, newPair.serial)
		time.Sleep(500 * time.Millisecond)
		close(stop)
		(<-res).assertNoFailures(t, 10)

		// Revoke the old certificate: trust only the new one's issuer.
		writeAtomic(t, web, []byte(webTLS(certFile, keyFile, issuer2File)))
		time.Sleep(1500 * time.Millisecond) // past the server's 1s idle timeout
		t.Run("the old certificate is refused", func(t *testing.T) {
			check(t, control, tlsFailure(""))
		})
		t.Run("the rotated client presents the new certificate", func(t *testing.T) {
			check(t, rotating, ok)
		})
	})
}

// The passwords of testBasicAuth and their bcrypt hashes (cost 4, made
// with golang.org/x/crypto/bcrypt), fixed so that the test needs no
// bcrypt module of its own. A wrong hash fails the test: the right
// password would get 401.
const (
	basicPassword     = "basic-password-7f3c9a1e5d2b"
	basicPasswordHash = "$2a$04$kOtAwTCVbV.v4zLtjsqiEOzEMQ2cIpkLc2YElorHYVAWwqZZfQYvO"
	basicChanged      = "basic-changed-4e8a2c6f1b9d"
	basicChangedHash  = "$2a$04$x3MZ.UYz9vXvIJwSihL.nuf9BJk9Au8WasWGJT3w1d.xRkqhV.gkC"
)

// testBasicAuth: basic_auth_users, with the credentials sent by each of
// the client's ways (an Authorization header, the URL's user info, a
// kubeconfig), over TLS.
func testBasicAuth(t *testing.T, _ env) {
	dir := t.TempDir()
	servingCA := newCA(t, "prometheus serving CA")
	certFile, keyFile := servingCA.serverCert(t).write(t, dir, "serving")
	caFile := writeFile(t, dir, "ca.crt", servingCA.certPEM())
	const user = "promgate"
	password, changed, wrong := basicPassword, basicChanged, secret("wrong")
	webConfig := func(hash string) []byte {
		return []byte(webTLS(certFile, keyFile, "") + fmt.Sprintf("basic_auth_users:\n  %s: %q\n", user, hash))
	}
	web := writeFile(t, dir, "web.yml", webConfig(basicPasswordHash))
	addr := startPrometheus(t, "prometheus-basic-auth", web, false)
	url := "https://" + addr

	n := 0
	ways := []struct {
		name string
		opts func(password string) prom.Options
	}{
		{"Authorization header", func(password string) prom.Options {
			basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
			return prom.Options{URL: url, CAFile: caFile, Headers: map[string][]string{"Authorization": {"Basic " + basic}}}
		}},
		{"URL user info", func(password string) prom.Options {
			return prom.Options{URL: "https://" + user + ":" + password + "@" + addr, CAFile: caFile}
		}},
		{"kubeconfig", func(password string) prom.Options {
			n++
			kc := filepath.Join(dir, fmt.Sprintf("kubeconfig-%d", n))
			writeKubeconfig(t, kc, url, caFile, map[string]string{"username": user, "password": password})
			return prom.Options{URL: url, AuthConfigFile: kc}
		}},
	}
	secrets := []string{password, changed, wrong}
	for _, s := range []string{password, changed, wrong} {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(user+":"+s)))
	}

	t.Run("no credentials", func(t *testing.T) {
		check(t, newClient(t, prom.Options{URL: url, CAFile: caFile}), unauthorized)
	})
	before := map[string]*prom.Client{}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			for _, tc := range []struct {
				name, password string
				want           outcome
			}{
				{"right password", password, ok},
				{"wrong password", wrong, unauthorized},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := newClient(t, way.opts(tc.password))
					check(t, c, tc.want, secrets...)
					if tc.password == password {
						before[way.name] = c
					}
				})
			}
		})
	}

	writeAtomic(t, web, webConfig(basicChangedHash))
	for _, way := range ways {
		t.Run("password change/"+way.name, func(t *testing.T) {
			t.Run("old password", func(t *testing.T) {
				c := before[way.name]
				if c == nil {
					t.Fatal("no client with the old password")
				}
				check(t, c, unauthorized, secrets...)
			})
			t.Run("new password", func(t *testing.T) {
				check(t, newClient(t, way.opts(changed)), ok, secrets...)
			})
		})
	}
	t.Run("no secret in klog at -v=10", func(t *testing.T) {
		if !strings.Contains(klogOut.String(), addr+"/api/v1/query") {
			t.Fatal("client-go logged no request of the kubeconfig clients: the check below would prove nothing")
		}
		assertNotLogged(t, secrets...)
	})
}
