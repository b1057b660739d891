package prom

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// QuerySamples runs an instant query whose answer is a matrix, such as a
// range-vector selector (`up{job="x"}[1m]`), and returns it: the raw
// samples of each selected series within the range, with their own
// timestamps. It obeys the default Limits (the samples of all series count
// against MaxSamples) and reports failures as Query does; an answer of
// another type is an error of kind InvalidResponse.
func (c *Client) QuerySamples(ctx context.Context, query string, ts time.Time) (model.Matrix, error) {
	return c.querySamples(ctx, query, ts, Limits{})
}

// QuerySamples is Client.QuerySamples under the client's Limits.
func (c *LimitedClient) QuerySamples(ctx context.Context, query string, ts time.Time) (model.Matrix, error) {
	return c.querySamples(ctx, query, ts, c.limits)
}

// querySamples runs QuerySamples under lim.
func (c *Client) querySamples(ctx context.Context, query string, ts time.Time, lim Limits) (model.Matrix, error) {
	res, err := c.instant(ctx, query, ts, lim)
	if err != nil {
		return nil, err
	}
	if res.typ != model.ValMatrix {
		return nil, &Error{Backend: c.name, Op: "query", Err: withKind(InvalidResponse, fmt.Errorf("query %q returned a %s, want a matrix", query, res.typ))}
	}
	return res.matrix, nil
}
