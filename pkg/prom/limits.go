package prom

import (
	"context"
	"time"

	"github.com/prometheus/common/model"
)

// Default limits of one query answer. A Kubernetes cluster at its tested
// scale limit (150,000 pods, a few containers each) gives a cluster-wide
// per-container query of some 450,000 samples; each is 100 to 150 bytes of
// JSON with namespace, pod and container labels, hence 500k samples and
// 64 MiB. Decoded, a sample keeps some 250 bytes of structure alive besides
// its text (measured), so an answer at the limits holds about 190 MiB, and
// the engine's 16 concurrent queries bound the worst case near 3 GiB; set
// lower limits for smaller clusters.
const (
	DefaultMaxResponseBytes = 64 << 20
	DefaultMaxSamples       = 500_000
)

// Default limits of one /api/v1/series answer, and of the label names or
// values of one /api/v1/labels or /api/v1/label/<name>/values answer.
//
// A series answer is decoded as it arrives: its cost in memory is one
// series at a time (at most maxSeriesEntryBytes), not its size, and
// discovery must list a million series and more (docs/performance.md:
// 1,050,000 series, some 200 bytes each in the benchmark, 400 to 600 with
// cAdvisor's labels), which the 64 MiB of a query answer would stop near
// 300,000. Two million series and 1 GiB leave twice that. An index answer
// cannot rightly name more label names or values than there are series,
// hence the same DefaultMaxSeries; it is read whole, under
// DefaultMaxResponseBytes.
const (
	DefaultMaxSeriesResponseBytes = 1 << 30
	DefaultMaxSeries              = 2_000_000
)

// Limits bound what one answer of the backend may hold, and whether an
// answer the backend marks as partial is accepted. Every answer is bounded
// while it is read: a larger one is an error of kind TooLarge (wrapping a
// *LimitError), never a shorter answer. The body of an error answer
// (non-2xx) is read for its message only, at most errorBodyBytes of it.
type Limits struct {
	// MaxResponseBytes bounds an answer's body, counted after
	// decompression: 0 is the default, negative is no limit. The default
	// is DefaultMaxResponseBytes for the answers read whole (queries,
	// label names and values) and DefaultMaxSeriesResponseBytes for
	// /api/v1/series, decoded as it arrives. Whatever this limit (unless
	// negative), one series of a series answer, or any other single value
	// of it, may not exceed 1 MiB (maxSeriesEntryBytes).
	MaxResponseBytes int64
	// MaxSamples bounds the samples of a query's answer (a vector's
	// samples, all the samples of a matrix's series): 0 is
	// DefaultMaxSamples, negative is no limit. More is an error of kind
	// TooLarge, found before the samples are decoded.
	MaxSamples int
	// MaxSeries bounds the series of a /api/v1/series answer, and the
	// names or values of a /api/v1/labels or /api/v1/label/<name>/values
	// answer: 0 is DefaultMaxSeries, negative is no limit. More is an
	// error of kind TooLarge; the SeriesFunc of Series has then received
	// MaxSeries series, never more.
	MaxSeries int
	// AllowPartialResponse accepts answers that carry a warning of missing
	// data (Thanos' partial responses, VictoriaMetrics' isPartial): they
	// are logged and served. By default they are errors of kind
	// PartialResponse, because a sum over part of the pods is a wrong
	// number, not a smaller one.
	AllowPartialResponse bool
}

// maxBytes is the byte limit of an answer read whole (negative: none).
func (l Limits) maxBytes() int64 {
	switch {
	case l.MaxResponseBytes == 0:
		return DefaultMaxResponseBytes
	case l.MaxResponseBytes < 0:
		return -1
	}
	return l.MaxResponseBytes
}

// maxSeriesBytes is the byte limit of a /api/v1/series answer (negative:
// none).
func (l Limits) maxSeriesBytes() int64 {
	switch {
	case l.MaxResponseBytes == 0:
		return DefaultMaxSeriesResponseBytes
	case l.MaxResponseBytes < 0:
		return -1
	}
	return l.MaxResponseBytes
}

// maxSeries is the limit of series, label names or label values of one
// answer (negative: none).
func (l Limits) maxSeries() int {
	switch {
	case l.MaxSeries == 0:
		return DefaultMaxSeries
	case l.MaxSeries < 0:
		return -1
	}
	return l.MaxSeries
}

// maxSamples is the limit of a query answer's samples (negative: none).
func (l Limits) maxSamples() int {
	switch {
	case l.MaxSamples == 0:
		return DefaultMaxSamples
	case l.MaxSamples < 0:
		return -1
	}
	return l.MaxSamples
}

// maxSeriesEntryBytes bounds one series of a /api/v1/series answer (its
// labels), and any other single value of it (a list of warnings, a key
// promgate does not know), whatever the answer's own limit: the streaming
// decoder holds one of them at a time, and the answer may be large.
const maxSeriesEntryBytes = 1 << 20

// LimitedClient is a Client whose queries obey Limits other than the
// defaults.
type LimitedClient struct {
	*Client
	limits Limits
}

// WithLimits returns c with queries bounded by l. Client.Query itself uses
// the zero Limits: the defaults, and no partial answers.
func (c *Client) WithLimits(l Limits) *LimitedClient {
	return &LimitedClient{Client: c, limits: l}
}

// WithTimeout is Client.WithTimeout, under the same Limits.
func (c *LimitedClient) WithTimeout(d time.Duration) *LimitedClient {
	return &LimitedClient{Client: c.Client.WithTimeout(d), limits: c.limits}
}

// Query is Client.Query under the client's Limits.
func (c *LimitedClient) Query(ctx context.Context, query string, ts time.Time) (model.Vector, error) {
	return c.query(ctx, query, ts, c.limits)
}
