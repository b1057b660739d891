package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// 1,000 HPAs over 50 namespaces poll each (namespace, metric) pair once:
// 100 Resource, 700 Pods and 200 External metric HPAs.
func TestHPAPlan(t *testing.T) {
	l, err := fakeprom.ParseLayout("ns-[0-49]=0")
	if err != nil {
		t.Fatal(err)
	}
	var namespaces []string
	for _, ns := range l {
		namespaces = append(namespaces, ns.Name)
	}
	ms := hpaMetrics(12)
	if len(ms) != 20 {
		t.Fatalf("%d metrics, want 20", len(ms))
	}
	seen := map[string]bool{}
	kinds := map[string]int{}
	for i := range 1000 {
		r := hpaRequest(i, namespaces, ms)
		if seen[r.path] {
			t.Errorf("HPA %d polls %s, as an earlier one does", i, r.path)
		}
		seen[r.path] = true
		kinds[r.kind]++
	}
	if kinds["resource"] != 100 || kinds["pods"] != 700 || kinds["external"] != 200 {
		t.Errorf("HPAs by kind: %v", kinds)
	}
	if r := hpaRequest(0, namespaces, ms); r.path != "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods?labelSelector=app%3Dapp-0" {
		t.Errorf("HPA 0: %s", r.path)
	}
	if r := hpaRequest(999, namespaces, ms); r.path != "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-49/queue_oldest_message_age_seconds?labelSelector=queue%3Dq-19" {
		t.Errorf("HPA 999: %s", r.path)
	}
}

func TestProcStats(t *testing.T) {
	if _, err := cpuSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	if rss, err := peakRSSMiB(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("peak RSS %v, %v", rss, err)
	}
}

func TestReport(t *testing.T) {
	rows := []Result{
		{Order: 10, Scenario: "A", Name: "pods", Backend: "prometheus", Target: "direct", Requests: 1000, PromgateCPUSeconds: 2, BackendCPUSeconds: 0.5, RequestsPerSecond: 600, Latency: fakeprom.Percentiles{P99: 0.040}},
		{Order: 40, Scenario: "B", Name: "hpas", Target: "aggregated", Cycles: 2, QueriesPerCycle: 60},
		{Order: 41, Scenario: "B", Name: "hpas unbatched", Target: "aggregated", Cycles: 2, QueriesPerCycle: 1100, Comparison: true, PromgateArgs: "--query-batching=false"},
	}
	disco := []discoResult{{Series: 210_000, RefreshSeconds: []float64{1.2}, PeakRSSMiB: 35}, {Series: 1_050_000, RefreshSeconds: []float64{6, 16}, PeakRSSMiB: 36}}
	var b bytes.Buffer
	printReport(&b, rows, disco)
	out := b.String()
	for _, want := range []string{
		"| A pods | prometheus | direct |",
		"| 2.00 ms |  | 0.50 ms |",
		"| A pods, direct: ≥ 500 req/s at concurrency 20, p99 ≤ 50 ms, 0 LISTs per request | 600 req/s, p99 40.0 ms, 0.000 LISTs/request, 0 errors | yes |",
		"60.0 per cycle, 0 errors | yes |",
		"for comparison only | 1100.0 queries per cycle | — |",
		"| discovery 1,050,000 series: ≤ 15 s, ≤ 400 MiB | 16.00 s (slowest refresh), 36 MiB | **no** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
