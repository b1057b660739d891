package fakeprom

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// maxDurations bounds the per-query durations kept for percentiles.
const maxDurations = 1 << 20

// Server serves a Model over the Prometheus HTTP API. Its model and latency
// may change while it serves (see the /control endpoints).
type Server struct {
	model   atomic.Pointer[Model]
	latency atomic.Int64 // time.Duration added to every query
	// failures is the failure injection (nil: none); failed counts the
	// failures injected, to cycle through their kinds.
	failures atomic.Pointer[Failures]
	failed   atomic.Uint64

	mu        sync.Mutex
	queries   int64
	byQuery   map[string]int64
	errors    int64
	seriesReq int64
	seriesOut int64
	injected  map[string]int64 // failures injected, by kind
	durations []time.Duration  // server-side time of each query since the last reset

	started  time.Time              // counters count from here (/metrics)
	upstream *httputil.ReverseProxy // a real Prometheus the API is forwarded to (SetUpstream)

	cacheMu    sync.Mutex
	cacheModel *Model
	cache      map[string][]Sample // evaluation results on cacheModel
	cacheBytes int                 // the bytes of cache's keys
}

// NewServer returns a Server over m that holds every query back by latency.
func NewServer(m *Model, latency time.Duration) *Server {
	s := &Server{byQuery: map[string]int64{}, injected: map[string]int64{}, started: time.Now()}
	s.model.Store(m)
	s.latency.Store(int64(latency))
	return s
}

// Model returns the current model.
func (s *Server) Model() *Model { return s.model.Load() }

// SetModel replaces the model.
func (s *Server) SetModel(m *Model) { s.model.Store(m) }

// SetLatency sets the time added to every query.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// Handler returns the HTTP API:
//
//	GET|POST /api/v1/query             instant query (query, time, timeout)
//	GET|POST /api/v1/series            series (match[]), streamed
//	GET|POST /disco/<N>/api/v1/series  series of a discovery Universe of N series
//	GET      /stats                    counters since the last reset (JSON Stats)
//	POST     /stats/reset              reset them
//	POST     /control/layout           layout=SPEC [nodes= containers= app_metrics= queues=]
//	POST     /control/latency          d=DURATION
//	GET      /metrics                  the model in the text exposition format, for a real Prometheus to scrape
//	GET      /-/ready, /-/healthy      200
//
// A fraction of queries fail as SetFailures says. With SetUpstream, the
// query and series endpoints forward to a real Prometheus instead (no
// failures are injected then), and so do /api/v1/labels and
// /api/v1/label/<name>/values, uncounted.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	if s.upstream != nil {
		mux.HandleFunc("/api/v1/query", s.forward)
		mux.HandleFunc("/api/v1/series", func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.seriesReq++
			s.mu.Unlock()
			s.upstream.ServeHTTP(w, r)
		})
		// The index: label names and values (discovery's index method,
		// which --discovery-method=auto prefers), passed through uncounted.
		mux.Handle("/api/v1/labels", s.upstream)
		mux.Handle("/api/v1/label/", s.upstream)
	} else {
		mux.HandleFunc("/api/v1/query", s.query)
		mux.HandleFunc("/api/v1/series", func(w http.ResponseWriter, r *http.Request) { s.series(w, r, s.Model()) })
	}
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("/disco/{n}/api/v1/series", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 100_000_000 {
			apiError(w, http.StatusBadRequest, "bad_data", "bad universe size "+r.PathValue("n"))
			return
		}
		s.series(w, r, NewUniverse(n))
	})
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("POST /stats/reset", s.reset)
	mux.HandleFunc("POST /control/layout", s.setLayout)
	mux.HandleFunc("POST /control/latency", s.setLatency)
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
	mux.HandleFunc("/-/ready", ok)
	mux.HandleFunc("/-/healthy", ok)
	return mux
}

func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"status": "error", "errorType": typ, "error": msg})
	_, _ = w.Write(b)
}

func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	q := r.Form.Get("query")
	s.mu.Lock()
	s.queries++
	s.byQuery[queryKey(q)]++
	s.mu.Unlock()
	ts, err := parseTime(r.Form.Get("time"), start)
	if err != nil {
		s.countError()
		apiError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	if d := time.Duration(s.latency.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.countError()
			return
		}
	}
	failure, f := s.pickFailure()
	if failsEarly(failure) {
		s.fail(w, r, failure, f, nil)
		return
	}
	samples, err := s.eval(q)
	if err != nil {
		s.countError()
		apiError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	buf := make([]byte, 0, 64+len(samples)*96)
	buf = append(buf, `{"status":"success","data":{"resultType":"vector","result":[`...)
	for i, smp := range samples {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"metric":`...)
		buf = appendLabels(buf, smp.Labels)
		buf = append(buf, `,"value":[`...)
		buf = strconv.AppendFloat(buf, float64(ts.UnixMilli())/1000, 'f', 3, 64)
		buf = append(buf, ",\""...)
		buf = appendValue(buf, smp.Value)
		buf = append(buf, "\"]}"...)
	}
	buf = append(buf, "]}}"...)
	if failure != "" {
		s.fail(w, r, failure, f, buf)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
	s.mu.Lock()
	if len(s.durations) < maxDurations {
		s.durations = append(s.durations, time.Since(start))
	}
	s.mu.Unlock()
}

// maxCached and maxCachedBytes bound the evaluation results kept, in
// entries and in bytes of query text (the hostile soak's queries are
// distinct and some 150 kB each).
const (
	maxCached      = 4096
	maxCachedBytes = 32 << 20
)

// maxQueryKeyBytes is the longest query Stats.ByQuery counts under its own
// text; a longer one is counted under queryKey's digest of it, so that the
// counters of a run of distinct large queries (the hostile soak's) stay
// small.
const maxQueryKeyBytes = 4096

// queryKey is what Stats.ByQuery counts q under: q itself, or for a query
// over maxQueryKeyBytes its start, length and FNV-1a hash.
func queryKey(q string) string {
	if len(q) <= maxQueryKeyBytes {
		return q
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(q))
	return fmt.Sprintf("%s… (%d bytes, fnv64a %016x)", strings.ToValidUTF8(q[:64], ""), len(q), h.Sum64())
}

// eval evaluates q against the current model, reusing the result of an
// earlier evaluation of the same query on the same model: the fake's own
// cost per query stays small next to the latency it adds, so that the
// backend's latency is what --latency says (and its CPU does not compete
// with promgate's on a small machine).
func (s *Server) eval(q string) ([]Sample, error) {
	m := s.Model()
	s.cacheMu.Lock()
	if s.cacheModel != m || len(s.cache) >= maxCached || s.cacheBytes >= maxCachedBytes {
		s.cacheModel, s.cache, s.cacheBytes = m, map[string][]Sample{}, 0
	}
	if smp, ok := s.cache[q]; ok {
		s.cacheMu.Unlock()
		return smp, nil
	}
	s.cacheMu.Unlock()
	smp, err := m.Eval(q)
	if err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	if _, dup := s.cache[q]; s.cacheModel == m && !dup {
		s.cache[q] = smp
		s.cacheBytes += len(q)
	}
	s.cacheMu.Unlock()
	return smp, nil
}

func (s *Server) countError() {
	s.mu.Lock()
	s.errors++
	s.mu.Unlock()
}

// parseTime reads a Prometheus API time: Unix seconds (with a fraction) or
// RFC 3339; empty means now.
func parseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return now, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", v)
	}
	return t, nil
}

func appendValue(buf []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(buf, "NaN"...)
	case math.IsInf(v, 1):
		return append(buf, "+Inf"...)
	case math.IsInf(v, -1):
		return append(buf, "-Inf"...)
	}
	return strconv.AppendFloat(buf, v, 'f', -1, 64)
}

func appendLabels(buf []byte, lbls []Label) []byte {
	buf = append(buf, '{')
	for i, l := range lbls {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, l.Name)
		buf = append(buf, ':')
		buf = appendString(buf, l.Value)
	}
	return append(buf, '}')
}

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, `\u00`...)
			buf = append(buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}

// series streams the series of src matching any match[] selector, as
// Prometheus does: {"status":"success","data":[{labels}, ...]}.
func (s *Server) series(w http.ResponseWriter, r *http.Request, src source) {
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	matches := r.Form["match[]"]
	if len(matches) == 0 {
		apiError(w, http.StatusBadRequest, "bad_data", "no match[] parameter provided")
		return
	}
	var sels [][]*labels.Matcher
	for _, m := range matches {
		ms, err := promParser.ParseMetricSelector(m)
		if err != nil {
			apiError(w, http.StatusBadRequest, "bad_data", err.Error())
			return
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			apiError(w, http.StatusBadRequest, "bad_data", "match[] must contain at least one non-empty matcher")
			return
		}
		sels = append(sels, ms)
	}
	w.Header().Set("Content-Type", "application/json")
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(`{"status":"success","data":[`)
	n := int64(0)
	var buf []byte
	ctx := r.Context()
	var werr error
	selectSeries(src, sels, func(lbls []Label) bool {
		if n > 0 {
			buf = append(buf[:0], ',')
		} else {
			buf = buf[:0]
		}
		buf = appendLabels(buf, lbls)
		if _, werr = bw.Write(buf); werr != nil {
			return false
		}
		n++
		return n%4096 != 0 || ctx.Err() == nil
	})
	if werr != nil || ctx.Err() != nil {
		return // the client went away
	}
	_, _ = bw.WriteString("]}")
	_ = bw.Flush()
	s.mu.Lock()
	s.seriesReq++
	s.seriesOut += n
	s.mu.Unlock()
}

// Stats are the server's counters since the last reset.
type Stats struct {
	// Queries is the number of /api/v1/query requests.
	Queries int64 `json:"queries"`
	// Errors counts queries answered with an error or abandoned.
	Errors int64 `json:"errors"`
	// ByQuery counts queries by their text; a query over 4 KiB is counted
	// under its first 64 bytes, its length and a hash of it.
	ByQuery map[string]int64 `json:"byQuery"`
	// SeriesRequests and SeriesReturned count /api/v1/series calls and the
	// series they streamed.
	SeriesRequests int64 `json:"seriesRequests"`
	SeriesReturned int64 `json:"seriesReturned"`
	// Injected counts the failures injected (see Failures), by kind; they
	// are not in Errors.
	Injected map[string]int64 `json:"injected,omitempty"`
	// QuerySeconds are percentiles of the time from a query's arrival to
	// its answer being written (latency included).
	QuerySeconds Percentiles `json:"querySeconds"`
	// Layout, Series and Latency describe the current model.
	Layout  string `json:"layout"`
	Series  int    `json:"series"`
	Latency string `json:"latency"`
}

// Percentiles of a set of durations, in seconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	// Sum is the total of the durations.
	Sum float64 `json:"sum,omitempty"`
}

// PercentilesOf computes Percentiles of ds (which it sorts).
func PercentilesOf(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return ds[i].Seconds()
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Percentiles{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ds[len(ds)-1].Seconds(), Sum: sum.Seconds()}
}

// Snapshot returns the counters.
func (s *Server) Snapshot() Stats {
	s.mu.Lock()
	st := Stats{
		Queries: s.queries, Errors: s.errors, ByQuery: make(map[string]int64, len(s.byQuery)),
		SeriesRequests: s.seriesReq, SeriesReturned: s.seriesOut,
	}
	for k, v := range s.byQuery {
		st.ByQuery[k] = v
	}
	if len(s.injected) > 0 {
		st.Injected = make(map[string]int64, len(s.injected))
		for k, v := range s.injected {
			st.Injected[k] = v
		}
	}
	ds := append([]time.Duration(nil), s.durations...)
	s.mu.Unlock()
	st.QuerySeconds = PercentilesOf(ds)
	m := s.Model()
	st.Layout, st.Series = m.Layout().String(), m.Series()
	st.Latency = time.Duration(s.latency.Load()).String()
	return st
}

// Reset zeroes the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries, s.errors, s.seriesReq, s.seriesOut = 0, 0, 0, 0
	s.byQuery = map[string]int64{}
	s.injected = map[string]int64{}
	s.durations = nil
}

func (s *Server) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Snapshot())
}

func (s *Server) reset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) setLayout(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cur := s.Model()
	layout := cur.Layout()
	opts := cur.Options()
	if v := r.Form.Get("layout"); v != "" {
		l, err := ParseLayout(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		layout = l
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"nodes", &opts.Nodes}, {"containers", &opts.Containers}, {"app_metrics", &opts.AppMetrics}, {"queues", &opts.Queues}} {
		if v := r.Form.Get(f.key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				http.Error(w, fmt.Sprintf("%s: want a non-negative integer", f.key), http.StatusBadRequest)
				return
			}
			*f.dst = n
		}
	}
	m := NewModel(layout, opts)
	s.SetModel(m)
	fmt.Fprintf(w, "layout %s: %d pods, %d series\n", summarize(layout), layout.Pods(), m.Series())
}

func (s *Server) setLatency(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d, err := time.ParseDuration(r.Form.Get("d"))
	if err != nil || d < 0 {
		http.Error(w, "d: want a non-negative duration", http.StatusBadRequest)
		return
	}
	s.SetLatency(d)
	fmt.Fprintf(w, "latency %s\n", d)
}

// summarize shortens a layout for messages.
func summarize(l Layout) string {
	if len(l) <= 4 {
		return l.String()
	}
	return strings.Join([]string{l[0].Name + "=" + strconv.Itoa(l[0].Pods), "…", l[len(l)-1].Name + "=" + strconv.Itoa(l[len(l)-1].Pods)}, ",")
}
