package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
)

func TestStatusError(t *testing.T) {
	backend := &prom.Error{Backend: "http://prometheus:9090", Op: "query", Err: &prom.KindError{Kind: prom.BadStatus, Code: 503, Err: errors.New("server_error: server error: 503")}}
	partial := &prom.Error{Backend: "http://p", Op: "query", Err: &prom.KindError{Kind: prom.PartialResponse, Err: errors.New(`partial response: store {namespace="other"} down`)}}
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "a")
	tests := []struct {
		name    string
		err     error
		code    int32
		message string
	}{
		{"backend", backend, http.StatusServiceUnavailable, "prometheus backend http://prometheus:9090: query failed: bad status (HTTP 503)"},
		{"wrapped backend", fmt.Errorf("rules[0]: %w", backend), http.StatusServiceUnavailable, "prometheus backend http://prometheus:9090: query failed: bad status (HTTP 503)"},
		{"backend timeout", &prom.Error{Backend: "http://p", Op: "series", Err: context.DeadlineExceeded}, http.StatusServiceUnavailable, "prometheus backend http://p: series failed: timeout"},
		{"partial response, its text not shown", partial, http.StatusServiceUnavailable, "prometheus backend http://p: query failed: partial response"},
		{"too large", &prom.Error{Backend: "http://p", Op: "query", Err: &prom.KindError{Kind: prom.TooLarge, Err: errors.New("600000 samples")}}, http.StatusServiceUnavailable, "prometheus backend http://p: query failed: too large"},
		{"queue full", &prom.Error{Backend: "http://p", Op: "query", Err: &prom.KindError{Kind: prom.QueueFull, Err: context.DeadlineExceeded}}, http.StatusServiceUnavailable, "prometheus backend http://p: query failed: queue full"},
		{"invalid", &prom.Error{Backend: "http://p", Op: "query", Err: &prom.KindError{Kind: prom.InvalidResponse, Err: errors.New(`offset 9: sample 0 has no value`)}}, http.StatusServiceUnavailable, "prometheus backend http://p: query failed: invalid response"},
		{"unreachable", &prom.Error{Backend: "http://p", Op: "query", Err: errors.New("dial tcp: connection refused")}, http.StatusServiceUnavailable, "prometheus backend http://p: query failed: unreachable"},
		{"unsupported selector", fmt.Errorf("%w: operator %q", promql.ErrUnsupportedSelector, "gt"), http.StatusBadRequest, `unsupported label selector: operator "gt"`},
		{"status passes through", notFound, http.StatusNotFound, notFound.Error()},
		{"wrapped status passes through", fmt.Errorf("x: %w", notFound), http.StatusNotFound, notFound.Error()},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, "metrics request timed out: waiting: context deadline exceeded"},
		{"canceled", context.Canceled, http.StatusServiceUnavailable, "metrics request timed out: context canceled"},
		{"other", errors.New("boom"), http.StatusInternalServerError, "Internal error occurred: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := StatusError(tt.err)
			var status apierrors.APIStatus
			if !errors.As(err, &status) {
				t.Fatalf("StatusError(%v) = %v (%T), not an API status", tt.err, err, err)
			}
			if s := status.Status(); s.Code != tt.code || s.Message != tt.message {
				t.Errorf("status %d %q, want %d %q", s.Code, s.Message, tt.code, tt.message)
			}
		})
	}
	if StatusError(nil) != nil {
		t.Error("StatusError(nil) is not nil")
	}
}

func TestWindowSeconds(t *testing.T) {
	tests := []struct {
		query string
		want  int64 // 0: nil
	}{
		{`sum(rate(x[2m])) by (pod)`, 120},
		{`rate(x[1m]) / rate(y[1m])`, 60},
		{`rate(x[1m]) / rate(y[5m])`, 0},
		{`sum(x) by (pod)`, 0},
	}
	for _, tt := range tests {
		expr, err := promql.Parse(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got := WindowSeconds(expr)
		switch {
		case tt.want == 0 && got != nil:
			t.Errorf("WindowSeconds(%s) = %d, want nil", tt.query, *got)
		case tt.want != 0 && (got == nil || *got != tt.want):
			t.Errorf("WindowSeconds(%s) = %v, want %d", tt.query, got, tt.want)
		}
	}
}
