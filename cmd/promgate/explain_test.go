package main

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestExplainSharesServeFlags: every Prometheus, discovery and query flag
// of explain is serve's, with serve's default and help, so that offline
// explain reports the metrics the server lists and the query it sends;
// --prometheus-timeout alone defaults longer.
func TestExplainSharesServeFlags(t *testing.T) {
	serve := allFlags(newServeOptions())
	fss := newExplainOptions().Flags()
	shared := 0
	for _, section := range []string{"prometheus (offline)", "discovery (offline)", "query (offline)"} {
		fs := fss.FlagSets[section]
		if fs == nil {
			t.Fatalf("explain has no %q section", section)
		}
		fs.VisitAll(func(f *pflag.Flag) {
			shared++
			s := serve.Lookup(f.Name)
			switch {
			case s == nil:
				t.Errorf("--%s: serve has no such flag", f.Name)
			case f.Name == "prometheus-timeout":
				if f.DefValue != explainPrometheusTimeout.String() {
					t.Errorf("--%s defaults to %s in explain, want %s", f.Name, f.DefValue, explainPrometheusTimeout)
				}
			case f.DefValue != s.DefValue || f.Usage != s.Usage:
				t.Errorf("--%s: explain's default %q and help differ from serve's %q", f.Name, f.DefValue, s.DefValue)
			}
		})
	}
	if shared < 20 {
		t.Errorf("explain shares %d flags with serve, want every --prometheus-*, discovery and query flag", shared)
	}
}

// TestExplainServerConfig: offline explain's configuration is serve's for
// the same flags, validated the same way.
func TestExplainServerConfig(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		maxAge time.Duration
		err    string
	}{
		{name: "defaults", args: []string{"--config=c.yaml"}, maxAge: time.Minute},
		{name: "max age from relist interval", args: []string{"--config=c.yaml", "--metrics-relist-interval=10m"}, maxAge: 10 * time.Minute},
		{name: "max age", args: []string{"--config=c.yaml", "--metrics-max-age=20m"}, maxAge: 20 * time.Minute},
		{name: "no config", err: "--config is required (or --server to ask the running promgate)"},
		{name: "max age below relist interval", args: []string{"--config=c.yaml", "--metrics-max-age=10s"},
			err: "--metrics-max-age (10s) must not be less than --metrics-relist-interval (1m0s)"},
		{name: "bad header", args: []string{"--config=c.yaml", "--prometheus-header=X-Api-Key: s3cr3t"}, err: "--prometheus-header #1: want Name=Value"},
		{name: "token over http", args: []string{"--config=c.yaml", "--prometheus-token-file=/t"}, err: "--prometheus-token-file (a bearer token) would be sent in the clear"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := newExplainOptions()
			fs := pflag.NewFlagSet("explain", pflag.ContinueOnError)
			for _, f := range o.Flags().FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := o.serverConfig()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			serve, err := newServeOptions().ServerConfig()
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Discovery.EffectiveMaxAge(); got != tt.maxAge {
				t.Errorf("max age %s, want %s", got, tt.maxAge)
			}
			if cfg.Cache != serve.Cache || cfg.Prometheus.Timeout != explainPrometheusTimeout || cfg.Prometheus.URL != serve.Prometheus.URL {
				t.Errorf("config %+v, want serve's %+v but a %s timeout", cfg, serve, explainPrometheusTimeout)
			}
		})
	}
}
