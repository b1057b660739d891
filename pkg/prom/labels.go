package prom

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// LabelNames returns the label names of the series matching the selector
// match (all series when match is empty) that had samples between start
// and end (/api/v1/labels), sorted as the backend sorts them. It reads
// Prometheus' index without materialising series. The answer is bounded by
// the client's Limits.MaxResponseBytes and MaxSeries (names); an answer
// with a warning of missing data is an error unless
// Limits.AllowPartialResponse.
func (c *LimitedClient) LabelNames(ctx context.Context, match string, start, end time.Time) ([]string, error) {
	return c.strings(ctx, "labels", "api/v1/labels", match, start, end, c.limits)
}

// LabelValues returns the values of label in the series matching the
// selector match that had samples between start and end
// (/api/v1/label/<label>/values), under the client's Limits as LabelNames.
func (c *LimitedClient) LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error) {
	return c.strings(ctx, "label values", "api/v1/label/"+url.PathEscape(label)+"/values", match, start, end, c.limits)
}

// LabelNames is LimitedClient.LabelNames under the default Limits.
func (c *Client) LabelNames(ctx context.Context, match string, start, end time.Time) ([]string, error) {
	return c.strings(ctx, "labels", "api/v1/labels", match, start, end, Limits{})
}

// LabelValues is LimitedClient.LabelValues under the default Limits.
func (c *Client) LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error) {
	return c.strings(ctx, "label values", "api/v1/label/"+url.PathEscape(label)+"/values", match, start, end, Limits{})
}

// strings asks an index endpoint that answers a list of strings. Errors
// are *Error with Op op; an HTTP error keeps its status code (KindError's
// Code) so that a caller can tell an endpoint the backend lacks (404) or
// a parameter it refuses (400) from a failure.
func (c *Client) strings(ctx context.Context, op, path, match string, start, end time.Time, lim Limits) ([]string, error) {
	out, err := c.doStrings(ctx, path, match, start, end, lim)
	if KindOf(err) == PartialResponse && lim.AllowPartialResponse {
		klog.V(2).InfoS("Using a partial answer", "backend", c.name, "op", op, "match", match, "warning", err.Error())
		return out, nil
	}
	if err != nil {
		return nil, &Error{Backend: c.name, Op: op, Err: err}
	}
	return out, nil
}

// doStrings asks an index endpoint (path) for the strings of the series
// matching match between start and end. Prometheus answers /api/v1/labels
// to POST and GET, but /api/v1/label/<name>/values to GET only: values are
// asked with GET unless the URL would be too long; otherwise POST, then
// GET when the backend refuses the method, as for queries.
func (c *Client) doStrings(ctx context.Context, path, match string, start, end time.Time, lim Limits) ([]string, error) {
	values := strings.HasSuffix(path, "/values")
	form := url.Values{}
	if match != "" {
		form.Set("match[]", match)
	}
	form.Set("start", formatTime(start))
	form.Set("end", formatTime(end))
	cl := call{path: path, form: form, verbs: postThenGet, lim: lim}
	unit := "names"
	if values {
		cl.verbs, unit = getFirst, "values"
	}
	var mem reservation
	defer mem.release()
	code, body, err := c.fetch(ctx, cl, &mem)
	if err != nil {
		return nil, err
	}
	if code/100 != 2 {
		msg := string(body)
		if env, ok := decodeEnvelope(body); ok && env.Error != "" {
			msg = env.ErrorType + ": " + env.Error
		}
		return nil, &KindError{Kind: statusKind(code), Code: code, Err: fmt.Errorf("HTTP %d: %s", code, errorText(msg))}
	}
	a, err := decodeStrings(body, lim.maxSeries(), unit)
	if err != nil {
		return nil, err
	}
	if err := a.indexStatus(code); err != nil {
		return nil, err
	}
	if w := a.partial(); w != "" {
		return a.Data, withKind(PartialResponse, fmt.Errorf("%s %q: %s", path, match, w))
	}
	return a.Data, nil
}

// stringsAnswer is an answer of /api/v1/labels or
// /api/v1/label/<name>/values.
type stringsAnswer struct {
	envelope
	Data []string
}

// errTooManyItems stops the decoding of a list over the limit.
var errTooManyItems = errors.New("too many items")

// decodeStrings decodes an answer whose "data" is a list of strings, read
// as encoding/json reads it into stringsAnswer (keys in any order and
// matched case-insensitively, unknown keys ignored, null for an empty
// value). More than max strings in "data" (negative: any number) is an
// error of kind TooLarge, counting unit, found before they are all
// decoded; malformed JSON is of kind InvalidResponse.
func decodeStrings(body []byte, max int, unit string) (stringsAnswer, error) {
	d := &scanner{b: body} // strings are copied out of body, which is not kept
	var a stringsAnswer
	d.object(func(key string) {
		switch k := foldKey(key); {
		case k == "data":
			a.Data = nil
			if d.null() {
				return
			}
			a.Data = []string{}
			d.array(func() {
				if max >= 0 && len(a.Data) >= max {
					d.err = errTooManyItems
					return
				}
				s := ""
				if !d.null() {
					s = d.str()
				}
				a.Data = append(a.Data, s)
			})
		case !a.scanField(d, k):
			d.skip()
		}
	})
	d.end()
	switch {
	case errors.Is(d.err, errTooManyItems):
		return stringsAnswer{}, withKind(TooLarge, &LimitError{Max: int64(max), Unit: unit, Option: FlagMaxSeries})
	case d.err != nil:
		return stringsAnswer{}, withKind(InvalidResponse, fmt.Errorf("malformed response: %w", d.err))
	}
	return a, nil
}
