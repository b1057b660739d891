package prom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

func (c *Client) doStrings(ctx context.Context, path, match string, start, end time.Time, lim Limits) ([]string, error) {
	preferGet := strings.HasSuffix(path, "/values")
	form := url.Values{}
	if match != "" {
		form.Set("match[]", match)
	}
	form.Set("start", formatTime(start))
	form.Set("end", formatTime(end))
	encoded := c.withParams(form).Encode()
	u := c.base.JoinPath(path)
	// Prometheus answers /api/v1/labels to POST and GET, but
	// /api/v1/label/<name>/values to GET only: values are asked with GET
	// unless the URL would be too long; otherwise POST, then GET when the
	// backend refuses the method, as for queries.
	var code int
	var body []byte
	var mem reservation
	defer mem.release()
	get := func() error {
		mem.release()
		g := *u
		g.RawQuery = encoded
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.String(), nil)
		if err != nil {
			return withKind(InvalidResponse, err)
		}
		req.Header.Set("Accept", "application/json")
		code, body, err = c.do(req, lim.maxBytes(), &mem)
		return err
	}
	if preferGet && len(u.String())+1+len(encoded) <= maxGetURL {
		if err := get(); err != nil {
			return nil, err
		}
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(encoded))
		if err != nil {
			return nil, withKind(InvalidResponse, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if code, body, err = c.do(req, lim.maxBytes(), &mem); err != nil {
			return nil, err
		}
		if code == http.StatusForbidden || code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented {
			if err := get(); err != nil {
				return nil, err
			}
		}
	}
	unit := "names"
	if preferGet {
		unit = "values"
	}
	if code/100 != 2 {
		msg := strings.TrimSpace(string(body))
		if env, err := decodeStrings(body, -1, unit); err == nil && env.Error != "" {
			msg = env.ErrorType + ": " + env.Error
		}
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, &KindError{Kind: statusKind(code), Code: code, Err: fmt.Errorf("HTTP %d: %s", code, msg)}
	}
	env, err := decodeStrings(body, lim.maxSeries(), unit)
	if err != nil {
		return nil, err
	}
	switch env.Status {
	case "success":
	case "error":
		return nil, &KindError{Kind: BadStatus, Code: code, Err: fmt.Errorf("%s: %s", env.ErrorType, env.Error)}
	case "":
		return nil, withKind(InvalidResponse, errors.New(`response has no "status"`))
	default:
		return nil, withKind(InvalidResponse, fmt.Errorf("response status is %q, want success", env.Status))
	}
	if w := (queryResult{warnings: env.Warnings, isPartial: env.IsPartial}).partial(); w != "" {
		return env.Data, withKind(PartialResponse, fmt.Errorf("%s %q: %s", path, match, w))
	}
	return env.Data, nil
}

// stringsAnswer is an answer of /api/v1/labels or
// /api/v1/label/<name>/values.
type stringsAnswer struct {
	Status, ErrorType, Error string
	Data                     []string
	Warnings                 []string
	IsPartial                bool
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
	str := func(old string) string { // null leaves a string as it is
		if d.null() {
			return old
		}
		return d.str()
	}
	list := func(max int) []string {
		if d.null() {
			return nil
		}
		out := []string{}
		d.array(func() {
			if max >= 0 && len(out) >= max {
				d.err = errTooManyItems
				return
			}
			out = append(out, str(""))
		})
		return out
	}
	d.object(func(key string) {
		switch foldKey(key) {
		case "status":
			a.Status = str(a.Status)
		case "errortype":
			a.ErrorType = str(a.ErrorType)
		case "error":
			a.Error = str(a.Error)
		case "data":
			a.Data = list(max)
		case "warnings":
			a.Warnings = list(-1)
		case "ispartial":
			if !d.null() {
				a.IsPartial = d.boolean()
			}
		default:
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
