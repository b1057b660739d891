package promtest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// Index is a Prometheus stand-in over a fixed set of series that answers
// /api/v1/series, /api/v1/labels and /api/v1/label/<name>/values as
// Prometheus does: match[] parsed by Prometheus' parser and selected with
// its matchers (several match[] OR-ed, at least one matcher per selector
// that refuses the empty string), series in Prometheus' order (sorted by
// their labels), names and values sorted, label values to GET only.
// start and end are ignored: every series has samples in any range.
type Index struct {
	*httptest.Server

	series []labels.Labels

	mu sync.Mutex
	// IgnoreMatch makes the index endpoints ignore match[], as Prometheus
	// before 2.24 (labels) did; NoIndex makes them 404, as a backend
	// without them. Set them before the first request.
	IgnoreMatch, NoIndex bool
	reqs                 []string
}

// NewIndex serves series, each a label set including __name__.
func NewIndex(t testing.TB, series []map[string]string) *Index {
	t.Helper()
	x := &Index{}
	for _, s := range series {
		x.series = append(x.series, labels.FromMap(s))
	}
	sort.Slice(x.series, func(i, j int) bool { return labels.Compare(x.series[i], x.series[j]) < 0 })
	x.Server = httptest.NewServer(http.HandlerFunc(x.serve))
	t.Cleanup(x.Close)
	return x
}

// Requests returns the paths of the requests so far, each with its
// match[] values after a space.
func (x *Index) Requests() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.reqs)
}

// Reset forgets the requests so far.
func (x *Index) Reset() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reqs = nil
}

func (x *Index) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	x.mu.Lock()
	x.reqs = append(x.reqs, r.URL.Path+" "+strings.Join(r.Form["match[]"], " "))
	ignore, noIndex := x.IgnoreMatch, x.NoIndex
	x.mu.Unlock()
	path := r.URL.Path
	index := path == "/api/v1/labels" || strings.HasPrefix(path, "/api/v1/label/") && strings.HasSuffix(path, "/values")
	switch {
	case index && noIndex, !index && path != "/api/v1/series":
		write(w, r, Reply{Status: http.StatusNotFound, ContentType: "text/plain", Body: "404 page not found"})
		return
	case strings.HasPrefix(path, "/api/v1/label/") && r.Method != http.MethodGet:
		write(w, r, Reply{Status: http.StatusMethodNotAllowed, ContentType: "text/plain", Body: "Method Not Allowed"})
		return
	}
	sel, err := x.selected(r.Form["match[]"], index && ignore)
	if err != nil {
		write(w, r, Error(http.StatusBadRequest, "bad_data", err.Error()))
		return
	}
	switch {
	case path == "/api/v1/series":
		out := make([]map[string]string, 0, len(sel))
		for _, s := range sel {
			out = append(out, s.Map())
		}
		write(w, r, Success(out))
	case path == "/api/v1/labels":
		set := map[string]bool{}
		for _, s := range sel {
			s.Range(func(l labels.Label) { set[l.Name] = true })
		}
		write(w, r, Success(sorted(set)))
	default:
		name := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v1/label/"), "/values")
		set := map[string]bool{}
		for _, s := range sel {
			if v := s.Get(name); v != "" {
				set[v] = true
			}
		}
		write(w, r, Success(sorted(set)))
	}
}

// selected returns the series any of the selectors match, in order; all
// of them when all is set or there is no selector (label names and values
// without match[]).
func (x *Index) selected(matches []string, all bool) ([]labels.Labels, error) {
	var sets [][]*labels.Matcher
	for _, m := range matches {
		ms, err := canonicalParser.ParseMetricSelector(m)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
			return nil, errors.New("match[] must contain at least one non-empty matcher")
		}
		sets = append(sets, ms)
	}
	var out []labels.Labels
	for _, s := range x.series {
		if all || len(sets) == 0 || slices.ContainsFunc(sets, func(ms []*labels.Matcher) bool { return matchAll(ms, s) }) {
			out = append(out, s)
		}
	}
	return out, nil
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
