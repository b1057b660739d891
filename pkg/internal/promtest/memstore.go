package promtest

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// Load reads series in the notation of promqltest's load command: a line
// "load <interval>", then one "<series> <values>" line per series, the values
// in promtool's expanding notation (1+2x3, _ for a missing sample, _x3).
// The first value is at time 0.
func Load(t testing.TB, text string) *MemStorage {
	t.Helper()
	st := &MemStorage{}
	var step time.Duration
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "load "); ok {
			d, err := model.ParseDuration(rest)
			if err != nil {
				t.Fatal(err)
			}
			step = time.Duration(d)
			continue
		}
		ls, vals, err := canonicalParser.ParseSeriesDesc(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for i, v := range vals {
			if !v.Omitted {
				st.Add(ls, (time.Duration(i) * step).Milliseconds(), v.Value)
			}
		}
	}
	return st
}

// MemStorage is an in-memory storage.Queryable over float samples appended
// in time order, enough for the PromQL engine.
type MemStorage struct {
	series []*memSeries
}

type memSeries struct {
	labels  labels.Labels
	samples []chunks.Sample
}

// Add appends a sample to the series ls; samples must come in time order.
func (m *MemStorage) Add(ls labels.Labels, t int64, v float64) {
	for _, s := range m.series {
		if labels.Equal(s.labels, ls) {
			s.samples = append(s.samples, fsample{t, v})
			return
		}
	}
	m.series = append(m.series, &memSeries{labels: ls, samples: []chunks.Sample{fsample{t, v}}})
	sort.Slice(m.series, func(i, j int) bool { return labels.Compare(m.series[i].labels, m.series[j].labels) < 0 })
}

func (m *MemStorage) Querier(int64, int64) (storage.Querier, error) { return m, nil }

func (m *MemStorage) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	set := &seriesSet{}
	for _, s := range m.series {
		if matchAll(ms, s.labels) {
			set.series = append(set.series, storage.NewListSeries(s.labels, s.samples))
		}
	}
	return set
}

func (*MemStorage) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (*MemStorage) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (*MemStorage) Close() error { return nil }

type seriesSet struct {
	series []storage.Series
	next   int
}

func (s *seriesSet) Next() bool                      { s.next++; return s.next <= len(s.series) }
func (s *seriesSet) At() storage.Series              { return s.series[s.next-1] }
func (*seriesSet) Err() error                        { return nil }
func (*seriesSet) Warnings() annotations.Annotations { return nil }

type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                    { return s.t }
func (fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                  { return s.f }
func (fsample) H() *histogram.Histogram       { return nil }
func (fsample) FH() *histogram.FloatHistogram { return nil }
func (fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample         { return s }

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
