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
// response in memory.
func (c *Client) Series(ctx context.Context, match string, start, end time.Time, fn SeriesFunc) error {
	if err := c.series(ctx, match, start, end, fn); err != nil {
		return &Error{Backend: c.name, Op: "series", Err: err}
	}
	return nil
}

func (c *Client) series(ctx context.Context, match string, start, end time.Time, fn SeriesFunc) error {
	form := url.Values{}
	form.Set("match[]", match)
	form.Set("start", formatTime(start))
	form.Set("end", formatTime(end))
	u := c.base.JoinPath("api/v1/series")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return decodeSeries(resp.Body, resp.StatusCode, fn)
}

// decodeSeries reads a /api/v1/series response: an object whose "data" is
// an array of label objects, or whose "status" is "error".
func decodeSeries(r io.Reader, code int, fn SeriesFunc) error {
	err := decodeSeriesResponse(json.NewDecoder(r), code, fn)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) { // the stream ended inside the document
		return fmt.Errorf("truncated response: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func decodeSeriesResponse(dec *json.Decoder, code int, fn SeriesFunc) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	var status, errType, errMsg string
	sawData := false
	for dec.More() {
		key, err := stringToken(dec)
		if err != nil {
			return err
		}
		switch key {
		case "status":
			status, err = stringToken(dec)
		case "errorType":
			errType, err = stringToken(dec)
		case "error":
			errMsg, err = stringToken(dec)
		case "data":
			sawData = true
			err = decodeSeriesArray(dec, fn)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if status == "error" || code/100 != 2 {
		if errMsg == "" {
			errMsg = "HTTP " + strconv.Itoa(code)
		}
		if errType != "" {
			return fmt.Errorf("%s: %s", errType, errMsg)
		}
		return errors.New(errMsg)
	}
	if !sawData {
		return errors.New("response has no data")
	}
	return nil
}

func decodeSeriesArray(dec *json.Decoder, fn SeriesFunc) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // "data": null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("data: want an array, got %v", tok)
	}
	var lbls []Label
	for dec.More() {
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
			if k == "__name__" {
				name = v
				continue
			}
			lbls = append(lbls, Label{Name: k, Value: v})
		}
		if err := expectDelim(dec, '}'); err != nil {
			return err
		}
		fn(name, lbls)
	}
	return expectDelim(dec, ']')
}

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

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
