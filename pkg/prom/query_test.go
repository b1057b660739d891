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
// v1 API does (encoding/json and model's JSON methods): the reference
// decodeQueryResponse must agree with.
func standardDecode(body []byte) (queryResult, error) {
	var env struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      *struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return queryResult{}, &v1.Error{Type: v1.ErrBadResponse, Msg: err.Error()}
	}
	if env.Status == "error" {
		return queryResult{}, &v1.Error{Type: v1.ErrorType(env.ErrorType), Msg: env.Error}
	}
	if env.Data == nil || env.Data.Result == nil {
		return queryResult{}, &v1.Error{Type: v1.ErrBadResponse, Msg: "no result"}
	}
	switch env.Data.ResultType {
	case "vector":
		var vec model.Vector
		if err := json.Unmarshal(env.Data.Result, &vec); err != nil {
			return queryResult{}, &v1.Error{Type: v1.ErrBadResponse, Msg: err.Error()}
		}
		return queryResult{typ: model.ValVector, vector: vec}, nil
	case "scalar":
		s := &model.Scalar{}
		if err := json.Unmarshal(env.Data.Result, s); err != nil {
			return queryResult{}, &v1.Error{Type: v1.ErrBadResponse, Msg: err.Error()}
		}
		return queryResult{typ: model.ValScalar, scalar: s}, nil
	case "matrix":
		return queryResult{typ: model.ValMatrix}, nil
	case "string":
		return queryResult{typ: model.ValString}, nil
	}
	return queryResult{}, &v1.Error{Type: v1.ErrBadResponse, Msg: "unexpected value type"}
}

func sameResult(a, b queryResult) bool {
	if a.typ != b.typ || len(a.vector) != len(b.vector) {
		return false
	}
	for i := range a.vector {
		x, y := a.vector[i], b.vector[i]
		if !x.Metric.Equal(y.Metric) || x.Timestamp != y.Timestamp || !x.Value.Equal(y.Value) ||
			!reflect.DeepEqual(x.Histogram, y.Histogram) {
			return false
		}
	}
	if (a.scalar == nil) != (b.scalar == nil) {
		return false
	}
	return a.scalar == nil || (a.scalar.Timestamp == b.scalar.Timestamp && a.scalar.Value.Equal(b.scalar.Value))
}

var decodeCases = map[string]string{
	"plain": `{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"namespace":"ns-0","pod":"pod-1"},"value":[1800000000.123,"12.5"]},` +
		`{"metric":{},"value":[1800000000,"NaN"]},` +
		`{"metric":{"a":"b"},"value":[1800000000.5,"+Inf"]},` +
		`{"metric":{"a":"c"},"value":[1800000000.25,"-Inf"]},` +
		`{"metric":{"a":"d"},"value":[-1.123456,"-0.000001"]},` +
		`{"metric":{"a":"e"},"value":[1700000000.1239,"1e21"]}]}}`,
	"keys in another order, space, extra keys": " {\n \"data\" : { \"result\" : [ { \"value\" : [ 1 , \"2\" ] , \"metric\" : { \"x\" : \"y\" } , \"extra\" : [ 1 , { \"a\" : null } ] } ] , \"resultType\" : \"vector\" } ,\n" +
		` "warnings":["w"], "infos":["i"], "status" : "success", "stats": {"timings": {"evalTotalTime": 0.001}, "n": -1.5e3, "t": true} } `,
	"escapes":     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a\"b\\c\u00e9\n","w\u0041":"\ud83d\ude00"},"value":[1,"3"]}]}}`,
	"unicode":     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"café-☃"},"value":[1,"3"]}]}}`,
	"empty":       `{"status":"success","data":{"resultType":"vector","result":[]}}`,
	"null metric": `{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":[1,"3"]}]}}`,
	"histogram": `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[1,"2"]},` +
		`{"metric":{"a":"h"},"histogram":[1,{"count":"10","sum":"3","buckets":[[0,"0","1","10"]]}]}]}}`,
	"scalar":       `{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"42"]}}`,
	"matrix":       `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	"status error": `{"status":"error","errorType":"internal","error":"oops"}`,
}

var badCases = []string{
	``, `{`, `{"status":"success","data":`, `[]`, `{"status":"success","data":{"resultType":"vector"}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1]}]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":["1","2"]}]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},"value":[1,"2"]}]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]},]}}`,
	`{"status":"success","data":{"resultType":"vector","result":[]}} x`,
	`{"status":"success","data":{"resultType":"vector","result":[]},"x":tru}`,
	`{"status":"success","data":{"resultType":"weird","result":[]}}`,
}

func TestDecodeQueryResponse(t *testing.T) {
	for name, body := range decodeCases {
		t.Run(name, func(t *testing.T) {
			want, werr := standardDecode([]byte(body))
			got, err := decodeQueryResponse([]byte(body))
			if (err == nil) != (werr == nil) {
				t.Fatalf("error %v, standard decoding's %v", err, werr)
			}
			if err != nil {
				var a, b *v1.Error
				if !errors.As(err, &a) || !errors.As(werr, &b) || a.Type != b.Type || a.Msg != b.Msg {
					t.Errorf("error %#v, want %#v", err, werr)
				}
				return
			}
			if !sameResult(got, want) {
				t.Errorf("decoded %+v %v\nstandard %+v %v", got, got.vector, want, want.vector)
			}
		})
	}
	// Check a few values by hand too.
	got, err := decodeQueryResponse([]byte(decodeCases["plain"]))
	if err != nil {
		t.Fatal(err)
	}
	v := got.vector
	if v[0].Timestamp != 1800000000123 || v[0].Value != 12.5 || v[0].Metric["pod"] != "pod-1" ||
		!math.IsNaN(float64(v[1].Value)) || v[1].Metric == nil || v[4].Timestamp != -1123 || v[5].Timestamp != 1700000000123 {
		t.Errorf("decoded %v", v)
	}
	for _, body := range badCases {
		_, err := decodeQueryResponse([]byte(body))
		var ae *v1.Error
		if !errors.As(err, &ae) || ae.Type != v1.ErrBadResponse {
			t.Errorf("%q: error %v, want a bad_response", body, err)
		}
	}
}

func FuzzDecodeQueryResponse(f *testing.F) {
	for _, body := range decodeCases {
		f.Add(body)
	}
	for _, body := range badCases {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeQueryResponse([]byte(body)) // must not panic
		if !isASCII(body) || strings.Contains(strings.ToLower(body), `"histogram`) {
			// encoding/json rewrites invalid UTF-8 and folds some non-ASCII
			// letters into ASCII keys; histograms take the standard path.
			return
		}
		want, werr := standardDecode([]byte(body))
		if werr != nil || err != nil {
			// The standard decoder tolerates some things this one refuses
			// (duplicate or misplaced keys); the reverse must not happen.
			if err == nil && want.typ == model.ValVector {
				t.Fatalf("accepted %q, which the standard decoder refuses: %v", body, werr)
			}
			return
		}
		if !sameResult(got, want) {
			t.Fatalf("%q: decoded %v, standard %v", body, got.vector, want.vector)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
