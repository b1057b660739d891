package fakeprom

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// FailureKind is one way an injected failure of /api/v1/query looks to the
// client.
type FailureKind string

// The kinds of injected failure.
const (
	// FailUnavailable answers HTTP 503 with Prometheus' error JSON
	// (errorType "unavailable"), as an overloaded or restarting Prometheus
	// does.
	FailUnavailable FailureKind = "503"
	// FailTimeout does not answer until the client gives up (or
	// Failures.Hang has passed, then 503 with errorType "timeout"), as a
	// hung backend or a lost connection does.
	FailTimeout FailureKind = "timeout"
	// FailTruncated sends the first half of the answer, then ends the
	// response: JSON cut short, as when a proxy drops the connection.
	FailTruncated FailureKind = "truncated"
	// FailInvalid answers 200 with a body that is not valid JSON.
	FailInvalid FailureKind = "invalid"
	// FailWarning sends the complete answer with a warning of missing
	// data, as Thanos and Mimir do when a store or ingester is down.
	FailWarning FailureKind = "warning"
)

// AllFailureKinds are the kinds a Failures with no Kinds injects.
var AllFailureKinds = []FailureKind{FailUnavailable, FailTimeout, FailTruncated, FailInvalid, FailWarning}

// Failures configures the failure injection of /api/v1/query: each query
// fails with probability Ratio, the failing ones taking the Kinds in turn.
// Series requests (discovery) never fail.
type Failures struct {
	// Ratio is the fraction of queries that fail, 0 to 1.
	Ratio float64
	// Kinds are cycled through; empty means AllFailureKinds.
	Kinds []FailureKind
	// Hang bounds how long a FailTimeout holds a query whose client does
	// not give up; 0 means 30s.
	Hang time.Duration
}

// ParseFailureKinds reads a comma-separated list of failure kinds; "all"
// or "" is AllFailureKinds.
func ParseFailureKinds(spec string) ([]FailureKind, error) {
	if spec == "" || spec == "all" {
		return append([]FailureKind(nil), AllFailureKinds...), nil
	}
	var out []FailureKind
	for _, f := range strings.Split(spec, ",") {
		k := FailureKind(strings.TrimSpace(f))
		known := false
		for _, a := range AllFailureKinds {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("unknown failure kind %q (want some of %v)", k, AllFailureKinds)
		}
		out = append(out, k)
	}
	return out, nil
}

// SetFailures replaces the failure injection; a zero Failures turns it off.
func (s *Server) SetFailures(f Failures) error {
	if f.Ratio < 0 || f.Ratio > 1 {
		return fmt.Errorf("failure ratio %v: want 0 to 1", f.Ratio)
	}
	if len(f.Kinds) == 0 {
		f.Kinds = AllFailureKinds
	}
	if f.Hang <= 0 {
		f.Hang = 30 * time.Second
	}
	f.Kinds = append([]FailureKind(nil), f.Kinds...)
	s.failures.Store(&f)
	return nil
}

// pickFailure returns the kind of failure the next query gets, or "".
func (s *Server) pickFailure() (FailureKind, time.Duration) {
	f := s.failures.Load()
	if f == nil || f.Ratio == 0 || rand.Float64() >= f.Ratio {
		return "", 0
	}
	n := s.failed.Add(1) - 1
	k := f.Kinds[n%uint64(len(f.Kinds))]
	s.mu.Lock()
	s.injected[string(k)]++
	s.mu.Unlock()
	return k, f.Hang
}

// fail answers a query with failure k; body is the answer it would have
// sent (success JSON without warnings).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, k FailureKind, hang time.Duration, body []byte) {
	switch k {
	case FailUnavailable:
		apiError(w, http.StatusServiceUnavailable, "unavailable", "injected failure: service unavailable")
	case FailTimeout:
		t := time.NewTimer(hang)
		defer t.Stop()
		select {
		case <-t.C:
			apiError(w, http.StatusServiceUnavailable, "timeout", "query timed out in expression evaluation")
		case <-r.Context().Done():
		}
	case FailTruncated:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:len(body)/2])
	case FailInvalid:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[,]}}`))
	case FailWarning:
		w.Header().Set("Content-Type", "application/json")
		b := append(body[:len(body)-1:len(body)-1], `,"warnings":["injected failure: store 127.0.0.1:10901 unavailable, the result may be partial"]}`...)
		_, _ = w.Write(b)
	}
}
