//go:build e2e

package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// env is what the auth modes share: a plain Prometheus scraping itself,
// behind the proxies that check credentials.
type env struct {
	// upstream is the plain Prometheus' base URL.
	upstream string
}

// TestAuth runs every auth mode against real servers, each mode a
// parallel subtest. The in-cluster mode comes first: its rotation waits
// for client-go's token cache (about a minute), and the others fit in the
// meantime.
func TestAuth(t *testing.T) {
	e := env{upstream: "http://" + startPrometheus(t, "upstream", "", true)}
	waitForSeries(t, e.upstream, "up")
	for _, mode := range []struct {
		name string
		run  func(*testing.T, env)
	}{
		{"in-cluster service account", testInCluster},
		{"server TLS", testServerTLS},
		{"mutual TLS", testMutualTLS},
		{"basic auth", testBasicAuth},
		{"bearer token file", testTokenFile},
		{"tenant header", testTenantHeader},
		{"configured backend", testConfiguredBackend},
		{"credentials over http", testCredentialsOverHTTP},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			mode.run(t, e)
		})
	}
}

// waitForSeries waits until the plain Prometheus at base has a series of
// metric.
func waitForSeries(t testing.TB, base, metric string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+metric, nil)
		resp, err := http.DefaultClient.Do(req)
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		cancel()
		if strings.Contains(string(body), `"result":[{`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no series of %s in %s after 30s: %v %s", metric, base, err, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeFile writes data to dir/name and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeAtomic(t, p, data)
	return p
}

// writeKubeconfig writes a kubeconfig whose one cluster is server, with
// the CA file ca, and whose user has the given fields (username,
// password, token, tokenFile, client-certificate, ...).
func writeKubeconfig(t testing.TB, path, server, ca string, user map[string]string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: backend\n  cluster:\n    server: %q\n    certificate-authority: %q\n", server, ca)
	b.WriteString("users:\n- name: promgate\n  user:\n")
	keys := make([]string, 0, len(user))
	for k := range user {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "    %s: %q\n", k, user[k])
	}
	b.WriteString("contexts:\n- name: backend\n  context:\n    cluster: backend\n    user: promgate\ncurrent-context: backend\n")
	writeAtomic(t, path, []byte(b.String()))
}

// mustMkdir creates dir and its parents.
func mustMkdir(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
