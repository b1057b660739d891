package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	promengine "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Engine is a Prometheus stand-in that evaluates /api/v1/query with
// Prometheus' own PromQL engine over series loaded in promqltest's "load"
// notation, and answers with the JSON of Prometheus' HTTP API. Tests use
// it where the answer must be what Prometheus computes for a query, not a
// fixture keyed by the query's text.
type Engine struct {
	*httptest.Server

	engine  *promengine.Engine
	storage storage.Queryable
	parser  parser.Parser

	mu      sync.Mutex
	queries []string
}

// NewEngine loads series (see Load) and serves them. Sample times start at
// the Unix epoch.
func NewEngine(t testing.TB, series string) *Engine {
	t.Helper()
	return NewEngineOver(t, Load(t, series))
}

// NewEngineOver serves the series of st, such as samples added with
// MemStorage.Add at any times. A query at time t sees the samples at or
// before t, as Prometheus does once they are ingested.
func NewEngineOver(t testing.TB, st *MemStorage) *Engine {
	t.Helper()
	e := &Engine{
		engine: promengine.NewEngine(promengine.EngineOpts{
			MaxSamples: 1e7, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute,
			EnableAtModifier: true, EnableNegativeOffset: true,
		}),
		storage: st,
		parser:  parser.NewParser(parser.Options{EnableExperimentalFunctions: true}),
	}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

// Queries returns the queries evaluated so far, in order.
func (e *Engine) Queries() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.queries...)
}

// Reset forgets the queries evaluated so far.
func (e *Engine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queries = nil
}

// serve routes a request to the endpoint that answers it.
func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	switch r.URL.Path {
	case "/api/v1/query":
		e.query(w, r)
	case "/api/v1/series":
		e.series(w, r)
	default:
		write(w, r, Error(http.StatusNotFound, "bad_data", "promtest engine: only /api/v1/query and /api/v1/series"))
	}
}

// query answers /api/v1/query: the query evaluated by Prometheus' engine
// at time (default now), and recorded.
func (e *Engine) query(w http.ResponseWriter, r *http.Request) {
	qs := r.Form.Get("query")
	e.mu.Lock()
	e.queries = append(e.queries, qs)
	e.mu.Unlock()
	ts := time.Now()
	if s := r.Form.Get("time"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
			return
		}
		ts = time.UnixMilli(int64(f * 1000))
	}
	q, err := e.engine.NewInstantQuery(r.Context(), e.storage, nil, qs, ts)
	if err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	defer q.Close()
	res := q.Exec(context.WithoutCancel(r.Context()))
	if res.Err != nil {
		write(w, r, Error(http.StatusUnprocessableEntity, "execution", res.Err.Error()))
		return
	}
	if m, err := res.Matrix(); err == nil { // a range-vector selector: raw samples, as Prometheus formats them
		write(w, r, Success(matrixData(m)))
		return
	}
	vec, err := res.Vector()
	if err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", fmt.Sprintf("promtest engine: %v (want an instant vector or a range vector)", err)))
		return
	}
	write(w, r, Success(vectorData(vec)))
}

// matrixData is the data of a matrix answer, as Prometheus formats it.
func matrixData(m promengine.Matrix) map[string]any {
	type series struct {
		Metric map[string]string `json:"metric"`
		Values [][2]any          `json:"values"`
	}
	out := make([]series, 0, len(m))
	for _, s := range m {
		ss := series{Metric: s.Metric.Map(), Values: [][2]any{}}
		for _, p := range s.Floats {
			ss.Values = append(ss.Values, [2]any{json.Number(strconv.FormatFloat(float64(p.T)/1000, 'f', -1, 64)), strconv.FormatFloat(p.F, 'f', -1, 64)})
		}
		out = append(out, ss)
	}
	return map[string]any{"resultType": "matrix", "result": out}
}

// vectorData is the data of a vector answer, as Prometheus formats it.
func vectorData(vec promengine.Vector) map[string]any {
	type elem struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	out := make([]elem, 0, len(vec))
	for _, s := range vec {
		out = append(out, elem{
			Metric: s.Metric.Map(),
			Value:  [2]any{json.Number(strconv.FormatFloat(float64(s.T)/1000, 'f', -1, 64)), strconv.FormatFloat(s.F, 'f', -1, 64)},
		})
	}
	return map[string]any{"resultType": "vector", "result": out}
}

// series answers /api/v1/series over all loaded samples (start and end are
// ignored).
func (e *Engine) series(w http.ResponseWriter, r *http.Request) {
	out := []map[string]string{}
	q, err := e.storage.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		write(w, r, Error(http.StatusInternalServerError, "internal", err.Error()))
		return
	}
	defer q.Close()
	for _, m := range r.Form["match[]"] {
		ms, err := e.parser.ParseMetricSelector(m)
		if err != nil {
			write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
			return
		}
		set := q.Select(r.Context(), false, nil, ms...)
		for set.Next() {
			out = append(out, set.At().Labels().Map())
		}
		if err := set.Err(); err != nil {
			write(w, r, Error(http.StatusInternalServerError, "internal", err.Error()))
			return
		}
	}
	write(w, r, Success(out))
}
