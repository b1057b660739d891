package prom

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/internal/klogtest"
	"github.com/promgate/promgate/pkg/internal/promtest"
)

func TestOptionsValidate(t *testing.T) {
	const (
		plain  = "http://prometheus.monitoring.svc:9090/"
		secure = "https://prometheus.monitoring.svc:9090/"
	)
	authz := map[string][]string{"Authorization": {"Bearer s3cr3t"}}
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the errors, in order
	}{
		{name: "plain URL without credentials", opts: Options{URL: plain}},
		{name: "TLS and token", opts: Options{URL: secure, CAFile: "ca.crt", CertFile: "c.crt", KeyFile: "c.key", TokenFile: "token"}},
		{name: "auth config alone", opts: Options{URL: secure, AuthConfigFile: "kubeconfig"}},
		{name: "in-cluster alone", opts: Options{URL: secure, InCluster: true}},
		{name: "tenant header over http", opts: Options{URL: plain, Headers: map[string][]string{"X-Scope-OrgID": {"a"}}}},
		{name: "lower-case verb", opts: Options{URL: plain, Verb: "get"}},

		{name: "no URL", opts: Options{}, want: []string{"prometheus URL is required (--prometheus-url)"}},
		{name: "URL without scheme", opts: Options{URL: "prometheus:9090"}, want: []string{`invalid prometheus URL "prometheus:9090" (--prometheus-url)`}},
		{name: "URL with another scheme", opts: Options{URL: "ftp://p:9090"}, want: []string{`invalid prometheus URL "ftp://p:9090"`}},
		{name: "invalid URL hides credentials", opts: Options{URL: "ftp://user:pw@p/?token=s3cr3t"}, want: []string{`invalid prometheus URL "ftp://p/"`}},
		{name: "verb", opts: Options{URL: plain, Verb: "PUT"}, want: []string{`prometheus verb must be GET or POST, not "PUT" (--prometheus-verb)`}},

		{name: "auth config and in-cluster", opts: Options{URL: secure, AuthConfigFile: "k", InCluster: true},
			want: []string{"--prometheus-auth-config conflicts with --prometheus-auth-incluster"}},
		{name: "auth config and token file", opts: Options{URL: secure, AuthConfigFile: "k", TokenFile: "t"},
			want: []string{"--prometheus-token-file conflicts with --prometheus-auth-config: the kubeconfig supplies"}},
		{name: "auth config and CA and client certificate", opts: Options{URL: secure, AuthConfigFile: "k", CAFile: "ca", CertFile: "c", KeyFile: "k"},
			want: []string{
				"--prometheus-ca-file conflicts with --prometheus-auth-config",
				"--prometheus-client-tls-cert-file conflicts with --prometheus-auth-config",
				"--prometheus-client-tls-key-file conflicts with --prometheus-auth-config",
			}},
		{name: "in-cluster and token file", opts: Options{URL: secure, InCluster: true, TokenFile: "t"},
			want: []string{"--prometheus-token-file conflicts with --prometheus-auth-incluster: the in-cluster config supplies"}},
		{name: "in-cluster and CA", opts: Options{URL: secure, InCluster: true, CAFile: "ca"},
			want: []string{"--prometheus-ca-file conflicts with --prometheus-auth-incluster"}},
		{name: "client certificate without key", opts: Options{URL: secure, CertFile: "c"},
			want: []string{"--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"}},
		{name: "client key without certificate", opts: Options{URL: secure, KeyFile: "k"},
			want: []string{"go together"}},
		{name: "Authorization header and token file", opts: Options{URL: secure, TokenFile: "t", Headers: authz},
			want: []string{"--prometheus-header Authorization=... conflicts with --prometheus-token-file"}},
		{name: "Authorization header and auth config", opts: Options{URL: secure, AuthConfigFile: "k", Headers: map[string][]string{"authorization": {"Basic s3cr3t"}}},
			want: []string{"--prometheus-header Authorization=... conflicts with --prometheus-auth-config"}},

		{name: "token over http", opts: Options{URL: plain, TokenFile: "t"},
			want: []string{"prometheus credentials: --prometheus-token-file (a bearer token) would be sent in the clear to " + plain + " (--prometheus-url is plain http://): use an https:// URL, or set --prometheus-allow-credentials-over-http"}},
		{name: "token over HTTP in capitals", opts: Options{URL: "HTTP://p:9090", TokenFile: "t"},
			want: []string{"--prometheus-token-file (a bearer token) would be sent in the clear"}},
		{name: "in-cluster over http", opts: Options{URL: plain, InCluster: true},
			want: []string{"--prometheus-auth-incluster (the service account token) would be sent in the clear"}},
		{name: "Authorization header over http", opts: Options{URL: plain, Headers: authz},
			want: []string{"--prometheus-header Authorization=... would be sent in the clear"}},
		{name: "URL credentials are not repeated", opts: Options{URL: "http://u:pw@p:9090/?k=s3cr3t", TokenFile: "t"},
			want: []string{"--prometheus-url user info (a username and password) would be sent in the clear to http://p:9090/ (", "--prometheus-token-file (a bearer token) would be sent in the clear to http://p:9090/ ("}},
		{name: "URL user info over http", opts: Options{URL: "http://u:pw@p:9090/"},
			want: []string{"--prometheus-url user info (a username and password) would be sent in the clear"}},
		{name: "URL user info over http allowed", opts: Options{URL: "http://u:pw@p:9090/", AllowCredentialsOverHTTP: true}},
		{name: "token over http allowed", opts: Options{URL: plain, TokenFile: "t", AllowCredentialsOverHTTP: true}},
		{name: "in-cluster over http allowed", opts: Options{URL: plain, InCluster: true, AllowCredentialsOverHTTP: true}},
		{name: "conflicts are reported even when allowed", opts: Options{URL: plain, InCluster: true, TokenFile: "t", AllowCredentialsOverHTTP: true},
			want: []string{"--prometheus-token-file conflicts with --prometheus-auth-incluster"}},
		{name: "every problem at once", opts: Options{URL: plain, InCluster: true, TokenFile: "t", Verb: "HEAD"},
			want: []string{
				"prometheus verb must be GET or POST",
				"--prometheus-token-file conflicts with --prometheus-auth-incluster",
				"--prometheus-token-file (a bearer token) would be sent in the clear",
				"--prometheus-auth-incluster (the service account token) would be sent in the clear",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.opts.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d errors %q", errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, err, tt.want[i])
				}
				if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "pw@") {
					t.Errorf("error %d = %q shows a credential", i, err)
				}
			}
			// New validates too (a valid set may still fail on its files).
			if _, err := New(tt.opts); len(tt.want) > 0 && (err == nil || !strings.Contains(err.Error(), tt.want[0])) {
				t.Errorf("New() error = %v, want %q", err, tt.want[0])
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig for Prometheus at server, with the
// CA (if any) and the user's entries.
func writeKubeconfig(t *testing.T, server string, caPEM []byte, user string) string {
	t.Helper()
	cluster := "    server: " + server + "\n"
	if caPEM != nil {
		ca := filepath.Join(t.TempDir(), "ca.crt")
		if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		cluster += "    certificate-authority: " + ca + "\n"
	}
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: prom\n  cluster:\n" + cluster +
		"users:\n- name: u\n  user:\n" + user +
		"contexts:\n- name: c\n  context: {cluster: prom, user: u}\ncurrent-context: c\n"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewAuthConfigCredentialsOverHTTP(t *testing.T) {
	const plain = "http://prometheus:9090/"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		user  string
		allow bool
		err   string
	}{
		{name: "token", user: "    token: s3cr3t\n", err: "--prometheus-auth-config KUBECONFIG (a bearer token) would be sent in the clear to " + plain},
		{name: "token file", user: "    tokenFile: " + tokenFile + "\n", err: "(a bearer token) would be sent in the clear"},
		{name: "basic auth", user: "    username: u\n    password: s3cr3t\n", err: "(a username and password) would be sent in the clear"},
		{name: "exec plugin", user: "    exec: {apiVersion: client.authentication.k8s.io/v1, command: get-token, interactiveMode: Never}\n", err: "(an exec credential plugin) would be sent in the clear"},
		{name: "no credentials", user: "    {}\n"},
		{name: "token allowed", user: "    token: s3cr3t\n", allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := writeKubeconfig(t, "https://ignored.example", nil, tt.user)
			_, err := New(Options{URL: plain, AuthConfigFile: kc, AllowCredentialsOverHTTP: tt.allow})
			want := strings.ReplaceAll(tt.err, "KUBECONFIG", kc)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("New() = %v, want no error", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("New() = %v, want an error containing %q", err, want)
			case err != nil && strings.Contains(err.Error(), "s3cr3t"):
				t.Fatalf("New() = %v shows the credential", err)
			}
		})
	}
}

// TestCredentialsNotLogged runs queries at -v=10, where client-go's
// debugging round tripper (used with --prometheus-auth-config) logs every
// request's URL, headers and curl command, and checks that neither the
// token nor the values of --prometheus-header reach the log.
func TestCredentialsNotLogged(t *testing.T) {
	const (
		token  = "tok-0123456789-secret"
		apiKey = "key-9876543210-secret"
		tenant = "tenant-7d1f"
	)
	fake := promtest.New(t)
	fake.Vector("up", promtest.Sample{Labels: map[string]string{"job": "p"}, Value: "1", Time: 1700000000})
	srv := httptest.NewTLSServer(fake.Config.Handler)
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	tokenFile := filepath.Join(t.TempDir(), "token")
	for path, data := range map[string][]byte{caFile: caPEM, tokenFile: []byte(token)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	headers := map[string][]string{"X-Api-Key": {apiKey}, "X-Scope-OrgID": {tenant}}

	tests := []struct {
		name string
		opts Options
		// logged is what the log must show, so that the test would see a
		// header logged (nothing for transports that never log).
		logged string
	}{
		{
			name:   "auth config",
			opts:   Options{AuthConfigFile: writeKubeconfig(t, "https://ignored.example", caPEM, "    token: "+token+"\n")},
			logged: "/api/v1/query",
		},
		{
			name: "token file and CA",
			opts: Options{CAFile: caFile, TokenFile: tokenFile},
		},
		{
			name:   "auth config with GET",
			opts:   Options{Verb: "GET", AuthConfigFile: writeKubeconfig(t, "https://ignored.example", caPEM, "    token: "+token+"\n")},
			logged: "GET",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := klogtest.Capture(t, 10) // before New: client-go decides on debugging when it builds the transport
			fake.Reset()
			opts := tt.opts
			opts.URL, opts.Timeout, opts.Headers = srv.URL, 5*time.Second, headers
			c, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Query(context.Background(), "up", time.Unix(1700000000, 0)); err != nil {
				t.Fatal(err)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			h := reqs[0].Header
			if h.Get("Authorization") != "Bearer "+token || h.Get("X-Api-Key") != apiKey || h.Get("X-Scope-OrgID") != tenant {
				t.Errorf("Prometheus got Authorization %q, X-Api-Key %q, X-Scope-OrgID %q; want the configured credentials and headers",
					h.Get("Authorization"), h.Get("X-Api-Key"), h.Get("X-Scope-OrgID"))
			}
			klog.Flush()
			out := log.String()
			if !strings.Contains(out, tt.logged) {
				t.Fatalf("log at -v=10 lacks %q, so it cannot show what was logged:\n%s", tt.logged, out)
			}
			for _, secret := range []string{token, apiKey, tenant} {
				if strings.Contains(out, secret) {
					t.Errorf("log at -v=10 shows %q:\n%s", secret, out)
				}
			}
		})
	}
}
