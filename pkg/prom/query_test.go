package prom

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// standardDecode decodes a 2xx /api/v1/query body the way client_golang's
// v1 API does (encoding/json and model's JSON methods), with promgate's
// rules on top (status "success", every sample with a metric and a value):
// the reference decodeQueryResponse must agree with. It returns the kind of
// failure, "" for success.
func standardDecode(body []byte) (queryResult, Kind) {
	var env struct {
		Status    string   `json:"status"`
		ErrorType string   `json:"errorType"`
		Error     string   `json:"error"`
		Warnings  []string `json:"warnings"`
		IsPartial bool     `json:"isPartial"`
		Data      *struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return queryResult{}, InvalidResponse
	}
	switch env.Status {
	case "success":
	case "error":
		return queryResult{}, BadStatus
	default:
		return queryResult{}, InvalidResponse
	}
	if env.Data == nil || env.Data.Result == nil {
		return queryResult{}, InvalidResponse
	}
	res := queryResult{warnings: env.Warnings, isPartial: env.IsPartial}
	switch env.Data.ResultType {
	case "vector":
		var vec model.Vector
		if err := json.Unmarshal(env.Data.Result, &vec); err != nil {
			return queryResult{}, InvalidResponse
		}
		var present []struct{ Metric, Value, Histogram json.RawMessage }
		if err := json.Unmarshal(env.Data.Result, &present); err != nil {
			return queryResult{}, InvalidResponse
		}
		for _, p := range present {
			if p.Metric == nil || (p.Value == nil && (p.Histogram == nil || string(p.Histogram) == "null")) {
				return queryResult{}, InvalidResponse
			}
			// model.SamplePair leaves out what is missing: [1] is 0 at 1s.
			var pair []json.RawMessage
			if p.Value != nil && (json.Unmarshal(p.Value, &pair) != nil || len(pair) != 2) {
				return queryResult{}, InvalidResponse
			}
		}
		res.typ, res.vector = model.ValVector, vec
	case "scalar":
		res.typ, res.scalar = model.ValScalar, &model.Scalar{}
		if err := json.Unmarshal(env.Data.Result, res.scalar); err != nil {
			return queryResult{}, InvalidResponse
		}
	case "matrix":
		res.typ = model.ValMatrix
	case "string":
		res.typ = model.ValString
	default:
		return queryResult{}, InvalidResponse
	}
	return res, ""
}

func sameResult(a, b queryResult) bool {
	if a.typ != b.typ || len(a.vector) != len(b.vector) || a.isPartial != b.isPartial ||
		len(a.warnings) != len(b.warnings) || (len(a.warnings) > 0 && !reflect.DeepEqual(a.warnings, b.warnings)) {
		return false
	}
	for i := range a.vector {
		x, y := a.vector[i], b.vector[i]
		if !x.Metric.Equal(y.Metric) || (x.Metric == nil) != (y.Metric == nil) || x.Timestamp != y.Timestamp ||
			!x.Value.Equal(y.Value) || !reflect.DeepEqual(x.Histogram, y.Histogram) {
			return false
		}
	}
	if (a.scalar == nil) != (b.scalar == nil) {
		return false
	}
	return a.scalar == nil || (a.scalar.Timestamp == b.scalar.Timestamp && a.scalar.Value.Equal(b.scalar.Value))
}

const okPrefix = `{"status":"success","data":{"resultType":"vector","result":[`

// decodeCases are answers and the kind of failure each is ("": none).
var decodeCases = []struct {
	name, body string
	kind       Kind
}{
	{"plain", okPrefix +
		`{"metric":{"namespace":"ns-0","pod":"pod-1"},"value":[1800000000.123,"12.5"]},` +
		`{"metric":{},"value":[1800000000,"NaN"]},` +
		`{"metric":{"a":"b"},"value":[1800000000.5,"+Inf"]},` +
		`{"metric":{"a":"c"},"value":[1800000000.25,"-Inf"]},` +
		`{"metric":{"a":"d"},"value":[-1.123456,"-0.000001"]},` +
		`{"metric":{"a":"e"},"value":[1700000000.1239,"1e21"]}]}}`, ""},
	{"keys in another order, space, extra keys", " {\n \"data\" : { \"result\" : [ { \"value\" : [ 1 , \"2\" ] , \"metric\" : { \"x\" : \"y\" } , \"extra\" : [ 1 , { \"a\" : null } ] } ] , \"resultType\" : \"vector\" } ,\n" +
		` "infos":["i"], "status" : "success", "stats": {"timings": {"evalTotalTime": 0.001}, "n": -1.5e3, "t": true, "f": false, "z": 0} } `, ""},
	{"keys in other case", `{"Status":"success","DATA":{"resultType":"vector","Result":[{"Metric":{"a":"b"},"VALUE":[1,"2"]}]}}`, ""},
	{"escapes", okPrefix + `{"metric":{"pod":"a\"b\\c\u00e9\n","w\u0041":"\ud83d\ude00"},"value":[1,"3"]}]}}`, ""},
	{"unicode", okPrefix + `{"metric":{"pod":"café-☃"},"value":[1,"3"]}]}}`, ""},
	{"invalid UTF-8 replaced", okPrefix + "{\"metric\":{\"pod\":\"a\xffb\"},\"value\":[1,\"3\"]}]}}", ""},
	{"empty", okPrefix + `]}}`, ""},
	{"null result", `{"status":"success","data":{"resultType":"vector","result":null}}`, ""},
	{"null metric", okPrefix + `{"metric":null,"value":[1,"3"]}]}}`, ""},
	{"repeated keys", okPrefix + `{"metric":{"a":"b"},"value":[1,"3"],"metric":{"c":"d","a":"e"},"value":[2,"4"]}]},"warnings":["x"],"warnings":[]}`, ""},
	{"histogram", okPrefix + `{"metric":{"a":"b"},"value":[1,"2"]},` +
		`{"metric":{"a":"h"},"histogram":[1,{"count":"10","sum":"3","buckets":[[0,"0","1","10"]]}]}]}}`, ""},
	{"PromQL annotations are not partial data", okPrefix + `]},"warnings":["PromQL warning: encountered a mix of histograms and floats for aggregation"],"infos":["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"x\""]}`, ""},
	{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"42"]}}`, ""},
	{"matrix", `{"status":"success","data":{"resultType":"matrix","result":[]}}`, ""},
	{"status error", `{"status":"error","errorType":"internal","error":"oops"}`, BadStatus},

	{"thanos partial response", okPrefix + `{"metric":{"pod":"a"},"value":[1,"2"]}]},"warnings":["partial response: receive series from Addr: 10.0.0.1:10901 LabelSets: {store=\"b\"}: rpc error: code = Unavailable"]}`, PartialResponse},
	{"victoriametrics isPartial", `{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}}`, PartialResponse},
	{"remote read warning", okPrefix + `]},"warnings":["remote_read: connection refused"]}`, PartialResponse},

	{"empty body", ``, InvalidResponse},
	{"truncated", `{`, InvalidResponse},
	{"truncated data", `{"status":"success","data":`, InvalidResponse},
	{"not an object", `[]`, InvalidResponse},
	{"null", `null`, InvalidResponse},
	{"no status", `{"data":{"resultType":"vector","result":[]}}`, InvalidResponse},
	{"empty status", `{"status":"","data":{"resultType":"vector","result":[]}}`, InvalidResponse},
	{"other status", `{"status":"partial","data":{"resultType":"vector","result":[]}}`, InvalidResponse},
	{"no result", `{"status":"success","data":{"resultType":"vector"}}`, InvalidResponse},
	{"no value", okPrefix + `{"metric":{"pod":"a"}}]}}`, InvalidResponse},
	{"null histogram, no value", okPrefix + `{"metric":{"pod":"a"},"histogram":null}]}}`, InvalidResponse},
	{"no metric", okPrefix + `{"value":[1,"2"]}]}}`, InvalidResponse},
	{"empty sample", okPrefix + `{}]}}`, InvalidResponse},
	{"value with one element", okPrefix + `{"metric":{},"value":[1]}]}}`, InvalidResponse},
	{"unquoted value", okPrefix + `{"metric":{},"value":[1,2]}]}}`, InvalidResponse},
	{"quoted time", okPrefix + `{"metric":{},"value":["1","2"]}]}}`, InvalidResponse},
	{"value not a number", okPrefix + `{"metric":{},"value":[1,"x"]}]}}`, InvalidResponse},
	{"time with a leading zero", okPrefix + `{"metric":{},"value":[01,"2"]}]}}`, InvalidResponse},
	{"time with a plus", okPrefix + `{"metric":{},"value":[+1,"2"]}]}}`, InvalidResponse},
	{"time with a bare dot", okPrefix + `{"metric":{},"value":[1.,"2"]}]}}`, InvalidResponse},
	{"time without an integer part", okPrefix + `{"metric":{},"value":[.5,"2"]}]}}`, InvalidResponse},
	{"skipped number with a leading zero", okPrefix + `]},"n":00}`, InvalidResponse},
	{"skipped number with a leading zero in a fraction", okPrefix + `]},"n":-01.5}`, InvalidResponse},
	{"skipped hex number", okPrefix + `]},"n":0x10}`, InvalidResponse},
	{"label value not a string", okPrefix + `{"metric":{"a":1},"value":[1,"2"]}]}}`, InvalidResponse},
	{"trailing comma", okPrefix + `{"metric":{},"value":[1,"2"]},]}}`, InvalidResponse},
	{"trailing data", okPrefix + `]}} x`, InvalidResponse},
	{"bad literal", okPrefix + `]},"x":tru}`, InvalidResponse},
	{"control character", okPrefix + "{\"metric\":{\"a\":\"\x01\"},\"value\":[1,\"2\"]}]}}", InvalidResponse},
	{"warnings not strings", okPrefix + `]},"warnings":[1]}`, InvalidResponse},
	{"unknown result type", `{"status":"success","data":{"resultType":"weird","result":[]}}`, InvalidResponse},
}

func TestDecodeQueryResponse(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			want, wkind := standardDecode([]byte(tt.body))
			if tt.kind != PartialResponse && wkind != tt.kind {
				t.Fatalf("the reference decoder says %q, the case %q: fix the case", wkind, tt.kind)
			}
			got, err := decodeQueryResponse([]byte(tt.body), -1)
			if kind := KindOf(err); kind != "" {
				if kind != tt.kind {
					t.Fatalf("error %v of kind %q, want kind %q", err, kind, tt.kind)
				}
				if _, ok := errors.AsType[*v1.Error](err); !ok {
					t.Errorf("error %v does not wrap a *v1.Error", err)
				}
				return
			}
			if partial := got.partial(); (partial != "") != (tt.kind == PartialResponse) {
				t.Errorf("partial() = %q, want kind %q", partial, tt.kind)
			}
			if tt.kind != "" && tt.kind != PartialResponse {
				t.Fatalf("decoded %v, want an error of kind %q", got.vector, tt.kind)
			}
			if !sameResult(got, want) {
				t.Errorf("decoded %+v %v\nstandard %+v %v", got, got.vector, want, want.vector)
			}
		})
	}
	// Check a few values by hand too.
	got, err := decodeQueryResponse([]byte(decodeCases[0].body), -1)
	if err != nil {
		t.Fatal(err)
	}
	v := got.vector
	if v[0].Timestamp != 1800000000123 || v[0].Value != 12.5 || v[0].Metric["pod"] != "pod-1" ||
		!math.IsNaN(float64(v[1].Value)) || v[1].Metric == nil || v[4].Timestamp != -1123 || v[5].Timestamp != 1700000000123 {
		t.Errorf("decoded %v", v)
	}
}

func TestDecodeQueryResponseMaxSamples(t *testing.T) {
	three := okPrefix + `{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]},{"metric":{"a":"3"},"value":[1,"3"]}]}}`
	withHistogram := okPrefix + `{"metric":{"a":"1"},"histogram":[1,{"count":"1","sum":"1"}]},{"metric":{"a":"2"},"value":[1,"2"]},{"metric":{"a":"3"},"value":[1,"3"]}]}}`
	matrix := `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[[1,"1"],[2,"2"]]},{"metric":{"a":"2"},"values":[[1,"3"]]}]}}`
	resultFirst := `{"data":{"result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]},{"metric":{"a":"3"},"value":[1,"3"]}],"resultType":"vector"},"status":"success"}`
	for _, tt := range []struct {
		name, body string
		max        int
		kind       Kind
	}{
		{"under", three, 4, ""},
		{"at", three, 3, ""},
		{"over", three, 2, TooLarge},
		{"none allowed", three, 0, TooLarge},
		{"no limit", three, -1, ""},
		{"histograms counted", withHistogram, 2, TooLarge},
		{"result before resultType", resultFirst, 2, TooLarge},
		// A matrix's samples are counted before they are decoded: past
		// the limit, what follows is not even read.
		{"matrix over", matrix, 2, TooLarge},
		{"matrix histograms counted", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]],"histograms":[[1,{"count":"1","sum":"1"}],[2,{"count":"1","sum":"1"}]]}]}}`, 2, TooLarge},
		{"matrix over before a bad sample", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"],[3,"3"],"bad"]}]}}`, 2, TooLarge},
		{"matrix bad sample within the limit", `{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],"bad"]}]}}`, 2, InvalidResponse},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := decodeQueryResponse([]byte(tt.body), tt.max)
			if kind := KindOf(err); kind != tt.kind {
				t.Fatalf("error %v of kind %q, want %q", err, kind, tt.kind)
			}
			if err == nil && len(res.vector) != 3 {
				t.Errorf("%d samples, want 3", len(res.vector))
			}
		})
	}
}

func TestValidNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1", "10", "1.5", "-0.25", "1e3", "1E+3", "1.5e-3", "0.0", "123456789012345678901234567890"} {
		if !validNumber([]byte(s)) || !json.Valid([]byte(s)) {
			t.Errorf("%q: want valid", s)
		}
	}
	for _, s := range []string{"", "-", "01", "-01", "+1", "1.", ".5", "1e", "1e+", "0x1", "1_0", "Inf", "NaN", "1.5.5", "--1", "1e1.5"} {
		if validNumber([]byte(s)) || json.Valid([]byte(s)) {
			t.Errorf("%q: want invalid", s)
		}
	}
}

// FuzzDecodeQueryResponse checks the fast decoder against encoding/json:
// whatever it accepts, encoding/json must accept and decode to the same
// result; what is not JSON, it must refuse.
func FuzzDecodeQueryResponse(f *testing.F) {
	for _, tt := range decodeCases {
		f.Add(tt.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeQueryResponse([]byte(body), -1) // must not panic
		if err == nil && !json.Valid([]byte(body)) {
			t.Fatalf("accepted %q, which is not JSON", body)
		}
		if err != nil || foldsToASCII(body) {
			// The standard decoder tolerates some things this one refuses
			// (misplaced keys, null for a value); the reverse must not
			// happen. Keys with the two non-ASCII letters that Unicode folds
			// into ASCII ones match struct fields in encoding/json only.
			return
		}
		want, kind := standardDecode([]byte(body))
		if kind != "" {
			t.Fatalf("accepted %q, which the standard decoder refuses (%s)", body, kind)
		}
		if !sameResult(got, want) {
			t.Fatalf("%q: decoded %+v %v, standard %+v %v", body, got, got.vector, want, want.vector)
		}
	})
}

// foldsToASCII reports whether s holds ſ (U+017F) or the Kelvin sign
// (U+212A), raw or escaped, which encoding/json's key matching folds into
// s and k.
func foldsToASCII(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(s, "\u017f") || strings.Contains(s, "\u212a") ||
		strings.Contains(l, `\u017f`) || strings.Contains(l, `\u212a`)
}
