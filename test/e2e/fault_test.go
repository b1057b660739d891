//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The fault suite: real HPAs (kube-controller-manager, 5 s sync, no downscale stabilization)
// on every kind of metric promgate serves sit at a steady replica count while Prometheus is
// frozen, killed and restarted, and kube-apiserver is restarted. Replicas must never drop,
// every API must answer 503 (naming the backend) within --prometheus-timeout while Prometheus
// is away and never an empty, zero or low value, and values must come back in time.

const (
	faultReplicas = 3                // every HPA's steady replica count (minReplicas 1, or 0: front, worker)
	faultWindow   = time.Minute      // the [1m] range of config/promgate.yaml's rate rules
	scrapeEvery   = time.Second      // world.sh's scrape_interval
	valueSlack    = 0.10             // the HPA's own tolerance: a value off by more would move it
	answerMargin  = 3 * time.Second  // kube-apiserver's proxy and scheduling on 2 busy cores
	recoverSlack  = 10 * time.Second // scrape and evaluation timing on 2 busy cores
)

// faultTruth are the values the exporter is told to produce.
const (
	webRPS     = 10.0 // per pod; HPA web: Pods http_requests_per_second AverageValue 10
	frontRPS   = 10.0 // per pod, 30 for Service front; HPA front: Object Value 30
	queueDepth = 30.0 // queue jobs; HPA worker: External AverageValue 10
	cpuCores   = 0.2  // per pod, request 200m; HPA cpu: Resource cpu Utilization 100
)

func TestFault(t *testing.T) {
	RequirePromgate(t)
	RequireExporter(t)
	started := time.Now()
	promTimeout := promgateDuration(t, "prometheus-timeout", 10*time.Second)
	cacheTTL := promgateDuration(t, "query-cache-ttl", 5*time.Second)
	guard := promgateFlag(t, "partial-window-guard", "canary")
	if guard == "off" || promgateFlag(t, "serve-partial-windows", "false") == "true" {
		t.Log("promgate runs with the partial-window guard off: expect the aftermath checks to fail")
	}
	t.Logf("promgate: --partial-window-guard=%s", guard)
	t.Logf("promgate: --prometheus-timeout=%v --query-cache-ttl=%v", promTimeout, cacheTTL)

	ns := CreateNamespace(t, "fault")
	f := newFaultWorld(t, ns)
	f.setUp(t)

	mon := startHPAMonitor(t, ns, f.hpaTruth())
	pr := startProbes(f.probes(t))
	defer pr.stop()
	defer mon.stop()
	t.Logf("steady at %d replicas after %v; faults begin", faultReplicas, time.Since(started).Round(time.Second))

	rules := outageRules{promTimeout: promTimeout, cacheTTL: cacheTTL}

	t.Run("Prometheus frozen longer than the rate window", func(t *testing.T) {
		from := time.Now()
		worldSh(t, "signal", "prometheus", "STOP")
		stopped := time.Now()
		time.Sleep(faultWindow + 10*time.Second)
		// Taken before the signal: Prometheus answers the queries it held
		// the moment it runs again, before the world's script returns.
		resumed := time.Now()
		worldSh(t, "signal", "prometheus", "CONT")
		time.Sleep(2 * time.Minute)
		rules.check(t, pr, outage{from: stopped, to: resumed, end: time.Now()})
		mon.check(t, from, time.Now(), true)
	})

	t.Run("Prometheus killed and restarted on the same TSDB", func(t *testing.T) {
		from := time.Now()
		worldSh(t, "kill", "prometheus", "KILL")
		killed := time.Now()
		time.Sleep(30 * time.Second)
		restarted := time.Now() // Prometheus answers a moment later, after its WAL replay
		worldSh(t, "revive", "prometheus")
		t.Logf("Prometheus ready %v after its start", time.Since(restarted).Round(time.Millisecond))
		time.Sleep(2 * time.Minute)
		// Prometheus 2.42 applies its scrape targets 5 s after it starts.
		rules.check(t, pr, outage{from: killed, to: restarted, end: time.Now(), firstScrape: 5 * time.Second})
		mon.check(t, from, time.Now(), true)
	})
	pr.stop()

	t.Run("kube-apiserver restarted", func(t *testing.T) {
		from := time.Now()
		f.apiserverRestart(t, cacheTTL)
		mon.check(t, from, time.Now(), false)
	})
	mon.stop()

	// The HPA controller's own record: no rescale since the HPAs were steady.
	var events struct {
		Items []struct {
			Message                                  string
			FirstTimestamp, LastTimestamp, EventTime time.Time
			Metadata                                 struct{ CreationTimestamp time.Time }
			Involved                                 struct{ Name string } `json:"involvedObject"`
		}
	}
	GetJSON(t, &events, "events", "-n", ns, "--field-selector", "reason=SuccessfulRescale")
	for _, e := range events.Items {
		latest := e.Metadata.CreationTimestamp
		for _, ts := range []time.Time{e.FirstTimestamp, e.LastTimestamp, e.EventTime} {
			if ts.After(latest) {
				latest = ts
			}
		}
		if latest.IsZero() || !latest.Before(mon.since.Add(-time.Second)) {
			t.Errorf("HPA %s rescaled during the faults: %s (%v)", e.Involved.Name, e.Message, latest)
		}
	}
	t.Logf("fault suite took %v", time.Since(started).Round(time.Second))
}

// ---------------------------------------------------------------------------------------------
// The workload

type faultWorld struct {
	ns   string
	pods map[string][]string // app -> pod names at steady state
}

func newFaultWorld(_ *testing.T, ns string) *faultWorld {
	return &faultWorld{ns: ns, pods: map[string][]string{}}
}

func (f *faultWorld) setUp(t *testing.T) {
	ns := f.ns
	rps := func(v float64) map[string]string {
		return map[string]string{"e2e.promgate.io/rps": fmt.Sprint(v)}
	}
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": fmt.Sprint(queueDepth)})
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: faultReplicas, PodAnnotations: rps(webRPS)}.YAML())
	Apply(t, KwokDeployment{Namespace: ns, Name: "front", Replicas: faultReplicas, PodAnnotations: rps(frontRPS)}.YAML())
	Apply(t, serviceYAML(ns, "front"))
	Apply(t, KwokDeployment{Namespace: ns, Name: "worker", Replicas: faultReplicas}.YAML())
	Apply(t, KwokDeployment{Namespace: ns, Name: "cpu", Replicas: faultReplicas, CPURequest: "200m",
		PodAnnotations: map[string]string{"e2e.promgate.io/cpu": "200m"}}.YAML())
	Apply(t, hpaYAML(ns, "web", 1, 6, fmt.Sprintf(`  - type: Pods
    pods:
      metric:
        name: http_requests_per_second
      target:
        type: AverageValue
        averageValue: "%v"
`, webRPS)))
	// front and worker may scale to zero (HPAScaleToZero, on by default in
	// Kubernetes 1.37): an outage must not take them there, nor lower.
	Apply(t, hpaYAML(ns, "front", 0, 6, fmt.Sprintf(`  - type: Object
    object:
      describedObject:
        apiVersion: v1
        kind: Service
        name: front
      metric:
        name: http_requests_per_second
      target:
        type: Value
        value: "%v"
`, frontRPS*faultReplicas)))
	Apply(t, hpaYAML(ns, "worker", 0, 6, queueMetricYAML(queueDepth/faultReplicas)))
	Apply(t, hpaYAML(ns, "cpu", 1, 6, `  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 100
`))
	for _, app := range []string{"web", "front", "worker", "cpu"} {
		f.pods[app] = WaitForPodsRunning(t, ns, "app="+app, faultReplicas, 90*time.Second)
		sort.Strings(f.pods[app])
	}
	// Steady: every HPA read its metric (ScalingActive) at the true value and wants 3.
	cs := Clientset(t)
	truth := f.hpaTruth()
	var last string
	err := Poll(4*time.Minute, func() (bool, error) {
		l, err := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var notYet []string
		for i := range l.Items {
			s := snapshotHPA(&l.Items[i])
			ok := s.current == faultReplicas && s.desired == faultReplicas && s.active && s.hasValue &&
				withinSlack(s.value, truth[s.name])
			if !ok {
				notYet = append(notYet, s.String())
			}
		}
		last = strings.Join(notYet, "; ")
		return len(l.Items) == 4 && len(notYet) == 0, nil
	})
	if err != nil {
		t.Fatalf("HPAs not steady at %d replicas: %v; %s", faultReplicas, err, last)
	}
}

// hpaTruth is the value each HPA's status must show: the Pods and External averages, the
// Object value, the Resource utilization in percent.
func (f *faultWorld) hpaTruth() map[string]float64 {
	return map[string]float64{"web": webRPS, "front": frontRPS * faultReplicas, "worker": queueDepth / faultReplicas, "cpu": 100}
}

// probes are the API reads done once a second through every fault.
func (f *faultWorld) probes(t *testing.T) []*probe {
	admin := adminGetter(t)
	ns := f.ns
	get := func(path string, decode func(body string) (map[string]float64, error)) func(ctx context.Context) probeAnswer {
		return func(ctx context.Context) probeAnswer {
			a := admin.get(ctx, path, nil)
			pa := probeAnswer{took: a.Took}
			switch {
			case a.Err != nil:
				pa.failure = a.Err.Error()
			case a.Code == 200:
				pa.values, pa.decodeErr = decode(a.Body)
			case a.Code == 503 && (strings.Contains(a.Message, "prometheus backend") || strings.Contains(a.Message, "partly covered by samples")):
				// The backend failed, or the value's window is not full yet
				// after the outage: both say why, neither is a wrong value.
				pa.unavailable = a.Message
			default:
				pa.failure = a.String()
			}
			return pa
		}
	}
	custom := func(body string) (map[string]float64, error) {
		var l metricValueList
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			return nil, err
		}
		out := map[string]float64{}
		for _, it := range l.Items {
			name := it.DescribedObject.Name
			if name == "" {
				name = it.MetricLabels["queue"]
			}
			q, err := resource.ParseQuantity(it.Value)
			if err != nil {
				return nil, err
			}
			out[name] = q.AsApproximateFloat64()
		}
		return out, nil
	}
	podMetrics := func(body string) (map[string]float64, error) {
		var l podMetricsList
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			return nil, err
		}
		out := map[string]float64{}
		for _, it := range l.Items {
			for _, c := range it.Containers {
				q, err := resource.ParseQuantity(c.Usage["cpu"])
				if err != nil {
					return nil, fmt.Errorf("pod %s container %s cpu %q: %v", it.Metadata.Name, c.Name, c.Usage["cpu"], err)
				}
				out[it.Metadata.Name] += q.AsApproximateFloat64()
			}
		}
		return out, nil
	}
	each := func(names []string, v float64) map[string]float64 {
		m := map[string]float64{}
		for _, n := range names {
			m[n] = v
		}
		return m
	}
	return []*probe{
		{name: "custom pods/* http_requests_per_second", rate: true, want: each(f.pods["web"], webRPS),
			run: get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second?labelSelector="+url.QueryEscape("app=web"), custom)},
		{name: "custom services/front http_requests_per_second", rate: true, want: map[string]float64{"front": frontRPS * faultReplicas},
			run: get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/services/front/http_requests_per_second", custom)},
		{name: "external queue_messages_ready", want: map[string]float64{"jobs": queueDepth},
			run: get("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/queue_messages_ready?labelSelector="+url.QueryEscape("queue=jobs"), custom)},
		{name: "metrics.k8s.io pods", rate: true, want: each(f.pods["cpu"], cpuCores),
			run: get("/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods?labelSelector="+url.QueryEscape("app=cpu"), podMetrics)},
		{name: "kubectl top pod", rate: true, want: each(f.pods["cpu"], cpuCores), extraTime: 3 * time.Second,
			run: func(ctx context.Context) probeAnswer { return kubectlTop(ctx, ns, "app=cpu") }},
	}
}

// kubectlTop runs kubectl top pod and reads each pod's CPU in cores.
func kubectlTop(ctx context.Context, ns, selector string) probeAnswer {
	start := time.Now()
	cmd := exec.CommandContext(ctx, world.Kubectl, "--kubeconfig="+world.Kubeconfig, "top", "pod", "-n", ns, "-l", selector)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	pa := probeAnswer{took: time.Since(start)}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		switch {
		case strings.Contains(msg, "(ServiceUnavailable)") && (strings.Contains(msg, "prometheus backend") || strings.Contains(msg, "partly covered by samples")):
			pa.unavailable = msg
		case strings.Contains(msg, "metrics not available yet"), strings.Contains(msg, "Metrics not available for pod"):
			// kubectl's words for an empty list, and for a list without some of the pods.
			pa.values = map[string]float64{}
		default:
			pa.failure = fmt.Sprintf("kubectl top: %v: %s", err, msg)
		}
		return pa
	}
	pa.values = map[string]float64{}
	for i, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		fields := strings.Fields(line)
		if i == 0 || len(fields) < 3 {
			continue
		}
		q, err := resource.ParseQuantity(fields[1])
		if err != nil {
			pa.decodeErr = fmt.Errorf("kubectl top line %q: %v", line, err)
			return pa
		}
		pa.values[fields[0]] = q.AsApproximateFloat64()
	}
	return pa
}

// apiserverRestart restarts kube-apiserver and checks that promgate's informers follow
// (a relabelled pod and a pod created afterwards are served) without a storm of LISTs.
func (f *faultWorld) apiserverRestart(t *testing.T, cacheTTL time.Duration) {
	const user = "system:serviceaccount:promgate:promgate"
	ns := f.ns
	// A baseline as long as the observation below, before the restart.
	const observe = 90 * time.Second
	baseFrom := time.Now().Add(-observe)

	before := time.Now()
	worldSh(t, "restart", "kube-apiserver")
	ready := time.Now()
	t.Logf("kube-apiserver down and up again in %v", ready.Sub(before).Round(time.Millisecond))

	// The watch resumed: a label set after the restart selects the pod.
	probePod := f.pods["web"][0]
	WaitFor(t, 30*time.Second, "labelling a pod after the restart", func() (bool, error) {
		r := Kubectl("label", "pod", "-n", ns, probePod, "fault-probe=after-restart", "--overwrite")
		return r.OK(), fmt.Errorf("%s", r.String())
	})
	labelled := time.Now()
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape("fault-probe=after-restart")
	// client-go's reflectors retry a broken watch with a backoff that reaches 30 s, jittered
	// by up to as much again (client-go tools/cache/reflector.go: "backoff will stop at [30,60) sec"):
	// after an outage of 20 s or more (kube-apiserver killed after its 20 s of SIGTERM grace),
	// the watch can resume up to 60 s after kube-apiserver is back.
	WaitFor(t, 60*time.Second+20*time.Second+cacheTTL, "the relabelled pod in promgate's answer", func() (bool, error) {
		l, err := rawList(path)
		if err != nil {
			return false, err
		}
		if len(l.Items) != 1 || l.Items[0].DescribedObject.Name != probePod || !withinSlack(parseQuantity(t, l.Items[0].Value), webRPS) {
			return false, fmt.Errorf("items %+v, want only %s at %v", l.Items, probePod, webRPS)
		}
		return true, nil
	})
	t.Logf("relabelled pod served %v after the label was set", time.Since(labelled).Round(time.Millisecond))

	// A pod created after the restart gets custom and resource metrics.
	Apply(t, KwokDeployment{Namespace: ns, Name: "late", Replicas: 1, PodAnnotations: map[string]string{
		"e2e.promgate.io/rps": "7", "e2e.promgate.io/cpu": "300m"}}.YAML())
	late := WaitForPodsRunning(t, ns, "app=late", 1, 60*time.Second)[0]
	running := time.Now()
	WaitFor(t, faultWindow+30*time.Second, "custom metrics of a pod created after the restart", func() (bool, error) {
		l, err := rawList("/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second?labelSelector=app%3Dlate")
		if err != nil {
			return false, err
		}
		return len(l.Items) == 1 && l.Items[0].DescribedObject.Name == late && withinSlack(parseQuantity(t, l.Items[0].Value), 7), nil
	})
	WaitFor(t, 30*time.Second, "kubectl top of a pod created after the restart", func() (bool, error) {
		pa := kubectlTop(context.Background(), ns, "app=late")
		v, ok := pa.values[late]
		return ok && withinSlack(v, 0.3), fmt.Errorf("%+v", pa)
	})
	t.Logf("pod %s created after the restart served %v after it ran", late, time.Since(running).Round(time.Second))

	// LISTs: the informers relist at most once each after the restart; the HPAs' polling
	// (every 5 s, four HPAs) must not cause LISTs.
	if rest := observe - time.Since(before); rest > 0 {
		time.Sleep(rest)
	}
	base := auditEvents(t, user, baseFrom, before)
	after := auditEvents(t, user, before, before.Add(observe))
	count := func(evs []auditEvent) (lists map[string]int, watches map[string]int) {
		lists, watches = map[string]int{}, map[string]int{}
		for _, e := range evs {
			if e.isWatch() {
				watches[e.ObjectRef.Resource]++
			} else {
				lists[e.ObjectRef.Resource]++
			}
		}
		return lists, watches
	}
	bl, bw := count(base)
	al, aw := count(after)
	t.Logf("promgate's requests to kube-apiserver in the %v before the restart: LIST %v WATCH %v", observe, bl, bw)
	t.Logf("promgate's requests to kube-apiserver in the %v from the restart:   LIST %v WATCH %v", observe, al, aw)
	for res, n := range al {
		// One relist per informer, plus one for a relist that raced the shutdown.
		if n > 2 {
			t.Errorf("%d LISTs of %s by promgate in the %v after kube-apiserver restarted (a relist storm); URIs: %v",
				n, res, observe, listURIs(after, res))
		}
	}
	for res, n := range aw {
		if n > 6 {
			t.Errorf("%d WATCHes of %s by promgate in the %v after kube-apiserver restarted", n, res, observe)
		}
	}
}

func listURIs(evs []auditEvent, res string) []string {
	var out []string
	for _, e := range evs {
		if !e.isWatch() && e.ObjectRef.Resource == res {
			out = append(out, e.StageTimestamp.Format("15:04:05.000")+" "+e.RequestURI)
		}
	}
	return out
}

func withinSlack(got, want float64) bool {
	return got >= want*(1-valueSlack) && got <= want*(1+valueSlack)
}

// ---------------------------------------------------------------------------------------------
// HPA monitor

type hpaSnapshot struct {
	at               time.Time
	name             string
	current, desired int32
	active           bool   // condition ScalingActive True
	reason           string // of ScalingActive
	value            float64
	hasValue         bool
}

func (s hpaSnapshot) String() string {
	v := "none"
	if s.hasValue {
		v = fmt.Sprintf("%.4g", s.value)
	}
	return fmt.Sprintf("%s %s current=%d desired=%d active=%v(%s) value=%s",
		s.at.Format("15:04:05"), s.name, s.current, s.desired, s.active, s.reason, v)
}

func snapshotHPA(h *autoscalingv2.HorizontalPodAutoscaler) hpaSnapshot {
	s := hpaSnapshot{at: time.Now(), name: h.Name, current: h.Status.CurrentReplicas, desired: h.Status.DesiredReplicas}
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			s.active, s.reason = c.Status == "True", c.Reason
		}
	}
	for _, m := range h.Status.CurrentMetrics {
		var q *resource.Quantity
		switch {
		case m.Pods != nil:
			q = m.Pods.Current.AverageValue
		case m.Object != nil:
			q = m.Object.Current.Value
		case m.External != nil:
			q = m.External.Current.AverageValue
		case m.Resource != nil && m.Resource.Current.AverageUtilization != nil:
			s.value, s.hasValue = float64(*m.Resource.Current.AverageUtilization), true
		}
		if q != nil {
			s.value, s.hasValue = q.AsApproximateFloat64(), true
		}
	}
	return s
}

type hpaMonitor struct {
	since  time.Time
	truth  map[string]float64
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	snaps []hpaSnapshot
	dep   map[string][]deploymentReplicas // name -> spec.replicas over time
}

type deploymentReplicas struct {
	at       time.Time
	replicas int32
}

// startHPAMonitor reads every HPA and Deployment of ns once a second until stop.
func startHPAMonitor(t *testing.T, ns string, truth map[string]float64) *hpaMonitor {
	cs := Clientset(t)
	ctx, cancel := context.WithCancel(context.Background())
	m := &hpaMonitor{since: time.Now(), truth: truth, cancel: cancel, done: make(chan struct{}), dep: map[string][]deploymentReplicas{}}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			hl, herr := cs.AutoscalingV2().HorizontalPodAutoscalers(ns).List(rctx, metav1.ListOptions{})
			dl, derr := cs.AppsV1().Deployments(ns).List(rctx, metav1.ListOptions{})
			rcancel()
			m.mu.Lock()
			if herr == nil {
				for i := range hl.Items {
					m.snaps = append(m.snaps, snapshotHPA(&hl.Items[i]))
				}
			}
			if derr == nil {
				for _, d := range dl.Items {
					if _, watched := truth[d.Name]; watched && d.Spec.Replicas != nil {
						m.dep[d.Name] = append(m.dep[d.Name], deploymentReplicas{time.Now(), *d.Spec.Replicas})
					}
				}
			}
			m.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *hpaMonitor) stop() {
	m.cancel()
	<-m.done
}

// check fails the test for any snapshot in [from, to) where an HPA or its Deployment left the
// steady replica count, or an HPA showed a value off the truth. With wantErrors, every HPA must
// also have reported the outage (ScalingActive False) at least once: the fault reached it.
func (m *hpaMonitor) check(t *testing.T, from, to time.Time, wantErrors bool) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	polls, sawError := map[string]int{}, map[string]bool{}
	bad := 0
	for _, s := range m.snaps {
		if s.at.Before(from) || !s.at.Before(to) {
			continue
		}
		polls[s.name]++
		if !s.active {
			sawError[s.name] = true
		}
		var why string
		switch {
		case s.current < faultReplicas || s.desired < faultReplicas:
			why = "replicas dropped"
		case s.current > faultReplicas || s.desired > faultReplicas:
			why = "replicas rose"
		case s.hasValue && !withinSlack(s.value, m.truth[s.name]):
			why = fmt.Sprintf("value off the truth %v by more than %.0f%%", m.truth[s.name], valueSlack*100)
		}
		if why != "" {
			if bad++; bad <= 20 {
				t.Errorf("HPA %s: %s", why, s)
			}
		}
	}
	for name, points := range m.dep {
		for _, p := range points {
			if !p.at.Before(from) && p.at.Before(to) && p.replicas != faultReplicas {
				t.Errorf("%s deployment %s has %d replicas, want %d", p.at.Format("15:04:05"), name, p.replicas, faultReplicas)
				break
			}
		}
	}
	for name := range m.truth {
		if polls[name] < int(to.Sub(from)/time.Second)/3 {
			t.Errorf("HPA %s read only %d times in %v (monitor starved?)", name, polls[name], to.Sub(from).Round(time.Second))
		}
		if wantErrors && !sawError[name] {
			t.Errorf("HPA %s never reported ScalingActive=False during the outage: did it get values from nowhere?", name)
		}
	}
	t.Logf("HPA monitor: %v polls in %v; outage seen by %v", polls, to.Sub(from).Round(time.Second), sawError)
}

// ---------------------------------------------------------------------------------------------
// API probes

// probe is one API read, repeated once a second.
type probe struct {
	name      string
	rate      bool               // a rate over faultWindow: recovers one window after the outage
	want      map[string]float64 // object -> true value: a complete answer
	extraTime time.Duration      // allowed on top of the 503 deadline (kubectl's own start)
	run       func(ctx context.Context) probeAnswer

	mu      sync.Mutex
	answers []probeAnswer
}

// probeAnswer is one read's outcome: values (a 200), unavailable (a 503 naming the backend) or
// failure (anything else).
type probeAnswer struct {
	start, end  time.Time
	took        time.Duration
	values      map[string]float64
	decodeErr   error
	unavailable string
	failure     string
}

type probes struct {
	list   []*probe
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

func startProbes(list []*probe) *probes {
	ctx, cancel := context.WithCancel(context.Background())
	p := &probes{list: list, cancel: cancel}
	for _, pr := range list {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, time.Minute)
				a := pr.run(rctx)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				a.start, a.end = start, time.Now()
				pr.mu.Lock()
				pr.answers = append(pr.answers, a)
				pr.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}
	return p
}

func (p *probes) stop() {
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
}

// outage is one fault: Prometheus unusable in [from, to); observed until end. firstScrape is
// how long after to Prometheus scrapes again.
type outage struct {
	from, to, end time.Time
	firstScrape   time.Duration
}

type outageRules struct {
	promTimeout, cacheTTL time.Duration
}

// check applies the rules to every probe's answers in [o.from, o.end):
//   - during the outage: a 503 naming the backend within --prometheus-timeout (+ margin), or a
//     complete, true answer only while a result fetched before the outage may be cached;
//     at least one 503 once the cache is spent; never an empty, partial or wrong answer;
//   - afterwards: never a wrong value; a complete answer again within one window (rates),
//     the cache period and one scrape; only complete answers from then on.
func (r outageRules) check(t *testing.T, p *probes, o outage) {
	t.Helper()
	cacheSpent := o.from.Add(r.cacheTTL + time.Second)
	for _, pr := range p.list {
		pr.mu.Lock()
		answers := append([]probeAnswer(nil), pr.answers...)
		pr.mu.Unlock()

		recoverBy := o.to.Add(o.firstScrape + r.cacheTTL + scrapeEvery + recoverSlack)
		if pr.rate {
			recoverBy = recoverBy.Add(faultWindow)
		}
		var firstComplete time.Time
		var n503, nDuring, nAfter, errs int
		fail := func(a probeAnswer, format string, args ...any) {
			if errs++; errs <= 8 {
				t.Errorf("%s, asked %s (outage +%v), answered after %v: %s", pr.name, a.start.Format("15:04:05.0"),
					a.start.Sub(o.from).Round(100*time.Millisecond), a.took.Round(time.Millisecond), fmt.Sprintf(format, args...))
			}
		}
		for _, a := range answers {
			if a.start.Before(o.from) || !a.start.Before(o.end) {
				continue
			}
			during := a.end.Before(o.to)
			if during {
				nDuring++
			} else {
				nAfter++
			}
			switch {
			case a.failure != "":
				fail(a, "neither a value nor a 503 naming the backend or an incomplete window: %s", a.failure)
			case a.decodeErr != nil:
				fail(a, "undecodable answer: %v", a.decodeErr)
			case a.unavailable != "":
				if during && !a.start.Before(cacheSpent) {
					n503++
				}
				if limit := r.promTimeout + answerMargin + pr.extraTime; a.took > limit {
					fail(a, "503 took longer than --prometheus-timeout %v + %v: %s", r.promTimeout, limit-r.promTimeout, a.unavailable)
				}
				switch {
				case !during && strings.Contains(a.unavailable, "partly covered by samples"):
					// The value's window is not full yet: like an object
					// missing from a list, allowed until recoverBy.
					if a.start.After(recoverBy) {
						fail(a, "still an incomplete window %v after Prometheus came back: %s", a.start.Sub(o.to).Round(time.Second), a.unavailable)
					}
				case !during && a.start.After(o.to.Add(o.firstScrape+r.promTimeout)):
					fail(a, "still 503 after Prometheus came back: %s", a.unavailable)
				}
			default:
				complete, why := pr.judge(a.values)
				if why != "" {
					fail(a, "wrong value: %s", why)
					continue
				}
				switch {
				case during && !complete:
					fail(a, "an empty or partial answer while Prometheus was away (%v)", a.values)
				case during && !a.start.Before(cacheSpent):
					fail(a, "a value while Prometheus was away, after the %v cache: %v", r.cacheTTL, a.values)
				case !during && complete && firstComplete.IsZero():
					firstComplete = a.end
				case !during && !complete && a.start.After(recoverBy):
					fail(a, "still incomplete %v after Prometheus came back: %v", a.start.Sub(o.to).Round(time.Second), a.values)
				}
			}
		}
		switch {
		case nDuring == 0 || nAfter == 0:
			t.Errorf("%s: %d answers during the outage, %d after: the probe did not run", pr.name, nDuring, nAfter)
		case n503 == 0:
			t.Errorf("%s: no 503 while Prometheus was away (after the cache period)", pr.name)
		case firstComplete.IsZero() || firstComplete.After(recoverBy):
			t.Errorf("%s: first complete answer %v after Prometheus came back, want within %v", pr.name,
				firstComplete.Sub(o.to).Round(time.Second), recoverBy.Sub(o.to).Round(time.Second))
		}
		t.Logf("%s: %d answers during the outage (%d × 503 after the cache period), %d after; complete again %v after it ended (limit %v)",
			pr.name, nDuring, n503, nAfter, firstComplete.Sub(o.to).Round(100*time.Millisecond), recoverBy.Sub(o.to).Round(time.Second))
	}
}

// judge tells whether values hold every wanted object, and why not if any value is wrong (an
// object not wanted, or a value off the truth).
func (pr *probe) judge(values map[string]float64) (complete bool, why string) {
	for name, v := range values {
		want, ok := pr.want[name]
		if !ok {
			return false, fmt.Sprintf("unexpected object %q = %v", name, v)
		}
		if !withinSlack(v, want) {
			return false, fmt.Sprintf("%s = %v, truth %v (below %.0f%% of it: %v)", name, v, want, 100*(1-valueSlack), v < want*(1-valueSlack))
		}
	}
	return len(values) == len(pr.want), ""
}
