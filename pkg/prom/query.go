package prom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"
)

// Query runs an instant query at ts and returns its vector result, under
// the default Limits (see WithLimits). Scalars are returned as a one-sample
// vector without labels. The client's timeout is also sent to the backend,
// so that it gives up at the same time.
//
// The answer is complete or an error: a warning of missing data, a sample
// without a value, a status other than "success" or JSON that
// encoding/json would refuse are errors, each an *Error whose KindOf tells
// which failure it is.
//
// The request is the one client_golang's v1 API sends (a form POST,
// retried as GET on 403, 405 or 501), but the answer is read and decoded
// here: its size is bounded while it is read, and a vector of thousands of
// samples, the size of the providers' batched queries, decodes several
// times faster than with model.Sample's JSON methods.
func (c *Client) Query(ctx context.Context, query string, ts time.Time) (model.Vector, error) {
	return c.query(ctx, query, ts, Limits{})
}

func (c *Client) query(ctx context.Context, query string, ts time.Time, lim Limits) (model.Vector, error) {
	res, err := c.instant(ctx, query, ts, lim)
	if err != nil {
		return nil, err
	}
	switch res.typ {
	case model.ValVector:
		return res.vector, nil
	case model.ValScalar:
		return model.Vector{{Metric: model.Metric{}, Value: res.scalar.Value, Timestamp: res.scalar.Timestamp}}, nil
	default:
		return nil, &Error{Backend: c.name, Op: "query", Err: withKind(InvalidResponse, fmt.Errorf("query %q returned a %s, want a vector", query, res.typ))}
	}
}

// instant runs query at ts (the backend's now when zero) under lim and
// returns its answer, of any type; a partial answer is an error unless lim
// allows it.
func (c *Client) instant(ctx context.Context, query string, ts time.Time, lim Limits) (queryResult, error) {
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
		return queryResult{}, &Error{Backend: c.name, Op: "query", Err: err}
	}
	if w := res.partial(); w != "" {
		if !lim.AllowPartialResponse {
			return queryResult{}, &Error{Backend: c.name, Op: "query", Err: withKind(PartialResponse, fmt.Errorf("query %q: %s", query, w))}
		}
		klog.V(2).InfoS("Serving a partial answer", "backend", c.name, "query", query, "warning", w)
	}
	return res, nil
}

// queryTime formats an evaluation time as client_golang does.
func queryTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

// doQuery POSTs the form to /api/v1/query, falling back to GET when the
// backend refuses POST, and decodes the answer. Its errors are KindErrors.
func (c *Client) doQuery(ctx context.Context, args url.Values, lim Limits) (queryResult, error) {
	u := c.raw.URL("/api/v1/query", nil)
	encoded := args.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(encoded))
	if err != nil {
		return queryResult{}, withKind(InvalidResponse, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header["Idempotency-Key"] = nil // retried like an idempotent request, header not sent
	var mem reservation
	defer mem.release()
	code, body, err := c.do(req, lim.maxBytes(), &mem)
	if err == nil && (code == http.StatusForbidden || code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented) {
		u.RawQuery = encoded
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil); err != nil {
			return queryResult{}, withKind(InvalidResponse, err)
		}
		mem.release()
		code, body, err = c.do(req, lim.maxBytes(), &mem)
	}
	if err != nil {
		return queryResult{}, err
	}
	if code/100 != 2 {
		return queryResult{}, &KindError{Kind: statusKind(code), Code: code, Err: httpError(code, body)}
	}
	res, err := decodeQueryResponse(body, lim.maxSamples())
	if ke, ok := errors.AsType[*KindError](err); ok && ke.Kind == BadStatus {
		ke.Code = code
	}
	return res, err
}

// do sends req and reads the answer's body: at most maxBytes of it
// (negative: no limit) when the status is 2xx, else the start of it (see
// readErrorBody). The body's memory is charged to res (see
// MaxAnswerBytesInFlight), which the caller releases once it has decoded
// the body.
func (c *Client) do(req *http.Request, maxBytes int64, res *reservation) (int, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, withKind(transportKind(err), err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, readErrorBody(resp.Body, maxBytes), nil
	}
	if maxBytes >= 0 && resp.ContentLength > maxBytes {
		return resp.StatusCode, nil, tooManyBytes(maxBytes, resp.ContentLength)
	}
	body, err := readBounded(resp.Body, resp.ContentLength, maxBytes, res)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, body, nil
}

// httpError is the error for a non-2xx answer, as client_golang's v1 API
// reports it.
func httpError(code int, body []byte) error {
	generic := func() error {
		typ, msg := v1.ErrBadResponse, fmt.Sprintf("bad response code %d", code)
		switch code / 100 {
		case 4:
			typ, msg = v1.ErrClient, fmt.Sprintf("client error: %d", code)
		case 5:
			typ, msg = v1.ErrServer, fmt.Sprintf("server error: %d", code)
		}
		return &v1.Error{Type: typ, Msg: msg, Detail: string(body)}
	}
	// Prometheus answers its own errors with 400 or 422 and a JSON body.
	if code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
		return generic()
	}
	var env struct {
		Status    string       `json:"status"`
		ErrorType v1.ErrorType `json:"errorType"`
		Error     string       `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return generic()
	}
	if env.Status == "success" {
		return &v1.Error{Type: v1.ErrBadResponse, Msg: "inconsistent body for response code"}
	}
	if env.ErrorType == "" {
		env.ErrorType = v1.ErrClient
	}
	if env.Error == "" {
		env.Error = fmt.Sprintf("client error: %d", code)
	}
	return &v1.Error{Type: env.ErrorType, Msg: env.Error}
}

// queryResult is a decoded /api/v1/query answer.
type queryResult struct {
	typ    model.ValueType
	vector model.Vector
	scalar *model.Scalar
	matrix model.Matrix
	// warnings are the answer's "warnings"; isPartial its "isPartial"
	// (VictoriaMetrics).
	warnings  []string
	isPartial bool
}

// partial returns why the answer lacks data, or "" if it is complete. Any
// warning is taken as missing data (Thanos and Mimir report unavailable
// stores, Prometheus failed remote reads that way), except PromQL's own
// annotations, which describe the query, not the data.
func (r queryResult) partial() string {
	var w []string
	if r.isPartial {
		w = append(w, "isPartial is true")
	}
	for _, s := range r.warnings {
		if !strings.HasPrefix(s, "PromQL warning: ") && !strings.HasPrefix(s, "PromQL info: ") {
			w = append(w, s)
		}
	}
	return strings.Join(w, "; ")
}

// errTooManySamples stops the decoding of a vector over the limit.
var errTooManySamples = errors.New("too many samples")

// decodeQueryResponse decodes the body of a 2xx /api/v1/query answer:
// {"status":"success","data":{"resultType":"vector","result":[...]}}, keys
// in any order and matched case-insensitively, unknown keys ignored, as
// encoding/json does. Vectors are decoded by a scanner that slices label
// names and values out of one copy of the body; a vector with native
// histograms, a scalar or another result type take the standard decoders.
// A vector of more than maxSamples (negative: any number) is an error of
// kind TooLarge. Other errors are of kind InvalidResponse, and wrap a
// *v1.Error of type bad_response, except "status":"error": kind
// BadStatus, wrapping a *v1.Error of the answer's type.
func decodeQueryResponse(body []byte, maxSamples int) (queryResult, error) {
	d := &scanner{b: body, s: string(body)}
	var status, errType, errMsg, resultType string
	var warnings []string
	isPartial := false
	resultStart, resultEnd := -1, -1 // where the "result" value lies in body
	var vector model.Vector
	var vecErr error
	decoded := false
	d.object(func(key string) {
		switch foldKey(key) {
		case "status":
			status = d.str()
		case "errortype":
			errType = d.str()
		case "error":
			errMsg = d.str()
		case "warnings":
			warnings = nil // a repeated key replaces, as encoding/json does
			if d.null() {
				return
			}
			d.array(func() { warnings = append(warnings, d.str()) })
		case "ispartial":
			isPartial = d.boolean()
		case "data":
			if d.null() {
				return
			}
			d.object(func(key string) {
				switch foldKey(key) {
				case "resulttype":
					resultType = d.str()
				case "result":
					resultStart = d.pos()
					if resultType == "vector" { // decoded in place: the usual order
						vector, vecErr = decodeVector(d, maxSamples)
						decoded = true
					} else {
						d.skip()
					}
					resultEnd = d.i
				default:
					d.skip()
				}
			})
		default:
			d.skip()
		}
	})
	d.end()
	if errors.Is(d.err, errTooManySamples) {
		return queryResult{}, tooManySamples(maxSamples)
	}
	if d.err != nil {
		return queryResult{}, badResponse(d.err)
	}
	switch status {
	case "success":
	case "error":
		return queryResult{}, withKind(BadStatus, &v1.Error{Type: v1.ErrorType(errType), Msg: errMsg})
	case "":
		return queryResult{}, badResponse(errors.New(`the answer has no "status"`))
	default:
		return queryResult{}, badResponse(fmt.Errorf("the answer's status is %q, want success", status))
	}
	if resultStart < 0 {
		return queryResult{}, badResponse(errors.New("the answer has no data.result"))
	}
	res := queryResult{typ: model.ValNone, warnings: warnings, isPartial: isPartial}
	var err error
	switch resultType {
	case model.ValVector.String():
		res.typ = model.ValVector
		if decoded && vecErr == nil {
			res.vector = vector
		} else {
			res.vector, err = decodeVector(&scanner{b: body[:resultEnd], s: d.s[:resultEnd], i: resultStart}, maxSamples)
		}
	case model.ValScalar.String():
		res.typ = model.ValScalar
		res.scalar = &model.Scalar{}
		err = json.Unmarshal(body[resultStart:resultEnd], res.scalar)
	case model.ValMatrix.String():
		res.typ = model.ValMatrix
		if maxSamples >= 0 {
			err = countMatrix(&scanner{b: body[:resultEnd], s: d.s[:resultEnd], i: resultStart}, maxSamples)
		}
		if err != nil {
			break
		}
		if err = json.Unmarshal(body[resultStart:resultEnd], &res.matrix); err == nil && maxSamples >= 0 {
			n := 0
			for _, ss := range res.matrix {
				n += len(ss.Values) + len(ss.Histograms)
			}
			if n > maxSamples {
				err = errTooManySamples
			}
		}
	case model.ValString.String():
		res.typ = model.ValString
	default:
		err = fmt.Errorf("unexpected value type %q", resultType)
	}
	if errors.Is(err, errTooManySamples) {
		return queryResult{}, tooManySamples(maxSamples)
	}
	if err != nil {
		return queryResult{}, badResponse(err)
	}
	return res, nil
}

func tooManySamples(max int) error {
	return withKind(TooLarge, &LimitError{Max: int64(max), Unit: "samples", Option: FlagMaxSamples})
}

func badResponse(err error) error {
	return withKind(InvalidResponse, &v1.Error{Type: v1.ErrBadResponse, Msg: err.Error()})
}

// countMatrix counts the samples of the matrix result at d.i (the elements
// of its series' "values" and "histograms"), failing with
// errTooManySamples past max before any is decoded. It returns nil for
// JSON it cannot read: the decoding that follows reports it.
func countMatrix(d *scanner, max int) error {
	n := 0
	if d.null() {
		return nil
	}
	d.array(func() {
		if d.null() {
			return
		}
		d.object(func(key string) {
			switch foldKey(key) {
			case "values", "histograms":
				if d.null() {
					return
				}
				d.array(func() {
					if n++; n > max {
						d.err = errTooManySamples
						return
					}
					d.skip()
				})
			default:
				d.skip()
			}
		})
	})
	if errors.Is(d.err, errTooManySamples) {
		return errTooManySamples
	}
	return nil
}

// sampleChunk is how many samples are allocated together.
const sampleChunk = 256

// decodeVector decodes the vector result at d.i, leaving d after it. Every
// sample must have a metric and a value (or a histogram), and there may be
// at most maxSamples (negative: any number). It falls back to
// model.Vector's own decoding for samples it does not know, such as native
// histograms.
func decodeVector(d *scanner, maxSamples int) (model.Vector, error) {
	start := d.pos()
	if d.null() {
		return nil, nil
	}
	vec := model.Vector{}
	var chunk []model.Sample
	var kv []string
	var scratch model.Sample // for samples read only to check them
	slow := false
	n := 0
	d.array(func() {
		if n++; maxSamples >= 0 && n > maxSamples {
			d.err = errTooManySamples
			return
		}
		smp := &scratch
		if !slow {
			if len(chunk) == cap(chunk) {
				chunk = make([]model.Sample, 0, sampleChunk)
			}
			chunk = append(chunk, model.Sample{})
			smp = &chunk[len(chunk)-1]
		}
		hasMetric, hasValue := false, false
		d.object(func(key string) {
			switch foldKey(key) {
			case "metric":
				hasMetric = true
				if d.null() {
					return
				}
				kv = kv[:0]
				d.object(func(name string) {
					kv = append(kv, name, d.str())
				})
				if slow {
					return
				}
				if smp.Metric == nil { // a repeated key adds to the first, as encoding/json does
					smp.Metric = make(model.Metric, len(kv)/2)
				}
				for i := 0; i+1 < len(kv); i += 2 {
					smp.Metric[model.LabelName(kv[i])] = model.LabelValue(kv[i+1])
				}
			case "value":
				hasValue = true
				i := 0
				d.array(func() {
					switch i {
					case 0:
						smp.Timestamp = d.time()
					case 1:
						smp.Value = d.float()
					default:
						d.fail("a sample value has more than two elements")
					}
					i++
				})
				if i != 2 && d.err == nil {
					d.fail("a sample value must have two elements")
				}
			case "histogram":
				if d.null() {
					return // no histogram, as encoding/json reads it
				}
				hasValue = true
				slow = true
				d.skip()
			default:
				d.skip()
			}
		})
		if d.err != nil {
			return
		}
		switch {
		case !hasMetric:
			d.fail("sample %d has no metric", n-1)
		case !hasValue:
			d.fail("sample %d has no value", n-1)
		case !slow:
			vec = append(vec, smp)
		}
	})
	if d.err != nil {
		return nil, d.err
	}
	if slow {
		vec = nil
		if err := json.Unmarshal(d.b[start:d.i], &vec); err != nil {
			return nil, err
		}
	}
	return vec, nil
}

// foldKey returns an object key in lower case, so that keys match
// case-insensitively, as encoding/json's struct fields do (Prometheus sends
// them in lower case: this costs nothing then).
func foldKey(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}

// scanner reads JSON from b. Strings without escapes are returned as
// slices of s, the same bytes as one string, so that they cost nothing;
// when s is "", each is copied out of b instead. The first error stops it;
// later calls do nothing.
type scanner struct {
	b   []byte
	s   string
	i   int
	err error
}

func (d *scanner) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("offset %d: %s", d.i, fmt.Sprintf(format, args...))
	}
}

func (d *scanner) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end or after an error.
func (d *scanner) peek() byte {
	if d.err != nil {
		return 0
	}
	d.ws()
	if d.i >= len(d.b) {
		d.fail("unexpected end of JSON input")
		return 0
	}
	return d.b[d.i]
}

func (d *scanner) pos() int {
	d.ws()
	return d.i
}

func (d *scanner) expect(c byte) bool {
	if d.peek() != c {
		if d.err == nil {
			d.fail("want %q, got %q", c, d.b[d.i])
		}
		return false
	}
	d.i++
	return true
}

// end checks that nothing but space follows.
func (d *scanner) end() {
	if d.err != nil {
		return
	}
	d.ws()
	if d.i != len(d.b) {
		d.fail("unexpected data after the top-level value")
	}
}

// null consumes a null and reports whether there was one.
func (d *scanner) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.b[d.i:], []byte("null")) {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling fn with each key to read its value.
func (d *scanner) object(fn func(key string)) {
	if !d.expect('{') {
		return
	}
	if d.peek() == '}' {
		d.i++
		return
	}
	for d.err == nil {
		key := d.str()
		if !d.expect(':') {
			return
		}
		fn(key)
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return
		default:
			d.fail("want ',' or '}' in an object")
		}
	}
}

// array reads an array, calling fn to read each element.
func (d *scanner) array(fn func()) {
	if !d.expect('[') {
		return
	}
	if d.peek() == ']' {
		d.i++
		return
	}
	for d.err == nil {
		fn()
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return
		default:
			d.fail("want ',' or ']' in an array")
		}
	}
}

// str reads a string.
func (d *scanner) str() string {
	if !d.expect('"') {
		return ""
	}
	start := d.i
	escaped, ascii := false, true
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c == '"':
			d.i++
			if !escaped && (ascii || utf8.Valid(d.b[start:d.i-1])) {
				if d.s == "" {
					return string(d.b[start : d.i-1])
				}
				return d.s[start : d.i-1]
			}
			// Escapes, or invalid UTF-8 that encoding/json replaces.
			var out string
			if err := json.Unmarshal(d.b[start-1:d.i], &out); err != nil {
				d.fail("%v", err)
			}
			return out
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			d.fail("control character in a string")
			return ""
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			d.i++
		}
	}
	d.fail("unexpected end of JSON input")
	return ""
}

// literal reads a number, true, false or null and returns its text.
func (d *scanner) literal() []byte {
	d.ws()
	start := d.i
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return d.b[start:d.i]
		case '"', '{', '[', ':':
			d.fail("unexpected %q", d.b[d.i])
			return nil
		}
		d.i++
	}
	return d.b[start:d.i]
}

// skip reads any value.
func (d *scanner) skip() {
	switch d.peek() {
	case 0:
	case '{':
		d.object(func(string) { d.skip() })
	case '[':
		d.array(d.skip)
	case '"':
		d.str()
	default:
		lit := d.literal()
		if len(lit) == 0 {
			d.fail("want a value")
			return
		}
		if !validNumber(lit) && string(lit) != "true" && string(lit) != "false" && string(lit) != "null" {
			d.fail("invalid literal %q", lit)
		}
	}
}

// boolean reads true or false.
func (d *scanner) boolean() bool {
	switch lit := string(d.literal()); {
	case d.err != nil:
	case lit == "true":
		return true
	case lit == "false":
	default:
		d.fail("want true or false, got %q", lit)
	}
	return false
}

// time reads a sample time, a JSON number of seconds with up to three
// decimals (more are truncated), exactly as model.Time's UnmarshalJSON does.
func (d *scanner) time() model.Time {
	lit := d.literal()
	if d.err != nil {
		return 0
	}
	if !validNumber(lit) {
		d.fail("sample time %q is not a JSON number", lit)
		return 0
	}
	base, frac, found := bytes.Cut(lit, []byte("."))
	v, err := strconv.ParseInt(string(base), 10, 64)
	if err != nil {
		d.fail("sample time %q: %v", lit, err)
		return 0
	}
	if !found {
		return model.Time(v * 1000)
	}
	if len(frac) > 3 {
		frac = frac[:3]
	}
	va, err := strconv.ParseInt(string(frac), 10, 32)
	if err != nil {
		d.fail("sample time %q: %v", lit, err)
		return 0
	}
	switch len(frac) {
	case 1:
		va *= 100
	case 2:
		va *= 10
	}
	if len(base) > 0 && base[0] == '-' {
		va = -va
	}
	return model.Time(v*1000 + va)
}

// float reads a sample value: a quoted number, NaN or ±Inf.
func (d *scanner) float() model.SampleValue {
	if d.peek() != '"' {
		d.fail("sample value must be a quoted string")
		return 0
	}
	s := d.str()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		d.fail("sample value %q: %v", s, errors.Unwrap(err))
		return model.SampleValue(math.NaN())
	}
	return model.SampleValue(f)
}

// validNumber reports whether b is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(b)
}
