package reload

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/component-base/metrics/testutil"
)

func TestMain(m *testing.M) {
	RegisterMetrics() // as the server does at start
	os.Exit(m.Run())
}

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
		Prepare: func(_ context.Context, _ string, b []byte) (func(), error) {
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

// TestHashedIsApplied races a write against a reload: the file changes
// after the Watcher read (and hashed) it but before Prepare. The content
// applied or refused must be the content whose hash is recorded, or the
// next poll compares against a hash that describes nothing that was
// applied. With a Prepare that read the file again, a good content
// followed by a half-written one was refused under the good one's hash,
// and once the writer restored the good content it was never applied.
func TestHashedIsApplied(t *testing.T) {
	tests := []struct {
		name    string
		hashed  string // the file when the Watcher reads it
		between string // written after that read, before Prepare
		after   string // then the file settles on this
		applied string // serving after the race's Check
		settled string // serving after the next poll
	}{
		{name: "good, then half-written, then good again", hashed: "good: 2", between: "bad: half", after: "good: 2", applied: "good: 2", settled: "good: 2"},
		{name: "good, then briefly good 3, then good 2", hashed: "good: 2", between: "good: 3", after: "good: 2", applied: "good: 2", settled: "good: 2"},
		{name: "bad, then good", hashed: "bad: 2", between: "good: 3", after: "good: 3", applied: "good: 1", settled: "good: 3"},
		{name: "good, then a later good", hashed: "good: 2", between: "good: 3", after: "good: 3", applied: "good: 2", settled: "good: 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			write := func(s string) {
				t.Helper()
				if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("good: 1")
			applied := "good: 1"
			between := ""
			read := "" // what the file held when the Watcher read it
			w := &Watcher{
				Path: path,
				Prepare: func(_ context.Context, _ string, b []byte) (func(), error) {
					if between != "" { // the racing writer, deterministically between read and Prepare
						write(between)
						between = ""
					}
					if string(b) != read {
						t.Errorf("Prepare got %q, not the content the Watcher read (%q)", b, read)
					}
					if strings.HasPrefix(string(b), "bad") {
						return nil, errors.New("refused")
					}
					return func() { applied = string(b) }, nil
				},
			}
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			write(tt.hashed)
			read, between = tt.hashed, tt.between
			w.Check(ctx, false)
			if applied != tt.applied {
				t.Errorf("after the racing write: serving %q, want %q", applied, tt.applied)
			}
			if w.hash != sha256.Sum256([]byte(tt.hashed)) {
				t.Errorf("the recorded hash is not that of %q, the content Prepare was given", tt.hashed)
			}
			write(tt.after)
			read = tt.after
			w.Check(ctx, false)
			if applied != tt.settled {
				t.Errorf("after the file settled on %q: serving %q, want %q", tt.after, applied, tt.settled)
			}
		})
	}
}

// TestStartWith checks that the content recorded at start is the content
// the server loaded, not what the file holds by the time the Watcher
// starts: a write in between is applied by the first poll.
func TestStartWith(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("good: 2"), 0o600); err != nil {
		t.Fatal(err)
	}
	applied := "good: 1"
	w := &Watcher{
		Path: path,
		Prepare: func(_ context.Context, _ string, b []byte) (func(), error) {
			return func() { applied = string(b) }, nil
		},
	}
	w.StartWith([]byte(applied)) // the server loaded good: 1; the file changed since
	if !w.Check(context.Background(), false) || applied != "good: 2" {
		t.Errorf("first poll: serving %q, want the file's %q", applied, "good: 2")
	}
	if w.Check(context.Background(), false) {
		t.Errorf("second poll reloaded an unchanged file")
	}
}
