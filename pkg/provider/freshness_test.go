package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/testutil"

	"github.com/promgate/promgate/pkg/prom"
)

func TestObserveAnswer(t *testing.T) {
	RegisterMetrics() // as the server does at start
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, badStatus := client.Query(context.Background(), "up", time.Now())
	if prom.KindOf(badStatus) != prom.BadStatus {
		t.Fatalf("fixture: kind %q, want %q", prom.KindOf(badStatus), prom.BadStatus)
	}
	timeout := &prom.Error{Backend: "b1", Op: "query", Err: &prom.KindError{Kind: prom.Timeout, Err: context.DeadlineExceeded}}

	now := time.Unix(1_800_000_000, 0)
	at := func(ago time.Duration) model.Time { return model.TimeFromUnixNano(now.Add(-ago).UnixNano()) }
	tests := []struct {
		name    string
		vec     model.Vector
		err     error
		result  string
		age     float64 // observed age of the newest sample; -1: none
		newest  float64 // gauge after the call; 0: absent
		backend string  // backend_errors_total incremented for it
		kind    prom.Kind
	}{
		{name: "samples", vec: model.Vector{{Timestamp: at(30 * time.Second)}, {Timestamp: at(5 * time.Second)}, {Timestamp: at(time.Minute)}},
			result: AnswerSamples, age: 5, newest: float64(now.Unix() - 5)},
		{name: "future sample", vec: model.Vector{{Timestamp: at(-time.Second)}}, result: AnswerSamples, age: 0, newest: float64(now.Unix() + 1)},
		{name: "empty", vec: model.Vector{}, result: AnswerEmpty, age: -1},
		{name: "timeout", err: fmt.Errorf("resourceRules.cpu: %w", timeout), result: AnswerError, age: -1, backend: "b1", kind: prom.Timeout},
		{name: "bad status", err: badStatus, result: AnswerError, age: -1, backend: client.Name(), kind: prom.BadStatus},
		{name: "not a backend failure", err: errors.New("boom"), result: AnswerError, age: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			metric := "m_" + tt.name
			var errsBefore float64
			if tt.backend != "" {
				errsBefore = counter(t, backendErrors.WithLabelValues(tt.backend, string(tt.kind)))
			}
			agesBefore, sumBefore := histogramCount(t, CustomAPI)

			ObserveAnswer(CustomAPI, metric, now, tt.vec, tt.err)

			for _, r := range []string{AnswerSamples, AnswerEmpty, AnswerError} {
				want := 0.0
				if r == tt.result {
					want = 1
				}
				if got := counter(t, answersTotal.WithLabelValues(CustomAPI, metric, r)); got != want {
					t.Errorf("answers{result=%q} = %v, want %v", r, got, want)
				}
			}
			if tt.backend != "" {
				if got := counter(t, backendErrors.WithLabelValues(tt.backend, string(tt.kind))) - errsBefore; got != 1 {
					t.Errorf("backend errors{%s,%s} grew by %v, want 1", tt.backend, tt.kind, got)
				}
			}
			wantAges := agesBefore
			if tt.age >= 0 {
				wantAges++
			}
			ages, sum := histogramCount(t, CustomAPI)
			if ages != wantAges {
				t.Errorf("sample age observations = %d, want %d", ages, wantAges)
			}
			if tt.age >= 0 && sum-sumBefore != tt.age {
				t.Errorf("observed sample age = %v, want %v", sum-sumBefore, tt.age)
			}
			newest.Lock()
			_, has := newest.m[[2]string{CustomAPI, metric}]
			newest.Unlock()
			if tt.newest == 0 {
				if has {
					t.Error("newest sample recorded for an answer without samples")
				}
				return
			}
			if got, err := testutil.GetGaugeMetricValue(newestSample.WithLabelValues(CustomAPI, metric)); err != nil || got != tt.newest {
				t.Errorf("newest sample = %v (%v), want %v", got, err, tt.newest)
			}
		})
	}
}

// TestObserveAnswerNewestNeverMovesBack: an older answer finishing after
// a newer one leaves the newest sample's time alone.
func TestObserveAnswerNewestNeverMovesBack(t *testing.T) {
	RegisterMetrics()
	now := time.Unix(1_800_000_000, 0)
	ts := func(sec int64) model.Vector { return model.Vector{{Timestamp: model.TimeFromUnix(sec)}} }
	for _, sec := range []int64{100, 300, 200} {
		ObserveAnswer(ExternalAPI, "ordered", now, ts(sec), nil)
	}
	if got, _ := testutil.GetGaugeMetricValue(newestSample.WithLabelValues(ExternalAPI, "ordered")); got != 300 {
		t.Errorf("newest sample = %v, want 300", got)
	}
	// One answer read by many requests (a cached, shared one): its newest
	// sample is read once, and each request observes its age.
	shared := model.Vector{{Timestamp: model.TimeFromUnix(350)}, {Timestamp: model.TimeFromUnix(400)}}
	n0, sum0 := histogramCount(t, ExternalAPI)
	for range 3 {
		ObserveAnswer(ExternalAPI, "ordered", now, shared, nil)
	}
	if n, sum := histogramCount(t, ExternalAPI); n-n0 != 3 || sum-sum0 != 3*float64(1_800_000_000-400) {
		t.Errorf("ages: %d observations summing to %v, want 3 of %d s", n-n0, sum-sum0, 1_800_000_000-400)
	}
	if got, _ := testutil.GetGaugeMetricValue(newestSample.WithLabelValues(ExternalAPI, "ordered")); got != 400 {
		t.Errorf("newest sample = %v, want 400", got)
	}
}

func counter(t *testing.T, c metrics.CounterMetric) float64 {
	t.Helper()
	v, err := testutil.GetCounterMetricValue(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// histogramCount returns the number and sum of the sample ages observed
// for api.
func histogramCount(t *testing.T, api string) (uint64, float64) {
	t.Helper()
	n, err := testutil.GetHistogramMetricCount(sampleAge.WithLabelValues(api))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := testutil.GetHistogramMetricValue(sampleAge.WithLabelValues(api))
	if err != nil {
		t.Fatal(err)
	}
	return n, sum
}
