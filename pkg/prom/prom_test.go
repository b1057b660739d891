package prom

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

func newClient(t *testing.T, srv *promtest.Server, opts Options) *Client {
	t.Helper()
	if opts.URL == "" {
		opts.URL = srv.URL
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestQuery(t *testing.T) {
	srv := promtest.New(t)
	srv.Vector(`sum(x) by (pod)`,
		promtest.Sample{Labels: map[string]string{"pod": "a"}, Value: "1.5", Time: 1700000000.5},
		promtest.Sample{Labels: map[string]string{"pod": "b"}, Value: "NaN", Time: 1700000001},
	)
	srv.Vector(`empty`)
	srv.Scalar(`scalar(x)`, 1700000002.25, "42")
	srv.QueryReply(`x[5m]`, promtest.Success(map[string]any{"resultType": "matrix", "result": []any{}}))
	c := newClient(t, srv, Options{})

	at := time.Unix(1700000000, 0)
	vec, err := c.Query(context.Background(), `sum(x) by (pod)`, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 2 ||
		!vec[0].Metric.Equal(model.Metric{"pod": "a"}) || vec[0].Value != 1.5 || vec[0].Timestamp != model.TimeFromUnixNano(1700000000500*1e6) ||
		!vec[1].Metric.Equal(model.Metric{"pod": "b"}) || !math.IsNaN(float64(vec[1].Value)) {
		t.Errorf("vector = %v", vec)
	}
	req := srv.Requests()[0]
	if req.Method != http.MethodPost || req.Path != "/api/v1/query" || req.Form.Get("query") != `sum(x) by (pod)` || req.Form.Get("time") != "1700000000" {
		t.Errorf("request = %+v", req)
	}
	if req.Form.Has("timeout") {
		t.Errorf("timeout %q sent without any timeout", req.Form.Get("timeout"))
	}

	if vec, err := c.Query(context.Background(), `empty`, at); err != nil || len(vec) != 0 {
		t.Errorf("empty = %v, %v", vec, err)
	}

	vec, err = c.Query(context.Background(), `scalar(x)`, at)
	if err != nil || len(vec) != 1 || len(vec[0].Metric) != 0 || vec[0].Value != 42 || vec[0].Timestamp != model.TimeFromUnixNano(1700000002250*1e6) {
		t.Errorf("scalar = %v, %v", vec, err)
	}

	_, err = c.Query(context.Background(), `x[5m]`, at)
	var pe *Error
	if !errors.As(err, &pe) || pe.Op != "query" || pe.Backend != srv.URL ||
		err.Error() != "prometheus backend "+srv.URL+`: query failed: query "x[5m]" returned a matrix, want a vector` {
		t.Errorf("matrix: %v", err)
	}
}

func TestQueryErrors(t *testing.T) {
	srv := promtest.New(t)
	srv.QueryReply("bad", promtest.Error(http.StatusBadRequest, "bad_data", `1:4: parse error: unexpected end of input`))
	srv.QueryReply("exec", promtest.Error(http.StatusUnprocessableEntity, "execution", "query processing would load too many samples"))
	srv.QueryReply("unavailable", promtest.Reply{Status: http.StatusServiceUnavailable, ContentType: "text/plain", Body: "Service Unavailable"})
	srv.QueryReply("gateway", promtest.Reply{Status: http.StatusBadGateway, ContentType: "text/html", Body: "<html>bad gateway</html>"})
	srv.QueryReply("garbage", promtest.Reply{Body: `{"status":"success","data":`})
	srv.QueryReply("status error with 200", promtest.Reply{Body: `{"status":"error","errorType":"internal","error":"oops"}`})
	srv.QueryReply("no status", promtest.Reply{Body: `{"data":{"resultType":"vector","result":[]}}`})
	srv.QueryReply("no value", promtest.Reply{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"}}]}}`})
	srv.QueryReply("leading zero", promtest.Reply{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[01,"2"]}]}}`})
	srv.QueryReply("partial", promtest.Reply{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"namespace":"secret-ns","pod":"a"},"value":[1,"2"]}]},` +
		`"warnings":["partial response: store {namespace=\"secret-ns\"} unavailable"]}`})
	srv.QueryReply("isPartial", promtest.Reply{Body: `{"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}}`})
	srv.QueryReply("matrix", promtest.Success(map[string]any{"resultType": "matrix", "result": []any{}}))
	c := newClient(t, srv, Options{})
	tests := []struct {
		query   string
		want    string // the message after "prometheus backend <url>: query failed: "
		kind    Kind
		summary string // what callers are told, after the same prefix
		typ     v1.ErrorType
	}{
		{"bad", "bad_data: 1:4: parse error: unexpected end of input", BadStatus, "bad status (HTTP 400, bad_data)", v1.ErrBadData},
		{"exec", "execution: query processing would load too many samples", BadStatus, "bad status (HTTP 422, execution)", v1.ErrExec},
		{"unavailable", "server_error: server error: 503", BadStatus, "bad status (HTTP 503, server_error)", v1.ErrServer},
		{"gateway", "server_error: server error: 502", BadStatus, "bad status (HTTP 502, server_error)", v1.ErrServer},
		{"garbage", "bad_response: ", InvalidResponse, "invalid response", v1.ErrBadResponse},
		{"status error with 200", "internal: oops", BadStatus, "bad status (HTTP 200, internal)", "internal"},
		{"no status", `bad_response: the answer has no "status"`, InvalidResponse, "invalid response", v1.ErrBadResponse},
		{"no value", "bad_response: offset ", InvalidResponse, "invalid response", v1.ErrBadResponse},
		{"leading zero", "bad_response: offset ", InvalidResponse, "invalid response", v1.ErrBadResponse},
		{"partial", `query "partial": partial response: store {namespace="secret-ns"} unavailable`, PartialResponse, "partial response", ""},
		{"isPartial", `query "isPartial": isPartial is true`, PartialResponse, "partial response", ""},
		{"matrix", `query "matrix" returned a matrix, want a vector`, InvalidResponse, "invalid response", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			vec, err := c.Query(context.Background(), tt.query, time.Now())
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Query = %v, %v (%T), want a *prom.Error", vec, err, err)
			}
			prefix := "prometheus backend " + srv.URL + ": query failed: "
			if pe.Backend != srv.URL || pe.Op != "query" || !strings.HasPrefix(err.Error(), prefix+tt.want) {
				t.Errorf("error = %q, want prefix %q", err, prefix+tt.want)
			}
			if got := KindOf(err); got != tt.kind {
				t.Errorf("KindOf = %q, want %q", got, tt.kind)
			}
			if got := Summary(err); got != prefix+tt.summary {
				t.Errorf("Summary = %q, want %q", got, prefix+tt.summary)
			}
			if strings.Contains(Summary(err), "secret-ns") {
				t.Errorf("Summary %q shows the backend's text", Summary(err))
			}
			if tt.typ == "" {
				return
			}
			var ae *v1.Error
			if !errors.As(err, &ae) || ae.Type != tt.typ {
				t.Errorf("error does not wrap a v1.Error of type %s: %#v", tt.typ, pe.Err)
			}
		})
	}

	// A backend that is not there.
	dead := promtest.New(t)
	dead.Close()
	_, err := newClient(t, dead, Options{}).Query(context.Background(), "up", time.Now())
	var pe *Error
	if !errors.As(err, &pe) || pe.Backend != dead.URL || KindOf(err) != Unreachable ||
		Summary(err) != "prometheus backend "+dead.URL+": query failed: unreachable" {
		t.Errorf("unreachable backend: %v (%s)", err, KindOf(err))
	}
	if Summary(errors.New("x")) != "" || KindOf(nil) != "" {
		t.Error("Summary or KindOf of what is no backend failure")
	}
}

func TestQueryPartialAllowed(t *testing.T) {
	srv := promtest.New(t)
	srv.QueryReply("partial", promtest.Reply{Body: `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"2"]}]},"warnings":["partial response: store b unavailable"]}`})
	srv.SeriesReply("partial", promtest.Reply{Body: `{"status":"success","data":[{"__name__":"a"}],"warnings":["partial response: store b unavailable"]}`})
	c := newClient(t, srv, Options{})
	for _, tt := range []struct {
		name   string
		limits Limits
		kind   Kind
	}{
		{"refused by default", Limits{}, PartialResponse},
		{"allowed", Limits{AllowPartialResponse: true}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lc := c.WithLimits(tt.limits)
			vec, err := lc.Query(context.Background(), "partial", time.Now())
			if KindOf(err) != tt.kind || (err == nil && len(vec) != 1) {
				t.Errorf("Query = %v, %v; want kind %q", vec, err, tt.kind)
			}
			n := 0
			err = lc.Series(context.Background(), "partial", time.Now(), time.Now(), func(string, []Label) { n++ })
			if KindOf(err) != tt.kind || n != 1 {
				t.Errorf("Series = %v after %d series; want kind %q", err, n, tt.kind)
			}
			if tt.kind != "" && err.Error() != "prometheus backend "+srv.URL+`: series failed: series "partial": partial response: store b unavailable` {
				t.Errorf("Series error %q", err)
			}
		})
	}
	// The Client itself takes the defaults.
	if _, err := c.Query(context.Background(), "partial", time.Now()); KindOf(err) != PartialResponse {
		t.Errorf("Client.Query: %v", err)
	}
}

func TestQueryLimits(t *testing.T) {
	// body is an answer of n samples, about 60 bytes each.
	body := func(n int) string { return string(benchVectorBody(n)) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		n, _ := strconv.Atoi(r.Form.Get("query"))
		b := body(n)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("send") {
		case "chunked": // no Content-Length: the limit applies while reading
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, b)
	}))
	defer srv.Close()
	size := int64(len(body(100)))
	for _, tt := range []struct {
		name   string
		send   string
		limits Limits
		n      int
		kind   Kind
	}{
		{"defaults", "", Limits{}, 1000, ""},
		{"bytes at the limit", "", Limits{MaxResponseBytes: size}, 100, ""},
		{"bytes over the limit", "", Limits{MaxResponseBytes: size - 1}, 100, TooLarge},
		{"bytes over the limit, chunked", "chunked", Limits{MaxResponseBytes: size - 1}, 100, TooLarge},
		{"bytes at the limit, chunked", "chunked", Limits{MaxResponseBytes: size}, 100, ""},
		{"no byte limit", "chunked", Limits{MaxResponseBytes: -1}, 1000, ""},
		{"samples at the limit", "", Limits{MaxSamples: 100}, 100, ""},
		{"samples over the limit", "", Limits{MaxSamples: 99}, 100, TooLarge},
		{"no sample limit", "", Limits{MaxSamples: -1}, 1000, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{URL: srv.URL + "/?send=" + tt.send})
			if err != nil {
				t.Fatal(err)
			}
			vec, err := c.WithLimits(tt.limits).Query(context.Background(), strconv.Itoa(tt.n), time.Now())
			if KindOf(err) != tt.kind {
				t.Fatalf("error %v of kind %q, want %q", err, KindOf(err), tt.kind)
			}
			if err == nil && len(vec) != tt.n {
				t.Errorf("%d samples, want %d", len(vec), tt.n)
			}
			if err != nil && !strings.HasPrefix(Summary(err), "prometheus backend ") {
				t.Errorf("Summary = %q", Summary(err))
			}
		})
	}
}

func TestQueryTimeout(t *testing.T) {
	srv := promtest.New(t)
	srv.QueryReply("slow", promtest.Reply{Body: `{"status":"success","data":{"resultType":"vector","result":[]}}`, Delay: 10 * time.Second})
	srv.Vector("fast")
	c := newClient(t, srv, Options{Timeout: 300 * time.Millisecond})

	start := time.Now()
	_, err := c.Query(context.Background(), "slow", time.Now())
	took := time.Since(start)
	var pe *Error
	if !errors.As(err, &pe) || KindOf(err) != Timeout {
		t.Fatalf("slow query: %v (kind %q), want a *prom.Error of kind timeout", err, KindOf(err))
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Errorf("slow query failed after %v, want about 300ms", took)
	}
	if got := srv.Requests()[0].Form.Get("timeout"); got != "300ms" {
		t.Errorf("timeout sent = %q, want 300ms", got)
	}

	// The context's deadline, when sooner, is what the backend gets; it is
	// sent in a form Prometheus accepts (never "1.4999s").
	for _, d := range []time.Duration{1500 * time.Millisecond, 250*time.Millisecond + 300*time.Microsecond, 90*time.Second + 7*time.Millisecond} {
		srv.Reset()
		c := newClient(t, srv, Options{Timeout: 2 * time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := c.Query(ctx, "fast", time.Now())
		cancel()
		if err != nil {
			t.Errorf("deadline %v: %v", d, err)
			continue
		}
		sent := srv.Requests()[0].Form.Get("timeout")
		got, perr := model.ParseDuration(sent)
		if perr != nil || time.Duration(got) > d || time.Duration(got) < d-time.Second {
			t.Errorf("deadline %v: timeout sent = %q (%v)", d, sent, perr)
		}
	}
}

func TestPromDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{time.Nanosecond, "1ms"},
		{999 * time.Microsecond, "1ms"},
		{1500 * time.Microsecond, "1ms"},
		{999*time.Millisecond + 999*time.Microsecond, "999ms"},
		{time.Second, "1s"},
		{2*time.Second + 999*time.Millisecond, "2s"},
		{90*time.Second + 500*time.Millisecond, "1m30s"},
		{time.Hour, "1h0m0s"},
	}
	for _, tt := range tests {
		got := promDuration(tt.in)
		if got.String() != tt.want {
			t.Errorf("promDuration(%v) = %v, want %s", tt.in, got, tt.want)
		}
		if got > 0 {
			if _, err := model.ParseDuration(got.String()); err != nil {
				t.Errorf("Prometheus cannot parse %v: %v", got, err)
			}
		}
	}
}

func TestSeries(t *testing.T) {
	srv := promtest.New(t)
	srv.Series(`{__name__=~"http_.*"}`,
		map[string]string{"__name__": "http_requests_total", "namespace": "ns1", "pod": "a"},
		map[string]string{"__name__": "http_inflight", "service": "web"},
		map[string]string{"job": "nameless"},
	)
	srv.SeriesReply(`null_data`, promtest.Reply{Body: `{"status":"success","data":null}`})
	srv.SeriesReply(`bad_data`, promtest.Error(http.StatusBadRequest, "bad_data", `invalid parameter "match[]": 1:3: parse error`))
	srv.SeriesReply(`server_error`, promtest.Reply{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "boom\n"})
	srv.SeriesReply(`malformed`, promtest.Reply{Body: `{"status":"success","data":[{"__name__":"a"},`})
	c := newClient(t, srv, Options{})

	type series struct {
		Name   string
		Labels []Label
	}
	var got []series
	start, end := time.Unix(1700000000, 0), time.Unix(1700000600, 250e6)
	err := c.Series(context.Background(), `{__name__=~"http_.*"}`, start, end, func(name string, lbls []Label) {
		got = append(got, series{name, append([]Label(nil), lbls...)})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []series{
		{"http_requests_total", []Label{{"namespace", "ns1"}, {"pod", "a"}}},
		{"http_inflight", []Label{{"service", "web"}}},
		{"", []Label{{"job", "nameless"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("series = %+v, want %+v", got, want)
	}
	req := srv.Requests()[0]
	if req.Method != http.MethodPost || req.Path != "/api/v1/series" || req.Form.Get("match[]") != `{__name__=~"http_.*"}` ||
		req.Form.Get("start") != "1700000000.000" || req.Form.Get("end") != "1700000600.250" {
		t.Errorf("request = %+v", req)
	}

	n := 0
	count := func(string, []Label) { n++ }
	for _, match := range []string{"null_data", "no fixture: empty list"} {
		if err := c.Series(context.Background(), match, start, end, count); err != nil || n != 0 {
			t.Errorf("%s: %v, %d series", match, err, n)
		}
	}
	for match, want := range map[string]string{
		"bad_data":     `series failed: bad_data: invalid parameter "match[]": 1:3: parse error`,
		"server_error": "series failed: HTTP 500 Internal Server Error: boom",
		"malformed":    "series failed: truncated response: unexpected EOF",
	} {
		err := c.Series(context.Background(), match, start, end, count)
		var pe *Error
		if !errors.As(err, &pe) || pe.Op != "series" || err.Error() != "prometheus backend "+srv.URL+": "+want {
			t.Errorf("%s: %v, want %s", match, err, want)
		}
	}
}

func TestDecodeSeries(t *testing.T) {
	tests := []struct {
		name string
		code int
		body string
		want []string // name{labels}
		err  string
		kind Kind // default: BadStatus for an error answer, else InvalidResponse
	}{
		{name: "empty data", body: `{"status":"success","data":[]}`},
		{name: "null data", body: `{"status":"success","data":null}`},
		{name: "data before status", body: `{"data":[{"__name__":"a","x":"1"}],"status":"success"}`, want: []string{"a{x=1}"}},
		{name: "unknown fields and PromQL warnings skipped", body: `{"status":"success","warnings":["PromQL warning: x"],"infos":["i"],"extra":{"a":[1,2]},"data":[{"b":"2","__name__":"a"}]}`, want: []string{"a{b=2}"}},
		{name: "partial", body: `{"status":"success","warnings":["partial response: store b unavailable"],"data":[{"__name__":"a"}]}`, err: "partial response: store b unavailable", kind: PartialResponse},
		{name: "no status", body: `{"data":[]}`, err: `response has no "status"`},
		{name: "other status", body: `{"status":"ok","data":[]}`, err: `response status is "ok", want success`},
		{name: "trailing data", body: `{"status":"success","data":[]} {}`, err: "malformed response: data after the top-level value"},
		{name: "escapes and unicode", body: `{"status":"success","data":[{"__name__":"a","v":"q\"\\\n\u00fc"}]}`, want: []string{"a{v=q\"\\\nü}"}},
		{name: "many", body: `{"status":"success","data":[{"__name__":"a"},{"__name__":"b","p":"1"},{}]}`, want: []string{"a{}", "b{p=1}", "{}"}},
		{name: "error status", code: 422, body: `{"status":"error","errorType":"execution","error":"too many series"}`, err: "execution: too many series", kind: BadStatus},
		{name: "error without message", code: 503, body: `{"status":"error"}`, err: "HTTP 503", kind: BadStatus},
		{name: "error status with 200", body: `{"status":"error","error":"x"}`, err: "x", kind: BadStatus},
		{name: "no data", body: `{"status":"success"}`, err: "response has no data"},
		{name: "not an object", body: `[]`, err: `malformed response: want "{", got [`},
		{name: "data not an array", body: `{"status":"success","data":{}}`, err: "data: want an array, got {"},
		{name: "series not an object", body: `{"status":"success","data":["a"]}`, err: `malformed response: want "{", got a`},
		{name: "label value not a string", body: `{"status":"success","data":[{"__name__":1}]}`, err: "malformed response: want a string, got 1"},
		{name: "nested value", body: `{"status":"success","data":[{"a":{"b":"c"}}]}`, err: "malformed response: want a string, got {"},
		{name: "truncated", body: `{"status":"success","data":[{"__name__":"a"}`, err: "truncated response: unexpected EOF"},
		{name: "truncated after a series", body: `{"status":"success","data":[{"__name__":"a"},`, err: "truncated response: unexpected EOF"},
		{name: "truncated after data", body: `{"status":"success","data":[]`, err: "truncated response: unexpected EOF"},
		{name: "truncated in a value", body: `{"status":"success","data":[{"__name__":"a`, err: "truncated response: unexpected EOF"},
		{name: "empty body", body: ``, err: "truncated response: unexpected EOF"},
		{name: "syntax", body: `{"status":"success","data":[{"__name__" "a"}]}`, err: "invalid character '\"' after object key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == 0 {
				code = 200
			}
			var got []string
			err := decodeSeries(strings.NewReader(tt.body), code, func(name string, lbls []Label) {
				var parts []string
				for _, l := range lbls {
					parts = append(parts, l.Name+"="+l.Value)
				}
				got = append(got, name+"{"+strings.Join(parts, ",")+"}")
			})
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				want := tt.kind
				if want == "" {
					want = InvalidResponse
				}
				if kind := KindOf(err); kind != want {
					t.Errorf("kind %q, want %q", kind, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("series = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeadersAndToken(t *testing.T) {
	srv := promtest.New(t)
	srv.Vector("up")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, srv, Options{
		TokenFile:                token,
		Headers:                  map[string][]string{"X-Scope-OrgID": {"tenant-a"}, "x-extra": {"1", "2"}},
		AllowCredentialsOverHTTP: true, // promtest serves plain HTTP
	})
	check := func(wantAuth string) {
		t.Helper()
		srv.Reset()
		if _, err := c.Query(context.Background(), "up", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := c.Series(context.Background(), "up", time.Now(), time.Now(), func(string, []Label) {}); err != nil {
			t.Fatal(err)
		}
		for _, r := range srv.Requests() {
			if got := r.Header.Get("Authorization"); got != wantAuth {
				t.Errorf("%s: Authorization = %q, want %q", r.Path, got, wantAuth)
			}
			if got := r.Header.Values("X-Scope-Orgid"); !reflect.DeepEqual(got, []string{"tenant-a"}) {
				t.Errorf("%s: X-Scope-OrgID = %q", r.Path, got)
			}
			if got := r.Header.Values("X-Extra"); !reflect.DeepEqual(got, []string{"1", "2"}) {
				t.Errorf("%s: X-Extra = %q", r.Path, got)
			}
			if got := r.Header.Get("User-Agent"); got != "promgate" {
				t.Errorf("%s: User-Agent = %q", r.Path, got)
			}
		}
	}
	check("Bearer first")
	// A rotated token is used without restarting.
	if err := os.WriteFile(token, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("Bearer second")
}

func TestVerbGet(t *testing.T) {
	srv := promtest.New(t)
	srv.Vector(`sum(x{pod=~"a|b"})`)
	long := `count(x{pod=~"` + strings.Repeat("p", 5000) + `"})`
	srv.Vector(long)
	c := newClient(t, srv, Options{Verb: "get", URL: srv.URL + "/prometheus/"})

	if _, err := c.Query(context.Background(), `sum(x{pod=~"a|b"})`, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Series(context.Background(), `{a="b"}`, time.Unix(1, 0), time.Unix(2, 0), func(string, []Label) {}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), long, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, want := range []struct{ method, path, key, value string }{
		{http.MethodGet, "/prometheus/api/v1/query", "query", `sum(x{pod=~"a|b"})`},
		{http.MethodGet, "/prometheus/api/v1/series", "match[]", `{a="b"}`},
		{http.MethodPost, "/prometheus/api/v1/query", "query", long}, // too long for a URL
	} {
		r := reqs[i]
		if r.Method != want.method || r.Path != want.path || r.Form.Get(want.key) != want.value {
			t.Errorf("request %d = %s %s %s=%.40q, want %s %s", i, r.Method, r.Path, want.key, r.Form.Get(want.key), want.method, want.path)
		}
		if r.Method == http.MethodGet && r.Header.Get("Content-Type") != "" {
			t.Errorf("request %d: GET with Content-Type %q", i, r.Header.Get("Content-Type"))
		}
	}
	if reqs[0].Form.Get("time") != "1700000000" || reqs[1].Form.Get("start") != "1.000" {
		t.Errorf("form values lost: %v, %v", reqs[0].Form, reqs[1].Form)
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		err  string
	}{
		{Options{}, "prometheus URL is required"},
		{Options{URL: "prometheus:9090"}, `invalid prometheus URL "prometheus:9090"`},
		{Options{URL: "/api"}, `invalid prometheus URL "/api"`},
		{Options{URL: "http://p:9090", Verb: "PUT"}, `prometheus verb must be GET or POST, not "PUT"`},
		{Options{URL: "http://p:9090", TokenFile: "/nonexistent/token", AuthConfigFile: "/nonexistent/kubeconfig"}, "prometheus auth config: "},
		{Options{URL: "http://p:9090", CertFile: "/nonexistent/cert"}, "prometheus client config: "},
	} {
		c, err := New(tt.opts)
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("New(%+v) = %v, %v; want error %q", tt.opts, c, err, tt.err)
		}
	}
	c, err := New(Options{URL: "https://user:secret@prom.example:9090/prefix", Verb: "post"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "https://prom.example:9090/prefix" {
		t.Errorf("Name() = %q: credentials must not be shown", c.Name())
	}
}
