package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		ratio float64
		env   string
		want  int64
		err   bool
	}{
		{name: "cgroup v2", files: map[string]string{"memory.max": "1073741824\n"}, ratio: 0.9, want: 966367641},
		{name: "cgroup v2 without a limit", files: map[string]string{"memory.max": "max\n"}, ratio: 0.9},
		{name: "cgroup v1", files: map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, ratio: 0.5, want: 268435456},
		{name: "cgroup v1 without a limit", files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, ratio: 0.9},
		{name: "no cgroup files", ratio: 0.9},
		{name: "ratio 0 turns it off", files: map[string]string{"memory.max": "1073741824"}, ratio: 0},
		{name: "GOMEMLIMIT wins", files: map[string]string{"memory.max": "1073741824"}, ratio: 0.9, env: "500MiB"},
		{name: "garbage in the file", files: map[string]string{"memory.max": "lots"}, ratio: 0.9, err: true},
		{name: "a ratio over 1", files: map[string]string{"memory.max": "1073741824"}, ratio: 1.5, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("GOMEMLIMIT", tt.env)
			before := debug.SetMemoryLimit(-1)
			t.Cleanup(func() { debug.SetMemoryLimit(before) })
			got, _, err := Set(root, tt.ratio)
			if (err != nil) != tt.err {
				t.Fatalf("Set: %v, want error %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Set = %d, want %d", got, tt.want)
			}
			runtimeLimit := debug.SetMemoryLimit(-1)
			if tt.want > 0 && runtimeLimit != tt.want {
				t.Errorf("runtime limit %d, want %d", runtimeLimit, tt.want)
			}
			if tt.want == 0 && runtimeLimit != before {
				t.Errorf("runtime limit changed to %d", runtimeLimit)
			}
		})
	}
}
