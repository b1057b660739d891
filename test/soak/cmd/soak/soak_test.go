package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

func TestQuarter(t *testing.T) {
	d := 4 * time.Minute
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {59 * time.Second, 1}, {time.Minute, 2}, {119 * time.Second, 2}, {3 * time.Minute, 4}, {d, 4}, {d + time.Second, 4}} {
		if got := quarter(tc.at, d); got != tc.want {
			t.Errorf("quarter(%v, %v) = %d, want %d", tc.at, d, got, tc.want)
		}
	}
}

// samples returns one sample every 10s of a 4-minute run, with goroutines
// and RSS given per quarter.
func samples(goroutines, rssMiB [4]float64) []sample {
	var out []sample
	for at := time.Duration(0); at <= 4*time.Minute; at += 10 * time.Second {
		q := quarter(at, 4*time.Minute) - 1
		out = append(out, sample{At: at, selfMetrics: selfMetrics{Goroutines: goroutines[q], RSSBytes: rssMiB[q] * (1 << 20)}})
	}
	return out
}

func TestJudge(t *testing.T) {
	rssC, gorC := criterion{Rel: 0.10}, criterion{Abs: 10}
	rss := func(m selfMetrics) float64 { return m.RSSBytes }
	gor := func(m selfMetrics) float64 { return m.Goroutines }
	for _, tc := range []struct {
		name           string
		goroutines     [4]float64
		rssMiB         [4]float64
		wantGor, wantR bool
	}{
		{"steady", [4]float64{100, 120, 121, 125}, [4]float64{80, 100, 104, 109}, true, true},
		{"warm-up growth is not counted", [4]float64{20, 120, 120, 120}, [4]float64{10, 100, 100, 100}, true, true},
		{"falling is flat", [4]float64{100, 150, 130, 110}, [4]float64{100, 120, 110, 90}, true, true},
		{"goroutine leak", [4]float64{100, 120, 140, 160}, [4]float64{100, 100, 100, 100}, false, true},
		{"RSS growth", [4]float64{100, 100, 100, 100}, [4]float64{100, 100, 110, 111}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := samples(tc.goroutines, tc.rssMiB)
			if g := judge("goroutines", s, 4*time.Minute, gorC, gor); g.Flat != tc.wantGor || !g.Judgable {
				t.Errorf("goroutines: %s, want flat=%v", g, tc.wantGor)
			}
			if r := judge("RSS", s, 4*time.Minute, rssC, rss); r.Flat != tc.wantR || !r.Judgable {
				t.Errorf("RSS: %s, want flat=%v", r, tc.wantR)
			}
		})
	}
	// A sample taken while a hung backend query holds requests is load, not a leak.
	s := samples([4]float64{110, 113, 113, 113}, [4]float64{100, 100, 100, 100})
	s[len(s)-3].Goroutines = 360
	if g := judge("goroutines", s, 4*time.Minute, gorC, gor); !g.Flat {
		t.Errorf("one spike: %s, want flat", g)
	}
	// Too few samples: inconclusive, hence not flat.
	few := []sample{{At: 0}, {At: 90 * time.Second}, {At: 4 * time.Minute}}
	if g := judge("goroutines", few, 4*time.Minute, gorC, gor); g.Judgable || g.Flat || !strings.Contains(g.String(), "INCONCLUSIVE") {
		t.Errorf("3 samples: %s", g)
	}
}

func TestParseSelfMetrics(t *testing.T) {
	body := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 104
go_memstats_heap_inuse_bytes 3.6e+07
go_gc_duration_seconds{quantile="0"} 1e-05
process_open_fds 17
process_resident_memory_bytes 1.02117376e+08
process_resident_memory_bytes_other 5
`
	m, err := parseSelfMetrics([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if m.Goroutines != 104 || m.RSSBytes != 1.02117376e+08 || m.HeapBytes != 3.6e7 || m.OpenFDs != 17 {
		t.Errorf("parsed %+v", m)
	}
	if _, err := parseSelfMetrics([]byte("go_goroutines 3\n")); err == nil || !strings.Contains(err.Error(), "process_resident_memory_bytes") {
		t.Errorf("without RSS: %v", err)
	}
}

func TestPlan(t *testing.T) {
	layout, err := fakeprom.ParseLayout("ns-[0-9]=100")
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPlanner(layout, "pods=2,external=1,resource=1", 12, 20)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	byAPI := map[string]int{}
	paths := map[string]bool{}
	for i := range n {
		r := p.at(i)
		byAPI[r.api]++
		paths[r.path] = true
		u, err := url.Parse(r.path)
		if err != nil {
			t.Fatal(err)
		}
		sel := u.Query().Get("labelSelector")
		switch r.api {
		case "pods", "resource":
			// pod j of a namespace has app=app-<j mod 20>: 100 pods, 5 per app.
			if !strings.HasPrefix(sel, "app=app-") || r.want != 5 {
				t.Fatalf("%s: selector %q, want %d", r.path, sel, r.want)
			}
		case "external":
			if !strings.HasPrefix(sel, "queue=q-") || r.want != 1 {
				t.Fatalf("%s: selector %q, want %d", r.path, sel, r.want)
			}
		}
	}
	if byAPI["pods"] != n/2 || byAPI["external"] != n/4 || byAPI["resource"] != n/4 {
		t.Errorf("requests by API: %v, want 2:1:1", byAPI)
	}
	// Consecutive requests of one API differ: many distinct queries, as many HPAs send.
	if len(paths) < 1000 {
		t.Errorf("%d distinct paths in %d requests", len(paths), n)
	}
	if a, b := p.at(0).api, p.at(1).api; a == b {
		t.Errorf("requests 0 and 1 both %s: the mix is not interleaved", a)
	}
	for _, bad := range []string{"pods=x", "nodes=1", "pods=0,external=0,resource=0", "pods"} {
		if _, err := newPlanner(layout, bad, 12, 20); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
}

func TestPodsWith(t *testing.T) {
	for _, tc := range []struct{ n, k, want int }{{100, 0, 5}, {100, 19, 5}, {10, 9, 1}, {10, 10, 0}, {21, 0, 2}, {21, 1, 1}, {0, 0, 0}} {
		if got := podsWith(tc.n, tc.k); got != tc.want {
			t.Errorf("podsWith(%d, %d) = %d, want %d", tc.n, tc.k, got, tc.want)
		}
	}
}
