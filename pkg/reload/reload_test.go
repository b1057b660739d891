package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/component-base/metrics/testutil"
)

func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("good: 1")
	applied := "good: 1"
	var refused []error
	w := &Watcher{
		Path: path,
		Prepare: func(_ context.Context, p string) (func(), error) {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(string(b), "bad") {
				return nil, errors.New("rules[0].name.matches: invalid regular expression")
			}
			return func() { applied = string(b) }, nil
		},
		Refused: func(err error) { refused = append(refused, err) },
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	steps := []struct {
		write      string // "" leaves the file
		force      bool
		wantApply  bool
		applied    string
		successful float64
		refused    int
	}{
		{write: "", wantApply: false, applied: "good: 1", successful: 1},
		{write: "good: 2", wantApply: true, applied: "good: 2", successful: 1},
		{write: "bad: 3", wantApply: false, applied: "good: 2", successful: 0, refused: 1},
		{write: "", wantApply: false, applied: "good: 2", successful: 0, refused: 1}, // not retried every poll
		{write: "", force: true, wantApply: false, applied: "good: 2", successful: 0, refused: 2},
		{write: "good: 4", wantApply: true, applied: "good: 4", successful: 1, refused: 2},
		{write: "", force: true, wantApply: true, applied: "good: 4", successful: 1, refused: 2}, // SIGHUP reapplies
	}
	for i, s := range steps {
		if s.write != "" {
			write(s.write)
		}
		if got := w.Check(ctx, s.force); got != s.wantApply {
			t.Errorf("step %d: Check = %v, want %v", i, got, s.wantApply)
		}
		if applied != s.applied {
			t.Errorf("step %d: serving %q, want %q", i, applied, s.applied)
		}
		if len(refused) != s.refused {
			t.Errorf("step %d: %d refusals, want %d", i, len(refused), s.refused)
		}
		v, err := testutil.GetGaugeMetricValue(lastSuccessful)
		if err != nil || v != s.successful {
			t.Errorf("step %d: promgate_config_last_reload_successful = %v (%v), want %v", i, v, err, s.successful)
		}
	}
}
