package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

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

// query runs Query under lim.
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
	form := url.Values{}
	if d := c.queryTimeout(ctx); d > 0 {
		form.Set("timeout", d.String())
	}
	form.Set("query", query)
	if !ts.IsZero() {
		form.Set("time", queryTime(ts))
	}
	res, err := c.doQuery(ctx, call{path: "api/v1/query", form: form, verbs: postThenGet, lim: lim})
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

// doQuery sends a query and decodes its answer. Its errors are KindErrors.
func (c *Client) doQuery(ctx context.Context, cl call) (queryResult, error) {
	var mem reservation
	defer mem.release()
	code, body, err := c.fetch(ctx, cl, &mem)
	if err != nil {
		return queryResult{}, err
	}
	if code/100 != 2 {
		return queryResult{}, &KindError{Kind: statusKind(code), Code: code, Err: queryHTTPError(code, body)}
	}
	res, err := decodeQueryResponse(body, cl.lim.maxSamples())
	if ke, ok := errors.AsType[*KindError](err); ok && ke.Kind == BadStatus {
		ke.Code = code
	}
	return res, err
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

// partial returns why the answer lacks data, or "" if it is complete (see
// envelope.partial).
func (r queryResult) partial() string {
	return envelope{Warnings: r.warnings, IsPartial: r.isPartial}.partial()
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
	a := scanQueryAnswer(d, maxSamples)
	if errors.Is(d.err, errTooManySamples) {
		return queryResult{}, tooManySamples(maxSamples)
	}
	if d.err != nil {
		return queryResult{}, badResponse(d.err)
	}
	if err := a.queryStatus(); err != nil {
		return queryResult{}, err
	}
	if a.start < 0 {
		return queryResult{}, badResponse(errors.New("the answer has no data.result"))
	}
	res, err := a.result(d, maxSamples)
	if errors.Is(err, errTooManySamples) {
		return queryResult{}, tooManySamples(maxSamples)
	}
	if err != nil {
		return queryResult{}, badResponse(err)
	}
	return res, nil
}

// queryAnswer is a /api/v1/query answer as scanned: its envelope, its
// result's type and where the result lies in the body. A vector whose
// type comes before it, the usual order, is decoded during the scan.
type queryAnswer struct {
	envelope
	resultType string
	start, end int // of data.result in the body; start < 0 without one
	vector     model.Vector
	decoded    bool // vector holds the result (decoded without error)
}

// scanQueryAnswer scans the answer d holds to its end; a failure is d.err.
func scanQueryAnswer(d *scanner, maxSamples int) queryAnswer {
	a := queryAnswer{start: -1, end: -1}
	d.object(func(key string) {
		switch k := foldKey(key); {
		case k == "data":
			a.scanData(d, maxSamples)
		case !a.scanField(d, k):
			d.skip()
		}
	})
	d.end()
	return a
}

// scanData scans the answer's "data" object.
func (a *queryAnswer) scanData(d *scanner, maxSamples int) {
	if d.null() {
		return
	}
	d.object(func(key string) {
		switch foldKey(key) {
		case "resulttype":
			a.resultType = d.str()
		case "result":
			a.start = d.pos()
			a.decoded = false
			if a.resultType == "vector" {
				var err error
				a.vector, err = decodeVector(d, maxSamples)
				a.decoded = err == nil
			} else {
				d.skip()
			}
			a.end = d.i
		default:
			d.skip()
		}
	})
}

// result decodes the answer's result, found in the body d scanned.
func (a *queryAnswer) result(d *scanner, maxSamples int) (queryResult, error) {
	res := queryResult{typ: model.ValNone, warnings: a.Warnings, isPartial: a.IsPartial}
	in := &scanner{b: d.b[:a.end], s: d.s[:a.end], i: a.start}
	var err error
	switch a.resultType {
	case model.ValVector.String():
		res.typ = model.ValVector
		if a.decoded {
			res.vector = a.vector
		} else {
			res.vector, err = decodeVector(in, maxSamples)
		}
	case model.ValScalar.String():
		res.typ = model.ValScalar
		res.scalar = &model.Scalar{}
		err = json.Unmarshal(d.b[a.start:a.end], res.scalar)
	case model.ValMatrix.String():
		res.typ = model.ValMatrix
		res.matrix, err = decodeMatrix(in, maxSamples)
	case model.ValString.String():
		res.typ = model.ValString
	default:
		err = fmt.Errorf("unexpected value type %q", a.resultType)
	}
	return res, err
}

// tooManySamples is the error of a query answer over max samples.
func tooManySamples(max int) error {
	return withKind(TooLarge, &LimitError{Max: int64(max), Unit: "samples", Option: FlagMaxSamples})
}

// decodeMatrix decodes the matrix result d holds from d.i to its end, with
// at most maxSamples samples (negative: any number), counted before they
// are decoded (see countMatrix).
func decodeMatrix(d *scanner, maxSamples int) (model.Matrix, error) {
	raw := d.b[d.i:]
	if maxSamples >= 0 {
		if err := countMatrix(d, maxSamples); err != nil {
			return nil, err
		}
	}
	var m model.Matrix
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if maxSamples >= 0 {
		n := 0
		for _, ss := range m {
			n += len(ss.Values) + len(ss.Histograms)
		}
		if n > maxSamples {
			return nil, errTooManySamples
		}
	}
	return m, nil
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
	vd := vectorDecoder{d: d}
	vec := model.Vector{}
	n := 0
	d.array(func() {
		if n++; maxSamples >= 0 && n > maxSamples {
			d.err = errTooManySamples
			return
		}
		if smp := vd.sample(n - 1); smp != nil {
			vec = append(vec, smp)
		}
	})
	if d.err != nil {
		return nil, d.err
	}
	if vd.slow {
		vec = nil
		if err := json.Unmarshal(d.b[start:d.i], &vec); err != nil {
			return nil, err
		}
	}
	return vec, nil
}

// vectorDecoder decodes the samples of a vector one at a time.
type vectorDecoder struct {
	d       *scanner
	chunk   []model.Sample // samples allocated together, sampleChunk at a time
	kv      []string       // a metric's label names and values
	scratch model.Sample   // for samples read only to check them
	// slow is set by a sample the scanner does not decode (a native
	// histogram): the rest are only checked, and model.Vector's decoding
	// reads the whole vector again.
	slow bool
}

// sample reads the i-th sample of the vector. It returns nil when it has
// not decoded it (slow, or d.err set).
func (vd *vectorDecoder) sample(i int) *model.Sample {
	d := vd.d
	smp := &vd.scratch
	if !vd.slow {
		if len(vd.chunk) == cap(vd.chunk) {
			vd.chunk = make([]model.Sample, 0, sampleChunk)
		}
		vd.chunk = append(vd.chunk, model.Sample{})
		smp = &vd.chunk[len(vd.chunk)-1]
	}
	hasMetric, hasValue := false, false
	d.object(func(key string) {
		switch foldKey(key) {
		case "metric":
			hasMetric = true
			vd.metric(smp)
		case "value":
			hasValue = true
			vd.value(smp)
		case "histogram":
			if d.null() {
				return // no histogram, as encoding/json reads it
			}
			hasValue = true
			vd.slow = true
			d.skip()
		default:
			d.skip()
		}
	})
	switch {
	case d.err != nil:
	case !hasMetric:
		d.fail("sample %d has no metric", i)
	case !hasValue:
		d.fail("sample %d has no value", i)
	case !vd.slow:
		return smp
	}
	return nil
}

// metric reads a sample's "metric" into smp: a repeated key adds to the
// labels of the first, as encoding/json does.
func (vd *vectorDecoder) metric(smp *model.Sample) {
	d := vd.d
	if d.null() {
		return
	}
	vd.kv = vd.kv[:0]
	d.object(func(name string) {
		vd.kv = append(vd.kv, name, d.str())
	})
	if vd.slow {
		return
	}
	if smp.Metric == nil {
		smp.Metric = make(model.Metric, len(vd.kv)/2)
	}
	for i := 0; i+1 < len(vd.kv); i += 2 {
		smp.Metric[model.LabelName(vd.kv[i])] = model.LabelValue(vd.kv[i+1])
	}
}

// value reads a sample's "value": [time, "value"].
func (vd *vectorDecoder) value(smp *model.Sample) {
	d := vd.d
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
}
