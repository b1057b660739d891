//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// World describes the running loopback world, as written by hack/world.sh into $E2E_RUN_DIR/env.
type World struct {
	Root          string            // repository root
	RunDir        string            // $E2E_RUN_DIR: pki/, logs/, kubeconfig/, ...
	LogDir        string            // one <component>.log per process
	Kubectl       string            // the cached kubectl v1.37
	Kubeconfig    string            // admin (system:masters) kubeconfig
	APIServerURL  string            // https://127.0.0.1:<port>
	PrometheusURL string            // http://127.0.0.1:<port>
	ExporterURL   string            // http://127.0.0.1:<port> of the synthetic exporter
	Exporter      bool              // the synthetic exporter runs and Prometheus scrapes it
	Promgate      bool              // promgate runs and its APIServices are Available
	PromgateURL   string            // https://127.0.0.1:<port> (direct, bypassing kube-apiserver)
	Env           map[string]string // every variable of the env file
}

// world is set by TestMain before any test runs.
var world *World

// Default timeouts of the helpers below.
const (
	kubectlTimeout = 2 * time.Minute
	pollInterval   = 200 * time.Millisecond
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	worldSh := filepath.Join(root, "test", "e2e", "hack", "world.sh")
	keep := os.Getenv("E2E_KEEP") == "1"

	var downOnce sync.Once
	down := func() {
		downOnce.Do(func() {
			if keep {
				fmt.Fprintf(os.Stderr, "e2e: E2E_KEEP=1: the world keeps running; . %s/env, stop it with %s down\n",
					runDir(root), worldSh)
				return
			}
			if err := runScript(root, worldSh, "down"); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: world.sh down:", err)
			}
		})
	}
	// An interrupted run (Ctrl-C, SIGTERM) still stops the world. A -timeout panic does not:
	// the next "world.sh up" then fails clearly; run "world.sh down" (or E2E_REUSE=1).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping the world\n", s)
		down()
		os.Exit(2)
	}()

	// promgate is built while the world starts.
	withPromgate := os.Getenv("E2E_PROMGATE") != "0"
	built := make(chan error, 1)
	if withPromgate && os.Getenv("PROMGATE_BIN") == "" {
		go func() {
			start := time.Now()
			build := exec.Command("go", "build", "-o", "bin/promgate", "./cmd/promgate")
			build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
			err := build.Run()
			if err == nil {
				fmt.Fprintf(os.Stderr, "e2e: built bin/promgate in %v\n", time.Since(start).Round(time.Millisecond))
			}
			built <- err
		}()
	} else {
		built <- nil
	}

	if os.Getenv("E2E_REUSE") == "1" && exec.Command(worldSh, "status").Run() == nil {
		fmt.Fprintln(os.Stderr, "e2e: E2E_REUSE=1: using the running world in", runDir(root))
	} else if err := runScript(root, worldSh, "up"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: world.sh up:", err)
		<-built
		down()
		return 1
	}
	defer down()

	if err := <-built; err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build ./cmd/promgate:", err)
		return 1
	}
	if withPromgate {
		if err := runScript(root, worldSh, "register-promgate"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: world.sh register-promgate:", err)
			return 1
		}
	}

	w, err := loadWorld(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	world = w

	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAILED; component logs are in %s\n", w.LogDir)
	}
	return code
}

// repoRoot finds the repository root: go test runs the test binary in the package
// directory, test/e2e.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Join(wd, "..", "..")
	if _, err := os.Stat(filepath.Join(root, "test", "e2e", "hack", "world.sh")); err != nil {
		return "", fmt.Errorf("repository root not found from %s: %w", wd, err)
	}
	return filepath.Abs(root)
}

func runDir(root string) string {
	if d := os.Getenv("E2E_RUN_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache")
	}
	return filepath.Join(cache, "e2e-run")
}

// runScript runs a world.sh subcommand with its output going to stderr.
func runScript(root, script string, args ...string) error {
	cmd := exec.Command(script, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
	return cmd.Run()
}

func loadWorld(root string) (*World, error) {
	dir := runDir(root)
	env, err := readEnvFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("reading the world's env file (is the world up?): %w", err)
	}
	w := &World{
		Root:          root,
		RunDir:        env["E2E_RUN_DIR"],
		LogDir:        env["E2E_LOG_DIR"],
		Kubectl:       env["E2E_KUBECTL"],
		Kubeconfig:    env["KUBECONFIG"],
		APIServerURL:  env["E2E_APISERVER_URL"],
		PrometheusURL: env["PROMETHEUS_URL"],
		ExporterURL:   env["E2E_EXPORTER_URL"],
		Exporter:      env["E2E_EXPORTER_RUNNING"] == "1",
		PromgateURL:   env["E2E_PROMGATE_URL"],
		Env:           env,
	}
	// register-promgate only returns once the APIServices are Available, so a running
	// promgate process means a registered promgate.
	w.Promgate = isRunning(filepath.Join(w.RunDir, "pids", "promgate.pid"))
	for k, v := range map[string]string{"E2E_KUBECTL": w.Kubectl, "KUBECONFIG": w.Kubeconfig, "PROMETHEUS_URL": w.PrometheusURL} {
		if v == "" {
			return nil, fmt.Errorf("%s missing from %s/env", k, dir)
		}
	}
	return w, nil
}

// readEnvFile parses the "export K='V'" / "export K=V" lines world.sh writes.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		env[k] = strings.Trim(v, `'"`)
	}
	return env, sc.Err()
}

// isRunning reads a world.sh pid file ("<pid> <start time>") and tells whether that process lives.
func isRunning(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return false
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// ---------------------------------------------------------------------------------------------
// Preconditions

// RequirePromgate skips the test unless promgate is registered (E2E_PROMGATE=0 leaves it out).
func RequirePromgate(t testing.TB) {
	t.Helper()
	if !world.Promgate {
		t.Skip("promgate is not registered in this world (E2E_PROMGATE=0?)")
	}
}

// RequireExporter skips the test unless the synthetic exporter runs and is scraped.
func RequireExporter(t testing.TB) {
	t.Helper()
	if !world.Exporter {
		t.Skip("the synthetic exporter (test/exporter) is not running in this world")
	}
}

// ---------------------------------------------------------------------------------------------
// kubectl

// Result is the outcome of a command: its output and exit code. Err is set only when the command
// could not run or was killed (not found, timeout); a non-zero exit alone leaves it nil.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
	Err      error
}

// OK reports whether the command ran and exited 0.
func (r Result) OK() bool { return r.Err == nil && r.ExitCode == 0 }

// String describes the command and its outcome, for failure messages.
func (r Result) String() string {
	s := fmt.Sprintf("kubectl %s: exit %d", strings.Join(r.Args, " "), r.ExitCode)
	if r.Err != nil {
		s += fmt.Sprintf(" (%v)", r.Err)
	}
	if r.Stderr != "" {
		s += "\nstderr: " + strings.TrimSpace(r.Stderr)
	}
	return s
}

// Kubectl runs the world's kubectl (v1.37, admin kubeconfig) and returns what happened; it never
// fails the test. The command is killed after 2 minutes.
func Kubectl(args ...string) Result {
	return KubectlWithInput("", args...)
}

// KubectlWithInput is Kubectl with stdin (e.g. "apply -f -").
func KubectlWithInput(stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, world.Kubectl, append([]string{"--kubeconfig=" + world.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		r.ExitCode = exit.ExitCode()
	case err != nil:
		r.ExitCode, r.Err = -1, err
		if ctx.Err() != nil {
			r.Err = fmt.Errorf("%w (after %v)", ctx.Err(), kubectlTimeout)
		}
	}
	return r
}

// MustKubectl runs kubectl and fails the test unless it exits 0; it returns stdout.
func MustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	r := Kubectl(args...)
	if !r.OK() {
		t.Fatalf("%v", r)
	}
	return r.Stdout
}

// Apply applies a YAML or JSON manifest (one or more documents) with kubectl apply, failing the
// test on error. It does not delete anything afterwards: put test objects in a namespace made
// by CreateNamespace, or use ApplyWithCleanup for cluster-scoped ones.
func Apply(t testing.TB, manifest string) {
	t.Helper()
	if r := KubectlWithInput(manifest, "apply", "-f", "-"); !r.OK() {
		t.Fatalf("%v\nmanifest:\n%s", r, manifest)
	}
}

// ApplyWithCleanup is Apply plus a kubectl delete of the same objects when the test ends
// (not waiting for them to be gone).
func ApplyWithCleanup(t testing.TB, manifest string) {
	t.Helper()
	Apply(t, manifest)
	t.Cleanup(func() {
		if os.Getenv("E2E_KEEP") == "1" {
			return
		}
		if r := KubectlWithInput(manifest, "delete", "--ignore-not-found", "--wait=false", "-f", "-"); !r.OK() {
			t.Logf("cleanup: %v", r)
		}
	})
}

// CreateNamespace creates a namespace named <prefix>-<random suffix> and deletes it (without
// waiting) when the test ends, unless E2E_KEEP=1. It returns the name.
func CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	manifest := fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"generateName":%q}}`, prefix+"-")
	r := KubectlWithInput(manifest, "create", "-o", "jsonpath={.metadata.name}", "-f", "-")
	if !r.OK() || r.Stdout == "" {
		t.Fatalf("creating a namespace: %v", r)
	}
	ns := r.Stdout
	t.Cleanup(func() {
		if os.Getenv("E2E_KEEP") == "1" {
			t.Logf("E2E_KEEP=1: keeping namespace %s", ns)
			return
		}
		if r := Kubectl("delete", "namespace", ns, "--wait=false"); !r.OK() {
			t.Logf("cleanup: %v", r)
		}
	})
	return ns
}

// GetRaw GETs an API path through kube-apiserver (kubectl get --raw) and decodes the JSON
// response into v; it fails the test on a non-zero exit or undecodable output.
func GetRaw(t testing.TB, path string, v any) {
	t.Helper()
	r := Kubectl("get", "--raw", path)
	if !r.OK() {
		t.Fatalf("%v", r)
	}
	if err := decodeJSON(r.Stdout, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// GetRawJSON is GetRaw into a generic map.
func GetRawJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	var m map[string]any
	GetRaw(t, path, &m)
	return m
}

// GetJSON runs "kubectl get <args> -o json" and decodes the output into v.
func GetJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := MustKubectl(t, append(append([]string{"get"}, args...), "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl get %s: decoding: %v", strings.Join(args, " "), err)
	}
}

// Clientset returns a client-go clientset for the admin kubeconfig.
func Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(RESTConfig(t))
	if err != nil {
		t.Fatalf("clientset: %v", err)
	}
	return cs
}

// RESTConfig returns the admin rest.Config (QPS 100, burst 200).
func RESTConfig(t testing.TB) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", world.Kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", world.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	return cfg
}

// ---------------------------------------------------------------------------------------------
// Waiting

// WaitFor polls cond every 200 ms until it returns true, failing the test after timeout with
// the description and the last error cond returned. An error from cond does not stop the
// polling (the world is eventually consistent); return (false, err) to explain why not yet.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// Poll is WaitFor without a test: it returns nil once cond is true, or an error after timeout.
func Poll(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %v; last error: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(pollInterval)
	}
}

// WaitForPodsRunning waits until at least n pods matching the label selector in namespace ns
// are Running and Ready, and returns their names.
func WaitForPodsRunning(t testing.TB, ns, selector string, n int, timeout time.Duration) []string {
	t.Helper()
	var names []string
	WaitFor(t, timeout, fmt.Sprintf("%d pods %q in %s Running and Ready", n, selector, ns), func() (bool, error) {
		var list struct {
			Items []struct {
				Metadata struct{ Name string }
				Status   struct {
					Phase      string
					Conditions []struct{ Type, Status string }
				}
			}
		}
		r := Kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json")
		if !r.OK() {
			return false, errors.New(r.String())
		}
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			return false, err
		}
		names = names[:0]
		for _, p := range list.Items {
			if p.Status.Phase != "Running" {
				continue
			}
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					names = append(names, p.Metadata.Name)
				}
			}
		}
		if len(names) < n {
			return false, fmt.Errorf("%d of %d Running and Ready", len(names), n)
		}
		return true, nil
	})
	return names
}

// ---------------------------------------------------------------------------------------------
// Workloads on kwok nodes

// KwokDeployment renders a Deployment whose pods land on the fake kwok nodes (nodeSelector
// type=kwok, toleration for the kwok.x-k8s.io/node taint) and are made Running by kwok.
// Labels default to app=<name>; requests default to cpu 100m / memory 64Mi (the HPA needs
// requests for Utilization targets). PodAnnotations go on the pod template: the synthetic
// exporter reads its values from them (e2e.promgate.io/rps, .../cpu, ...; test/exporter/README.md).
type KwokDeployment struct {
	Namespace, Name string
	Replicas        int
	Labels          map[string]string // pod labels and selector; default app=<name>
	PodAnnotations  map[string]string
	CPURequest      string // default 100m
	MemoryRequest   string // default 64Mi
}

// YAML returns the manifest.
func (d KwokDeployment) YAML() string {
	labels := d.Labels
	if len(labels) == 0 {
		labels = map[string]string{"app": d.Name}
	}
	cpu, mem := d.CPURequest, d.MemoryRequest
	if cpu == "" {
		cpu = "100m"
	}
	if mem == "" {
		mem = "64Mi"
	}
	var annotations string
	if len(d.PodAnnotations) > 0 {
		annotations = "\n      annotations:" + yamlMap(d.PodAnnotations, "        ")
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  replicas: %[3]d
  selector:
    matchLabels:%[4]s
  template:
    metadata:
      labels:%[5]s%[8]s
    spec:
      nodeSelector:
        type: kwok
      tolerations:
      - key: kwok.x-k8s.io/node
        operator: Exists
        effect: NoSchedule
      containers:
      - name: app
        image: fake.example/app:1
        resources:
          requests:
            cpu: %[6]q
            memory: %[7]q
`, d.Name, d.Namespace, d.Replicas, yamlMap(labels, "      "), yamlMap(labels, "        "), cpu, mem, annotations)
}

// yamlMap renders m as block-style YAML lines ("\n<indent>key: "value""), keys sorted.
func yamlMap(m map[string]string, indent string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n%s%q: %q", indent, k, m[k])
	}
	return b.String()
}

// ---------------------------------------------------------------------------------------------
// Prometheus

// PromSample is one element of an instant vector.
type PromSample struct {
	Metric map[string]string
	Time   time.Time
	Value  float64
}

// PromQuery runs an instant query against the world's Prometheus and returns the vector; it
// fails the test on an HTTP or API error, or if the result is not a vector.
func PromQuery(t testing.TB, query string) []PromSample {
	t.Helper()
	v, err := promQuery(query)
	if err != nil {
		t.Fatalf("prometheus query %q: %v", query, err)
	}
	return v
}

func promQuery(query string) ([]PromSample, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.PostForm(world.PrometheusURL+"/api/v1/query", url.Values{"query": {query}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string
		ErrorType string
		Error     string
		Data      struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]json.RawMessage
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("HTTP %d: decoding: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, body.ErrorType, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", body.Data.ResultType)
	}
	out := make([]PromSample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		var ts float64
		var vs string
		if err := json.Unmarshal(r.Value[0], &ts); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(r.Value[1], &vs); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(vs, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, PromSample{Metric: r.Metric, Time: time.UnixMilli(int64(ts * 1000)), Value: f})
	}
	return out, nil
}

// ---------------------------------------------------------------------------------------------
// Small decoding helpers

// decodeJSON decodes the JSON text s into v.
func decodeJSON(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decoding %q: %w", truncate(s, 400), err)
	}
	return nil
}

// parseQuantity parses a resource.Quantity string ("250m", "1.5k", "64Mi") as a float64,
// failing the test if it is not a valid quantity.
func parseQuantity(t testing.TB, s string) float64 {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatalf("parsing quantity %q: %v", s, err)
	}
	return q.AsApproximateFloat64()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
