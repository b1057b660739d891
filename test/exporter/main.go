// Command exporter publishes synthetic metrics with exactly known values for
// every Running pod and every node of a cluster, for Prometheus to scrape in
// promgate's end-to-end tests. See README.md for the series, the annotations
// that set their values and the control API that changes them at run time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/promgate/promgate/test/exporter/workload"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9781", "address to serve /metrics and /control/ on")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to watch (empty: $KUBECONFIG, then in-cluster)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *kubeconfig); err != nil {
		slog.Error("exporter failed", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, listen, kubeconfig string) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	// Listen first, so a port clash fails at once rather than after sync.
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return err
	}
	model := workload.NewModel(time.Now)
	var ready atomic.Bool
	srv := &http.Server{
		Handler:           newMux(model, &ready),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	slog.Info("serving", "addr", ln.Addr().String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	syncErr := make(chan error, 1)
	go func() { syncErr <- workload.Watch(ctx, cs, model) }()

	for {
		select {
		case err := <-syncErr:
			if err != nil && ctx.Err() == nil {
				_ = srv.Close()
				return fmt.Errorf("watch: %w", err)
			}
			if err == nil {
				ready.Store(true)
				slog.Info("pod and node caches synced; ready")
			}
			syncErr = nil
		case err := <-serveErr:
			return err
		case <-ctx.Done():
			shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	}
}

// newMux serves /metrics, the control API, /healthz and /readyz (200 once the
// informer caches have synced).
func newMux(model *workload.Model, ready *atomic.Bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(workload.Gatherer(model), promhttp.HandlerOpts{}))
	mux.Handle("/control/", workload.Handler(model))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
