package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/prom"
)

func TestServeOptionsValidate(t *testing.T) {
	const secret = "s3cr3t-api-key"
	tests := []struct {
		name string
		args []string
		want []string // substrings of the errors, in order
	}{
		{name: "defaults", args: nil},
		{name: "chart args", args: chartArgs},
		{name: "token over https", args: []string{"--prometheus-url=https://p:9090/", "--prometheus-token-file=/t"}},
		{name: "token over http allowed", args: []string{"--prometheus-token-file=/t", "--prometheus-allow-credentials-over-http"}},
		{name: "tenant and API key headers", args: []string{"--prometheus-header=X-Scope-OrgID=a", "--prometheus-header=X-Api-Key=" + secret, "--prometheus-header=X-Empty="}},
		{name: "max age equal to relist interval", args: []string{"--metrics-relist-interval=5m", "--metrics-max-age=5m"}},
		{name: "max age from relist interval", args: []string{"--metrics-relist-interval=10m"}},
		{name: "answer limits", args: []string{"--prometheus-max-response-bytes=1048576", "--prometheus-max-samples=1000", "--prometheus-max-series=50000"}},
		{name: "answer limits off", args: []string{"--prometheus-max-response-bytes=-1", "--prometheus-max-samples=-1", "--prometheus-max-series=-1"}},

		{name: "no config", args: []string{"--config="}, want: []string{"--config is required"}},
		{name: "max age below relist interval", args: []string{"--metrics-relist-interval=10m", "--metrics-max-age=5m"},
			want: []string{"--metrics-max-age (5m0s) must not be less than --metrics-relist-interval (10m0s)"}},
		{name: "negative max age", args: []string{"--metrics-max-age=-1s"}, want: []string{"--metrics-max-age must not be negative"}},
		{name: "discovery method series", args: []string{"--discovery-method=series"}},
		{name: "unknown discovery method", args: []string{"--discovery-method=labels"}, want: []string{`--discovery-method: discovery method "labels": want auto, index or series`}},
		{name: "zero relist interval", args: []string{"--metrics-relist-interval=0"}, want: []string{"--metrics-relist-interval must be positive"}},
		{name: "zero discovery interval", args: []string{"--discovery-interval=0"}, want: []string{"--discovery-interval must be positive"}},
		{name: "zero timeout", args: []string{"--prometheus-timeout=0"}, want: []string{"--prometheus-timeout must be positive"}},
		{name: "memory limit ratio off", args: []string{"--memory-limit-ratio=0"}},
		{name: "memory limit ratio over 1", args: []string{"--memory-limit-ratio=1.5"}, want: []string{"--memory-limit-ratio 1.5: want 0 (none) to 1"}},
		{name: "negative memory limit ratio", args: []string{"--memory-limit-ratio=-0.1"}, want: []string{"--memory-limit-ratio -0.1: want 0 (none) to 1"}},
		{name: "negative cache TTL", args: []string{"--query-cache-ttl=-1s"}, want: []string{"--query-cache-ttl must not be negative"}},
		{name: "cache min TTL above max", args: []string{"--query-cache-min-ttl=2m"}, want: []string{"--query-cache-min-ttl (2m0s) must not be more than --query-cache-max-ttl (1m0s)"}},
		{name: "zero cache max TTL", args: []string{"--query-cache-max-ttl=0"}, want: []string{"--query-cache-min-ttl and --query-cache-max-ttl must be positive"}},
		{name: "no concurrency", args: []string{"--max-concurrent-queries=0"}, want: []string{"--max-concurrent-queries must be at least 1"}},
		{name: "no names", args: []string{"--max-names-in-query=0"}, want: []string{"--max-names-in-query must be at least 1"}},
		{name: "zero resource timeout", args: []string{"--resource-metrics-timeout=0"}, want: []string{"--resource-metrics-timeout must be positive"}},
		{name: "verb", args: []string{"--prometheus-verb=PATCH"}, want: []string{`prometheus verb must be GET or POST, not "PATCH" (--prometheus-verb)`}},

		{name: "header without =", args: []string{"--prometheus-header=X-Api-Key: " + secret},
			want: []string{"--prometheus-header #1: want Name=Value (not shown"}},
		{name: "header name with a space", args: []string{"--prometheus-header=Authorization: Bearer " + secret + "=="},
			want: []string{`--prometheus-header #1: the text before "=" is not a header name`}},
		{name: "header with a line break", args: []string{"--prometheus-header=X-Scope-OrgID=a", "--prometheus-header=X-Api-Key=" + secret + "\r\nX: y"},
			want: []string{"--prometheus-header #2 (X-Api-Key): the value has a line break or NUL (value not shown)"}},
		{name: "empty header name", args: []string{"--prometheus-header==" + secret}, want: []string{"--prometheus-header #1: the text before"}},

		{name: "token over http", args: []string{"--prometheus-token-file=/t"},
			want: []string{"--prometheus-token-file (a bearer token) would be sent in the clear to http://localhost:9090/ (--prometheus-url is plain http://): use an https:// URL, or set --prometheus-allow-credentials-over-http"}},
		{name: "chart args with in-cluster auth", args: append(chartArgs[1:len(chartArgs):len(chartArgs)], "--prometheus-auth-incluster"),
			want: []string{"--prometheus-auth-incluster (the service account token) would be sent in the clear to http://prometheus.default.svc:9090/"}},
		{name: "Authorization header over http", args: []string{"--prometheus-header=Authorization=Bearer " + secret},
			want: []string{"--prometheus-header Authorization=... would be sent in the clear"}},
		{name: "auth config and token file", args: []string{"--prometheus-url=https://p/", "--prometheus-auth-config=/k", "--prometheus-token-file=/t"},
			want: []string{"--prometheus-token-file conflicts with --prometheus-auth-config"}},
		{name: "in-cluster and client certificate", args: []string{"--prometheus-url=https://p/", "--prometheus-auth-incluster", "--prometheus-client-tls-cert-file=/c", "--prometheus-client-tls-key-file=/k"},
			want: []string{"--prometheus-client-tls-cert-file conflicts with --prometheus-auth-incluster", "--prometheus-client-tls-key-file conflicts with --prometheus-auth-incluster"}},
		{name: "auth config and in-cluster", args: []string{"--prometheus-url=https://p/", "--prometheus-auth-config=/k", "--prometheus-auth-incluster"},
			want: []string{"--prometheus-auth-config conflicts with --prometheus-auth-incluster"}},
		{name: "client key alone", args: []string{"--prometheus-client-tls-key-file=/k"},
			want: []string{"--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"}},
		{name: "all at once", args: []string{"--config=", "--metrics-relist-interval=0", "--prometheus-header=bad", "--prometheus-token-file=/t"},
			want: []string{"--config is required", "--metrics-relist-interval must be positive", "--prometheus-header #1", "--prometheus-token-file (a bearer token) would be sent in the clear"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetKlog(t).capture(t)
			args := append([]string{"--config=/etc/adapter/config.yaml"}, tt.args...)
			o, _, err := execute(args...)
			if err != nil {
				t.Fatalf("parsing %q: %v", args, err)
			}
			errs := o.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d errors %q", errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, err, tt.want[i])
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %d = %q shows the secret", i, err)
				}
			}
		})
	}
}

func TestPromOptionsHeaders(t *testing.T) {
	o := newServeOptions()
	o.Prometheus.Headers = []string{"X-Scope-OrgID=a", "x-extra=1", " X-Extra =2=3", "X-Empty="}
	cfg, err := o.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	// Names are canonical, so that repeated headers keep every value in order.
	want := map[string][]string{"X-Scope-Orgid": {"a"}, "X-Extra": {"1", "2=3"}, "X-Empty": {""}}
	if !reflect.DeepEqual(cfg.Prometheus.Headers, want) {
		t.Errorf("headers = %q, want %q", cfg.Prometheus.Headers, want)
	}
	if o.Prometheus.Client.Headers != nil {
		t.Errorf("ServerConfig changed the options: %q", o.Prometheus.Client.Headers)
	}
}

// TestDisableHTTP2: --disable-http2 reaches the apiserver's secure
// serving options in the server's configuration.
func TestDisableHTTP2(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--disable-http2"}, true},
		{[]string{"--disable-http2-serving"}, true},
		{[]string{"--disable-http2=false"}, false},
	} {
		resetKlog(t).capture(t)
		o, _, err := execute(tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := o.ServerConfig()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Adapter.CustomMetricsAdapterServerOptions.SecureServing.DisableHTTP2Serving; got != tt.want {
			t.Errorf("%q: HTTP/2 disabled = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// TestLimitFlags: the answer limit flags fill prom.Limits as given (0:
// pkg/prom's defaults; negative: no limit), and a value that is no integer
// is refused while parsing.
func TestLimitFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want prom.Limits
		err  string
	}{
		{args: nil, want: prom.Limits{}},
		{args: []string{"--prometheus-max-series=50000"}, want: prom.Limits{MaxSeries: 50000}},
		{args: []string{"--prometheus-max-series=0"}, want: prom.Limits{}},
		{args: []string{"--prometheus-max-series=-1"}, want: prom.Limits{MaxSeries: -1}},
		{args: []string{"--prometheus-max-samples=1000"}, want: prom.Limits{MaxSamples: 1000}},
		{args: []string{"--prometheus-max-response-bytes=1048576"}, want: prom.Limits{MaxResponseBytes: 1 << 20}},
		{
			args: []string{"--prometheus-max-response-bytes=-1", "--prometheus-max-samples=10", "--prometheus-max-series=20", "--prometheus-allow-partial-response"},
			want: prom.Limits{MaxResponseBytes: -1, MaxSamples: 10, MaxSeries: 20, AllowPartialResponse: true},
		},
		{args: []string{"--prometheus-max-series=2M"}, err: `invalid argument "2M" for "--prometheus-max-series" flag`},
		{args: []string{"--prometheus-max-series=1.5"}, err: `invalid argument "1.5" for "--prometheus-max-series" flag`},
		{args: []string{"--prometheus-max-series"}, err: "flag needs an argument: --prometheus-max-series"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			resetKlog(t).capture(t)
			o, _, err := execute(append([]string{"--config=/etc/adapter/config.yaml"}, tt.args...)...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Prometheus.Limits != tt.want {
				t.Errorf("limits %+v, want %+v", o.Prometheus.Limits, tt.want)
			}
			if errs := o.Validate(); len(errs) > 0 {
				t.Errorf("Validate() = %q, want no errors", errs)
			}
		})
	}
}

// TestLimitFlagsHelp: each answer limit's help gives its default, which
// is pkg/prom's, and what negative means.
func TestLimitFlagsHelp(t *testing.T) {
	fs := allFlags(newServeOptions())
	for _, tt := range []struct{ flag, def string }{
		{prom.FlagMaxResponseBytes, "0: 64 MiB"},
		{prom.FlagMaxSamples, fmt.Sprintf("0: %s", thousands(prom.DefaultMaxSamples))},
		{prom.FlagMaxSeries, fmt.Sprintf("0: %s", thousands(prom.DefaultMaxSeries))},
	} {
		f := fs.Lookup(strings.TrimPrefix(tt.flag, "--"))
		if f == nil {
			t.Errorf("%s is missing", tt.flag)
			continue
		}
		if f.DefValue != "0" || !strings.Contains(f.Usage, tt.def) || !strings.Contains(f.Usage, "negative: no limit") {
			t.Errorf("%s: default %s, help %q; want 0, with %q and \"negative: no limit\"", tt.flag, f.DefValue, f.Usage, tt.def)
		}
	}
}

// thousands formats n with commas: 2,000,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestQueryCacheTTL(t *testing.T) {
	for _, tt := range []struct {
		args []string
		auto bool
		ttl  time.Duration
		err  string
	}{
		{args: nil, auto: true, ttl: 5 * time.Second},
		{args: []string{"--query-cache-ttl=auto"}, auto: true, ttl: 5 * time.Second},
		{args: []string{"--query-cache-ttl=10s"}, ttl: 10 * time.Second},
		{args: []string{"--query-cache-ttl=0"}, ttl: 0},
		{args: []string{"--query-cache-ttl=0", "--query-cache-ttl=auto"}, auto: true, ttl: 5 * time.Second},
		{args: []string{"--query-cache-ttl=Auto"}, err: `invalid argument "Auto" for "--query-cache-ttl" flag: want "auto" or a duration such as 5s`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			resetKlog(t).capture(t)
			o, _, err := execute(tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Cache.Auto != tt.auto || o.Cache.TTL != tt.ttl {
				t.Errorf("auto %v, TTL %v; want %v, %v", o.Cache.Auto, o.Cache.TTL, tt.auto, tt.ttl)
			}
		})
	}
}
