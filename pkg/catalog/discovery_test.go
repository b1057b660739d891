package catalog

import (
	"context"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

func TestFailingQueryKeepsLastGoodResult(t *testing.T) {
	srv, d := setup(t, testConfig)
	appSeries(srv)
	nodeSeries(srv)
	srv.Series(qExternal, map[string]string{"__name__": "queue_depth"})
	srv.SeriesReply(qBroken, promtest.Reply{Status: http.StatusBadGateway, ContentType: "text/plain", Body: "no"})

	first := d.Refresh(context.Background())
	firstMetrics := metricList(first)
	firstTime := first.Reports[0].LastSuccess

	// The app query now fails; the node query finds a new metric.
	srv.SeriesReply(qApp, promtest.Error(http.StatusServiceUnavailable, "unavailable", "overloaded"))
	srv.Series(qNode,
		map[string]string{"__name__": "node_load1", "node": "n1"},
		map[string]string{"__name__": "node_load5", "node": "n1"},
	)
	second := d.Refresh(context.Background())
	if second == first {
		t.Fatal("no new snapshot")
	}
	var want []string
	for _, m := range firstMetrics {
		if !strings.HasPrefix(m, "nodes ") {
			want = append(want, m)
		}
	}
	want = append(want, "nodes cluster load1", "nodes cluster load5")
	sort.Strings(want)
	if got := metricList(second); !reflect.DeepEqual(got, want) {
		t.Errorf("metrics after a failure:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, i := range []int{0, 1, 4} {
		rep := second.Reports[i]
		if rep.Err != "prometheus backend "+srv.URL+": series failed: unavailable: overloaded" {
			t.Errorf("%s: Err = %q", rep.Path, rep.Err)
		}
		if !rep.LastSuccess.Equal(firstTime) || rep.Series != 6 || !reflect.DeepEqual(rep.Metrics, first.Reports[i].Metrics) {
			t.Errorf("%s: report %+v does not describe the last good result", rep.Path, rep)
		}
	}
	if rep := second.Reports[2]; rep.Err != "" || !rep.LastSuccess.After(firstTime) || !reflect.DeepEqual(rep.Metrics, []string{"load1", "load5"}) {
		t.Errorf("node report = %+v", rep)
	}
	// A query that never succeeded has nothing to keep.
	if rep := second.Reports[3]; rep.Err == "" || !rep.LastSuccess.IsZero() || rep.Series != 0 {
		t.Errorf("broken report = %+v", rep)
	}
	// The earlier snapshot is untouched.
	if got := metricList(first); !reflect.DeepEqual(got, firstMetrics) {
		t.Errorf("first snapshot changed:\n%s", strings.Join(got, "\n"))
	}

	// Once the query recovers, its new result replaces the old one.
	srv.Series(qApp, map[string]string{"__name__": "app_requests_total", "namespace": "ns1", "pod": "web-0"})
	third := d.Refresh(context.Background())
	if got := third.MetricsFor(kubetest.Pods); !reflect.DeepEqual(got, []string{"requests_per_second"}) {
		t.Errorf("pods metrics after recovery = %q", got)
	}
	if rep := third.Reports[0]; rep.Err != "" || !rep.LastSuccess.After(firstTime) || rep.Series != 1 {
		t.Errorf("report after recovery = %+v", rep)
	}
}

// A query that hangs until the client times out does not hold back the
// others: they are listed concurrently.
func TestSlowQueryDoesNotBlockOthers(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := New(custom, external, Single(client), kubetest.Mapper(), time.Hour)
	appSeries(srv)
	nodeSeries(srv)
	srv.SeriesReply(qBroken, promtest.Reply{Body: `{"status":"success","data":[]}`, Delay: time.Minute})
	start := time.Now()
	snap := d.Refresh(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refresh took %v", took)
	}
	if len(snap.MetricsFor(kubetest.Nodes)) != 1 || len(snap.MetricsFor(kubetest.Pods)) != 3 {
		t.Errorf("metrics = %q", metricList(snap))
	}
	if !strings.Contains(snap.Reports[3].Err, "series failed: ") {
		t.Errorf("slow query report = %+v", snap.Reports[3])
	}
}

// Readers always see a complete snapshot while discovery replaces it.
func TestSnapshotSwapIsAtomic(t *testing.T) {
	srv, d := setup(t, testConfig)
	nodeSeries(srv)
	if s := d.Snapshot(); s == nil || len(s.CustomMetrics()) != 0 {
		t.Fatalf("initial snapshot = %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s := d.Snapshot()
				n := len(s.MetricsFor(kubetest.Nodes))
				// Either the node metrics of the 1-series or of the 2-series
				// fixture, never a mix.
				ms := s.CustomMetrics()
				for _, m := range ms {
					if _, ok := s.Custom(CustomKey{m.GroupResource, m.Namespaced, m.Metric}); !ok {
						t.Errorf("listed metric %v has no entry", m)
						return
					}
				}
				if len(s.Reports) != 0 && n != len(s.Reports[2].Metrics) {
					t.Errorf("snapshot has %d node metrics, its report %d", n, len(s.Reports[2].Metrics))
					return
				}
			}
		}()
	}
	for i := 0; i < 30; i++ {
		if i%2 == 0 {
			srv.Series(qNode, map[string]string{"__name__": "node_a", "node": "n"})
		} else {
			srv.Series(qNode, map[string]string{"__name__": "node_a", "node": "n"}, map[string]string{"__name__": "node_b", "node": "n"})
		}
		d.Refresh(context.Background())
	}
	cancel()
	wg.Wait()
}

func TestRun(t *testing.T) {
	srv, d := setup(t, testConfig)
	nodeSeries(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		d.Run(ctx, 10*time.Millisecond)
		close(done)
	}()
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.SeriesMatches()) < 3*4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := len(srv.SeriesMatches()); n < 3*4 {
		t.Errorf("%d series calls: Run did not repeat discovery", n)
	}
	if got := d.Snapshot().MetricsFor(kubetest.Nodes); !reflect.DeepEqual(got, []string{"load1"}) {
		t.Errorf("node metrics = %q", got)
	}
}
