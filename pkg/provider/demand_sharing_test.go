package provider_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/internal/fixture"
	"github.com/promgate/promgate/pkg/provider"
)

// TestDemandSharing: the shared query of a metric reads the namespaces
// requests asked about, grows with a namespace asked about next (at once
// with a short JoinEvery; with a long one, that namespace reads its own
// query meanwhile), and answers each as the whole cluster's query does.
func TestDemandSharing(t *testing.T) {
	ctx := context.Background()
	info := metric("pods", true, "http_requests_per_second")
	answer := func(w *fixture.World, ns string) string {
		t.Helper()
		s, err := customList(ns, info, "", "")(ctx, w)
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
		return s
	}
	w := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	w.Custom.Demand = &provider.Demand{JoinEvery: time.Nanosecond}
	held := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	held.Custom.Demand = &provider.Demand{JoinEvery: time.Hour}
	wide := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	wide.Custom.Demand = nil

	for _, step := range []struct {
		w    *fixture.World
		ns   string
		want string // the namespace matcher of the query sent
	}{
		{w, "shop", `namespace="shop"`},
		{w, "team-b", `namespace=~"shop|team-b"`},
		{w, "shop", `namespace=~"shop|team-b"`},
		{held, "shop", `namespace="shop"`},
		{held, "team-b", `namespace="team-b"`}, // alone, until the next join
		{held, "shop", `namespace="shop"`},
	} {
		w := step.w
		w.Engine.Reset()
		got := answer(w, step.ns)
		sent := w.Engine.Queries()
		if len(sent) == 0 || !slices.ContainsFunc(sent, func(q string) bool { return strings.Contains(q, step.want) }) {
			t.Errorf("%s: sent %q, want a query with %s", step.ns, sent, step.want)
		}
		if want := answer(wide, step.ns); got != want {
			t.Errorf("%s: answered\n%s\nthe whole cluster's query answers\n%s", step.ns, got, want)
		}
		if got == "" {
			t.Errorf("%s: no values", step.ns)
		}
	}
}

// TestDemandObjectsSharing: with MaxObjects the shared query reads the
// pods requests asked about in their namespaces, grows with the pods of
// the next request, and answers each as the whole cluster's query does.
func TestDemandObjectsSharing(t *testing.T) {
	ctx := context.Background()
	info := metric("pods", true, "http_requests_per_second")
	w := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	w.Custom.Demand = &provider.Demand{MaxObjects: 100, JoinEvery: time.Nanosecond}
	wide := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	wide.Custom.Demand = nil
	for _, step := range []struct {
		ns, sel string
		want    []string // in the query sent
	}{
		{"team-b", "app=api", []string{`namespace="team-b"`, `pod="api-0"`}},
		{"shop", "app=web", []string{`namespace=~"shop|team-b"`, `pod=~"api-0|web-0|web-1|web-2"`}},
		{"team-b", "app=worker", []string{`namespace=~"shop|team-b"`, `pod=~"api-0|web-0|web-1|web-2|worker-0"`}},
		{"shop", "app=web", []string{`namespace=~"shop|team-b"`, `pod=~"api-0|web-0|web-1|web-2|worker-0"`}},
	} {
		w.Engine.Reset()
		got, err := customList(step.ns, info, step.sel, "")(ctx, w)
		if err != nil {
			t.Fatalf("%s %s: %v", step.ns, step.sel, err)
		}
		sent := w.Engine.Queries()
		if !slices.ContainsFunc(sent, func(q string) bool {
			for _, m := range step.want {
				if !strings.Contains(q, m) {
					return false
				}
			}
			return true
		}) {
			t.Errorf("%s %s: sent %q, want a query with %s", step.ns, step.sel, sent, step.want)
		}
		want, err := customList(step.ns, info, step.sel, "")(ctx, wide)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || (got == "" && step.sel != "app=worker") { // worker-0 has no series
			t.Errorf("%s %s: answered\n%s\nthe whole cluster's query answers\n%s", step.ns, step.sel, got, want)
		}
	}
}

// TestDemandAloneByNamespace: with MaxObjects, a request whose pods have
// not joined yet reads its namespace's query, the same text for all the
// namespace's requests waiting to join (not one per request), and answers
// as the whole cluster's query does.
func TestDemandAloneByNamespace(t *testing.T) {
	ctx := context.Background()
	info := metric("pods", true, "http_requests_per_second")
	w := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	w.Custom.Demand = &provider.Demand{MaxObjects: 100, JoinEvery: time.Hour}
	wide := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, fixture.Options{})
	wide.Custom.Demand = nil
	for _, step := range []struct{ ns, sel, want string }{
		{"team-b", "app=api", `namespace="team-b",pod="api-0"`}, // the first joins at once
		{"team-b", "app=worker", `namespace="team-b",pod!=""`},  // worker-0 waits: all of team-b
		{"shop", "app=web", `namespace="shop",pod!=""`},
	} {
		w.Engine.Reset()
		got, err := customList(step.ns, info, step.sel, "")(ctx, w)
		if err != nil {
			t.Fatalf("%s %s: %v", step.ns, step.sel, err)
		}
		sent := w.Engine.Queries()
		if !slices.ContainsFunc(sent, func(q string) bool { return strings.Contains(q, step.want) && !strings.Contains(q, "worker-0") }) {
			t.Errorf("%s %s: sent %q, want a query with %s and no pod name", step.ns, step.sel, sent, step.want)
		}
		want, err := customList(step.ns, info, step.sel, "")(ctx, wide)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s %s: answered\n%s\nthe whole cluster's query answers\n%s", step.ns, step.sel, got, want)
		}
	}
}
