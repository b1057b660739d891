package prom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
)

// Kind classifies a backend failure. It is what a caller of promgate is
// told (with the backend's name); the backend's own text, which can hold
// series labels of any namespace, is only logged.
type Kind string

// The kinds of backend failure.
const (
	// Unreachable: no connection, or the connection broke.
	Unreachable Kind = "unreachable"
	// Timeout: no complete answer within the deadline.
	Timeout Kind = "timeout"
	// Canceled: the caller went away first.
	Canceled Kind = "canceled"
	// BadStatus: a non-2xx answer, or "status":"error" (the backend
	// rejected or failed the query).
	BadStatus Kind = "bad status"
	// Unauthorized: the backend (or a proxy in front of it) refused the
	// credentials (401) or their rights (403).
	Unauthorized Kind = "unauthorized"
	// PartialResponse: the backend warned that data is missing (a Thanos
	// store or Mimir ingester down, "isPartial" from VictoriaMetrics).
	PartialResponse Kind = "partial response"
	// InvalidResponse: the answer is not the JSON the API specifies.
	InvalidResponse Kind = "invalid response"
	// TooLarge: the answer exceeds one of the Limits (MaxResponseBytes,
	// MaxSamples, MaxSeries); the error wraps a *LimitError naming it.
	TooLarge Kind = "too large"
	// QueueFull: the query waited for a free slot of the concurrency
	// limit until its deadline and was never sent.
	QueueFull Kind = "queue full"
)

// LimitError is an answer over one of the Limits, wrapped in a KindError
// of kind TooLarge. Its text is promgate's own, never the backend's: it is
// shown to callers (see Summary).
type LimitError struct {
	// Max is the limit, counted in Unit.
	Max int64
	// Unit is what the limit counts: "bytes", "samples", "series", "names"
	// or "values".
	Unit string
	// Option names the option that sets the limit, such as
	// --prometheus-max-response-bytes; "" when it has none.
	Option string
	// Size is the answer's size in Unit when it was known before reading
	// (its Content-Length), otherwise 0.
	Size int64
	// Part is "" when the limit is the whole answer's, otherwise the part
	// of the answer it bounds, such as "one series".
	Part string
	// InFlight marks the limit of all answers read and decoded at once
	// (MaxAnswerBytesInFlight), not of one answer.
	InFlight bool
}

// Error reads "the answer is larger than the limit of 64 MiB
// (--prometheus-max-response-bytes)", "the answer has more than the limit
// of 500000 samples (--prometheus-max-samples)" and the like.
func (e *LimitError) Error() string {
	var s string
	switch {
	case e.InFlight:
		s = "the answers being read at once would take more than the limit of " + amount(e.Max, e.Unit) + " of memory for answers in flight"
	case e.Part != "":
		s = fmt.Sprintf("%s of the answer is larger than the limit of %s", e.Part, amount(e.Max, e.Unit))
	case e.Size > 0:
		s = fmt.Sprintf("the answer has %s, more than the limit of %s", amount(e.Size, e.Unit), amount(e.Max, e.Unit))
	case e.Unit == "bytes":
		s = "the answer is larger than the limit of " + amount(e.Max, e.Unit)
	default:
		s = "the answer has more than the limit of " + amount(e.Max, e.Unit)
	}
	if e.Option != "" {
		s += " (" + e.Option + ")"
	}
	return s
}

// limit describes the limit for Summary: "limit 64 MiB,
// --prometheus-max-response-bytes".
func (e *LimitError) limit() string {
	s := "limit " + amount(e.Max, e.Unit)
	if e.InFlight {
		s += " for answers in flight"
	}
	if e.Part != "" {
		s += " for " + e.Part
	}
	if e.Option != "" {
		s += ", " + e.Option
	}
	return s
}

// amount formats n of unit; bytes in GiB, MiB or KiB when they are whole.
func amount(n int64, unit string) string {
	if unit == "bytes" {
		for _, u := range []struct {
			size int64
			name string
		}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
			if n >= u.size && n%u.size == 0 {
				return fmt.Sprintf("%d %s", n/u.size, u.name)
			}
		}
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// statusKind is the kind of a non-2xx answer.
func statusKind(code int) Kind {
	if code == 401 || code == 403 {
		return Unauthorized
	}
	return BadStatus
}

// KindError is a failure of a known Kind. Its text is Err's alone, so that
// *Error's text (for logs and explain) stays the backend's own words.
type KindError struct {
	Kind Kind
	// Code is the HTTP status code of a BadStatus, otherwise 0.
	Code int
	Err  error
}

// Error is the text of Err.
func (e *KindError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *KindError) Unwrap() error { return e.Err }

// withKind wraps err as a failure of kind k.
func withKind(k Kind, err error) error {
	return &KindError{Kind: k, Err: err}
}

// KindOf returns the kind of a backend failure: the Kind of the first
// KindError in err's chain, otherwise one guessed from the error (deadline,
// network, client_golang's error types). It returns "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	if ke, ok := errors.AsType[*KindError](err); ok {
		return ke.Kind
	}
	return transportKind(err)
}

// transportKind classifies an error of sending a request or reading its
// answer.
func transportKind(err error) Kind {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	var ae *v1.Error
	if errors.As(err, &ae) {
		switch ae.Type {
		case v1.ErrTimeout:
			return Timeout
		case v1.ErrCanceled:
			return Canceled
		case v1.ErrBadResponse:
			return InvalidResponse
		}
		return BadStatus
	}
	return Unreachable
}

// Summary describes err for a caller of promgate without the backend's
// own text: "prometheus backend URL: query failed: bad status (HTTP 503)",
// or, for an answer over one of the Limits, "prometheus backend URL:
// series failed: too large (limit 64 MiB, --prometheus-max-response-bytes)".
// It returns "" when err is not an *Error.
func Summary(err error) string {
	pe, ok := errors.AsType[*Error](err)
	if !ok {
		return ""
	}
	s := fmt.Sprintf("prometheus backend %s: %s failed: %s", pe.Backend, pe.Op, KindOf(pe))
	var detail []string
	if ke, ok := errors.AsType[*KindError](err); ok && ke.Code != 0 {
		detail = append(detail, fmt.Sprintf("HTTP %d", ke.Code))
	}
	if ae, ok := errors.AsType[*v1.Error](err); ok && knownErrorTypes[ae.Type] {
		detail = append(detail, string(ae.Type))
	}
	if le, ok := errors.AsType[*LimitError](err); ok {
		detail = append(detail, le.limit())
	}
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	return s
}

// knownErrorTypes are the errorType values of the Prometheus HTTP API, the
// only part of an error answer shown to callers.
var knownErrorTypes = map[v1.ErrorType]bool{
	v1.ErrBadData: true, v1.ErrTimeout: true, v1.ErrCanceled: true, v1.ErrExec: true,
	v1.ErrServer: true, v1.ErrClient: true, "internal": true, "unavailable": true, "not_found": true,
}
