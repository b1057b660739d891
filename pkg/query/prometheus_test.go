package query

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/budget"
)

// prometheusBinary is the real Prometheus the test runs, when installed.
const prometheusBinary = "/usr/bin/prometheus"

// TestAutoLearnsFromRealPrometheus runs Prometheus scraping a tiny
// /metrics endpoint every 2s, and checks what the engine learns from it:
// the interval, one phase (one target), and a lifetime that ends at the
// next scrape.
func TestAutoLearnsFromRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs Prometheus")
	}
	if _, err := os.Stat(prometheusBinary); err != nil {
		t.Skipf("no %s", prometheusBinary)
	}
	// One exporter is job "tiny"; two more are job "spread", whose
	// targets Prometheus scrapes at phases of its choosing.
	const promAddr = "127.0.0.1:29750"
	exporters := []string{"127.0.0.1:29751", "127.0.0.1:29752", "127.0.0.1:29753"}
	for i, addr := range exporters {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		metric := "probe_test_value"
		if i > 0 {
			metric = "probe_test_spread"
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "# TYPE %[1]s gauge\n%[1]s{pod=\"a\"} 1\n%[1]s{pod=\"b\"} 2\n", metric)
		})}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 2s\nscrape_configs:\n- job_name: tiny\n  static_configs:\n  - targets: [%q]\n- job_name: spread\n  static_configs:\n  - targets: [%q, %q]\n", exporters[0], exporters[1], exporters[2])), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prometheusBinary, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs.String())
		}
	})

	client := newClient(t, "http://"+promAddr)
	start := time.Now()
	// Wait for five scrapes: four spacings, so that one scrape that a
	// loaded machine delays moves the learned mean by a quarter of the
	// delay at most.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := client.Query(ctx, `min(count_over_time({__name__=~"probe_test_.*",pod="a"}[1m]))`, time.Now())
		n, _ := client.Query(ctx, `count({__name__=~"probe_test_.*",pod="a"})`, time.Now())
		if err == nil && len(v) == 1 && v[0].Value >= 5 && len(n) == 1 && n[0].Value == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not scraped the exporters five times: %v %v", v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Logf("five scrapes after %v", time.Since(start).Round(time.Millisecond))
	// Prometheus stamps a sample with its scheduled time only when the
	// scrape starts within 2ms of it; a loaded machine (make test builds
	// beside the tests) starts some later, so the spacings vary by tens of
	// milliseconds. 50ms still tells 2s from any other interval.
	const tolerance = 50 * time.Millisecond
	e := New(client, Options{Auto: true, TTL: 5 * time.Second, Backend: "real-prometheus"})
	if _, err := e.do(ctx, `sum(probe_test_value)`); err != nil {
		t.Fatal(err)
	}
	e.probes.Wait()
	interval, aligned := e.Learned("probe_test_value")
	t.Logf("probe_test_value (one target): learned interval %v, one phase %v", interval, aligned)
	if d := interval - 2*time.Second; d < -tolerance || d > tolerance || !aligned {
		t.Fatalf("learned interval %v, aligned %v; want 2s, one phase", interval, aligned)
	}
	if _, err := e.do(ctx, `sum(probe_test_spread)`); err != nil {
		t.Fatal(err)
	}
	e.probes.Wait()
	spread, spreadAligned := e.Learned("probe_test_spread")
	if d := spread - 2*time.Second; d < -tolerance || d > tolerance {
		t.Errorf("probe_test_spread: learned interval %v, want 2s", spread)
	}
	if v, err := client.Query(ctx, `timestamp(probe_test_spread{pod="a"})`, time.Now()); err == nil && len(v) == 2 {
		// Whether they count as one phase depends on where Prometheus
		// placed them (a hash of the target): only shown.
		t.Logf("probe_test_spread (two targets, latest scrapes %v apart): learned interval %v, one phase %v",
			secondsTime(v[0].Value).Sub(secondsTime(v[1].Value)).Abs(), spread, spreadAligned)
	}

	// A lifetime is the time to the next scrape's visibility, at least
	// the 1s minimum; one of two queries a second apart is not raised to
	// it.
	var c *entry
	for _, q := range []string{`max(probe_test_value)`, `min(probe_test_value)`} {
		if _, err := e.do(ctx, q); err != nil {
			t.Fatal(err)
		}
		v, ok := e.cache.GetIn(budget.Answer, e.opts.Backend, q)
		if !ok {
			t.Fatalf("%s is not cached", q)
		}
		c = v.(*entry)
		life := c.expires.Sub(c.at)
		if life < time.Second || life > 2*time.Second {
			t.Fatalf("lifetime %v, want within the 1s minimum and the 2s interval", life)
		}
		if life > time.Second {
			break
		}
		time.Sleep(time.Second)
	}
	// The lifetime ends a grace (400ms) after a scrape: the newest sample
	// when it ends is a 400ms old, less the delay of a late scrape.
	for time.Now().Before(c.expires.Add(100 * time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
	v, err := client.Query(ctx, `timestamp(probe_test_value{pod="a"})`, c.expires)
	if err != nil || len(v) != 1 {
		t.Fatal(v, err)
	}
	if age := c.expires.Sub(secondsTime(v[0].Value)); age < 0 || age > 2*time.Second {
		t.Errorf("at expiry, the newest sample is %v old", age)
	} else if age < 400*time.Millisecond-4*tolerance || age > 500*time.Millisecond {
		t.Errorf("at expiry, the newest sample is %v old, want the 400ms grace: the cache ends out of phase with the scrapes", age)
	}
}
