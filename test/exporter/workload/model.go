// Package workload models the synthetic workload that the e2e exporter
// publishes for every Running pod and every node of a cluster: request
// counters, cAdvisor-shaped CPU and memory series and queue gauges whose values
// are known exactly, from annotations, defaults and run-time overrides.
//
// Model holds the state; Gatherer (fast, what /metrics serves) and Collector
// (for a prometheus.Registry) turn it into Prometheus metrics at scrape time;
// Handler serves the control API; Watch feeds a Model from informers.
package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
)

// AppKey selects the pods of one namespace that carry the label app=App.
type AppKey struct {
	Namespace string
	App       string
}

// QueueKey names one queue_messages_ready series.
type QueueKey struct {
	Namespace string
	Queue     string
}

// IngressKey names the ingress requests of one Service.
type IngressKey struct {
	Namespace string
	Service   string
}

// NodeOverride replaces a node's annotations at run time. A nil field leaves
// the annotation (or default) in force.
type NodeOverride struct {
	MilliCPU *int64
	Memory   *int64
}

// container is one cgroup of a pod below the pod-level cgroup: a container of
// the spec or the pause container.
type container struct {
	name     string
	id       string // container ID, also cAdvisor's name label
	cgroup   string // cAdvisor's id label
	image    string
	milliCPU int64
	memory   int64 // working set bytes
	swap     int64 // swap bytes; -1: no swap series
	cpu      Counter
}

// pod is the state of one eligible pod.
type pod struct {
	namespace   string
	name        string
	uid         types.UID
	node        string
	app         string
	annotations map[string]string
	cgroup      string
	containers  []*container // spec order, then the pause container
	rps         float64
	ratio       float64
	ok          Counter // code="200"
	failed      Counter // code="500"
	errs        []string
}

// node is the state of one node's root cgroup.
type node struct {
	name        string
	annotations map[string]string
	milliCPU    int64
	memory      int64
	swap        int64 // -1: no swap series
	cpu         Counter
	errs        []string
}

// Model is the exporter's state: the eligible pods and the nodes, with their
// counters, and the run-time overrides. It is safe for concurrent use.
type Model struct {
	clock Clock

	mu     sync.Mutex
	pods   map[types.UID]*pod
	nodes  map[string]*node
	http   map[AppKey]HTTPOverride
	cpu    map[AppKey]resourceOverride
	memory map[AppKey]resourceOverride
	hidden map[AppKey]map[string]bool // container name; "" hides the whole pod
	nodeOv map[string]NodeOverride
	queues map[QueueKey]float64
	// ingress are the Services' request counters at the ingress
	// controller: series that exist whether or not the Service has pods.
	ingress map[IngressKey]*Counter
}

// NewModel returns an empty model that reads the time from clock (time.Now
// if nil).
func NewModel(clock Clock) *Model {
	if clock == nil {
		clock = time.Now
	}
	return &Model{
		clock:   clock,
		pods:    map[types.UID]*pod{},
		nodes:   map[string]*node{},
		http:    map[AppKey]HTTPOverride{},
		cpu:     map[AppKey]resourceOverride{},
		memory:  map[AppKey]resourceOverride{},
		hidden:  map[AppKey]map[string]bool{},
		nodeOv:  map[string]NodeOverride{},
		queues:  map[QueueKey]float64{},
		ingress: map[IngressKey]*Counter{},
	}
}

// Eligible reports whether the exporter publishes series for p: it is Running,
// bound to a node and not terminating.
func Eligible(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Spec.NodeName != ""
}

// PodCgroup returns the cgroupfs path of a pod's cgroup, as cAdvisor reports
// it in the id label: /kubepods[/burstable|/besteffort]/pod<uid>. An unknown
// QoS class counts as Burstable.
func PodCgroup(qos corev1.PodQOSClass, uid types.UID) string {
	switch qos {
	case corev1.PodQOSGuaranteed:
		return "/kubepods/pod" + string(uid)
	case corev1.PodQOSBestEffort:
		return "/kubepods/besteffort/pod" + string(uid)
	default:
		return "/kubepods/burstable/pod" + string(uid)
	}
}

// ContainerID returns the synthetic, stable container ID of a pod's container
// (64 hex digits, like containerd's): the SHA-256 of "<pod uid>/<container>".
// The pause container's is ContainerID(uid, PauseContainer).
func ContainerID(uid types.UID, containerName string) string {
	sum := sha256.Sum256([]byte(string(uid) + "/" + containerName))
	return hex.EncodeToString(sum[:])
}

// UpsertPod records a pod's current state: it starts the pod's counters when
// the pod becomes eligible, updates its annotations and labels, and forgets
// it when it no longer is.
func (m *Model) UpsertPod(p *corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !Eligible(p) {
		delete(m.pods, p.UID)
		return
	}
	now := m.clock()
	ps, ok := m.pods[p.UID]
	if !ok {
		ps = newPod(p, now)
		m.pods[p.UID] = ps
	}
	ps.node = p.Spec.NodeName
	ps.app = p.Labels[AppLabel]
	ps.annotations = maps.Clone(p.Annotations)
	m.reconcilePod(ps, now)
}

// DeletePod forgets a pod.
func (m *Model) DeletePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pods, uid)
}

// newPod returns the state of a newly eligible pod, all counters at 0.
func newPod(p *corev1.Pod, now time.Time) *pod {
	ps := &pod{
		namespace: p.Namespace,
		name:      p.Name,
		uid:       p.UID,
		cgroup:    PodCgroup(p.Status.QOSClass, p.UID),
		ok:        NewCounter(now, 0),
		failed:    NewCounter(now, 0),
	}
	add := func(name, image string) {
		id := ContainerID(p.UID, name)
		ps.containers = append(ps.containers, &container{
			name:   name,
			id:     id,
			cgroup: ps.cgroup + "/" + id,
			image:  image,
			cpu:    NewCounter(now, 0),
		})
	}
	for _, c := range p.Spec.Containers {
		add(c.Name, c.Image)
	}
	add(PauseContainer, PauseImage)
	return ps
}

// reconcilePod recomputes a pod's effective settings and moves its counters
// to the new rates from now on. The caller holds m.mu.
func (m *Model) reconcilePod(ps *pod, now time.Time) {
	key := AppKey{Namespace: ps.namespace, App: ps.app}
	var errs []string
	rps, ratio, e := resolveHTTP(ps.annotations, m.http[key])
	errs = append(errs, e...)
	ps.rps, ps.ratio = rps, ratio
	ps.ok.SetRate(now, rps*(1-ratio))
	ps.failed.SetRate(now, rps*ratio)
	for _, c := range ps.containers {
		defCPU, defMem := int64(DefaultContainerMilliCPU), int64(DefaultContainerMemory)
		if c.name == PauseContainer {
			defCPU, defMem = PauseMilliCPU, PauseMemory
		}
		milli, e := resolveContainer(ps.annotations, m.cpu[key], AnnotationCPU, c.name, defCPU, parseMilliCPU)
		errs = append(errs, e...)
		mem, e := resolveContainer(ps.annotations, m.memory[key], AnnotationMemory, c.name, defMem, parseBytes)
		errs = append(errs, e...)
		swap, e := resolveContainer(ps.annotations, nil, AnnotationSwap, c.name, -1, parseBytes)
		errs = append(errs, e...)
		c.milliCPU, c.memory, c.swap = milli, mem, swap
		c.cpu.SetRate(now, float64(milli)/1000)
	}
	ps.errs = errs
}

// UpsertNode records a node's current state, starting its CPU counter when it
// is new.
func (m *Model) UpsertNode(n *corev1.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	ns, ok := m.nodes[n.Name]
	if !ok {
		ns = &node{name: n.Name, cpu: NewCounter(now, 0)}
		m.nodes[n.Name] = ns
	}
	ns.annotations = maps.Clone(n.Annotations)
	m.reconcileNode(ns, now)
}

// DeleteNode forgets a node.
func (m *Model) DeleteNode(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodes, name)
}

// reconcileNode recomputes a node's effective values. The caller holds m.mu.
func (m *Model) reconcileNode(ns *node, now time.Time) {
	ov := m.nodeOv[ns.name]
	milli, e1 := resolveNode(ns.annotations, ov.MilliCPU, AnnotationCPU, DefaultNodeMilliCPU, parseMilliCPU)
	mem, e2 := resolveNode(ns.annotations, ov.Memory, AnnotationMemory, DefaultNodeMemory, parseBytes)
	swap, e3 := resolveNode(ns.annotations, nil, AnnotationSwap, -1, parseBytes)
	ns.milliCPU, ns.memory, ns.swap = milli, mem, swap
	ns.errs = append(append(e1, e2...), e3...)
	ns.cpu.SetRate(now, float64(milli)/1000)
}

// reconcileApp reconciles the pods that key selects and returns how many there
// are. The caller holds m.mu.
func (m *Model) reconcileApp(key AppKey, now time.Time) int {
	n := 0
	for _, ps := range m.pods {
		if ps.namespace == key.Namespace && ps.app == key.App {
			m.reconcilePod(ps, now)
			n++
		}
	}
	return n
}

// SetHTTP overrides the request rate and/or error ratio of the pods that key
// selects, now and in future; fields left nil keep an earlier override. It
// returns the number of pods selected now.
func (m *Model) SetHTTP(key AppKey, ov HTTPOverride) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.http[key] = m.http[key].merge(ov)
	return m.reconcileApp(key, m.clock())
}

// ClearHTTP removes the HTTP override of key; its pods go back to their
// annotations. It returns the number of pods selected now.
func (m *Model) ClearHTTP(key AppKey) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.http, key)
	return m.reconcileApp(key, m.clock())
}

// SetCPU overrides the CPU usage (millicores) of one container (or, with
// containerName "", of every container of the spec) of the pods that key
// selects. It returns the number of pods selected now.
func (m *Model) SetCPU(key AppKey, containerName string, milliCPU int64) int {
	return m.setResource(m.cpu, key, containerName, &milliCPU)
}

// ClearCPU removes the CPU override of one container (containerName) or, with
// containerName "", every CPU override of key. It returns the number of pods
// selected now.
func (m *Model) ClearCPU(key AppKey, containerName string) int {
	return m.setResource(m.cpu, key, containerName, nil)
}

// SetMemory overrides the memory working set (bytes) like SetCPU.
func (m *Model) SetMemory(key AppKey, containerName string, bytes int64) int {
	return m.setResource(m.memory, key, containerName, &bytes)
}

// ClearMemory removes memory overrides like ClearCPU.
func (m *Model) ClearMemory(key AppKey, containerName string) int {
	return m.setResource(m.memory, key, containerName, nil)
}

// setResource sets (v != nil) or clears (v == nil) a resource override.
func (m *Model) setResource(all map[AppKey]resourceOverride, key AppKey, containerName string, v *int64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case v != nil:
		if all[key] == nil {
			all[key] = resourceOverride{}
		}
		all[key][containerName] = *v
	case containerName == "":
		delete(all, key)
	default:
		delete(all[key], containerName)
		if len(all[key]) == 0 {
			delete(all, key)
		}
	}
	return m.reconcileApp(key, m.clock())
}

// SetHidden hides (or shows again) the cAdvisor series of one container of
// the pods that key selects, or with containerName "" all of their cAdvisor
// series, pod-level and pause included. Counters go on growing while hidden.
// http_requests_total is never hidden. It returns the number of pods selected
// now.
func (m *Model) SetHidden(key AppKey, containerName string, hidden bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if hidden {
		if m.hidden[key] == nil {
			m.hidden[key] = map[string]bool{}
		}
		m.hidden[key][containerName] = true
	} else {
		delete(m.hidden[key], containerName)
		if len(m.hidden[key]) == 0 {
			delete(m.hidden, key)
		}
	}
	return m.reconcileApp(key, m.clock())
}

// SetNode overrides a node's values; nil fields keep an earlier override. It
// reports whether the node is known now (the override also applies to a node
// registered later).
func (m *Model) SetNode(name string, ov NodeOverride) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.nodeOv[name]
	if ov.MilliCPU != nil {
		cur.MilliCPU = ov.MilliCPU
	}
	if ov.Memory != nil {
		cur.Memory = ov.Memory
	}
	m.nodeOv[name] = cur
	return m.reconcileNodeByName(name)
}

// ClearNode removes a node's override and reports whether the node is known.
func (m *Model) ClearNode(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.nodeOv, name)
	return m.reconcileNodeByName(name)
}

// reconcileNodeByName reconciles a node if known. The caller holds m.mu.
func (m *Model) reconcileNodeByName(name string) bool {
	ns, ok := m.nodes[name]
	if ok {
		m.reconcileNode(ns, m.clock())
	}
	return ok
}

// SetQueue sets queue_messages_ready{namespace, queue}.
func (m *Model) SetQueue(key QueueKey, value float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queues[key] = value
}

// DeleteQueue removes a queue_messages_ready series and reports whether it
// existed.
func (m *Model) DeleteQueue(key QueueKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.queues[key]
	delete(m.queues, key)
	return ok
}

// SetIngress sets the request rate of a Service at the ingress controller
// (nginx_ingress_controller_requests{namespace, service}), starting its
// counter at 0 when it is new.
func (m *Model) SetIngress(key IngressKey, rps float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	if c, ok := m.ingress[key]; ok {
		c.SetRate(now, rps)
		return
	}
	c := NewCounter(now, rps)
	m.ingress[key] = &c
}

// DeleteIngress removes a Service's ingress series and reports whether it
// existed.
func (m *Model) DeleteIngress(key IngressKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.ingress[key]
	delete(m.ingress, key)
	return ok
}

// Reset removes every run-time override, hidden series and queue; pods and
// nodes go back to their annotations. Counters keep their values.
func (m *Model) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.http)
	clear(m.cpu)
	clear(m.memory)
	clear(m.hidden)
	clear(m.nodeOv)
	clear(m.queues)
	clear(m.ingress)
	now := m.clock()
	for _, ps := range m.pods {
		m.reconcilePod(ps, now)
	}
	for _, ns := range m.nodes {
		m.reconcileNode(ns, now)
	}
}

// Snapshot is the model's state at one instant, as published on /metrics
// and /control/state.
type Snapshot struct {
	Time      time.Time          `json:"time"`
	Pods      []PodSnapshot      `json:"pods"`
	Nodes     []NodeSnapshot     `json:"nodes"`
	Queues    []QueueSnapshot    `json:"queues"`
	Ingress   []IngressSnapshot  `json:"ingress"`
	Overrides []OverrideSnapshot `json:"overrides"`
	// NodeOverrides maps node names to their run-time values.
	NodeOverrides map[string]ResourcesSnapshot `json:"nodeOverrides,omitempty"`
}

// PodSnapshot is one pod's state.
type PodSnapshot struct {
	Namespace  string  `json:"namespace"`
	Name       string  `json:"name"`
	UID        string  `json:"uid"`
	Node       string  `json:"node"`
	App        string  `json:"app"`
	RPS        float64 `json:"rps"`
	ErrorRatio float64 `json:"errorRatio"`
	// Requests200 and Requests500 are the http_requests_total values.
	Requests200 float64 `json:"requests200"`
	Requests500 float64 `json:"requests500"`
	// Hidden is true when all of the pod's cAdvisor series are hidden.
	Hidden bool `json:"hidden,omitempty"`
	// Cgroup is the pod-level cgroup (container=""): the sum of Containers.
	Cgroup CgroupSnapshot `json:"cgroup"`
	// Containers are the spec's containers in order, then the pause one.
	Containers []CgroupSnapshot `json:"containers"`
	// Errors lists annotations that did not parse (their default was used).
	Errors []string `json:"errors,omitempty"`
}

// CgroupSnapshot is one cgroup's cAdvisor values and labels.
type CgroupSnapshot struct {
	Container             string  `json:"container"`
	ID                    string  `json:"id"`
	Name                  string  `json:"name"`
	Image                 string  `json:"image"`
	CPUCores              float64 `json:"cpuCores"`
	CPUSeconds            float64 `json:"cpuSeconds"`
	MemoryWorkingSetBytes int64   `json:"memoryWorkingSetBytes"`
	MemoryUsageBytes      int64   `json:"memoryUsageBytes"`
	// SwapBytes is the swap in use; nil: no swap series.
	SwapBytes *int64 `json:"swapBytes,omitempty"`
	Hidden    bool   `json:"hidden,omitempty"`
}

// NodeSnapshot is one node's root cgroup (id="/").
type NodeSnapshot struct {
	Name   string         `json:"name"`
	Cgroup CgroupSnapshot `json:"cgroup"`
	Errors []string       `json:"errors,omitempty"`
}

// QueueSnapshot is one queue_messages_ready series.
type QueueSnapshot struct {
	Namespace string  `json:"namespace"`
	Queue     string  `json:"queue"`
	Value     float64 `json:"value"`
}

// IngressSnapshot is one nginx_ingress_controller_requests series.
type IngressSnapshot struct {
	Namespace string  `json:"namespace"`
	Service   string  `json:"service"`
	RPS       float64 `json:"rps"`
	Requests  float64 `json:"requests"`
}

// OverrideSnapshot lists the run-time overrides of one app.
type OverrideSnapshot struct {
	Namespace string        `json:"namespace"`
	App       string        `json:"app"`
	HTTP      *HTTPOverride `json:"http,omitempty"`
	// CPU and Memory map container names ("" for all) to quantities.
	CPU    map[string]string `json:"cpu,omitempty"`
	Memory map[string]string `json:"memory,omitempty"`
	// Hidden lists hidden containers ("" for the whole pod).
	Hidden []string `json:"hidden,omitempty"`
}

// ResourcesSnapshot is a CPU and memory pair as quantities.
type ResourcesSnapshot struct {
	CPU    string `json:"cpu,omitempty"`
	Memory string `json:"memory,omitempty"`
}

// Filter narrows a snapshot's pods and overrides; empty fields match all.
type Filter struct {
	Namespace string
	App       string
}

func (f Filter) match(namespace, app string) bool {
	return (f.Namespace == "" || f.Namespace == namespace) && (f.App == "" || f.App == app)
}

// Snapshot returns the state at the clock's current time, sorted by
// namespace and name.
func (m *Model) Snapshot(f Filter) Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	s := Snapshot{Time: now, Pods: []PodSnapshot{}, Nodes: []NodeSnapshot{}, Queues: []QueueSnapshot{}, Ingress: []IngressSnapshot{}, Overrides: []OverrideSnapshot{}}
	for _, ps := range m.pods {
		if f.match(ps.namespace, ps.app) {
			s.Pods = append(s.Pods, m.podSnapshot(ps, now))
		}
	}
	slices.SortFunc(s.Pods, func(a, b PodSnapshot) int {
		return cmpPair(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	for _, ns := range m.nodes {
		s.Nodes = append(s.Nodes, NodeSnapshot{
			Name: ns.name,
			Cgroup: CgroupSnapshot{
				ID:                    "/",
				CPUCores:              float64(ns.milliCPU) / 1000,
				CPUSeconds:            ns.cpu.Value(now),
				MemoryWorkingSetBytes: ns.memory,
				MemoryUsageBytes:      ns.memory + InactiveFileBytes,
				SwapBytes:             swapOf(ns.swap),
			},
			Errors: ns.errs,
		})
	}
	slices.SortFunc(s.Nodes, func(a, b NodeSnapshot) int { return strings.Compare(a.Name, b.Name) })
	for k, v := range m.queues {
		if f.Namespace == "" || f.Namespace == k.Namespace {
			s.Queues = append(s.Queues, QueueSnapshot{Namespace: k.Namespace, Queue: k.Queue, Value: v})
		}
	}
	slices.SortFunc(s.Queues, func(a, b QueueSnapshot) int {
		return cmpPair(a.Namespace, a.Queue, b.Namespace, b.Queue)
	})
	for k, c := range m.ingress {
		if f.Namespace == "" || f.Namespace == k.Namespace {
			s.Ingress = append(s.Ingress, IngressSnapshot{Namespace: k.Namespace, Service: k.Service, RPS: c.Rate(), Requests: c.Value(now)})
		}
	}
	slices.SortFunc(s.Ingress, func(a, b IngressSnapshot) int {
		return cmpPair(a.Namespace, a.Service, b.Namespace, b.Service)
	})
	s.Overrides = m.overrideSnapshots(f)
	for name, ov := range m.nodeOv {
		if s.NodeOverrides == nil {
			s.NodeOverrides = map[string]ResourcesSnapshot{}
		}
		var r ResourcesSnapshot
		if ov.MilliCPU != nil {
			r.CPU = milliQuantity(*ov.MilliCPU)
		}
		if ov.Memory != nil {
			r.Memory = byteQuantity(*ov.Memory)
		}
		s.NodeOverrides[name] = r
	}
	return s
}

// podSnapshot returns one pod's state at now. The caller holds m.mu.
func (m *Model) podSnapshot(ps *pod, now time.Time) PodSnapshot {
	hidden := m.hidden[AppKey{Namespace: ps.namespace, App: ps.app}]
	out := PodSnapshot{
		Namespace:   ps.namespace,
		Name:        ps.name,
		UID:         string(ps.uid),
		Node:        ps.node,
		App:         ps.app,
		RPS:         ps.rps,
		ErrorRatio:  ps.ratio,
		Requests200: ps.ok.Value(now),
		Requests500: ps.failed.Value(now),
		Hidden:      hidden[""],
		Cgroup:      CgroupSnapshot{ID: ps.cgroup, Hidden: hidden[""]},
		Containers:  make([]CgroupSnapshot, 0, len(ps.containers)),
		Errors:      ps.errs,
	}
	var milli int64
	for _, c := range ps.containers {
		cs := CgroupSnapshot{
			Container:             c.name,
			ID:                    c.cgroup,
			Name:                  c.id,
			Image:                 c.image,
			CPUCores:              float64(c.milliCPU) / 1000,
			CPUSeconds:            c.cpu.Value(now),
			MemoryWorkingSetBytes: c.memory,
			MemoryUsageBytes:      c.memory + InactiveFileBytes,
			SwapBytes:             swapOf(c.swap),
			Hidden:                hidden[""] || hidden[c.name],
		}
		out.Containers = append(out.Containers, cs)
		milli += c.milliCPU
		out.Cgroup.CPUSeconds += cs.CPUSeconds
		out.Cgroup.MemoryWorkingSetBytes += cs.MemoryWorkingSetBytes
		out.Cgroup.MemoryUsageBytes += cs.MemoryUsageBytes
		if cs.SwapBytes != nil {
			out.Cgroup.SwapBytes = swapOf(*cs.SwapBytes + swapValue(out.Cgroup.SwapBytes))
		}
	}
	out.Cgroup.CPUCores = float64(milli) / 1000
	return out
}

// overrideSnapshots lists the overrides of the apps f matches, sorted. The
// caller holds m.mu.
func (m *Model) overrideSnapshots(f Filter) []OverrideSnapshot {
	byKey := map[AppKey]*OverrideSnapshot{}
	get := func(k AppKey) *OverrideSnapshot {
		if o, ok := byKey[k]; ok {
			return o
		}
		o := &OverrideSnapshot{Namespace: k.Namespace, App: k.App}
		byKey[k] = o
		return o
	}
	for k, v := range m.http {
		get(k).HTTP = &v
	}
	for k, v := range m.cpu {
		o := get(k)
		o.CPU = map[string]string{}
		for c, x := range v {
			o.CPU[c] = milliQuantity(x)
		}
	}
	for k, v := range m.memory {
		o := get(k)
		o.Memory = map[string]string{}
		for c, x := range v {
			o.Memory[c] = byteQuantity(x)
		}
	}
	for k, v := range m.hidden {
		o := get(k)
		o.Hidden = slices.Sorted(maps.Keys(v))
	}
	out := []OverrideSnapshot{}
	for k, o := range byKey {
		if f.match(k.Namespace, k.App) {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(a, b OverrideSnapshot) int {
		return cmpPair(a.Namespace, a.App, b.Namespace, b.App)
	})
	return out
}

func cmpPair(a1, a2, b1, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}

func milliQuantity(milli int64) string {
	return resource.NewMilliQuantity(milli, resource.DecimalSI).String()
}

func byteQuantity(b int64) string {
	return resource.NewQuantity(b, resource.BinarySI).String()
}

// swapOf is a cgroup's swap for a snapshot: nil for -1 (no swap series).
func swapOf(bytes int64) *int64 {
	if bytes < 0 {
		return nil
	}
	return &bytes
}

// swapValue is *p, or 0.
func swapValue(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
