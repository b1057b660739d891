package workload

import (
	"strings"
	"testing"
)

func TestResolveHTTP(t *testing.T) {
	tests := []struct {
		name      string
		ann       map[string]string
		ov        HTTPOverride
		wantRPS   float64
		wantRatio float64
		wantErrs  []string // substrings, in order
	}{
		{name: "defaults", wantRPS: 1, wantRatio: 0},
		{name: "annotations", ann: map[string]string{AnnotationRPS: "2.5", AnnotationErrorRatio: "0.2"}, wantRPS: 2.5, wantRatio: 0.2},
		{name: "zero rps", ann: map[string]string{AnnotationRPS: "0"}, wantRPS: 0},
		{name: "whole error", ann: map[string]string{AnnotationErrorRatio: "1"}, wantRPS: 1, wantRatio: 1},
		{name: "override beats annotation", ann: map[string]string{AnnotationRPS: "2.5", AnnotationErrorRatio: "0.2"},
			ov: HTTPOverride{RPS: ptr(10.0)}, wantRPS: 10, wantRatio: 0.2},
		{name: "override both", ov: HTTPOverride{RPS: ptr(3.0), ErrorRatio: ptr(0.5)}, wantRPS: 3, wantRatio: 0.5},
		{name: "bad rps", ann: map[string]string{AnnotationRPS: "fast"}, wantRPS: 1, wantErrs: []string{AnnotationRPS}},
		{name: "negative rps", ann: map[string]string{AnnotationRPS: "-1"}, wantRPS: 1, wantErrs: []string{"finite number >= 0"}},
		{name: "NaN rps", ann: map[string]string{AnnotationRPS: "NaN"}, wantRPS: 1, wantErrs: []string{"finite"}},
		{name: "ratio above 1", ann: map[string]string{AnnotationErrorRatio: "1.5"}, wantRPS: 1, wantErrs: []string{"not in [0, 1]"}},
		{name: "both bad, override rescues rps", ann: map[string]string{AnnotationRPS: "x", AnnotationErrorRatio: "y"},
			ov: HTTPOverride{RPS: ptr(7.0)}, wantRPS: 7, wantErrs: []string{AnnotationRPS, AnnotationErrorRatio}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rps, ratio, errs := resolveHTTP(tc.ann, tc.ov)
			approx(t, "rps", rps, tc.wantRPS)
			approx(t, "ratio", ratio, tc.wantRatio)
			checkErrs(t, errs, tc.wantErrs)
		})
	}
}

func TestResolveContainer(t *testing.T) {
	ann := map[string]string{
		AnnotationCPU:              "250m",
		AnnotationCPU + ".sidecar": "50m",
		AnnotationCPU + ".POD":     "7m",
		AnnotationMemory:           "1.5Gi",
		AnnotationMemory + ".bad":  "lots",
	}
	tests := []struct {
		name      string
		ann       map[string]string
		ov        resourceOverride
		base      string
		container string
		def       int64
		want      int64
		wantErrs  []string
	}{
		{name: "cpu default", base: AnnotationCPU, container: "app", def: DefaultContainerMilliCPU, want: 100},
		{name: "memory default", base: AnnotationMemory, container: "app", def: DefaultContainerMemory, want: 64 << 20},
		{name: "cpu pod annotation", ann: ann, base: AnnotationCPU, container: "app", def: DefaultContainerMilliCPU, want: 250},
		{name: "cpu container annotation", ann: ann, base: AnnotationCPU, container: "sidecar", def: DefaultContainerMilliCPU, want: 50},
		{name: "cpu whole cores", ann: map[string]string{AnnotationCPU: "2"}, base: AnnotationCPU, container: "app", def: 100, want: 2000},
		{name: "memory pod annotation", ann: ann, base: AnnotationMemory, container: "app", def: DefaultContainerMemory, want: 3 << 29},
		{name: "memory decimal", ann: map[string]string{AnnotationMemory: "100M"}, base: AnnotationMemory, container: "app", def: 1, want: 100_000_000},
		{name: "bad container annotation falls back to pod", ann: ann, base: AnnotationMemory, container: "bad", def: 1,
			want: 3 << 29, wantErrs: []string{AnnotationMemory + ".bad"}},
		{name: "pause ignores pod-wide annotation", ann: map[string]string{AnnotationCPU: "250m"}, base: AnnotationCPU, container: PauseContainer, def: PauseMilliCPU, want: 5},
		{name: "pause honours its own annotation", ann: ann, base: AnnotationCPU, container: PauseContainer, def: PauseMilliCPU, want: 7},
		{name: "override for all beats annotations", ann: ann, ov: resourceOverride{"": 500}, base: AnnotationCPU, container: "sidecar", def: 100, want: 500},
		{name: "override for container beats override for all", ann: ann, ov: resourceOverride{"": 500, "sidecar": 20}, base: AnnotationCPU, container: "sidecar", def: 100, want: 20},
		{name: "override for all skips pause", ann: ann, ov: resourceOverride{"": 500}, base: AnnotationCPU, container: PauseContainer, def: PauseMilliCPU, want: 7},
		{name: "override for pause", ov: resourceOverride{PauseContainer: 9}, base: AnnotationCPU, container: PauseContainer, def: PauseMilliCPU, want: 9},
		{name: "negative", ann: map[string]string{AnnotationCPU: "-1"}, base: AnnotationCPU, container: "app", def: 100, want: 100, wantErrs: []string{"negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parse := parseMilliCPU
			if tc.base == AnnotationMemory {
				parse = parseBytes
			}
			got, errs := resolveContainer(tc.ann, tc.ov, tc.base, tc.container, tc.def, parse)
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			checkErrs(t, errs, tc.wantErrs)
		})
	}
}

func TestResolveNode(t *testing.T) {
	tests := []struct {
		name     string
		ann      map[string]string
		ov       *int64
		want     int64
		wantErrs []string
	}{
		{name: "default", want: DefaultNodeMilliCPU},
		{name: "annotation", ann: map[string]string{AnnotationCPU: "3"}, want: 3000},
		{name: "override", ann: map[string]string{AnnotationCPU: "3"}, ov: ptr(int64(750)), want: 750},
		{name: "bad annotation", ann: map[string]string{AnnotationCPU: "many"}, want: DefaultNodeMilliCPU, wantErrs: []string{"not a quantity"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := resolveNode(tc.ann, tc.ov, AnnotationCPU, DefaultNodeMilliCPU, parseMilliCPU)
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
			checkErrs(t, errs, tc.wantErrs)
		})
	}
}

// checkErrs checks that errs has one entry per want, each containing it.
func checkErrs(t *testing.T, errs, want []string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("errors %q, want %d containing %q", errs, len(want), want)
	}
	for i := range want {
		if !strings.Contains(errs[i], want[i]) {
			t.Errorf("error %q does not contain %q", errs[i], want[i])
		}
	}
}
