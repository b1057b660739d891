package fakeprom

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
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
	// FailOversize answers 200 with a well-formed vector answer of
	// Failures.OversizeBytes (80 MiB by default: more than promgate's
	// --prometheus-max-response-bytes, 64 MiB), streamed as it is written
	// and never held in memory, as a backend asked for far more than it
	// should answer does. It stops when the client hangs up.
	FailOversize FailureKind = "oversize"
)

// AllFailureKinds are the kinds a Failures with no Kinds injects, and what
// "all" names in ParseFailureKinds. FailOversize is not among them: it is
// named on its own (the hostile soak's "all,oversize").
var AllFailureKinds = []FailureKind{FailUnavailable, FailTimeout, FailTruncated, FailInvalid, FailWarning}

// KnownFailureKinds are every kind ParseFailureKinds accepts.
var KnownFailureKinds = append(append([]FailureKind(nil), AllFailureKinds...), FailOversize)

// DefaultOversizeBytes is the size of a FailOversize answer when
// Failures.OversizeBytes is 0: 80 MiB, past promgate's default limit of
// one answer (64 MiB).
const DefaultOversizeBytes = 80 << 20

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
	// OversizeBytes is the size of a FailOversize answer; 0 means
	// DefaultOversizeBytes.
	OversizeBytes int64
}

// ParseFailureKinds reads a comma-separated list of failure kinds, where
// "all" stands for AllFailureKinds ("all,oversize" is those and
// FailOversize); "" is "all".
func ParseFailureKinds(spec string) ([]FailureKind, error) {
	if spec == "" {
		spec = "all"
	}
	var out []FailureKind
	for _, f := range strings.Split(spec, ",") {
		k := FailureKind(strings.TrimSpace(f))
		if k == "all" {
			out = append(out, AllFailureKinds...)
			continue
		}
		known := false
		for _, a := range KnownFailureKinds {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("unknown failure kind %q (want all or some of %v)", k, KnownFailureKinds)
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
	if f.OversizeBytes < 0 {
		return fmt.Errorf("oversize answer of %d bytes: want 0 (the default) or more", f.OversizeBytes)
	}
	if f.OversizeBytes == 0 {
		f.OversizeBytes = DefaultOversizeBytes
	}
	f.Kinds = append([]FailureKind(nil), f.Kinds...)
	s.failures.Store(&f)
	return nil
}

// pickFailure returns the kind of failure the next query gets ("" for
// none) and the Failures it was picked from.
func (s *Server) pickFailure() (FailureKind, *Failures) {
	f := s.failures.Load()
	if f == nil || f.Ratio == 0 || rand.Float64() >= f.Ratio {
		return "", nil
	}
	n := s.failed.Add(1) - 1
	k := f.Kinds[n%uint64(len(f.Kinds))]
	s.mu.Lock()
	s.injected[string(k)]++
	s.mu.Unlock()
	return k, f
}

// failsEarly reports whether failure k is sent without the answer it
// replaces (which then need not be evaluated).
func failsEarly(k FailureKind) bool {
	return k == FailUnavailable || k == FailTimeout || k == FailOversize
}

// fail answers a query with failure k of f; body is the answer it would
// have sent (success JSON without warnings), nil for the kinds that
// failsEarly.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, k FailureKind, f *Failures, body []byte) {
	switch k {
	case FailUnavailable:
		apiError(w, http.StatusServiceUnavailable, "unavailable", "injected failure: service unavailable")
	case FailTimeout:
		t := time.NewTimer(f.Hang)
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
	case FailOversize:
		w.Header().Set("Content-Type", "application/json")
		_ = writeOversize(w, f.OversizeBytes, time.Now())
	}
}

// oversizePadding makes each sample of an oversized answer about 1 KiB, so
// that 80 MiB are some 80,000 samples: the answer passes promgate's byte
// limit long before its sample limit (500,000).
var oversizePadding = strings.Repeat("x", 900)

// writeOversize writes a vector answer of at least size bytes, one sample
// per made-up pod, through a 64 KiB buffer: what it holds is that buffer,
// whatever size. It returns the first write error (the client hung up).
func writeOversize(w http.ResponseWriter, size int64, ts time.Time) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	head := `{"status":"success","data":{"resultType":"vector","result":[`
	if _, err := bw.WriteString(head); err != nil {
		return err
	}
	stamp := strconv.AppendFloat(nil, float64(ts.UnixMilli())/1000, 'f', 3, 64)
	written := int64(len(head))
	var buf []byte
	for i := 0; written < size; i++ {
		buf = buf[:0]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"metric":{"__name__":"oversize","namespace":"oversize","pod":"pod-`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","padding":"`...)
		buf = append(buf, oversizePadding...)
		buf = append(buf, `"},"value":[`...)
		buf = append(buf, stamp...)
		buf = append(buf, `,"1"]}`...)
		n, err := bw.Write(buf)
		written += int64(n)
		if err != nil {
			return err
		}
	}
	if _, err := bw.WriteString("]}}"); err != nil {
		return err
	}
	return bw.Flush()
}
