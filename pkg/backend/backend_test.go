package backend

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	commoncfg "github.com/prometheus/common/config"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/query"
)

func newSet(t *testing.T, defURL string, configured ...config.Backend) *Set {
	t.Helper()
	s, err := New(Defaults{Client: prom.Options{URL: defURL, Timeout: 2 * time.Second}, Engine: query.Options{}}, configured)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRouting: each backend's queries go to its own server, with its own
// headers and parameters, and one backend failing leaves the other's
// answers alone.
func TestRouting(t *testing.T) {
	a, b := promtest.New(t), promtest.New(t)
	a.Vector("up", promtest.Sample{Labels: map[string]string{"job": "a"}, Value: "1", Time: 1})
	b.Vector("up", promtest.Sample{Labels: map[string]string{"job": "b"}, Value: "2", Time: 1})
	s := newSet(t, a.URL, config.Backend{
		Name: "team-b", URL: b.URL + "/",
		HTTP: commoncfg.HTTPClientConfig{HTTPHeaders: &commoncfg.Headers{Headers: map[string]commoncfg.Header{
			"X-Scope-OrgID": {Values: []string{"team-b"}}}}},
		Params: map[string][]string{"partial_response": {"false"}, "dedup": {"true"}},
	})
	if got := s.Names(); strings.Join(got, ",") != "default,team-b" {
		t.Fatalf("Names() = %v", got)
	}
	ctx := context.Background()
	for _, tc := range []struct{ backend, job string }{{"default", "a"}, {"team-b", "b"}} {
		q, ok := s.Querier(tc.backend)
		if !ok {
			t.Fatalf("no querier for %s", tc.backend)
		}
		vec, err := q.Query(ctx, "up", time.Unix(1, 0))
		if err != nil {
			t.Fatalf("%s: %v", tc.backend, err)
		}
		if len(vec) != 1 || string(vec[0].Metric["job"]) != tc.job {
			t.Errorf("%s answered %v, want job %q", tc.backend, vec, tc.job)
		}
	}
	if _, ok := s.Querier("nope"); ok {
		t.Error("an unknown backend has a querier")
	}
	reqs := b.Requests()
	if len(reqs) != 1 {
		t.Fatalf("team-b's server got %d requests, want 1", len(reqs))
	}
	if got := reqs[0].Header.Get("X-Scope-OrgID"); got != "team-b" {
		t.Errorf("tenant header %q, want team-b", got)
	}
	if f := reqs[0].Form; f.Get("partial_response") != "false" || f.Get("dedup") != "true" || f.Get("query") != "up" {
		t.Errorf("team-b's request form %v: want the backend's params beside the query", f)
	}
	if h := a.Requests()[0].Header.Get("X-Scope-OrgID"); h != "" {
		t.Errorf("the default backend got team-b's tenant header %q", h)
	}

	b.Close()
	qb, _ := s.Querier("team-b")
	_, err := qb.Query(ctx, "up", time.Unix(2, 0))
	var pe *prom.Error
	if !errors.As(err, &pe) || pe.Backend != "team-b" || prom.KindOf(err) != prom.Unreachable {
		t.Errorf("team-b down: error %v, want an unreachable *prom.Error naming team-b", err)
	}
	qa, _ := s.Querier("default")
	if _, err := qa.Query(ctx, "up", time.Unix(2, 0)); err != nil {
		t.Errorf("the default backend failed with team-b down: %v", err)
	}
}

// TestBackendSettings: limits, partial answers and the timeout of a
// configured backend are its own.
func TestBackendSettings(t *testing.T) {
	a, b := promtest.New(t), promtest.New(t)
	partial := `{"status":"success","warnings":["No StoreAPIs matched for this query"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`
	a.QueryReply("up", promtest.Reply{Body: partial})
	b.QueryReply("up", promtest.Reply{Body: partial})
	s := newSet(t, a.URL, config.Backend{Name: "lenient", URL: b.URL, AllowPartialResponse: true, Timeout: 0})
	ctx := context.Background()
	qa, _ := s.Querier("default")
	if _, err := qa.Query(ctx, "up", time.Unix(1, 0)); prom.KindOf(err) != prom.PartialResponse {
		t.Errorf("default backend: %v, want a partial-response error", err)
	}
	qb, _ := s.Querier("lenient")
	if vec, err := qb.Query(ctx, "up", time.Unix(1, 0)); err != nil || len(vec) != 1 {
		t.Errorf("lenient backend: %v %v, want the partial answer served", vec, err)
	}
}

func TestNewErrorsNameTheBackend(t *testing.T) {
	_, err := New(Defaults{Client: prom.Options{URL: "http://prometheus:9090"}}, []config.Backend{{
		Name: "thanos", URL: "http://thanos:9090",
		HTTP: commoncfg.HTTPClientConfig{BasicAuth: &commoncfg.BasicAuth{Username: "u", Password: "p", PasswordFile: "f"}},
	}})
	if err == nil || !strings.Contains(err.Error(), `backend "thanos"`) {
		t.Errorf("error %v, want one naming backend \"thanos\"", err)
	}
}

func TestChanged(t *testing.T) {
	b := config.Backend{Name: "thanos", URL: "http://thanos:9090"}
	s := newSet(t, "http://prometheus:9090", b)
	moved := b
	moved.URL = "http://thanos-2:9090"
	for _, tc := range []struct {
		name     string
		backends []config.Backend
		want     string
	}{
		{"same", []config.Backend{b}, ""},
		{"changed", []config.Backend{moved}, `changes backend "thanos"`},
		{"removed", nil, `removes backend "thanos"`},
		{"added", []config.Backend{b, {Name: "vm", URL: "http://vm:8428"}}, `adds backend "vm"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Changed(&config.Config{Backends: tc.backends}); got != tc.want {
				t.Errorf("Changed() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDiscoveryMethods: a backend of the file inherits the default
// backend's discovery method unless it sets its own.
func TestDiscoveryMethods(t *testing.T) {
	for _, tc := range []struct {
		def  config.Method
		own  string
		want map[string]config.Method
	}{
		{"", "", map[string]config.Method{"default": "", "b": ""}},
		{config.MethodSeries, "", map[string]config.Method{"default": config.MethodSeries, "b": config.MethodSeries}},
		{config.MethodSeries, "index", map[string]config.Method{"default": config.MethodSeries, "b": config.MethodIndex}},
		{"", "auto", map[string]config.Method{"default": "", "b": config.MethodAuto}},
	} {
		s, err := New(Defaults{Client: prom.Options{URL: "http://a:9090/", Timeout: time.Second}, Discovery: tc.def},
			[]config.Backend{{Name: "b", URL: "http://b:9090/", Discovery: tc.own}})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Methods(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("default %q, own %q: %v, want %v", tc.def, tc.own, got, tc.want)
		}
	}
}

// TestMaxSeries: a backend of the file inherits --prometheus-max-series
// (Defaults.Limits.MaxSeries) unless it sets maxSeries, for the series of
// /api/v1/series and the values of /api/v1/label/<name>/values alike.
func TestMaxSeries(t *testing.T) {
	x := promtest.NewIndex(t, []map[string]string{
		{"__name__": "a", "job": "x"}, {"__name__": "b", "job": "x"}, {"__name__": "c", "job": "x"},
	})
	for _, tc := range []struct {
		name     string
		def, own int
		// want is each backend's limit over the 3 series and 3 names
		// (0: the answers are within it).
		want map[string]int
	}{
		{name: "defaults", want: map[string]int{"default": 0, "b": 0}},
		{name: "inherited", def: 2, want: map[string]int{"default": 2, "b": 2}},
		{name: "own", own: 2, want: map[string]int{"default": 0, "b": 2}},
		{name: "own above the flag", def: 2, own: 3, want: map[string]int{"default": 2, "b": 0}},
		{name: "own below the flag", def: 3, own: 1, want: map[string]int{"default": 0, "b": 1}},
		{name: "own without limit", def: 1, own: -1, want: map[string]int{"default": 1, "b": 0}},
		{name: "flag without limit", def: -1, own: 2, want: map[string]int{"default": 0, "b": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Defaults{Client: prom.Options{URL: x.URL, Timeout: 2 * time.Second}, Limits: prom.Limits{MaxSeries: tc.def}},
				[]config.Backend{{Name: "b", URL: x.URL, MaxSeries: tc.own}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			start, end := time.Unix(0, 0), time.Unix(60, 0)
			for name, max := range tc.want {
				b, _ := s.Get(name)
				n := 0
				err := b.Client.Series(ctx, `{job="x"}`, start, end, func(string, []prom.Label) { n++ })
				checkMaxSeries(t, name+": series", err, max, "series")
				if max == 0 && n != 3 {
					t.Errorf("%s: %d series, want 3", name, n)
				}
				values, err := b.Client.LabelValues(ctx, "__name__", `{job="x"}`, start, end)
				checkMaxSeries(t, name+": label values", err, max, "values")
				if max == 0 && len(values) != 3 {
					t.Errorf("%s: label values %q, want 3", name, values)
				}
			}
		})
	}
}

// checkMaxSeries checks that err is nil when max is 0, otherwise the
// too-large error of the series limit max, naming its flag.
func checkMaxSeries(t *testing.T, what string, err error, max int, unit string) {
	t.Helper()
	if max == 0 {
		if err != nil {
			t.Errorf("%s: %v, want the whole answer", what, err)
		}
		return
	}
	want := prom.LimitError{Max: int64(max), Unit: unit, Option: prom.FlagMaxSeries}
	var le *prom.LimitError
	if prom.KindOf(err) != prom.TooLarge || !errors.As(err, &le) || *le != want {
		t.Errorf("%s: error %v, want a too-large error for %+v", what, err, want)
		return
	}
	if !strings.Contains(err.Error(), prom.FlagMaxSeries) {
		t.Errorf("%s: error %q does not name %s", what, err, prom.FlagMaxSeries)
	}
}
