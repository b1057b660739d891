package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
)

func TestEffectiveMaxAge(t *testing.T) {
	for _, tt := range []struct {
		relist, maxAge, want time.Duration
	}{
		{relist: time.Minute, want: time.Minute},
		{relist: 10 * time.Minute, want: 10 * time.Minute},
		{relist: time.Minute, maxAge: 20 * time.Minute, want: 20 * time.Minute},
	} {
		d := DiscoveryConfig{RelistInterval: tt.relist, MaxAge: tt.maxAge}
		if got := d.EffectiveMaxAge(); got != tt.want {
			t.Errorf("relist %s, max age %s: effective %s, want %s", tt.relist, tt.maxAge, got, tt.want)
		}
	}
}

// TestComplete: a completed server has the file's bytes (what the reload
// watcher records) and its backends; errors name the file at fault.
func TestComplete(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := "rules:\n- seriesQuery: 'x{namespace!=\"\",pod!=\"\"}'\n  resources: {template: <<.Resource>>}\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\nbackends:\n- name: b\n  url: https://b:9090\n"
	for _, tt := range []struct {
		name, path, err string
		backends        []string
	}{
		{name: "rules and a backend", path: write("good.yaml", good), backends: []string{config.DefaultBackend, "b"}},
		{name: "missing", path: filepath.Join(dir, "missing.yaml"), err: "reading config"},
		{name: "bad YAML", path: write("bad.yaml", "rules: {"), err: "bad.yaml"},
		{name: "bad regex", path: write("regex.yaml", "rules:\n- seriesQuery: x\n  name: {matches: '('}\n  metricsQuery: x\n"), err: "regex.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{
				ConfigFile: tt.path,
				Prometheus: prom.Options{URL: "http://localhost:9090/", Timeout: time.Second, Verb: "POST"},
				Discovery:  DiscoveryConfig{Method: config.MethodSeries, RelistInterval: time.Minute},
				Cache:      CacheConfig{TTL: time.Second, MinTTL: time.Second, MaxTTL: time.Minute, MaxConcurrent: 1},
			}
			s, err := c.Complete()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(s.file.data) != good || len(s.file.custom) != 1 {
				t.Errorf("file %q with %d rules", s.file.data, len(s.file.custom))
			}
			if got := s.backends.Names(); strings.Join(got, ",") != strings.Join(tt.backends, ",") {
				t.Errorf("backends %q, want %q", got, tt.backends)
			}
		})
	}
}
