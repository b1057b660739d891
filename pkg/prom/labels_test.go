package prom

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLabelNamesAndValues(t *testing.T) {
	const ok = `{"status":"success","data":["a","b"]}`
	for _, tc := range []struct {
		name   string
		values bool // LabelValues, else LabelNames
		body   string
		status int
		limits Limits
		want   []string
		kind   Kind
		code   int
	}{
		{name: "names", body: ok, want: []string{"a", "b"}},
		{name: "values", values: true, body: ok, want: []string{"a", "b"}},
		{name: "empty", body: `{"status":"success","data":[]}`, want: []string{}},
		{name: "too large", body: ok, limits: Limits{MaxResponseBytes: 10}, kind: TooLarge},
		{name: "no endpoint", body: "404 page not found", status: 404, kind: BadStatus, code: 404},
		{name: "bad data", body: `{"status":"error","errorType":"bad_data","error":"unknown parameter"}`, status: 400, kind: BadStatus, code: 400},
		{name: "unauthorized", body: "no", status: 401, kind: Unauthorized, code: 401},
		{name: "server error", body: `{"status":"error","errorType":"internal","error":"boom"}`, status: 500, kind: BadStatus, code: 500},
		{name: "partial", body: `{"status":"success","data":["a"],"warnings":["store x unavailable"]}`, kind: PartialResponse},
		{name: "partial allowed", body: `{"status":"success","data":["a"],"warnings":["store x unavailable"]}`, limits: Limits{AllowPartialResponse: true}, want: []string{"a"}},
		{name: "not JSON", body: `[`, kind: InvalidResponse},
		{name: "no status", body: `{"data":[]}`, kind: InvalidResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			var form url.Values
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				got, form = r, r.Form
				if tc.status != 0 {
					w.WriteHeader(tc.status)
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := New(Options{URL: srv.URL + "/prefix", Timeout: 5 * time.Second, Params: url.Values{"dedup": {"true"}, "match[]": {"x"}}})
			if err != nil {
				t.Fatal(err)
			}
			lc := c.WithLimits(tc.limits)
			start, end := time.Unix(100, 0), time.Unix(200, 0)
			var out []string
			if tc.values {
				out, err = lc.LabelValues(context.Background(), "__name__", `{a!=""}`, start, end)
			} else {
				out, err = lc.LabelNames(context.Background(), `{a!=""}`, start, end)
			}
			wantPath, wantMethod := "/prefix/api/v1/labels", http.MethodPost
			if tc.values {
				wantPath, wantMethod = "/prefix/api/v1/label/__name__/values", http.MethodGet
			}
			if got.URL.Path != wantPath || got.Method != wantMethod {
				t.Errorf("%s %s, want %s %s", got.Method, got.URL.Path, wantMethod, wantPath)
			}
			if form.Get("match[]") != `{a!=""}` || len(form["match[]"]) != 1 || form.Get("start") != "100.000" || form.Get("end") != "200.000" || form.Get("dedup") != "true" {
				t.Errorf("form %v", form)
			}
			if tc.kind != "" {
				pe, isErr := err.(*Error)
				if !isErr || KindOf(err) != tc.kind {
					t.Fatalf("error %v (kind %q), want kind %q", err, KindOf(err), tc.kind)
				}
				if ke, _ := pe.Err.(*KindError); tc.code != 0 && (ke == nil || ke.Code != tc.code) {
					t.Errorf("error %v: want code %d", err, tc.code)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(out, tc.want) {
				t.Errorf("got %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

// TestLabelValuesLongSelector checks that a selector too long for a URL is
// POSTed, and asked again with GET when the backend refuses POST.
func TestLabelValuesLongSelector(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":["m"]}`))
	}))
	defer srv.Close()
	c, err := New(Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sel := `{a=~"` + strings.Repeat("x|", 3000) + `y"}`
	out, err := c.LabelValues(context.Background(), "__name__", sel, time.Unix(0, 0), time.Unix(1, 0))
	if err != nil || !reflect.DeepEqual(out, []string{"m"}) || !reflect.DeepEqual(methods, []string{"POST", "GET"}) {
		t.Errorf("got %q, %v after %v", out, err, methods)
	}
}

// FuzzDecodeStrings checks the decoder of label names and values against
// encoding/json: whatever it accepts, encoding/json must decode to the
// same answer; and one string fewer than the answer has is over the limit.
func FuzzDecodeStrings(f *testing.F) {
	for _, body := range []string{
		`{"status":"success","data":["a","b"]}`,
		`{"status":"success","data":[]}`,
		`{"status":"success","data":null,"warnings":["w"],"isPartial":true}`,
		`{"Status":"success","DATA":["a\u00e9\"",null],"status":null,"extra":{"x":[1,2.5e3,true,null]}}`,
		`{"status":"error","errorType":"bad_data","error":"unknown parameter"}`,
		`{"data":["a"],"data":["b","c"],"status":"success"}`,
		`{"status":"success","data":["a"]} x`,
		`[`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := decodeStrings([]byte(body), -1, "names") // must not panic
		if err != nil {
			if KindOf(err) != InvalidResponse {
				t.Fatalf("%q: error %v of kind %q, want %q", body, err, KindOf(err), InvalidResponse)
			}
			return
		}
		if foldsToASCII(body) {
			return // keys encoding/json folds from non-ASCII letters
		}
		var want stringsAnswer
		if jerr := json.Unmarshal([]byte(body), &want); jerr != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, jerr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decoded %+v, encoding/json %+v", body, got, want)
		}
		if n := len(got.Data); n > 0 {
			if _, err := decodeStrings([]byte(body), n-1, "names"); KindOf(err) != TooLarge {
				t.Fatalf("%q under a limit of %d names: %v, want too large", body, n-1, err)
			}
			if _, err := decodeStrings([]byte(body), n, "names"); err != nil {
				t.Fatalf("%q under a limit of %d names: %v", body, n, err)
			}
		}
	})
}
