package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestHelpSections: --help lists the flags by section, each promgate flag
// once; explain's help has its own sections and none of the server's.
func TestHelpSections(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		sections []string // in order
		absent   []string
	}{
		{
			args:     []string{"--help"},
			sections: []string{"Available Commands:", "Config flags:", "Prometheus flags:", "Discovery flags:", "Query flags:", "Query cache flags:", "Resource metrics flags:", "Server flags:", "Logging flags:"},
		},
		{
			args:     []string{"serve", "--help"},
			sections: []string{"Config flags:", "Prometheus flags:", "Server flags:", "Logging flags:"},
			absent:   []string{"Available Commands:"},
		},
		{
			args:     []string{"explain", "--help"},
			sections: []string{"Explain flags:", "Prometheus (offline) flags:", "Discovery (offline) flags:", "Query (offline) flags:", "Global flags:"},
			absent:   []string{"--secure-port", "--query-cache-ttl", "Server flags:"},
		},
		{
			args:     []string{"check", "--help"},
			sections: []string{"Global flags:"},
			absent:   []string{"--prometheus-url", "--config "},
		},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			resetKlog(t).capture(t)
			root := newRootCommand(newServeOptions(), func(*serveOptions) error { return nil })
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(tt.args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			help := out.String()
			at := 0
			for _, s := range tt.sections {
				i := strings.Index(help[at:], s)
				if i < 0 {
					t.Fatalf("no %q after offset %d in:\n%s", s, at, help)
				}
				at += i
			}
			for _, s := range tt.absent {
				if strings.Contains(help, s) {
					t.Errorf("help shows %q", s)
				}
			}
		})
	}
}

// TestFlagsInOneSection: every flag of serve is in exactly one section.
func TestFlagsInOneSection(t *testing.T) {
	seen := map[string]string{}
	fss := newServeOptions().Flags()
	for _, name := range fss.Order {
		fss.FlagSets[name].VisitAll(func(f *pflag.Flag) {
			if other, ok := seen[f.Name]; ok {
				t.Errorf("--%s is in sections %q and %q", f.Name, other, name)
			}
			seen[f.Name] = name
		})
	}
	for flag, section := range map[string]string{
		"config": "config", "prometheus-url": "prometheus", "prometheus-max-series": "prometheus",
		"metrics-max-age": "discovery", "query-batching": "query", "query-cache-ttl": "query cache",
		"enable-resource-metrics": "resource metrics", "secure-port": "server", "disable-http2": "server", "v": "logging",
	} {
		if seen[flag] != section {
			t.Errorf("--%s is in section %q, want %q", flag, seen[flag], section)
		}
	}
}
