// Command discobench measures one series discovery the way promgate runs it
// (pkg/catalog's Discoverer.Refresh over pkg/prom's streaming
// /api/v1/series client, with the rules of a promgate config and a static
// REST mapper) against a fake Prometheus in another process, and prints the
// time each refresh took and the peak RSS of this process (getrusage
// maxrss) as one JSON object:
//
//	discobench --prometheus-url=http://127.0.0.1:39400/disco/1050000/ --config=config/promgate.yaml
//
// Run it once per series count: peak RSS is per process.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// Result is what discobench prints.
type Result struct {
	Series int `json:"series"`
	// RefreshSeconds is the duration of each refresh, first one first.
	RefreshSeconds []float64 `json:"refreshSeconds"`
	// PeakRSSMiB is getrusage(RUSAGE_SELF).ru_maxrss at the end.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// HeapInUseMiB is the Go heap in use after the last refresh.
	HeapInUseMiB    float64 `json:"heapInUseMiB"`
	CustomMetrics   int     `json:"customMetrics"`
	ExternalMetrics int     `json:"externalMetrics"`
	// Shapes and Kept add up RuleReport.Series and .Kept over the rules.
	Shapes int `json:"shapes"`
	Kept   int `json:"kept"`
	Errors int `json:"errors"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "discobench:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("prometheus-url", "", "fake Prometheus URL, e.g. http://127.0.0.1:39400/disco/1050000/")
	cfgFile := flag.String("config", "config/promgate.yaml", "promgate config whose rules discover")
	series := flag.Int("series", 0, "series count, echoed in the result")
	refreshes := flag.Int("refreshes", 2, "number of refreshes (relists) to run")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound on the whole run")
	flag.Parse()
	if *url == "" || *refreshes < 1 {
		return fmt.Errorf("--prometheus-url is required and --refreshes must be at least 1")
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		return err
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	client, err := prom.New(prom.Options{URL: *url, Timeout: *timeout})
	if err != nil {
		return err
	}
	d := catalog.New(custom, external, client, staticMapper(), time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := Result{Series: *series}
	var snap *catalog.Snapshot
	for range *refreshes {
		start := time.Now()
		snap = d.Refresh(ctx)
		res.RefreshSeconds = append(res.RefreshSeconds, time.Since(start).Seconds())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery did not finish: %w", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInUseMiB = float64(ms.HeapInuse) / (1 << 20)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	res.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	res.CustomMetrics = len(snap.CustomMetrics())
	res.ExternalMetrics = len(snap.ExternalMetrics())
	for _, r := range snap.Reports {
		res.Shapes += r.Series
		res.Kept += r.Kept
		if r.Err != "" {
			res.Errors++
			fmt.Fprintf(os.Stderr, "discobench: %s: %s\n", r.Path, r.Err)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// staticMapper knows the core resources promgate's default rules name.
func staticMapper() apimeta.RESTMapper {
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	for _, k := range []struct {
		kind  string
		scope apimeta.RESTScope
	}{
		{"Pod", apimeta.RESTScopeNamespace}, {"Service", apimeta.RESTScopeNamespace},
		{"Namespace", apimeta.RESTScopeRoot}, {"Node", apimeta.RESTScopeRoot},
	} {
		m.Add(schema.GroupVersionKind{Version: "v1", Kind: k.kind}, k.scope)
	}
	return m
}
