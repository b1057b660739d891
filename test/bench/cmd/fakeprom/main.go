// Command fakeprom serves a synthetic Prometheus HTTP API for promgate's
// benchmark (see test/bench/fakeprom):
//
//	fakeprom --listen=127.0.0.1:25400 --layout='ns-[0-9]=300' --nodes=100 --latency=0s
//
// With --fail-ratio, that fraction of queries fails, the failing ones taking
// the --fail-kinds in turn (503, timeout, truncated, invalid, warning, and
// oversize: a valid answer of --fail-oversize-bytes, streamed; see
// fakeprom.Failures).
//
// The layout, latency and counters can be changed and read while it runs:
// POST /control/layout, POST /control/latency, GET /stats, POST /stats/reset.
// GET /metrics exposes the model for a real Prometheus to scrape; with
// --upstream=URL the query and series API is forwarded to that Prometheus
// (counted and timed, with --latency added) instead of answered from the
// model:
//
//	fakeprom --listen=127.0.0.1:25400 --upstream=http://127.0.0.1:25410
//
// It stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprom:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:25400", "address to listen on (loopback only)")
	layoutSpec := flag.String("layout", "ns-[0-9]=300", "namespaces and pods: NAME[FROM-TO]=PODS,...")
	var opts fakeprom.Options
	flag.IntVar(&opts.Nodes, "nodes", 3, "number of nodes (kwok-node-0..)")
	flag.IntVar(&opts.Containers, "containers", 1, "containers per pod (besides the pause container)")
	flag.IntVar(&opts.AppMetrics, "app-metrics", 12, "app_metric_<m>_total counters per pod")
	flag.IntVar(&opts.Queues, "queues", 20, "queues per namespace for each queue_* gauge")
	latency := flag.Duration("latency", 0, "time added to every query")
	upstream := flag.String("upstream", "", "a real Prometheus (loopback) to forward /api/v1/query and /api/v1/series to, instead of answering them from the model")
	var fail fakeprom.Failures
	flag.Float64Var(&fail.Ratio, "fail-ratio", 0, "fraction of queries that fail (0 to 1)")
	failKinds := flag.String("fail-kinds", "all", "failure kinds, cycled through: comma-separated 503,timeout,truncated,invalid,warning,oversize; all is the first five (all,oversize: the six)")
	flag.DurationVar(&fail.Hang, "fail-hang", 30*time.Second, "longest a timeout failure holds a query whose client does not give up")
	flag.Int64Var(&fail.OversizeBytes, "fail-oversize-bytes", fakeprom.DefaultOversizeBytes, "size of an oversize failure's answer (streamed, never held)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %s: only loopback addresses are allowed", *listen)
	}
	layout, err := fakeprom.ParseLayout(*layoutSpec)
	if err != nil {
		return err
	}
	if fail.Kinds, err = fakeprom.ParseFailureKinds(*failKinds); err != nil {
		return fmt.Errorf("--fail-kinds: %w", err)
	}
	s := fakeprom.NewServer(fakeprom.NewModel(layout, opts), *latency)
	if err := s.SetFailures(fail); err != nil {
		return fmt.Errorf("--fail-ratio, --fail-oversize-bytes: %w", err)
	}
	if *upstream != "" {
		u, err := url.Parse(*upstream)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--upstream %q: want http://HOST:PORT", *upstream)
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("--upstream %s: only loopback addresses are allowed", *upstream)
		}
		if fail.Ratio > 0 {
			return errors.New("--fail-ratio and --upstream exclude each other")
		}
		s.SetUpstream(u)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("fakeprom listening on %s: %d pods, %d series, latency %s, failing %g of queries (%v)", ln.Addr(), layout.Pods(), s.Model().Series(), *latency, fail.Ratio, fail.Kinds)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
