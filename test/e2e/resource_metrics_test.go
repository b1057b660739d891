//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoContainerDeployment renders a Deployment on kwok nodes whose pods run
// containers "app" and "sidecar", with the exporter's per-container cpu
// and memory annotations and the given cpu request per container.
func twoContainerDeployment(ns, name string, replicas int, annotations map[string]string, cpuRequest string) string {
	var ann strings.Builder
	for k, v := range annotations {
		fmt.Fprintf(&ann, "\n        %s: %q", k, v)
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
      annotations:%[4]s
    spec:
      nodeSelector: {type: kwok}
      tolerations:
      - {key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}
      containers:
      - name: app
        image: fake.example/app:1
        resources: {requests: {cpu: %[5]q, memory: 64Mi}}
      - name: sidecar
        image: fake.example/sidecar:1
        resources: {requests: {cpu: %[5]q, memory: 64Mi}}
`, ns, name, replicas, ann.String(), cpuRequest)
}

// topRow is one line of kubectl top output: name columns, then cpu in
// millicores and memory in Mi.
type topRow struct {
	names []string
	cpu   int64 // millicores
	mem   int64 // Mi
	line  string
}

// parseTop parses kubectl top output with nameCols leading name columns
// (pod: 1, pod --containers: 2, node: 1 followed by cpu% columns ignored).
func parseTop(t testing.TB, out string, nameCols int) []topRow {
	t.Helper()
	var rows []topRow
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < nameCols+2 {
			continue
		}
		cpu, err1 := strconv.ParseInt(strings.TrimSuffix(f[nameCols], "m"), 10, 64)
		memField := f[nameCols+1]
		if strings.HasSuffix(f[nameCols+1], "%") { // node: CPU% column first
			memField = f[nameCols+2]
		}
		mem, err2 := strconv.ParseInt(strings.TrimSuffix(memField, "Mi"), 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("cannot parse kubectl top line %q", line)
		}
		rows = append(rows, topRow{names: f[:nameCols], cpu: cpu, mem: mem, line: line})
	}
	return rows
}

// cpuMatches allows 1m of rounding: kubectl prints MilliValue (rounded up)
// of a rate that is exact up to scrape jitter.
func cpuMatches(got, want int64) bool { return got == want || got == want+1 }

// waitTop runs kubectl top args until check accepts its rows.
func waitTop(t *testing.T, nameCols int, check func([]topRow) error, args ...string) []topRow {
	t.Helper()
	var rows []topRow
	var last error
	var out Result
	err := Poll(150*time.Second, func() (bool, error) {
		out = Kubectl(append([]string{"top"}, args...)...)
		if !out.OK() {
			last = fmt.Errorf("%s", out.Stderr)
			return false, nil
		}
		rows = parseTop(t, out.Stdout, nameCols)
		last = check(rows)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("kubectl top %s: %v\noutput:\n%s", strings.Join(args, " "), last, out.Stdout)
	}
	t.Logf("kubectl top %s:\n%s", strings.Join(args, " "), out.Stdout)
	return rows
}

func TestResourceMetrics(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "top")
	// app: 250m and 200Mi; sidecar: the defaults 100m and 64Mi; the pause
	// container (5m, 1Mi) and the pod cgroup must not be counted.
	Apply(t, twoContainerDeployment(ns, "web", 2, map[string]string{
		"e2e.promgate.io/cpu.app": "250m", "e2e.promgate.io/memory.app": "200Mi", "e2e.promgate.io/swap.app": "32Mi",
	}, "100m"))
	Apply(t, twoContainerDeployment(ns, "db", 1, map[string]string{
		"e2e.promgate.io/cpu": "50m", "e2e.promgate.io/memory": "512Mi",
	}, "100m"))
	web := WaitForPodsRunning(t, ns, "app=web", 2, 90*time.Second)
	db := WaitForPodsRunning(t, ns, "app=db", 1, 90*time.Second)
	want := map[string][2]int64{} // pod -> cpu m, mem Mi
	for _, p := range web {
		want[p] = [2]int64{350, 264}
	}
	want[db[0]] = [2]int64{100, 1024}

	checkPods := func(want map[string][2]int64) func([]topRow) error {
		return func(rows []topRow) error {
			if len(rows) != len(want) {
				return fmt.Errorf("%d rows, want %d", len(rows), len(want))
			}
			for _, r := range rows {
				w, ok := want[r.names[len(r.names)-1]]
				if !ok || !cpuMatches(r.cpu, w[0]) || r.mem != w[1] {
					return fmt.Errorf("row %q, want cpu %dm memory %dMi", r.line, w[0], w[1])
				}
			}
			return nil
		}
	}

	t.Run("kubectl top pod", func(t *testing.T) {
		waitTop(t, 1, checkPods(want), "pod", "-n", ns)
	})

	t.Run("kubectl top pod -l", func(t *testing.T) {
		only := map[string][2]int64{}
		for _, p := range web {
			only[p] = want[p]
		}
		waitTop(t, 1, checkPods(only), "pod", "-n", ns, "-l", "app=web")
	})

	t.Run("kubectl top pod --sort-by=memory", func(t *testing.T) {
		rows := waitTop(t, 1, checkPods(want), "pod", "-n", ns, "--sort-by=memory")
		if rows[0].names[0] != db[0] {
			t.Errorf("first row %q, want the db pod (1024Mi) first", rows[0].line)
		}
	})

	t.Run("kubectl top pod --containers", func(t *testing.T) {
		waitTop(t, 2, func(rows []topRow) error {
			if len(rows) != 6 {
				return fmt.Errorf("%d rows, want 6 (3 pods x 2 containers, no POD)", len(rows))
			}
			for _, r := range rows {
				pod, c := r.names[0], r.names[1]
				var w [2]int64
				switch {
				case pod == db[0]:
					w = [2]int64{50, 512}
				case c == "app":
					w = [2]int64{250, 200}
				case c == "sidecar":
					w = [2]int64{100, 64}
				default:
					return fmt.Errorf("unexpected container row %q", r.line)
				}
				if !cpuMatches(r.cpu, w[0]) || r.mem != w[1] {
					return fmt.Errorf("row %q, want cpu %dm memory %dMi", r.line, w[0], w[1])
				}
			}
			return nil
		}, "pod", "-n", ns, "--containers")
	})

	t.Run("kubectl top pod -A", func(t *testing.T) {
		waitTop(t, 2, func(rows []topRow) error {
			seen := 0
			for _, r := range rows {
				if r.names[0] != ns {
					continue
				}
				seen++
				w := want[r.names[1]]
				if !cpuMatches(r.cpu, w[0]) || r.mem != w[1] {
					return fmt.Errorf("row %q, want cpu %dm memory %dMi", r.line, w[0], w[1])
				}
			}
			if seen != 3 {
				return fmt.Errorf("%d rows in %s, want 3", seen, ns)
			}
			return nil
		}, "pod", "-A")
	})

	t.Run("kubectl top reads metrics.k8s.io/v1, with v1beta1's values", func(t *testing.T) {
		// kubectl 1.37 asks for the group's preferred version (v1, then
		// v1beta1): its request log (-v=6) says which it read.
		for _, args := range [][]string{{"top", "pod", "-n", ns, "-v=6"}, {"top", "node", "-v=6"}} {
			r := Kubectl(args...)
			if !r.OK() {
				t.Fatalf("kubectl %s: %s", strings.Join(args, " "), r.Stderr)
			}
			if !strings.Contains(r.Stderr, "/apis/metrics.k8s.io/v1/") || strings.Contains(r.Stderr, "/apis/metrics.k8s.io/v1beta1/") {
				t.Errorf("kubectl %s did not read metrics.k8s.io/v1 alone; its requests:\n%s", strings.Join(args, " "), requestLines(r.Stderr))
			}
		}
		type usage struct {
			APIVersion string `json:"apiVersion"`
			Items      []struct {
				Metadata   struct{ Name string }
				Containers []struct {
					Name  string
					Usage map[string]string
				}
			}
		}
		read := func(version string) usage {
			t.Helper()
			var u usage
			out := MustKubectl(t, "get", "--raw", "/apis/metrics.k8s.io/"+version+"/namespaces/"+ns+"/pods")
			if err := json.Unmarshal([]byte(out), &u); err != nil {
				t.Fatalf("%s: %v", version, err)
			}
			return u
		}
		ga, beta := read("v1"), read("v1beta1")
		if ga.APIVersion != "metrics.k8s.io/v1" || beta.APIVersion != "metrics.k8s.io/v1beta1" {
			t.Errorf("apiVersions %q and %q", ga.APIVersion, beta.APIVersion)
		}
		if len(ga.Items) != 3 || !reflect.DeepEqual(ga.Items, beta.Items) {
			t.Errorf("v1 items %+v\nv1beta1 items %+v", ga.Items, beta.Items)
		}
	})

	t.Run("kubectl top --show-swap", func(t *testing.T) {
		// web's app container swaps 32Mi (the sidecar and db have no swap
		// series: no swap, which kubectl adds up as 0); kwok-node-0's root
		// cgroup 1Gi of its 4Gi, the other nodes have none.
		swapOf := func(line string, col int) string {
			if f := strings.Fields(line); len(f) > col {
				return f[col]
			}
			return ""
		}
		waitTop(t, 1, func(rows []topRow) error {
			for _, r := range rows {
				want := "0Mi"
				if slices.Contains(web, r.names[0]) {
					want = "32Mi"
				}
				if got := swapOf(r.line, 3); got != want {
					return fmt.Errorf("row %q: swap %q, want %s", r.line, got, want)
				}
			}
			return nil
		}, "pod", "-n", ns, "--show-swap")
		waitTop(t, 1, func(rows []topRow) error {
			for _, r := range rows {
				if r.names[0] == "kwok-node-0" {
					if got := swapOf(r.line, 5) + " " + swapOf(r.line, 6); got != "1024Mi 25%" {
						return fmt.Errorf("row %q: swap %q, want 1024Mi 25%%", r.line, got)
					}
					return nil
				}
			}
			return fmt.Errorf("kwok-node-0 not listed")
		}, "node", "--show-swap")
		// In the API: swap only where there are swap series, in both versions.
		for _, version := range []string{"v1", "v1beta1"} {
			out := MustKubectl(t, "get", "--raw", "/apis/metrics.k8s.io/"+version+"/nodes")
			var nodes struct {
				Items []struct {
					Metadata struct{ Name string }
					Usage    map[string]string
				}
			}
			if err := json.Unmarshal([]byte(out), &nodes); err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes.Items {
				swap, has := n.Usage["swap"]
				if want := n.Metadata.Name == "kwok-node-0"; has != want || (want && swap != "1Gi") {
					t.Errorf("%s node %s: usage %v; want swap 1Gi only on kwok-node-0", version, n.Metadata.Name, n.Usage)
				}
			}
		}
	})

	t.Run("kubectl top node", func(t *testing.T) {
		// Root cgroup values (1500m, 3Gi by default), not the sum of pods.
		waitTop(t, 1, func(rows []topRow) error {
			nodes := 0
			for _, r := range rows {
				if !strings.HasPrefix(r.names[0], "kwok-node-") {
					continue
				}
				nodes++
				if !cpuMatches(r.cpu, 1500) || r.mem != 3072 || !strings.Contains(r.line, "37%") || !strings.Contains(r.line, "18%") {
					return fmt.Errorf("row %q, want 1500m 37%% 3072Mi 18%%", r.line)
				}
			}
			if nodes == 0 {
				return fmt.Errorf("no kwok node listed")
			}
			return nil
		}, "node")
	})
}

// TestHPACPUUtilization scales a Deployment on a cpu Utilization target
// (against the pods' requests) read from metrics.k8s.io.
func TestHPACPUUtilization(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "hpa-cpu")
	// One container requesting 100m, using 50m: 50% utilization.
	Apply(t, KwokDeployment{Namespace: ns, Name: "cpu", Replicas: 1, CPURequest: "100m",
		PodAnnotations: map[string]string{"e2e.promgate.io/cpu": "50m"}}.YAML())
	Apply(t, hpaYAML(ns, "cpu", 1, 4, `  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 60
`))
	WaitForPodsRunning(t, ns, "app=cpu", 1, 90*time.Second)
	// 200m used of 100m requested: 200% against a 60% target.
	exporterControl(t, "/control/cpu", map[string]string{"namespace": ns, "app": "cpu", "cpu": "200m"})
	waitReplicas(t, ns, "cpu", 4, 3*time.Minute)
	exporterControl(t, "/control/cpu", map[string]string{"namespace": ns, "app": "cpu", "cpu": "10m"})
	waitReplicas(t, ns, "cpu", 1, 3*time.Minute)
}

// requestLines are the lines of a kubectl -v=6 log that name an API
// request.
func requestLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "/apis/") || strings.Contains(l, "/api/") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHPAContainerResource scales a Deployment on one container's cpu
// (a ContainerResource metric, GA since Kubernetes 1.30): the sidecar's
// usage, far over its request, never moves it; the app container's does.
func TestHPAContainerResource(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "hpa-container")
	// Both containers request 100m; app uses 50m (50%), the sidecar 300m (300%): the pod's
	// average, a Resource metric's view, would be 175%.
	Apply(t, twoContainerDeployment(ns, "ctr", 1, map[string]string{
		"e2e.promgate.io/cpu.app": "50m", "e2e.promgate.io/cpu.sidecar": "300m",
	}, "100m"))
	Apply(t, hpaYAML(ns, "ctr", 1, 4, `  - type: ContainerResource
    containerResource:
      name: cpu
      container: app
      target:
        type: Utilization
        averageUtilization: 60
`))
	WaitForPodsRunning(t, ns, "app=ctr", 1, 90*time.Second)
	var hpa struct {
		Status struct {
			CurrentReplicas int32 `json:"currentReplicas"`
			DesiredReplicas int32 `json:"desiredReplicas"`
			CurrentMetrics  []struct {
				ContainerResource *struct {
					Container string
					Current   struct{ AverageUtilization *int32 }
				} `json:"containerResource"`
			} `json:"currentMetrics"`
		}
	}
	err := Poll(2*time.Minute, func() (bool, error) {
		GetJSON(t, &hpa, "hpa", "ctr", "-n", ns)
		for _, m := range hpa.Status.CurrentMetrics {
			if c := m.ContainerResource; c != nil && c.Container == "app" && c.Current.AverageUtilization != nil {
				return *c.Current.AverageUtilization == 50, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the HPA did not read the app container's 50%%: %+v", hpa.Status)
	}
	if hpa.Status.DesiredReplicas != 1 {
		t.Errorf("desired %d replicas at 50%% of a 60%% target, want 1 (the sidecar's 300%% counted?)", hpa.Status.DesiredReplicas)
	}
	// kubectl top pod --containers shows what the HPA read: app 50m (50% of
	// its 100m request), the sidecar 300m.
	waitTop(t, 2, func(rows []topRow) error {
		if len(rows) != 2 {
			return fmt.Errorf("%d rows, want 2 (app and sidecar, no POD)", len(rows))
		}
		for _, r := range rows {
			w := map[string]int64{"app": 50, "sidecar": 300}[r.names[1]]
			if w == 0 || !cpuMatches(r.cpu, w) {
				return fmt.Errorf("row %q, want app 50m and sidecar 300m of cpu", r.line)
			}
		}
		return nil
	}, "pod", "-n", ns, "--containers")
	// 200m of app's 100m: 200% against 60%.
	exporterControl(t, "/control/cpu", map[string]string{"namespace": ns, "app": "ctr", "container": "app", "cpu": "200m"})
	waitReplicas(t, ns, "ctr", 4, 3*time.Minute)
	exporterControl(t, "/control/cpu", map[string]string{"namespace": ns, "app": "ctr", "container": "app", "cpu": "10m"})
	waitReplicas(t, ns, "ctr", 1, 3*time.Minute)
}
