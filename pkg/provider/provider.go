// Package provider is the pipeline the three metrics APIs (custom,
// external and resource, in the packages below it) share: the Runner, the
// one path from a rendered query to samples (route to the rule's backend,
// guard against partly filled windows, run, observe, map failures to API
// statuses); the Plan that explain shows of a request; the checks of
// request input at the door (validate.go); and the self-metrics of the
// answers (freshness.go). The providers build requests and convert
// samples; nothing else.
package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
)

// DefaultMaxNamesInQuery bounds the object names put in one matcher's
// regular expression alternation, unless configured otherwise
// (--max-names-in-query): above it, the custom and resource providers
// select whole namespaces (or every one) and filter the answer, so that a
// request about thousands of objects sends a short query.
const DefaultMaxNamesInQuery = 100

// Querier runs instant PromQL queries. Backend failures are *prom.Error.
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Vector, error)
}

// Backends gives the querier of a backend by name (a rule's Backend).
type Backends interface {
	Querier(backend string) (Querier, bool)
}

// Route returns the querier of a rule's backend. An unknown backend (a
// rule loaded with a configuration whose backends the running server does
// not have) is a 503 that names it.
func Route(backends Backends, backend string) (Querier, error) {
	if q, ok := backends.Querier(backend); ok {
		return q, nil
	}
	return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("backend %q is not configured in this server; restart promgate to apply a configuration with new backends", backend))
}

// StatusError converts an error into the API status a client should see:
// 503 naming the backend and the kind of failure when Prometheus failed,
// timed out or sent an answer that is partial, invalid or too large (the
// backend's own text, which can name series of any namespace, is logged,
// not returned); 400 for a selector PromQL cannot express; the error itself
// if it already is a status; and 500 otherwise.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	var pe *prom.Error
	switch {
	case errors.As(err, &pe):
		klog.ErrorS(err, "Prometheus backend failed", "backend", pe.Backend, "op", pe.Op, "kind", prom.KindOf(pe))
		return apierrors.NewServiceUnavailable(prom.Summary(pe))
	case errors.Is(err, promql.ErrUnsupportedSelector):
		return apierrors.NewBadRequest(err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("metrics request timed out: %v", err))
	}
	return apierrors.NewInternalError(err)
}

// WindowSeconds returns the range of expr's range selectors in seconds
// (rate(x[2m]) gives 120), or nil when expr has none or several ranges: the
// windowSeconds to report with values computed by expr.
func WindowSeconds(expr parser.Expr) *int64 {
	w, ok := promql.Window(expr)
	if !ok {
		return nil
	}
	s := int64(w / time.Second)
	return &s
}
