package prom

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// verbs is how a call chooses its HTTP method.
type verbs int

const (
	// postThenGet sends the form as a POST, and again as a GET when the
	// backend (or a proxy) refuses the method with 403, 405 or 501, as
	// client_golang's v1 API does (DoGetFallback).
	postThenGet verbs = iota
	// getFirst sends a GET when the URL stays within maxGetURL, otherwise
	// as postThenGet: Prometheus answers /api/v1/label/<name>/values to GET
	// only.
	getFirst
	// postOnly sends a POST and takes its answer, whatever the status.
	postOnly
)

// maxGetURL is the longest request URL sent with GET (Verb GET, getFirst);
// longer requests go as POST to avoid 414 URI Too Long.
const maxGetURL = 4096

// call is one request of the HTTP API.
type call struct {
	// path is the endpoint below the base URL, such as "api/v1/query".
	path string
	// form holds the parameters; the client's Options.Params are added to
	// it (those it sets itself win).
	form  url.Values
	verbs verbs
	// lim bounds the answer; answers read whole (fetch) take its
	// MaxResponseBytes, the caller of open applies its own.
	lim Limits
}

// open sends cl, choosing the method by cl.verbs, and returns the answer
// to read and close: of any status, except a refused POST that was sent
// again as GET. A failure to send it is an error of its transport kind.
func (c *Client) open(ctx context.Context, cl call) (*http.Response, error) {
	encoded := c.withParams(cl.form).Encode()
	u := c.base.JoinPath(cl.path)
	if cl.verbs == getFirst && len(u.String())+1+len(encoded) <= maxGetURL {
		return c.send(ctx, http.MethodGet, u, encoded)
	}
	resp, err := c.send(ctx, http.MethodPost, u, encoded)
	if err != nil || cl.verbs == postOnly || !refusesMethod(resp.StatusCode) {
		return resp, err
	}
	discard(resp)
	return c.send(ctx, http.MethodGet, u, encoded)
}

// refusesMethod reports whether an answer's status code tells that POST
// is not allowed there: what client_golang retries with GET.
func refusesMethod(code int) bool {
	return code == http.StatusForbidden || code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented
}

// send sends the encoded form to u with method, in the URL's query for
// GET and as the body of a POST. Every request asks for JSON; a POST is
// marked idempotent, as client_golang marks it, so that net/http may send
// it again on a connection that turns out to be closed (the header itself
// is not sent).
func (c *Client) send(ctx context.Context, method string, u *url.URL, encoded string) (*http.Response, error) {
	target := *u
	var body io.Reader
	if method == http.MethodGet {
		target.RawQuery = encoded
	} else {
		body = strings.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), body)
	if err != nil {
		return nil, withKind(InvalidResponse, err)
	}
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header["Idempotency-Key"] = nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, withKind(transportKind(err), err)
	}
	return resp, nil
}

// fetch sends cl and reads its answer's body whole: at most
// cl.lim.maxBytes() of it when the status is 2xx (larger is an error of
// kind TooLarge), else the start of it (see readErrorBody). The body's
// memory is charged to mem (see MaxAnswerBytesInFlight), which the caller
// releases once it has decoded the body.
func (c *Client) fetch(ctx context.Context, cl call, mem *reservation) (int, []byte, error) {
	resp, err := c.open(ctx, cl)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	maxBytes := cl.lim.maxBytes()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, readErrorBody(resp.Body, maxBytes), nil
	}
	if maxBytes >= 0 && resp.ContentLength > maxBytes {
		return resp.StatusCode, nil, tooManyBytes(maxBytes, resp.ContentLength)
	}
	body, err := readBounded(resp.Body, resp.ContentLength, maxBytes, mem)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, body, nil
}

// discard reads what is left of an answer's body, up to errorBodyBytes
// (so that its connection can serve another request), and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, errorBodyBytes))
	_ = resp.Body.Close()
}

// withParams returns form with the client's extra parameters added, those
// form sets itself left as they are.
func (c *Client) withParams(form url.Values) url.Values {
	for k, vs := range c.params {
		if _, own := form[k]; own {
			continue
		}
		form[k] = append([]string(nil), vs...)
	}
	return form
}

// getRoundTripper turns the client's form POSTs into GETs for backends or
// proxies that only allow GET (Options.Verb GET), as long as the URL stays
// within maxGetURL.
type getRoundTripper struct{ next http.RoundTripper }

// RoundTrip sends r, as a GET when it is a short enough form POST.
func (g *getRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.GetBody == nil ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return g.next.RoundTrip(r)
	}
	form, err := readBody(r.GetBody, maxGetURL)
	if err != nil {
		closeBody(r) // a RoundTripper always closes the body it was given
		return nil, err
	}
	u := *r.URL
	u.RawQuery = string(form)
	if len(form) > maxGetURL || len(u.String()) > maxGetURL {
		return g.next.RoundTrip(r)
	}
	closeBody(r)
	nr := r.Clone(r.Context())
	nr.Method = http.MethodGet
	nr.URL = &u
	nr.Body, nr.GetBody, nr.ContentLength = nil, nil, 0
	nr.Header.Del("Content-Type")
	return g.next.RoundTrip(nr)
}

// closeBody closes the body of r, if any.
func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// readBody reads a request's body again, up to max+1 bytes: more than max
// tells that it is too long, not what it is.
func readBody(get func() (io.ReadCloser, error), max int64) ([]byte, error) {
	body, err := get()
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }()
	return io.ReadAll(io.LimitReader(body, max+1))
}
