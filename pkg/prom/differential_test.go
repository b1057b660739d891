package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// The differential test: the same answers of Prometheus' HTTP API read by
// client_golang's v1 API, the reference, and by promgate's Client must give
// the same samples, series, label names and values, or errors of the same
// kind. Where promgate differs on purpose, the case says so (pg, why).

// diffCase is one answer of the API and what both clients make of it.
type diffCase struct {
	name string
	// call is the API call: "query" (Query), "matrix" (QuerySamples),
	// "series", "labels" or "values".
	call string
	// status (default 200), content type (default application/json) and
	// body of the answer.
	status      int
	contentType string
	body        string
	// pg is the kind of promgate's error when it differs from the kind of
	// client_golang's on purpose, why says why.
	pg  Kind
	why string
}

const (
	vectorOf = `{"status":"success","data":{"resultType":"vector","result":[`
	seriesOf = `{"status":"success","data":[`
)

var diffCases = []diffCase{
	// Instant queries.
	{name: "vector", call: "query", body: vectorOf +
		`{"metric":{"namespace":"ns","pod":"a"},"value":[1700000000.5,"1.25"]},` +
		`{"metric":{"pod":"b"},"value":[1700000000,"NaN"]},` +
		`{"metric":{"pod":"c"},"value":[1700000000.123,"+Inf"]},` +
		`{"metric":{"pod":"d"},"value":[1700000000.1239,"-Inf"]},` +
		`{"metric":{"pod":"e\"\\\u00e9☃"},"value":[-1.5,"-0.000001"]},` +
		`{"metric":{},"value":[1700000000,"1e21"]}]}}`},
	{name: "empty vector", call: "query", body: vectorOf + `]}}`},
	{name: "null vector", call: "query", body: `{"status":"success","data":{"resultType":"vector","result":null}}`},
	{name: "scalar", call: "query", body: `{"status":"success","data":{"resultType":"scalar","result":[1700000002.25,"42"]}}`},
	{name: "scalar NaN", call: "query", body: `{"status":"success","data":{"resultType":"scalar","result":[1700000002,"NaN"]}}`},
	{name: "scalar -Inf", call: "query", body: `{"status":"success","data":{"resultType":"scalar","result":[1700000002,"-Inf"]}}`},
	{name: "matrix", call: "matrix", body: `{"status":"success","data":{"resultType":"matrix","result":[` +
		`{"metric":{"pod":"a"},"values":[[1700000000,"1"],[1700000015.5,"NaN"],[1700000030,"+Inf"]]},` +
		`{"metric":{"pod":"b"},"values":[]}]}}`},
	{name: "keys in another order", call: "query", body: `{"data":{"result":[{"value":[1,"2"],"metric":{"a":"b"}}],"resultType":"vector"},"status":"success"}`},
	{name: "PromQL annotations", call: "query", body: vectorOf + `{"metric":{"pod":"a"},"value":[1,"2"]}]},` +
		`"warnings":["PromQL warning: encountered a mix of histograms and floats for aggregation"],"infos":["PromQL info: metric might not be a counter"]}`},
	{name: "warning of missing data", call: "query", body: vectorOf + `{"metric":{"pod":"a"},"value":[1,"2"]}]},` +
		`"warnings":["partial response: store b unavailable"]}`,
		pg: PartialResponse, why: "a sum over part of the pods is a wrong number: an error unless Limits.AllowPartialResponse"},
	{name: "isPartial", call: "query", body: `{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}}`,
		pg: PartialResponse, why: "VictoriaMetrics' isPartial, which client_golang does not read, is missing data too"},
	{name: "400 bad_data", call: "query", status: 400, body: `{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected end of input"}`},
	{name: "422 execution", call: "query", status: 422, body: `{"status":"error","errorType":"execution","error":"query processing would load too many samples"}`},
	{name: "503 text", call: "query", status: 503, contentType: "text/plain", body: "Service Unavailable"},
	{name: "502 html", call: "query", status: 502, contentType: "text/html", body: "<html>bad gateway</html>"},
	{name: "400 not JSON", call: "query", status: 400, contentType: "text/plain", body: "bad request"},
	{name: "400 with success", call: "query", status: 400, body: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		pg: BadStatus, why: "a non-2xx answer is a bad status whatever its body says (client_golang: bad_response)"},
	{name: "status error with 200", call: "query", body: `{"status":"error","errorType":"internal","error":"oops"}`},
	{name: "401", call: "query", status: 401, contentType: "text/plain", body: "Unauthorized",
		pg: Unauthorized, why: "refused credentials are told apart from a failing backend"},
	{name: "truncated", call: "query", body: vectorOf + `{"metric":{},"value":[1,"2"]}`},
	{name: "unquoted value", call: "query", body: vectorOf + `{"metric":{},"value":[1,2]}]}}`},
	{name: "value not a number", call: "query", body: vectorOf + `{"metric":{},"value":[1,"x"]}]}}`},
	{name: "unknown result type", call: "query", body: `{"status":"success","data":{"resultType":"weird","result":[]}}`},
	{name: "sample without a value", call: "query", body: vectorOf + `{"metric":{"pod":"a"}}]}}`,
		pg: InvalidResponse, why: "client_golang reads a missing value as 0 at time 0"},
	{name: "no status", call: "query", body: `{"data":{"resultType":"vector","result":[]}}`,
		pg: InvalidResponse, why: "an answer without a status is not the API's"},

	// /api/v1/series.
	{name: "series", call: "series", body: seriesOf +
		`{"__name__":"http_requests_total","namespace":"ns1","pod":"a"},` +
		`{"__name__":"up","v":"q\"\\\n\u00fc☃"},{"job":"nameless"},{}]}`},
	{name: "no series", call: "series", body: seriesOf + `]}`},
	{name: "null series", call: "series", body: `{"status":"success","data":null}`},
	{name: "series with a warning of missing data", call: "series", body: seriesOf + `{"__name__":"a"}],"warnings":["store x unavailable"]}`,
		pg: PartialResponse, why: "discovery from part of the series would drop metrics"},
	{name: "series PromQL annotation", call: "series", body: seriesOf + `{"__name__":"a"}],"warnings":["PromQL info: x"]}`},
	{name: "series 400 bad_data", call: "series", status: 400, body: `{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\""}`},
	{name: "series 422", call: "series", status: 422, body: `{"status":"error","errorType":"execution","error":"too many series"}`},
	{name: "series 500 text", call: "series", status: 500, contentType: "text/plain", body: "boom\n"},
	{name: "series status error with 200", call: "series", body: `{"status":"error","errorType":"internal","error":"oops"}`},
	{name: "series truncated", call: "series", body: seriesOf + `{"__name__":"a"},`},
	{name: "series label value not a string", call: "series", body: seriesOf + `{"__name__":1}]}`},
	{name: "series 403", call: "series", status: 403, contentType: "text/plain", body: "Forbidden",
		pg: Unauthorized, why: "refused credentials are told apart from a failing backend"},

	// /api/v1/labels and /api/v1/label/<name>/values.
	{name: "label names", call: "labels", body: `{"status":"success","data":["__name__","namespace","pod"]}`},
	{name: "no label names", call: "labels", body: `{"status":"success","data":[]}`},
	{name: "label values", call: "values", body: `{"status":"success","data":["a","b\"\u00e9","NaN"]}`},
	{name: "label values with a warning", call: "values", body: `{"status":"success","data":["a"],"warnings":["store x unavailable"]}`,
		pg: PartialResponse, why: "values from part of the series are not all the values"},
	{name: "label names 400", call: "labels", status: 400, body: `{"status":"error","errorType":"bad_data","error":"unknown parameter"}`},
	{name: "label values 404", call: "values", status: 404, contentType: "text/plain", body: "404 page not found"},
	{name: "label names 500", call: "labels", status: 500, body: `{"status":"error","errorType":"internal","error":"boom"}`},
	{name: "label names truncated", call: "labels", body: `{"status":"success","data":["a"`},
	{name: "label names not strings", call: "labels", body: `{"status":"success","data":[1]}`},
}

// outcome is what a client made of an answer: its data as text (one line
// per sample, series or string), whether it reported warnings, and its
// error.
type outcome struct {
	data     []string
	warnings bool
	err      error
}

func TestDifferentialClientGolang(t *testing.T) {
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.URL.Path, "/api/v1/"+endpointOf(tc.call)) {
					http.Error(w, "unexpected path "+r.URL.Path, http.StatusTeapot)
					return
				}
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()

			ref := clientGolang(t, srv.URL, tc.call)
			c, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			got := promgate(c.WithLimits(Limits{}), tc.call)
			allowed := promgate(c.WithLimits(Limits{AllowPartialResponse: true}), tc.call)

			refKind, kind := clientGolangKind(ref.err), KindOf(got.err)
			want := refKind
			if tc.pg != "" {
				want = tc.pg
				if refKind == tc.pg {
					t.Errorf("both clients fail with %q: the case need not say why promgate differs", refKind)
				}
			}
			if kind != want {
				t.Fatalf("promgate: %v (kind %q), want kind %q; client_golang: %v (kind %q)", got.err, kind, want, ref.err, refKind)
			}
			if tc.pg == PartialResponse && !ref.warnings && !strings.Contains(tc.body, "isPartial") {
				t.Errorf("client_golang reported no warnings for an answer promgate finds partial")
			}
			if ref.err == nil && allowed.err == nil && !reflect.DeepEqual(allowed.data, ref.data) {
				t.Errorf("promgate read\n\t%q\nclient_golang\n\t%q", allowed.data, ref.data)
			}
			if ref.err != nil && got.err != nil && (tc.call == "query" || tc.call == "matrix") {
				sameAPIError(t, got.err, ref.err)
			}
		})
	}
}

// endpointOf is the start of the path of call below /api/v1/.
func endpointOf(call string) string {
	switch call {
	case "query", "matrix":
		return "query"
	case "values":
		return "label/"
	}
	return call
}

// clientGolang makes call with client_golang's v1 API.
func clientGolang(t *testing.T, url, call string) outcome {
	t.Helper()
	ac, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	a := v1.NewAPI(ac)
	ctx := context.Background()
	start, end := time.Unix(1700000000, 0), time.Unix(1700000600, 0)
	var out outcome
	var w v1.Warnings
	switch call {
	case "query", "matrix":
		var v model.Value
		v, w, _, out.err = a.Query(ctx, "q", time.Unix(1700000000, 0))
		switch v := v.(type) {
		case model.Vector:
			out.data = vectorLines(v)
		case *model.Scalar:
			out.data = vectorLines(model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}})
		case model.Matrix:
			out.data = matrixLines(v)
		}
	case "series":
		var sets []model.LabelSet
		sets, w, _, out.err = a.Series(ctx, []string{"up"}, start, end)
		for _, s := range sets {
			out.data = append(out.data, s.String())
		}
	case "labels":
		var names model.LabelNames
		names, w, _, out.err = a.LabelNames(ctx, []string{"up"}, start, end)
		for _, n := range names {
			out.data = append(out.data, string(n))
		}
	case "values":
		var values model.LabelValues
		values, w, _, out.err = a.LabelValues(ctx, "pod", []string{"up"}, start, end)
		for _, v := range values {
			out.data = append(out.data, string(v))
		}
	}
	out.warnings = len(w) > 0
	return out
}

// promgate makes call with promgate's client.
func promgate(c *LimitedClient, call string) outcome {
	ctx := context.Background()
	start, end := time.Unix(1700000000, 0), time.Unix(1700000600, 0)
	var out outcome
	switch call {
	case "query":
		var v model.Vector
		v, out.err = c.Query(ctx, "q", time.Unix(1700000000, 0))
		out.data = vectorLines(v)
	case "matrix":
		var m model.Matrix
		m, out.err = c.QuerySamples(ctx, "q", time.Unix(1700000000, 0))
		out.data = matrixLines(m)
	case "series":
		out.err = c.Series(ctx, "up", start, end, func(name string, labels []Label) {
			s := model.LabelSet{}
			if name != "" {
				s[model.MetricNameLabel] = model.LabelValue(name)
			}
			for _, l := range labels {
				s[model.LabelName(l.Name)] = model.LabelValue(l.Value)
			}
			out.data = append(out.data, s.String())
		})
	case "labels":
		out.data, out.err = c.LabelNames(ctx, "up", start, end)
	case "values":
		out.data, out.err = c.LabelValues(ctx, "pod", "up", start, end)
	}
	if len(out.data) == 0 {
		out.data = nil // empty and null read alike
	}
	return out
}

// vectorLines prints the samples of v, values by strconv (NaN, ±Inf).
func vectorLines(v model.Vector) []string {
	var lines []string
	for _, s := range v {
		lines = append(lines, fmt.Sprintf("%s %s @%d", s.Metric, s.Value, s.Timestamp))
	}
	return lines
}

// matrixLines prints the series of m, one line each.
func matrixLines(m model.Matrix) []string {
	var lines []string
	for _, ss := range m {
		var vs []string
		for _, p := range ss.Values {
			vs = append(vs, fmt.Sprintf("%s@%d", p.Value, p.Timestamp))
		}
		lines = append(lines, fmt.Sprintf("%s [%s]", ss.Metric, strings.Join(vs, " ")))
	}
	return lines
}

// clientGolangKind is the Kind of an error of client_golang's v1 API: by
// its *v1.Error's type, bad_response for JSON it could not decode.
func clientGolangKind(err error) Kind {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return InvalidResponse
	}
	return KindOf(err)
}

// sameAPIError checks that promgate's error of a query wraps a *v1.Error
// of the type of client_golang's, with its message unless the answer is
// one neither could decode (the decoders word that differently).
func sameAPIError(t *testing.T, got, ref error) {
	t.Helper()
	ge, ok := errors.AsType[*v1.Error](got)
	re, rok := errors.AsType[*v1.Error](ref)
	if !ok || !rok {
		if KindOf(got) != PartialResponse && KindOf(got) != InvalidResponse {
			t.Errorf("promgate's %v or client_golang's %v is not a *v1.Error", got, ref)
		}
		return
	}
	if ge.Type != re.Type || (re.Type != v1.ErrBadResponse && ge.Msg != re.Msg) {
		t.Errorf("promgate's error %s: %s, client_golang's %s: %s", ge.Type, ge.Msg, re.Type, re.Msg)
	}
}
