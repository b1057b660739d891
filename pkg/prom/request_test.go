package prom

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestVerbFallback checks the methods of every call: a POST refused with
// 403, 405 or 501 is sent again as GET (queries, label names, label values
// too long for a URL), label values go as GET first, and a series POST is
// never sent again.
func TestVerbFallback(t *testing.T) {
	long := `{a=~"` + strings.Repeat("x|", 3000) + `y"}`
	calls := map[string]func(*Client, string) error{
		"query": func(c *Client, q string) error {
			_, err := c.Query(context.Background(), q, time.Unix(1700000000, 0))
			return err
		},
		"labels": func(c *Client, m string) error {
			_, err := c.LabelNames(context.Background(), m, time.Unix(0, 0), time.Unix(1, 0))
			return err
		},
		"values": func(c *Client, m string) error {
			_, err := c.LabelValues(context.Background(), "pod", m, time.Unix(0, 0), time.Unix(1, 0))
			return err
		},
		"series": func(c *Client, m string) error {
			return c.Series(context.Background(), m, time.Unix(0, 0), time.Unix(1, 0), func(string, []Label) {})
		},
	}
	answers := map[string]string{
		"query":  `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"labels": `{"status":"success","data":[]}`,
		"values": `{"status":"success","data":[]}`,
		"series": `{"status":"success","data":[]}`,
	}
	for _, tt := range []struct {
		call, arg string
		refuse    int // the status code of an answer to POST, 0 for none
		methods   []string
		kind      Kind // of the call's error, "" for none
	}{
		{"query", "up", 0, []string{"POST"}, ""},
		{"query", "up", http.StatusMethodNotAllowed, []string{"POST", "GET"}, ""},
		{"query", "up", http.StatusForbidden, []string{"POST", "GET"}, ""},
		{"query", "up", http.StatusNotImplemented, []string{"POST", "GET"}, ""},
		{"query", "up", http.StatusBadRequest, []string{"POST"}, BadStatus},
		{"labels", "up", 0, []string{"POST"}, ""},
		{"labels", "up", http.StatusMethodNotAllowed, []string{"POST", "GET"}, ""},
		{"values", "up", 0, []string{"GET"}, ""},
		{"values", long, 0, []string{"POST"}, ""},
		{"values", long, http.StatusNotImplemented, []string{"POST", "GET"}, ""},
		{"series", "up", 0, []string{"POST"}, ""},
		{"series", "up", http.StatusMethodNotAllowed, []string{"POST"}, BadStatus},
	} {
		name := tt.call + "/answered"
		if tt.refuse != 0 {
			name = tt.call + "/" + http.StatusText(tt.refuse)
		}
		if len(tt.arg) > 100 {
			name += "/long"
		}
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var methods []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				methods = append(methods, r.Method)
				mu.Unlock()
				if err := r.ParseForm(); err != nil || (r.Form.Get("query") != tt.arg && r.Form.Get("match[]") != tt.arg) {
					http.Error(w, "form lost", http.StatusTeapot)
					return
				}
				post := r.Method == http.MethodPost
				if ct := r.Header.Get("Content-Type"); post != (ct == "application/x-www-form-urlencoded") {
					http.Error(w, r.Method+" with Content-Type "+ct, http.StatusTeapot)
					return
				}
				if r.Header.Get("Accept") != "application/json" || r.Header.Get("Idempotency-Key") != "" {
					http.Error(w, "headers", http.StatusTeapot)
					return
				}
				if post && tt.refuse != 0 {
					http.Error(w, http.StatusText(tt.refuse), tt.refuse)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(answers[tt.call]))
			}))
			defer srv.Close()
			c, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = calls[tt.call](c, tt.arg)
			if KindOf(err) != tt.kind {
				t.Errorf("error %v, want kind %q", err, tt.kind)
			}
			mu.Lock()
			defer mu.Unlock()
			if !reflect.DeepEqual(methods, tt.methods) {
				t.Errorf("methods %v, want %v", methods, tt.methods)
			}
		})
	}
}

// TestWithParams checks that the client's parameters are added to a call's
// form without replacing those it sets itself, and are not shared between
// calls.
func TestWithParams(t *testing.T) {
	c := &Client{params: url.Values{"dedup": {"true"}, "query": {"not this"}}}
	form := c.withParams(url.Values{"query": {"up"}})
	if !reflect.DeepEqual(form, url.Values{"query": {"up"}, "dedup": {"true"}}) {
		t.Errorf("form %v", form)
	}
	form["dedup"][0] = "changed"
	if c.params["dedup"][0] != "true" {
		t.Error("the client's parameters were changed through a form")
	}
}

// TestDecodeEnvelope checks the envelope of answers against encoding/json,
// which reads them into the same struct.
func TestDecodeEnvelope(t *testing.T) {
	for _, body := range []string{
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]},"warnings":["w"],"infos":["i"]}`,
		`{"Status":"success","WARNINGS":["a",null],"isPartial":true,"ispartial":null}`,
		`{"status":"error","status":null,"error":"x","warnings":["a"],"warnings":null}`,
		`{"data":[{"__name__":"a"}],"warnings":[]}`,
		`{}`,
	} {
		got, ok := decodeEnvelope([]byte(body))
		var want envelope
		if err := json.Unmarshal([]byte(body), &want); err != nil || !ok {
			t.Fatalf("%s: decoded %v, encoding/json: %v", body, ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %+v, encoding/json %+v", body, got, want)
		}
	}
	for _, body := range []string{``, `[]`, `{"status":"success"`, `{"status":1}`, `{"status":"success"} x`} {
		if _, ok := decodeEnvelope([]byte(body)); ok {
			t.Errorf("%q: decoded, want refused", body)
		}
	}
}

// TestIndexStatus checks the errors of a series or index answer's status.
func TestIndexStatus(t *testing.T) {
	for _, tt := range []struct {
		env  envelope
		code int
		kind Kind
		text string
	}{
		{envelope{Status: "success"}, 200, "", ""},
		{envelope{Status: "error", ErrorType: "bad_data", Error: "x"}, 400, BadStatus, "bad_data: x"},
		{envelope{Status: "error", Error: "x"}, 200, BadStatus, "x"},
		{envelope{Status: "error"}, 503, BadStatus, "HTTP 503"},
		{envelope{Status: "success"}, 500, BadStatus, "HTTP 500"},
		{envelope{}, 200, InvalidResponse, `response has no "status"`},
		{envelope{Status: "ok"}, 200, InvalidResponse, `response status is "ok", want success`},
	} {
		err := tt.env.indexStatus(tt.code)
		if KindOf(err) != tt.kind || (err != nil && err.Error() != tt.text) {
			t.Errorf("%+v, %d: %v (kind %q), want %q (kind %q)", tt.env, tt.code, err, KindOf(err), tt.text, tt.kind)
		}
		if ke, ok := errors.AsType[*KindError](err); ok && ke.Kind == BadStatus && ke.Code != tt.code {
			t.Errorf("%+v, %d: code %d", tt.env, tt.code, ke.Code)
		}
	}
}
