// Package promtest is a fake Prometheus for tests. Server is an httptest
// server that answers /api/v1/query and /api/v1/series from fixtures with
// the JSON the real HTTP API sends, checks the query timeout the way
// Prometheus does, and records every request it received. Two stand-ins
// compute their answers instead: Index answers the series and the index
// endpoints (/api/v1/labels, /api/v1/label/<name>/values) over a fixed
// set of series, and Engine evaluates queries with Prometheus' own engine
// over samples in promqltest's load notation (see Load).
package promtest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// Sample is one element of a vector result.
type Sample struct {
	Labels map[string]string
	// Value is the sample's text as Prometheus sends it: "1.5", "NaN", "+Inf".
	Value string
	// Time is the sample time in Unix seconds.
	Time float64
}

// Reply is a canned HTTP response.
type Reply struct {
	Status      int    // default 200
	ContentType string // default application/json
	Body        string
	// Delay holds the response back (until the client gives up, if sooner).
	Delay time.Duration
}

// Request is what the server received.
type Request struct {
	Method string
	Path   string
	Form   url.Values
	Header http.Header
}

// Server is the fake Prometheus. Its fixtures may change while it serves.
type Server struct {
	*httptest.Server

	mu      sync.Mutex
	queries map[string]Reply
	series  map[string]Reply
	reqs    []Request
}

// New starts a Server, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{queries: map[string]Reply{}, series: map[string]Reply{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Vector makes query return samples as an instant vector.
func (s *Server) Vector(query string, samples ...Sample) {
	type elem struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	res := make([]elem, 0, len(samples))
	for _, x := range samples {
		lbls := x.Labels
		if lbls == nil {
			lbls = map[string]string{}
		}
		res = append(res, elem{Metric: lbls, Value: [2]any{x.Time, x.Value}})
	}
	s.QueryReply(query, Success(map[string]any{"resultType": "vector", "result": res}))
}

// Scalar makes query return a scalar.
func (s *Server) Scalar(query string, t float64, v string) {
	s.QueryReply(query, Success(map[string]any{"resultType": "scalar", "result": [2]any{t, v}}))
}

// QueryReply makes query get r.
func (s *Server) QueryReply(query string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries[Canonical(query)] = r
}

var canonicalParser = parser.NewParser(parser.Options{EnableExperimentalFunctions: true})

// Canonical returns query as the PromQL printer writes it (matchers
// sorted, spacing normalised), or query itself when it does not parse.
// Fixtures are matched on it, so that a test states a query in any
// equivalent spelling.
func Canonical(query string) string {
	e, err := canonicalParser.ParseExpr(query)
	if err != nil {
		return query
	}
	return e.String()
}

// Series makes the selector match return the given label sets (each
// including __name__).
func (s *Server) Series(match string, series ...map[string]string) {
	if series == nil {
		series = []map[string]string{}
	}
	s.SeriesReply(match, Success(series))
}

// SeriesReply makes the selector match get r.
func (s *Server) SeriesReply(match string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.series[match] = r
}

// Success is a 200 response whose data is data.
func Success(data any) Reply {
	b, err := json.Marshal(map[string]any{"status": "success", "data": data})
	if err != nil {
		panic(err)
	}
	return Reply{Body: string(b)}
}

// Error is an API error response, e.g. Error(400, "bad_data", "parse error").
func Error(status int, errType, msg string) Reply {
	b, _ := json.Marshal(map[string]string{"status": "error", "errorType": errType, "error": msg})
	return Reply{Status: status, Body: string(b)}
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Queries returns the query texts received by /api/v1/query, in order.
func (s *Server) Queries() []string {
	var out []string
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/api/v1/query") {
			out = append(out, r.Form.Get("query"))
		}
	}
	return out
}

// SeriesMatches returns the match[] values received by /api/v1/series.
func (s *Server) SeriesMatches() []string {
	var out []string
	for _, r := range s.Requests() {
		if strings.HasSuffix(r.Path, "/api/v1/series") {
			out = append(out, r.Form["match[]"]...)
		}
	}
	return out
}

// Reset forgets the requests received so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, Form: r.Form, Header: r.Header.Clone()})
	var reply Reply
	var ok bool
	switch {
	case strings.HasSuffix(r.URL.Path, "/api/v1/query"):
		q := r.Form.Get("query")
		if reply, ok = s.queries[Canonical(q)]; !ok {
			reply = Error(http.StatusBadRequest, "bad_data", fmt.Sprintf("promtest: no fixture for query %q", q))
		}
	case strings.HasSuffix(r.URL.Path, "/api/v1/series"):
		if reply, ok = s.series[r.Form.Get("match[]")]; !ok {
			reply = Success([]map[string]string{})
		}
	default:
		reply = Reply{Status: http.StatusNotFound, ContentType: "text/plain", Body: "404 page not found"}
	}
	s.mu.Unlock()
	if to := r.Form.Get("timeout"); to != "" {
		if _, err := parseDuration(to); err != nil {
			reply = Error(http.StatusBadRequest, "bad_data", err.Error())
		}
	}
	write(w, r, reply)
}

func write(w http.ResponseWriter, r *http.Request, reply Reply) {
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	ct := reply.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	status := reply.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(reply.Body))
}

// parseDuration accepts what Prometheus' HTTP API accepts as a duration.
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if math.IsNaN(ts) || ts >= float64(math.MaxInt64) || ts < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}
