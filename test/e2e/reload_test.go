//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reloadedRule is added by the reload; its metric exists only after it.
// It is indented as config/promgate.yaml's rules are.
const reloadedRule = `  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    resources:
      overrides:
        namespace: {resource: namespace}
        pod: {resource: pod}
    name: {matches: "^http_requests_total$", as: "http_requests_reloaded"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
`

// configMapDir writes config as a kubelet writes a ConfigMap volume: the
// file is a symlink through ..data to a timestamped directory, and an
// update swaps ..data atomically.
type configMapDir struct {
	t   *testing.T
	dir string
	n   int
}

func (c *configMapDir) write(config string) {
	c.t.Helper()
	c.n++
	gen := fmt.Sprintf("..2026_12_02_%02d", c.n)
	if err := os.MkdirAll(filepath.Join(c.dir, gen), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, gen, "promgate.yaml"), []byte(config), 0o644); err != nil {
		c.t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(gen, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	link := filepath.Join(c.dir, "promgate.yaml")
	if _, err := os.Lstat(link); os.IsNotExist(err) {
		if err := os.Symlink("..data/promgate.yaml", link); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestReload: a ConfigMap-style update of the config adds a metric that
// becomes servable without a restart; an invalid update is refused, the
// metrics of the last good config keep being served, and
// promgate_config_last_reload_successful says so.
func TestReload(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequireExporter(t)
	ns := CreateNamespace(t, "reload")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "4"}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)

	base, err := os.ReadFile(filepath.Join(world.Root, "config", "promgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cm := &configMapDir{t: t, dir: t.TempDir()}
	cm.write(string(base))
	pg := startPromgate(t, "reload", append([]string{
		"--cert-dir=" + filepath.Join(t.TempDir(), "cert"),
		"--prometheus-url=" + world.PrometheusURL + "/",
		"--config=" + filepath.Join(cm.dir, "promgate.yaml"),
		"--config-reload-interval=1s",
		"--metrics-relist-interval=5s",
	}, worldArgs()...)...)

	served := func() map[string]bool {
		out := map[string]bool{}
		code, body, err := pg.get("/apis/custom.metrics.k8s.io/v1beta1")
		if err != nil || code != http.StatusOK {
			return out
		}
		var rl struct {
			Resources []struct{ Name string } `json:"resources"`
		}
		if json.Unmarshal([]byte(body), &rl) == nil {
			for _, r := range rl.Resources {
				out[r.Name] = true
			}
		}
		return out
	}
	reloadMetric := func() string {
		_, body, _ := pg.get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "promgate_config_last_reload_successful ") {
				return strings.TrimPrefix(line, "promgate_config_last_reload_successful ")
			}
		}
		return ""
	}
	valuePath := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta1/namespaces/%s/pods/%s/http_requests_reloaded", ns, pods[0])
	WaitFor(t, 30*time.Second, "the first discovery", func() (bool, error) {
		return served()["pods/http_requests_per_second"], nil
	})
	if served()["pods/http_requests_reloaded"] {
		t.Fatal("http_requests_reloaded served before the reload")
	}
	if got := reloadMetric(); got != "1" {
		t.Errorf("promgate_config_last_reload_successful = %q at start, want 1", got)
	}

	// A ConfigMap update adding a rule: served without a restart.
	pid := pg.cmd.Process.Pid
	cm.write(strings.Replace(string(base), "\nrules:\n", "\nrules:\n"+reloadedRule, 1))
	WaitFor(t, 30*time.Second, "http_requests_reloaded after the reload", func() (bool, error) {
		return served()["pods/http_requests_reloaded"], nil
	})
	WaitFor(t, 120*time.Second, "a value of http_requests_reloaded", func() (bool, error) {
		code, _, err := pg.get(valuePath)
		return err == nil && code == http.StatusOK, nil
	})

	// An invalid update: refused, the last good config keeps serving.
	cm.write(strings.Replace(string(base), "\nrules:\n", "\nrules:\n"+strings.Replace(reloadedRule, `"^http_requests_total$"`, `"^(http_requests_total$"`, 1), 1))
	WaitFor(t, 30*time.Second, "promgate_config_last_reload_successful 0", func() (bool, error) {
		return reloadMetric() == "0", nil
	})
	time.Sleep(6 * time.Second) // a relist with the refused config in place
	if !served()["pods/http_requests_reloaded"] {
		t.Error("http_requests_reloaded no longer served after an invalid update")
	}
	if code, body, err := pg.get(valuePath); err != nil || code != http.StatusOK {
		t.Errorf("value after an invalid update: %d %s %v", code, truncate(body, 300), err)
	}
	if pg.cmd.Process.Pid != pid || pg.cmd.ProcessState != nil {
		t.Error("promgate restarted")
	}
	if b, err := os.ReadFile(pg.logPath); err != nil || !strings.Contains(string(b), "rules[0].name.matches") {
		t.Errorf("the refusal was not logged with the rule and field (%v)", err)
	}
}
