package prom

import (
	"context"
	"encoding/json"
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
// and end (/api/v1/labels), sorted as the backend sorts them. It reads Prometheus' index without
// materialising series. The answer is bounded by the client's
// Limits.MaxResponseBytes; an answer with a warning of missing data is an
// error unless Limits.AllowPartialResponse.
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
	get := func() error {
		g := *u
		g.RawQuery = encoded
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.String(), nil)
		if err != nil {
			return withKind(InvalidResponse, err)
		}
		req.Header.Set("Accept", "application/json")
		code, body, err = c.do(req, lim.maxBytes())
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
		if code, body, err = c.do(req, lim.maxBytes()); err != nil {
			return nil, err
		}
		if code == http.StatusForbidden || code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented {
			if err := get(); err != nil {
				return nil, err
			}
		}
	}
	var env struct {
		Status    string   `json:"status"`
		Data      []string `json:"data"`
		ErrorType string   `json:"errorType"`
		Error     string   `json:"error"`
		Warnings  []string `json:"warnings"`
		IsPartial bool     `json:"isPartial"`
	}
	if jerr := json.Unmarshal(body, &env); jerr != nil || code/100 != 2 {
		if code/100 != 2 {
			msg := strings.TrimSpace(string(body))
			if jerr == nil && env.Error != "" {
				msg = env.ErrorType + ": " + env.Error
			}
			if len(msg) > 512 {
				msg = msg[:512]
			}
			return nil, &KindError{Kind: statusKind(code), Code: code, Err: fmt.Errorf("HTTP %d: %s", code, msg)}
		}
		return nil, withKind(InvalidResponse, fmt.Errorf("malformed response: %w", jerr))
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
