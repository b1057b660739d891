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

// Limits bound what one query may return, and whether an answer the backend
// marks as partial is accepted.
type Limits struct {
	// MaxResponseBytes bounds an answer's body (after decompression):
	// 0 is DefaultMaxResponseBytes, negative is no limit. A larger answer
	// is an error of kind TooLarge, and is never read whole.
	MaxResponseBytes int64
	// MaxSamples bounds the samples of a vector answer: 0 is
	// DefaultMaxSamples, negative is no limit. More is an error of kind
	// TooLarge.
	MaxSamples int
	// AllowPartialResponse accepts answers that carry a warning of missing
	// data (Thanos' partial responses, VictoriaMetrics' isPartial): they
	// are logged and served. By default they are errors of kind
	// PartialResponse, because a sum over part of the pods is a wrong
	// number, not a smaller one.
	AllowPartialResponse bool
}

func (l Limits) maxBytes() int64 {
	switch {
	case l.MaxResponseBytes == 0:
		return DefaultMaxResponseBytes
	case l.MaxResponseBytes < 0:
		return -1
	}
	return l.MaxResponseBytes
}

func (l Limits) maxSamples() int {
	switch {
	case l.MaxSamples == 0:
		return DefaultMaxSamples
	case l.MaxSamples < 0:
		return -1
	}
	return l.MaxSamples
}

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

// Query is Client.Query under the client's Limits.
func (c *LimitedClient) Query(ctx context.Context, query string, ts time.Time) (model.Vector, error) {
	return c.query(ctx, query, ts, c.limits)
}
