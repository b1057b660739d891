package prom

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitEndpoint is one kind of backend answer: how to write one of n
// items, and how to ask for it under limits.
type limitEndpoint struct {
	name string
	path string
	// body is the answer of n items.
	body func(n int) string
	// itemLimits sets the endpoint's item limit to n.
	itemLimits func(l *Limits, n int)
	// unit and option are the item limit's LimitError.Unit and Option.
	unit, option string
	// call asks for the answer and returns how many items came (for
	// series, how many the SeriesFunc received, even on error).
	call func(ctx context.Context, c *LimitedClient) (int, error)
}

func vectorBody(n int) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"vector","result":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"namespace":"ns-%d","pod":"pod-%d"},"value":[1700000000.5,"%d"]}`, i%10, i, i)
	}
	b.WriteString(`]}}`)
	return b.String()
}

// matrixBody is a matrix of n samples, in series of up to three.
func matrixBody(n int) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := 0; i < n; i += 3 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"pod":"pod-%d"},"values":[`, i)
		for j := i; j < min(i+3, n); j++ {
			if j > i {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[%d,"%d"]`, 1700000000+j-i, j)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}}`)
	return b.String()
}

func seriesAnswer(n int) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"__name__":"http_requests_total","namespace":"ns-%d","pod":"pod-%d"}`, i%10, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func stringsBody(n int) string {
	var b strings.Builder
	b.WriteString(`{"status":"success","data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"metric_%d_total"`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

var limitEndpoints = []limitEndpoint{
	{
		name: "query", path: "/api/v1/query", body: vectorBody,
		itemLimits: func(l *Limits, n int) { l.MaxSamples = n },
		unit:       "samples", option: FlagMaxSamples,
		call: func(ctx context.Context, c *LimitedClient) (int, error) {
			v, err := c.Query(ctx, "q", time.Time{})
			return len(v), err
		},
	},
	{
		name: "samples", path: "/api/v1/query", body: matrixBody,
		itemLimits: func(l *Limits, n int) { l.MaxSamples = n },
		unit:       "samples", option: FlagMaxSamples,
		call: func(ctx context.Context, c *LimitedClient) (int, error) {
			m, err := c.QuerySamples(ctx, "q[1m]", time.Time{})
			n := 0
			for _, s := range m {
				n += len(s.Values)
			}
			return n, err
		},
	},
	{
		name: "series", path: "/api/v1/series", body: seriesAnswer,
		itemLimits: func(l *Limits, n int) { l.MaxSeries = n },
		unit:       "series", option: FlagMaxSeries,
		call: func(ctx context.Context, c *LimitedClient) (int, error) {
			n := 0
			err := c.Series(ctx, `{__name__=~".+"}`, time.Unix(0, 0), time.Unix(60, 0), func(string, []Label) { n++ })
			return n, err
		},
	},
	{
		name: "label names", path: "/api/v1/labels", body: stringsBody,
		itemLimits: func(l *Limits, n int) { l.MaxSeries = n },
		unit:       "names", option: FlagMaxSeries,
		call: func(ctx context.Context, c *LimitedClient) (int, error) {
			names, err := c.LabelNames(ctx, `{a!=""}`, time.Unix(0, 0), time.Unix(60, 0))
			return len(names), err
		},
	},
	{
		name: "label values", path: "/api/v1/label/__name__/values", body: stringsBody,
		itemLimits: func(l *Limits, n int) { l.MaxSeries = n },
		unit:       "values", option: FlagMaxSeries,
		call: func(ctx context.Context, c *LimitedClient) (int, error) {
			values, err := c.LabelValues(ctx, "__name__", `{a!=""}`, time.Unix(0, 0), time.Unix(60, 0))
			return len(values), err
		},
	},
}

// limitServer answers every endpoint with the body the test sets, sent
// with a Content-Length ("length"), without one ("chunked"), or
// gzip-compressed when the client accepts it ("gzip").
type limitServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	gz       []byte // body compressed, in mode "gzip"
	mode     string
	accepted bool // whether the last request accepted gzip
}

func newLimitServer(t *testing.T) *limitServer {
	s := &limitServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepts := strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
		s.mu.Lock()
		body, gz, mode := s.body, s.gz, s.mode
		s.accepted = accepts
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case mode == "gzip" && accepts:
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write(gz)
		case mode == "length":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = io.WriteString(w, body)
		default:
			w.(http.Flusher).Flush() // no Content-Length: the limit applies while reading
			_, _ = io.WriteString(w, body)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// serve sets the answer to the next requests, and returns its size on
// the wire.
func (s *limitServer) serve(t *testing.T, body, mode string) int64 {
	var gz bytes.Buffer
	if mode == "gzip" {
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		if _, err := io.WriteString(zw, body); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.gz, s.mode = body, gz.Bytes(), mode
	if mode == "gzip" {
		return int64(gz.Len())
	}
	return int64(len(body))
}

// gzipAccepted reports whether the last request accepted gzip.
func (s *limitServer) gzipAccepted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// TestAnswerLimits checks, for every kind of backend answer, that one
// over the byte limit (also when it is small on the wire and large once
// decompressed) or over the item limit is an error of kind TooLarge
// naming the backend and the limit, and that one at both limits is served.
func TestAnswerLimits(t *testing.T) {
	srv := newLimitServer(t)
	plain, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// client-go's transport asks for gzip and decompresses, as it does
	// with --prometheus-auth-config.
	gz, err := New(Options{URL: srv.URL, Timeout: 10 * time.Second, AuthConfigFile: writeKubeconfig(t, srv.URL, nil, "    {}\n")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for _, ep := range limitEndpoints {
		size := int64(len(ep.body(n)))
		// big is over 1 MiB decompressed, four times the limit it is read
		// under, and less than that limit compressed.
		bigN := 10_000
		for len(ep.body(bigN)) < 1<<20 {
			bigN *= 2
		}
		big := ep.body(bigN)
		for _, tc := range []struct {
			name   string
			mode   string
			body   string
			bytes  int64 // MaxResponseBytes
			items  int   // the item limit
			want   int   // items served, or series received before the error (-1: those within the byte limit)
			limit  *LimitError
			client *Client
		}{
			{name: "at both limits", mode: "chunked", bytes: size, items: n, want: n},
			{name: "at both limits, with Content-Length", mode: "length", bytes: size, items: n, want: n},
			{name: "at both limits, gzip", mode: "gzip", bytes: size, items: n, want: n, client: gz},
			{name: "over the byte limit", mode: "chunked", bytes: size - 1, items: n, want: -1,
				limit: &LimitError{Max: size - 1, Unit: "bytes", Option: FlagMaxResponseBytes}},
			{name: "over the byte limit, with Content-Length", mode: "length", bytes: size - 1, items: n, want: 0,
				limit: &LimitError{Max: size - 1, Unit: "bytes", Option: FlagMaxResponseBytes, Size: size}},
			{name: "over the byte limit, gzip", mode: "gzip", body: big, bytes: 256 << 10, items: -1, want: -1, client: gz,
				limit: &LimitError{Max: 256 << 10, Unit: "bytes", Option: FlagMaxResponseBytes}},
			{name: "over the item limit", mode: "chunked", bytes: size, items: n - 1, want: n - 1,
				limit: &LimitError{Max: n - 1, Unit: ep.unit, Option: ep.option}},
			{name: "over the item limit, gzip", mode: "gzip", bytes: size, items: n - 1, want: n - 1, client: gz,
				limit: &LimitError{Max: n - 1, Unit: ep.unit, Option: ep.option}},
		} {
			t.Run(ep.name+"/"+tc.name, func(t *testing.T) {
				body := tc.body
				if body == "" {
					body = ep.body(n)
				}
				wire := srv.serve(t, body, tc.mode)
				c := tc.client
				if c == nil {
					c = plain
				}
				lim := Limits{MaxResponseBytes: tc.bytes}
				ep.itemLimits(&lim, tc.items)
				got, err := ep.call(context.Background(), c.WithLimits(lim))
				if tc.mode == "gzip" && !srv.gzipAccepted() {
					t.Fatal("the client did not ask for gzip: the test does not test decompression")
				}
				if tc.limit == nil {
					if err != nil || got != tc.want {
						t.Fatalf("got %d items, %v; want %d", got, err, tc.want)
					}
					return
				}
				if tc.mode == "gzip" && tc.body != "" && wire >= tc.bytes {
					t.Fatalf("the answer has %d bytes on the wire, want it smaller than the limit", wire)
				}
				checkLimitError(t, c, err, tc.limit)
				switch {
				case ep.name != "series":
				case tc.want >= 0 && got != tc.want:
					t.Errorf("the SeriesFunc received %d series, want %d", got, tc.want)
				case tc.want < 0 && int64(len(ep.body(got))-len(`]}`)) > tc.bytes:
					t.Errorf("the SeriesFunc received %d series, some past the byte limit", got)
				}
			})
		}
	}
}

// checkLimitError checks that err is an *Error of kind TooLarge for want,
// naming c's backend and the limit.
func checkLimitError(t *testing.T, c *Client, err error, want *LimitError) {
	t.Helper()
	pe, ok := errors.AsType[*Error](err)
	if !ok || pe.Backend != c.Name() || KindOf(err) != TooLarge {
		t.Fatalf("error %v (%T, kind %q), want a *prom.Error of kind %q for backend %s", err, err, KindOf(err), TooLarge, c.Name())
	}
	le, ok := errors.AsType[*LimitError](err)
	if !ok || *le != *want {
		t.Fatalf("error %v: limit %+v, want %+v", err, le, want)
	}
	msg := err.Error()
	if !strings.Contains(msg, c.Name()) || !strings.Contains(msg, want.Error()) {
		t.Errorf("error %q does not name the backend %s and the limit %q", msg, c.Name(), want.Error())
	}
	wantSummary := "prometheus backend " + c.Name() + ": " + pe.Op + " failed: too large (" + want.limit() + ")"
	if s := Summary(err); s != wantSummary {
		t.Errorf("Summary = %q, want %q", s, wantSummary)
	}
	if want.Option != "" && !strings.Contains(Summary(err), want.Option) {
		t.Errorf("Summary %q does not name %s", Summary(err), want.Option)
	}
}

// TestLimitErrorText checks the texts callers see.
func TestLimitErrorText(t *testing.T) {
	for _, tt := range []struct {
		err           LimitError
		text, summary string
	}{
		{LimitError{Max: 64 << 20, Unit: "bytes", Option: FlagMaxResponseBytes},
			"the answer is larger than the limit of 64 MiB (--prometheus-max-response-bytes)",
			"limit 64 MiB, --prometheus-max-response-bytes"},
		{LimitError{Max: 1 << 20, Unit: "bytes", Option: FlagMaxResponseBytes, Size: 256 << 20},
			"the answer has 256 MiB, more than the limit of 1 MiB (--prometheus-max-response-bytes)",
			"limit 1 MiB, --prometheus-max-response-bytes"},
		{LimitError{Max: 1000, Unit: "bytes", Option: FlagMaxResponseBytes},
			"the answer is larger than the limit of 1000 bytes (--prometheus-max-response-bytes)",
			"limit 1000 bytes, --prometheus-max-response-bytes"},
		{LimitError{Max: 500000, Unit: "samples", Option: FlagMaxSamples},
			"the answer has more than the limit of 500000 samples (--prometheus-max-samples)",
			"limit 500000 samples, --prometheus-max-samples"},
		{LimitError{Max: 2000000, Unit: "series", Option: FlagMaxSeries},
			"the answer has more than the limit of 2000000 series (--prometheus-max-series)",
			"limit 2000000 series, --prometheus-max-series"},
		{LimitError{Max: 10, Unit: "values", Option: FlagMaxSeries},
			"the answer has more than the limit of 10 values (--prometheus-max-series)",
			"limit 10 values, --prometheus-max-series"},
		{LimitError{Max: 1 << 20, Unit: "bytes", Part: "one series"},
			"one series of the answer is larger than the limit of 1 MiB",
			"limit 1 MiB for one series"},
	} {
		if got := tt.err.Error(); got != tt.text {
			t.Errorf("Error() = %q, want %q", got, tt.text)
		}
		if got := tt.err.limit(); got != tt.summary {
			t.Errorf("limit() = %q, want %q", got, tt.summary)
		}
	}
}

// hostileServer streams answers of any size without holding them: a
// prefix, then chunk repeated until size bytes were sent, then a suffix,
// with the status and content type of the test.
type hostileServer struct {
	*httptest.Server
	mu             sync.Mutex
	status         int
	contentType    string
	prefix, suffix string
	chunk          []byte
	size           int64
}

func newHostileServer(t *testing.T) *hostileServer {
	s := &hostileServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		status, ct, prefix, suffix, chunk, size := s.status, s.contentType, s.prefix, s.suffix, s.chunk, s.size
		s.mu.Unlock()
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		n, err := io.WriteString(w, prefix)
		for sent := int64(n); err == nil && sent < size; sent += int64(n) {
			n, err = w.Write(chunk)
		}
		if err == nil {
			_, _ = io.WriteString(w, suffix)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestHostileAnswersBounded is the audit's finding: a backend streaming a
// 256 MiB answer, with the byte limit at 1 MiB (or at its default), costs
// promgate a few MiB and fails fast, whatever the endpoint, the status or
// the shape of the JSON.
func TestHostileAnswersBounded(t *testing.T) {
	const total = 256 << 20
	srv := newHostileServer(t)
	var series strings.Builder
	for i := range 512 {
		fmt.Fprintf(&series, `{"__name__":"http_requests_total","namespace":"ns-%d","pod":"pod-%d"},`, i%10, i)
	}
	c, err := New(Options{URL: srv.URL, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mib := Limits{MaxResponseBytes: 1 << 20}
	for _, tc := range []struct {
		name           string
		lim            Limits
		status         int
		contentType    string
		prefix, suffix string
		chunk          string
		call           func(context.Context, *LimitedClient) error
		kind           Kind
		limit          *LimitError
	}{
		{
			name: "series, 256 MiB of series", lim: mib, status: 200,
			prefix: `{"status":"success","data":[`, chunk: series.String(), suffix: `{}]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: 1 << 20, Unit: "bytes", Option: FlagMaxResponseBytes},
		},
		{
			name: "series, one label value of 256 MiB, default limits", status: 200,
			prefix: `{"status":"success","data":[{"__name__":"m","big":"`, chunk: strings.Repeat("x", 64<<10), suffix: `"}]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: maxSeriesEntryBytes, Unit: "bytes", Part: "one series"},
		},
		{
			name: "series, one series of many labels, default limits", status: 200,
			prefix: `{"status":"success","data":[{"__name__":"m"`, chunk: strings.Repeat(`,"a":"0123456789abcdef0123456789"`, 2<<10), suffix: `}]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: maxSeriesEntryBytes, Unit: "bytes", Part: "one series"},
		},
		{
			name: "series, 256 MiB of white space, default limits", status: 200,
			prefix: `{"status":"success","data":[`, chunk: strings.Repeat(" ", 64<<10), suffix: `]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: maxSeriesEntryBytes, Unit: "bytes", Part: "one series"},
		},
		{
			name: "series, 256 MiB of warnings, default limits", status: 200,
			prefix: `{"status":"success","data":[],"warnings":[`, chunk: strings.Repeat(`"w",`, 16<<10), suffix: `"w"]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: maxSeriesEntryBytes, Unit: "bytes", Part: "one value"},
		},
		{
			name: "series, error status, 256 MiB JSON body", lim: mib, status: 503,
			prefix: `{"status":"error","errorType":"unavailable","error":"`, chunk: strings.Repeat("x", 64<<10), suffix: `"}`,
			kind: BadStatus,
		},
		{
			name: "query, 256 MiB of samples", lim: mib, status: 200,
			prefix: `{"status":"success","data":{"resultType":"vector","result":[`, chunk: strings.Repeat(`{"metric":{"pod":"p"},"value":[1,"1"]},`, 1024), suffix: `{"metric":{},"value":[1,"1"]}]}}`,
			kind:  TooLarge,
			limit: &LimitError{Max: 1 << 20, Unit: "bytes", Option: FlagMaxResponseBytes},
		},
		{
			name: "query, error status, 256 MiB body", status: 502, contentType: "text/html",
			prefix: "<html>", chunk: strings.Repeat("x", 64<<10), suffix: "</html>",
			kind: BadStatus,
		},
		{
			name: "label values, 256 MiB", lim: mib, status: 200,
			prefix: `{"status":"success","data":[`, chunk: strings.Repeat(`"v",`, 16<<10), suffix: `"v"]}`,
			kind:  TooLarge,
			limit: &LimitError{Max: 1 << 20, Unit: "bytes", Option: FlagMaxResponseBytes},
		},
		{
			name: "label names, error status, 256 MiB body", status: 500, contentType: "text/plain",
			prefix: "boom", chunk: strings.Repeat("x", 64<<10),
			kind: BadStatus,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			srv.mu.Lock()
			srv.status, srv.contentType, srv.prefix, srv.suffix, srv.chunk, srv.size = tc.status, ct, tc.prefix, tc.suffix, []byte(tc.chunk), total
			srv.mu.Unlock()
			lc := c.WithLimits(tc.lim)
			call := tc.call
			if call == nil {
				call = callFor(tc.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := call(ctx, lc)
			took := time.Since(start)
			runtime.ReadMemStats(&after)

			if KindOf(err) != tc.kind {
				t.Fatalf("error %v of kind %q, want %q", err, KindOf(err), tc.kind)
			}
			if tc.limit != nil {
				checkLimitError(t, c, err, tc.limit)
			} else if pe, ok := errors.AsType[*Error](err); !ok || !strings.Contains(err.Error(), c.Name()) {
				t.Errorf("error %v (%T), want a *prom.Error naming the backend", err, pe)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v after %v, %.1f MiB allocated, heap in use %+.1f MiB", err, took, float64(alloc)/(1<<20),
				(float64(after.HeapInuse)-float64(before.HeapInuse))/(1<<20))
			if alloc > 32<<20 {
				t.Errorf("%.1f MiB allocated reading the answer, want < 32 MiB", float64(alloc)/(1<<20))
			}
			if took > 10*time.Second {
				t.Errorf("the call took %v, want it to fail fast", took)
			}
		})
	}
}

// callFor is the call of a TestHostileAnswersBounded case, from its name.
func callFor(name string) func(context.Context, *LimitedClient) error {
	start, end := time.Unix(0, 0), time.Unix(60, 0)
	switch {
	case strings.HasPrefix(name, "series"):
		return func(ctx context.Context, c *LimitedClient) error {
			return c.Series(ctx, "up", start, end, func(string, []Label) {})
		}
	case strings.HasPrefix(name, "label values"):
		return func(ctx context.Context, c *LimitedClient) error {
			_, err := c.LabelValues(ctx, "__name__", "up", start, end)
			return err
		}
	case strings.HasPrefix(name, "label names"):
		return func(ctx context.Context, c *LimitedClient) error {
			_, err := c.LabelNames(ctx, "up", start, end)
			return err
		}
	}
	return func(ctx context.Context, c *LimitedClient) error {
		_, err := c.Query(ctx, "up", time.Time{})
		return err
	}
}
