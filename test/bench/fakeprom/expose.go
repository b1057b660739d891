package fakeprom

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// Exposition and upstream mode: with them the benchmark runs against a real
// Prometheus. The real one scrapes the model from /metrics (counters grow at
// the model's rates from the server's start), and the fake, in front of it,
// forwards the API (SetUpstream) while counting and timing the queries as
// it does its own, so that the harness reads the same Stats either way.

// Shard selects the part of the model one scrape target exposes, so that a
// real Prometheus scrapes a large model as many targets (as it scrapes a
// cluster's kubelets), each in a fraction of the time one target would
// take. Shard Index of Of holds the namespaces whose name hashes to Index
// (FNV-1a, modulo Of), and shard 0 also the series without a namespace
// (nodes' root cgroups). The zero Shard, and Of of 1, is the whole model.
type Shard struct{ Index, Of int }

// owns reports whether the shard holds the series of namespace ns ("": none).
func (sh Shard) owns(ns string) bool {
	if sh.Of <= 1 {
		return true
	}
	if ns == "" {
		return sh.Index == 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(ns))
	return int(h.Sum32()%uint32(sh.Of)) == sh.Index
}

// WriteExposition writes the series of the model that shard holds in the
// Prometheus text format (version 0.0.4): gauges at their value, counters
// at rate × (counterAge + elapsed seconds), so that rate() over a scraped
// window is the model's rate.
func (m *Model) WriteExposition(w *bufio.Writer, elapsed time.Duration, shard Shard) error {
	nsOK := shard.owns
	age := counterAge + elapsed.Seconds()
	var buf []byte
	for _, f := range m.families {
		typ := "gauge"
		if f.counter() {
			typ = "counter"
		}
		buf = append(buf[:0], "# TYPE "...)
		buf = append(buf, f.name()...)
		buf = append(buf, ' ')
		buf = append(buf, typ...)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
		var werr error
		f.each(nsOK, func(lbls []Label, v float64) bool {
			if shard.Of > 1 && !hasLabel(lbls, "namespace") && !shard.owns("") {
				return true // each family visits namespace-less series whatever nsOK says
			}
			if f.counter() {
				v *= age
			}
			buf = append(buf[:0], f.name()...)
			buf = appendExpositionLabels(buf, lbls)
			buf = append(buf, ' ')
			buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
			buf = append(buf, '\n')
			_, werr = w.Write(buf)
			return werr == nil
		})
		if werr != nil {
			return werr
		}
	}
	return nil
}

// appendExpositionLabels appends {name="value",...} with the text format's
// escapes (backslash, double quote, line feed).
func appendExpositionLabels(buf []byte, lbls []Label) []byte {
	if len(lbls) == 0 {
		return buf
	}
	buf = append(buf, '{')
	for i, l := range lbls {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, l.Name...)
		buf = append(buf, `="`...)
		for j := 0; j < len(l.Value); j++ {
			switch c := l.Value[j]; c {
			case '\\':
				buf = append(buf, `\\`...)
			case '"':
				buf = append(buf, `\"`...)
			case '\n':
				buf = append(buf, `\n`...)
			default:
				buf = append(buf, c)
			}
		}
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

// metrics serves the model, or with ?shard=I&of=N (as a scrape config's
// per-target __param_ labels give them) its shard I of N (see Shard).
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	shard, err := shardOf(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := s.Model().WriteExposition(bw, time.Since(s.started), shard); err != nil {
		return // the scraper went away
	}
	_ = bw.Flush()
}

func shardOf(r *http.Request) (Shard, error) {
	q := r.URL.Query()
	if q.Get("shard") == "" && q.Get("of") == "" {
		return Shard{}, nil
	}
	i, err1 := strconv.Atoi(q.Get("shard"))
	n, err2 := strconv.Atoi(q.Get("of"))
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("shard=%q of=%q: want 0 <= shard < of", q.Get("shard"), q.Get("of"))
	}
	return Shard{Index: i, Of: n}, nil
}

// SetUpstream makes the server forward /api/v1/query and /api/v1/series to
// a real Prometheus at u (counting and timing the queries, and adding the
// configured latency, as for its own answers) instead of answering them
// from the model. Call it before Handler.
func (s *Server) SetUpstream(u *url.URL) {
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1 // stream series answers as they come
	s.upstream = p
}

// forward sends a query to the upstream Prometheus, counting it.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	s.mu.Lock()
	s.queries++
	s.byQuery[queryKey(r.Form.Get("query"))]++
	s.mu.Unlock()
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
	// ParseForm consumed a POST body: send the form as the query string.
	out := r.Clone(r.Context())
	out.Method, out.Body, out.ContentLength = http.MethodGet, http.NoBody, 0
	out.Header.Del("Content-Type")
	u := *r.URL
	u.RawQuery = r.Form.Encode()
	out.URL = &u
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	s.upstream.ServeHTTP(rec, out)
	if rec.code != http.StatusOK {
		s.countError()
	}
	s.mu.Lock()
	if len(s.durations) < maxDurations {
		s.durations = append(s.durations, time.Since(start))
	}
	s.mu.Unlock()
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
