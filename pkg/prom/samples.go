package prom

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"
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

func (c *Client) querySamples(ctx context.Context, query string, ts time.Time, lim Limits) (model.Matrix, error) {
	args := url.Values{}
	if d := c.queryTimeout(ctx); d > 0 {
		args.Set("timeout", d.String())
	}
	args.Set("query", query)
	if !ts.IsZero() {
		args.Set("time", queryTime(ts))
	}
	res, err := c.doQuery(ctx, c.withParams(args), lim)
	if err != nil {
		return nil, &Error{Backend: c.name, Op: "query", Err: err}
	}
	if w := res.partial(); w != "" {
		if !lim.AllowPartialResponse {
			return nil, &Error{Backend: c.name, Op: "query", Err: withKind(PartialResponse, fmt.Errorf("query %q: %s", query, w))}
		}
		klog.V(2).InfoS("Serving a partial answer", "backend", c.name, "query", query, "warning", w)
	}
	if res.typ != model.ValMatrix {
		return nil, &Error{Backend: c.name, Op: "query", Err: withKind(InvalidResponse, fmt.Errorf("query %q returned a %s, want a matrix", query, res.typ))}
	}
	return res.matrix, nil
}
