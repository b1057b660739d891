package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// chartArgs are the container args of the prometheus-community Helm
// chart's prometheus-adapter Deployment (default values): the binary path
// comes first, because the chart replaces the image's arguments.
var chartArgs = []string{
	"/adapter",
	"--secure-port=6443",
	"--cert-dir=/tmp/cert",
	"--prometheus-url=http://prometheus.default.svc:9090/",
	"--metrics-relist-interval=1m",
	"--v=4",
	"--config=/etc/adapter/config.yaml",
}

// adapterFlags sets every flag prometheus-adapter v0.12.0 accepts: its own
// (cmd/adapter/adapter.go), custom-metrics-apiserver v1.30.0's AdapterBase
// (the apiserver's secure serving, delegated authentication and
// authorization, audit and feature options of k8s.io/apiserver v0.30.0,
// plus the lister's flags), and component-base v0.30.0's logging flags.
var adapterFlags = []string{
	// cmd/adapter/adapter.go
	"--prometheus-url=https://prometheus.monitoring.svc:9090/",
	"--prometheus-auth-incluster=false",
	"--prometheus-auth-config=/etc/prometheus-auth/kubeconfig",
	"--prometheus-ca-file=/etc/prometheus-ca/ca.crt",
	"--prometheus-client-tls-cert-file=/etc/prometheus-tls/tls.crt",
	"--prometheus-client-tls-key-file=/etc/prometheus-tls/tls.key",
	"--prometheus-token-file=/var/run/secrets/prometheus/token",
	"--prometheus-header=X-Scope-OrgID=tenant-1",
	"--prometheus-header=X-Api-Key=key",
	"--prometheus-verb=GET",
	"--config=/etc/adapter/config.yaml",
	"--metrics-relist-interval=10m",
	"--metrics-max-age=20m",
	"--disable-http2",
	// component-base logs.AddFlags
	"--v=2",
	"--vmodule=provider*=4",
	"--log-flush-frequency=5s",
	// custom-metrics-apiserver AdapterBase
	"--lister-kubeconfig=/etc/lister/kubeconfig",
	"--discovery-interval=30s",
	"--client-qps=20",
	"--client-burst=40",
	// SecureServingOptions
	"--bind-address=0.0.0.0",
	"--secure-port=6443",
	"--cert-dir=/var/run/serving-cert",
	"--tls-cert-file=/var/run/serving-cert/tls.crt",
	"--tls-private-key-file=/var/run/serving-cert/tls.key",
	"--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"--tls-min-version=VersionTLS12",
	"--tls-sni-cert-key=/sni/tls.crt,/sni/tls.key:adapter.example",
	"--http2-max-streams-per-connection=1000",
	"--permit-port-sharing=false",
	"--permit-address-sharing=false",
	// DelegatingAuthenticationOptions
	"--authentication-kubeconfig=/etc/authn/kubeconfig",
	"--authentication-token-webhook-cache-ttl=10s",
	"--authentication-skip-lookup=false",
	"--authentication-tolerate-lookup-failure=true",
	"--client-ca-file=/etc/ca/client-ca.crt",
	"--requestheader-client-ca-file=/etc/ca/requestheader-ca.crt",
	"--requestheader-allowed-names=front-proxy-client",
	"--requestheader-username-headers=X-Remote-User",
	"--requestheader-group-headers=X-Remote-Group",
	"--requestheader-extra-headers-prefix=X-Remote-Extra-",
	// DelegatingAuthorizationOptions
	"--authorization-kubeconfig=/etc/authz/kubeconfig",
	"--authorization-webhook-cache-authorized-ttl=10s",
	"--authorization-webhook-cache-unauthorized-ttl=10s",
	"--authorization-always-allow-paths=/healthz,/readyz,/livez",
	// AuditOptions
	"--audit-policy-file=/etc/audit/policy.yaml",
	"--audit-log-path=-",
	"--audit-log-maxage=7",
	"--audit-log-maxbackup=3",
	"--audit-log-maxsize=100",
	"--audit-log-format=json",
	"--audit-log-version=audit.k8s.io/v1",
	"--audit-log-compress=false",
	"--audit-log-mode=blocking",
	"--audit-log-batch-buffer-size=10000",
	"--audit-log-batch-max-size=1",
	"--audit-log-batch-max-wait=0s",
	"--audit-log-batch-throttle-enable=false",
	"--audit-log-batch-throttle-qps=10",
	"--audit-log-batch-throttle-burst=15",
	"--audit-log-truncate-enabled=false",
	"--audit-log-truncate-max-batch-size=10485760",
	"--audit-log-truncate-max-event-size=102400",
	"--audit-webhook-config-file=/etc/audit/webhook.yaml",
	"--audit-webhook-initial-backoff=10s",
	"--audit-webhook-batch-initial-backoff=10s",
	"--audit-webhook-version=audit.k8s.io/v1",
	"--audit-webhook-mode=batch",
	"--audit-webhook-batch-buffer-size=10000",
	"--audit-webhook-batch-max-size=400",
	"--audit-webhook-batch-max-wait=30s",
	"--audit-webhook-batch-throttle-enable=true",
	"--audit-webhook-batch-throttle-qps=10",
	"--audit-webhook-batch-throttle-burst=15",
	"--audit-webhook-truncate-enabled=false",
	"--audit-webhook-truncate-max-batch-size=10485760",
	"--audit-webhook-truncate-max-event-size=102400",
	// FeatureOptions
	"--profiling=true",
	"--contention-profiling=false",
	"--debug-socket-path=",
	"--enable-priority-and-fairness=false",
}

// resetKlog restores klog's verbosity and output when the test ends:
// parsing -v and --vmodule changes them for the whole process.
func resetKlog(t *testing.T) *klogFlags {
	t.Helper()
	k := &klogFlags{}
	klog.InitFlags(&k.fs)
	t.Cleanup(func() {
		klog.Flush()
		k.set(t, "v", "0")
		k.set(t, "vmodule", "")
		k.set(t, "logtostderr", "true")
		klog.SetOutput(os.Stderr)
	})
	return k
}

type klogFlags struct{ fs flag.FlagSet }

func (k *klogFlags) set(t *testing.T, name, value string) {
	t.Helper()
	if err := k.fs.Set(name, value); err != nil {
		t.Fatal(err)
	}
}

// capture sends klog's output to the returned buffer.
func (k *klogFlags) capture(t *testing.T) *syncBuffer {
	buf := &syncBuffer{}
	k.set(t, "logtostderr", "false")
	k.set(t, "alsologtostderr", "false")
	klog.SetOutput(buf)
	return buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// execute runs promgate's real command tree on args with a serve function
// that only records the options it was given.
func execute(args ...string) (*serveOptions, bool, error) {
	o := newServeOptions()
	served := false
	root := newRootCommand(o, func(got *serveOptions) error {
		if got != o {
			return fmt.Errorf("serve got other options")
		}
		served = true
		return nil
	})
	root.SetArgs(args)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return o, served, root.Execute()
}

// allFlags is every flag of o, in one set.
func allFlags(o *serveOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("promgate", pflag.ContinueOnError)
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	return fs
}

func TestChartArgs(t *testing.T) {
	log := resetKlog(t).capture(t)
	o, served, err := execute(chartArgs...)
	if err != nil || !served {
		t.Fatalf("promgate %s: served %v, error %v", strings.Join(chartArgs, " "), served, err)
	}
	ss := o.Server.Adapter.CustomMetricsAdapterServerOptions.SecureServing
	for _, c := range []struct {
		flag      string
		got, want any
	}{
		{"--secure-port", ss.BindPort, 6443},
		{"--cert-dir", ss.ServerCert.CertDirectory, "/tmp/cert"},
		{"--prometheus-url", o.Prometheus.Client.URL, "http://prometheus.default.svc:9090/"},
		{"--metrics-relist-interval", o.Discovery.RelistInterval, time.Minute},
		{"--v", bool(klog.V(4).Enabled()) && !klog.V(5).Enabled(), true},
		{"--config", o.Config.File, "/etc/adapter/config.yaml"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.flag, c.got, c.want)
		}
	}
	if errs := o.Validate(); len(errs) > 0 {
		t.Errorf("Validate() = %q, want no errors", errs)
	}
	klog.Flush()
	if out := log.String(); !strings.Contains(out, `Ignoring the argument "/adapter": it names the prometheus-adapter binary`) {
		t.Errorf("no warning about /adapter in the log:\n%s", out)
	}
}

func TestEveryAdapterFlag(t *testing.T) {
	resetKlog(t).capture(t)
	seen := map[string]bool{}
	for _, a := range adapterFlags {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if name != "prometheus-header" && seen[name] {
			t.Errorf("adapterFlags sets --%s twice", name)
		}
		seen[name] = true
	}
	if len(seen) != 81 {
		t.Errorf("adapterFlags has %d flags, prometheus-adapter v0.12.0 has 81", len(seen))
	}
	for _, args := range [][]string{adapterFlags, append([]string{"/adapter"}, adapterFlags...), append([]string{"serve"}, adapterFlags...)} {
		o, served, err := execute(args...)
		if err != nil || !served {
			t.Fatalf("promgate %.40s...: served %v, error %v", strings.Join(args, " "), served, err)
		}
		cfg, err := o.ServerConfig()
		if err != nil {
			t.Fatal(err)
		}
		ss := cfg.Adapter.CustomMetricsAdapterServerOptions.SecureServing
		if !ss.DisableHTTP2Serving || !o.Server.DisableHTTP2 {
			t.Errorf("--disable-http2 did not disable HTTP/2 serving")
		}
		if cfg.Prometheus.Verb != "GET" || cfg.Discovery.MaxAge != 20*time.Minute || cfg.Adapter.RemoteKubeConfigFile != "/etc/lister/kubeconfig" || len(cfg.Prometheus.Headers) != 2 {
			t.Errorf("flags not applied: verb %q, max age %s, lister kubeconfig %q, headers %d", cfg.Prometheus.Verb, cfg.Discovery.MaxAge, cfg.Adapter.RemoteKubeConfigFile, len(cfg.Prometheus.Headers))
		}
	}
}

func TestArgs(t *testing.T) {
	resetKlog(t).capture(t)
	tests := []struct {
		args []string
		err  string // "" when promgate serves
	}{
		{args: []string{"--config=c.yaml"}},
		{args: []string{"/adapter", "--config=c.yaml"}},
		{args: []string{"adapter", "--config=c.yaml"}},
		{args: []string{"/usr/local/bin/prometheus-adapter", "--config=c.yaml"}},
		{args: []string{"--config=c.yaml", "/adapter"}},
		{args: []string{"serve", "/adapter", "--config=c.yaml"}},
		{args: []string{"--prometheus_url=http://p:9090/", "--config=c.yaml"}}, // "_" for "-", as component-base allows
		{args: []string{"frobnicate"}, err: `unknown command "frobnicate" for "promgate" (commands: check, completion, explain, serve;`},
		{args: []string{"/bin/sh", "--config=c.yaml"}, err: `unknown command "/bin/sh" for "promgate"`},
		{args: []string{"/adapter", "extra"}, err: `unknown command "extra" for "promgate"`},
		{args: []string{"/adapter", "/adapter"}, err: `unknown command "/adapter" for "promgate"`},
		{args: []string{"adapters"}, err: `unknown command "adapters"`},
		{args: []string{"serve", "extra"}, err: `unknown command "extra" for "promgate serve"`},
		{args: []string{"--no-such-flag"}, err: "unknown flag: --no-such-flag"},
		{args: []string{"/adapter", "--prometheus-url"}, err: "flag needs an argument: --prometheus-url"},
		{args: []string{"--metrics-relist-interval=10"}, err: `invalid argument "10" for "--metrics-relist-interval"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, served, err := execute(tt.args...)
			if tt.err == "" {
				if err != nil || !served {
					t.Fatalf("served %v, error %v; want served", served, err)
				}
				return
			}
			if served || err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("served %v, error %v; want error %q", served, err, tt.err)
			}
		})
	}
}

func TestDefaultsDocumented(t *testing.T) {
	// Defaults that differ from prometheus-adapter's on purpose say so.
	fs := allFlags(newServeOptions())
	for name, want := range map[string]string{
		"prometheus-url":          "http://localhost:9090/",
		"prometheus-verb":         "POST",
		"prometheus-timeout":      "10s",
		"metrics-relist-interval": "1m0s",
		"query-cache-ttl":         "auto",
		"query-batching":          "true",
		"discovery-interval":      "1m0s",
	} {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("--%s is missing", name)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %s, want %s", name, f.DefValue, want)
		}
		if !strings.Contains(f.Usage, "prometheus-adapter") {
			t.Errorf("--%s help does not say how prometheus-adapter differs: %q", name, f.Usage)
		}
	}
}
