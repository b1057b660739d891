package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"
)

// Label is one label of a series.
type Label struct {
	Name, Value string
}

// SeriesFunc receives one series at a time: its metric name and its other
// labels. The slice is reused between calls; copy what you keep.
type SeriesFunc func(name string, labels []Label)

// Series streams the series matching the selector match that had samples
// between start and end, calling fn for each without holding the whole
// response in memory, under the default Limits (see WithLimits). When it
// returns an error, the series fn received are not all there are: an
// answer with a warning of missing data (see Limits.AllowPartialResponse)
// is an error too, found after its series, and an answer over the Limits
// (MaxResponseBytes, MaxSeries, or one series over 1 MiB) is an error of
// kind TooLarge, found where it crosses them: fn has received the series
// before that point, and never more than MaxSeries.
func (c *Client) Series(ctx context.Context, match string, start, end time.Time, fn SeriesFunc) error {
	return c.seriesLimited(ctx, match, start, end, fn, Limits{})
}

// Series is Client.Series under the client's Limits.
func (c *LimitedClient) Series(ctx context.Context, match string, start, end time.Time, fn SeriesFunc) error {
	return c.seriesLimited(ctx, match, start, end, fn, c.limits)
}

// seriesLimited runs Series under lim.
func (c *Client) seriesLimited(ctx context.Context, match string, start, end time.Time, fn SeriesFunc, lim Limits) error {
	if err := c.series(ctx, match, start, end, fn, lim); err != nil {
		return &Error{Backend: c.name, Op: "series", Err: err}
	}
	return nil
}

// series streams one series answer to fn (see Series); its errors are
// KindErrors.
func (c *Client) series(ctx context.Context, match string, start, end time.Time, fn SeriesFunc, lim Limits) error {
	form := url.Values{}
	form.Set("match[]", match)
	form.Set("start", formatTime(start))
	form.Set("end", formatTime(end))
	resp, err := c.open(ctx, call{path: "api/v1/series", form: form, verbs: postOnly, lim: lim})
	if err != nil {
		return err
	}
	defer discard(resp)
	if resp.StatusCode/100 != 2 {
		return seriesStatusError(resp)
	}
	b := seriesBounds{bytes: lim.maxSeriesBytes(), series: lim.maxSeries(), entry: -1}
	if b.bytes >= 0 {
		b.entry = maxSeriesEntryBytes
		if resp.ContentLength > b.bytes {
			return tooManyBytes(b.bytes, resp.ContentLength)
		}
	}
	err = decodeSeriesBounded(resp.Body, resp.StatusCode, fn, b)
	switch {
	case KindOf(err) == PartialResponse && lim.AllowPartialResponse:
		klog.V(2).InfoS("Using a partial series answer", "backend", c.name, "match", match, "warning", err.Error())
		return nil
	case KindOf(err) == PartialResponse:
		return withKind(PartialResponse, fmt.Errorf("series %q: %w", match, err))
	}
	return err
}

// seriesStatusError is the error of a non-2xx series answer, read from the
// start of its body: the answer's own error when it is Prometheus' JSON,
// otherwise its text.
func seriesStatusError(resp *http.Response) error {
	body := readErrorBody(resp.Body, -1)
	code := resp.StatusCode
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if env, ok := decodeEnvelope(body); ok {
			if ke, ok := errors.AsType[*KindError](env.indexStatus(code)); ok && ke.Kind == BadStatus {
				ke.Kind = statusKind(code)
				return ke
			}
		}
	}
	return &KindError{Kind: statusKind(code), Code: code, Err: fmt.Errorf("HTTP %s: %s", resp.Status, errorText(string(body)))}
}

// seriesBounds bound a series answer: its bytes, its series, and the bytes
// of one series or of any other single value of it (negative: no limit).
type seriesBounds struct {
	bytes  int64
	series int
	entry  int64
}

// decodeSeries reads a /api/v1/series response: an object whose "data" is
// an array of label objects, or whose "status" is "error". Errors are
// KindErrors: BadStatus for an error answer, PartialResponse for one with
// a warning of missing data (after all its series), InvalidResponse
// otherwise.
func decodeSeries(r io.Reader, code int, fn SeriesFunc) error {
	return decodeSeriesBounded(r, code, fn, seriesBounds{bytes: -1, series: -1, entry: -1})
}

// decodeSeriesBounded is decodeSeries within b: past them, the error is of
// kind TooLarge, and fn has received at most b.series series. An error of
// reading r is of its transport kind.
func decodeSeriesBounded(r io.Reader, code int, fn SeriesFunc, b seriesBounds) error {
	br := &boundedReader{r: r, max: b.bytes}
	d := &seriesDecoder{dec: json.NewDecoder(br), br: br, bounds: b}
	if b.entry >= 0 {
		br.dec, br.maxValue, br.part = d.dec, b.entry, "one value"
	}
	env, err := d.response(code, fn)
	switch {
	case br.limitErr != nil:
		return br.limitErr
	case br.readErr != nil: // the connection, not the JSON
		return withKind(transportKind(br.readErr), err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) { // the stream ended inside the document
		err = fmt.Errorf("truncated response: %w", io.ErrUnexpectedEOF)
	}
	if err != nil {
		if _, ok := errors.AsType[*KindError](err); !ok {
			err = withKind(InvalidResponse, err)
		}
		return err
	}
	if w := env.partial(); w != "" {
		return withKind(PartialResponse, errors.New(w))
	}
	return nil
}

// seriesDecoder streams a series answer.
type seriesDecoder struct {
	dec    *json.Decoder
	br     *boundedReader
	bounds seriesBounds
}

// response reads the answer (its status code code), calling fn for each
// series of its "data", and returns its envelope. Its keys are matched as
// Prometheus writes them.
func (d *seriesDecoder) response(code int, fn SeriesFunc) (envelope, error) {
	dec := d.dec
	var env envelope
	if err := expectDelim(dec, '{'); err != nil {
		return env, err
	}
	sawData := false
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return env, err
		}
		switch key {
		case "status":
			env.Status, err = stringToken(dec)
		case "warnings":
			err = dec.Decode(&env.Warnings)
		case "errorType":
			env.ErrorType, err = stringToken(dec)
		case "error":
			env.Error, err = stringToken(dec)
		case "data":
			sawData = true
			err = d.array(fn)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return env, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return env, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return env, errors.New("malformed response: data after the top-level value")
	}
	if err := env.indexStatus(code); err != nil {
		return env, err
	}
	if !sawData {
		return env, errors.New("response has no data")
	}
	return env, nil
}

// array reads the "data" array, calling fn for each series within the
// bounds.
func (d *seriesDecoder) array(fn SeriesFunc) error {
	dec := d.dec
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // "data": null
		return nil
	}
	if dl, ok := tok.(json.Delim); !ok || dl != '[' {
		return fmt.Errorf("data: want an array, got %v", tok)
	}
	d.br.part = "one series"
	defer func() { d.br.part = "one value" }()
	var lbls []Label
	n := 0
	for dec.More() {
		start := dec.InputOffset()
		if err := expectDelim(dec, '{'); err != nil {
			return err
		}
		lbls = lbls[:0]
		name := ""
		for dec.More() {
			k, err := stringToken(dec)
			if err != nil {
				return err
			}
			v, err := stringToken(dec)
			if err != nil {
				return err
			}
			if d.bounds.entry >= 0 && dec.InputOffset()-start > d.bounds.entry {
				return withKind(TooLarge, &LimitError{Max: d.bounds.entry, Unit: "bytes", Part: "one series"})
			}
			if k == "__name__" {
				name = v
				continue
			}
			lbls = append(lbls, Label{Name: k, Value: v})
		}
		if err := expectDelim(dec, '}'); err != nil {
			return err
		}
		if n++; d.bounds.series >= 0 && n > d.bounds.series {
			return withKind(TooLarge, &LimitError{Max: int64(d.bounds.series), Unit: "series", Option: FlagMaxSeries})
		}
		fn(name, lbls)
	}
	return expectDelim(dec, ']')
}

// expectDelim reads the delimiter want from dec.
func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("malformed response: want %q, got %v", want, tok)
	}
	return nil
}

// stringToken reads a string from dec.
func stringToken(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("malformed response: want a string, got %v", tok)
	}
	return s, nil
}

// formatTime formats a series or index request's start or end, in seconds
// with milliseconds.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
