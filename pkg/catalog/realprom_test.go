//go:build e2e

package catalog

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
)

// TestIndexDiscoveryRealPrometheus backfills the series of the equivalence
// test into a real Prometheus (promtool tsdb create-blocks-from
// openmetrics), and requires both discovery methods to give the same
// snapshot from it. PROMETHEUS and PROMTOOL name the binaries (default
// /usr/bin/...), PROMETHEUS_TEST_ADDR its listen address (default: a free
// port of 127.0.0.1). Skipped when the binaries are absent.
func TestIndexDiscoveryRealPrometheus(t *testing.T) {
	promBin, toolBin := envOr("PROMETHEUS", "/usr/bin/prometheus"), envOr("PROMTOOL", "/usr/bin/promtool")
	for _, b := range []string{promBin, toolBin} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("no %s: %v", b, err)
		}
	}
	cases := discoveryCases(t)
	bySet := map[string][]map[string]string{}
	for _, tc := range cases {
		bySet[strings.SplitN(tc.name, "/", 2)[1]] = tc.series
	}
	ts := time.Now().Add(-5 * time.Minute).Unix()
	urls := map[string]string{}
	for name, series := range bySet {
		urls[name] = startBackfilled(t, promBin, toolBin, series, ts)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := urls[strings.SplitN(tc.name, "/", 2)[1]]
			want := served(discover(t, tc.config, url, config.MethodSeries))
			byIndex := discover(t, tc.config, url, config.MethodIndex)
			if got := served(byIndex); !reflect.DeepEqual(got, want) {
				t.Errorf("index and series discovery differ:\nindex:\n  %s\nseries:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			for _, r := range byIndex.Reports {
				if r.Method != config.MethodIndex || r.Err != "" {
					t.Errorf("%s: method %s, error %q", r.Path, r.Method, r.Err)
				}
			}
		})
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// startBackfilled writes series, one sample each at Unix time ts, into a
// new data directory with promtool and serves it with Prometheus; it
// returns the base URL.
func startBackfilled(t *testing.T, promBin, toolBin string, series []map[string]string, ts int64) string {
	t.Helper()
	dir := t.TempDir()
	om := filepath.Join(dir, "series.om")
	if err := os.WriteFile(om, []byte(openMetrics(series, ts)), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(toolBin, "tsdb", "create-blocks-from", "openmetrics", "-q", om, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	addr := testAddr
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		_ = l.Close()
	} else {
		testAddr = nextPort(addr) // the next Prometheus takes the next port
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promBin, "--config.file="+cfg, "--storage.tsdb.path="+data, "--storage.tsdb.retention.time=10y", "--web.listen-address="+addr)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = logf.Close() })
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus not ready:\n%s", b)
		}
	}
}

// testAddr is where the next Prometheus listens: from
// PROMETHEUS_TEST_ADDR, then the ports after it; empty for a free port.
var testAddr = os.Getenv("PROMETHEUS_TEST_ADDR")

func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil {
		return ""
	}
	return net.JoinHostPort(host, fmt.Sprint(p+1))
}

// openMetrics renders series as OpenMetrics text, grouped by name.
func openMetrics(series []map[string]string, ts int64) string {
	byName := map[string][]map[string]string{}
	for _, s := range series {
		byName[s["__name__"]] = append(byName[s["__name__"]], s)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	var b strings.Builder
	for _, n := range names {
		for _, s := range byName[n] {
			var ls []string
			for k, v := range s {
				if k != "__name__" {
					ls = append(ls, fmt.Sprintf(`%s="%s"`, k, esc.Replace(v)))
				}
			}
			sort.Strings(ls)
			fmt.Fprintf(&b, "%s{%s} 1 %d\n", n, strings.Join(ls, ","), ts)
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}
