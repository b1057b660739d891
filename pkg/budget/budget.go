// Package budget keeps everything promgate remembers on behalf of requests
// within one memory budget: cached backend answers, queries rewritten by
// the partial-window guard, indexes of shared answers and sharing
// decisions. Request input (selectors, names) and backend answers decide
// what goes in, so none of them may grow without bound; one least
// recently used store, bounded in estimated bytes, holds them all, and
// whatever kind is used most keeps its place at the others' expense.
//
// Sizes are estimates given by the caller (see VectorSize); the store adds
// the key and its own bookkeeping. An entry larger than a quarter of the
// budget is not kept: one huge answer must not empty the store.
package budget

import (
	"container/list"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Kind names what an entry holds, for the self-metrics.
type Kind string

// The kinds promgate keeps.
const (
	// Answer is a backend's answer to a query (pkg/query's cache).
	Answer Kind = "answer"
	// Guarded is a query rewritten by the partial-window guard.
	Guarded Kind = "guarded"
	// Index is an index of a shared answer by object.
	Index Kind = "index"
	// List is a list of values read from a shared answer, with its
	// encodings, kept for the requests that read the same list.
	List Kind = "list"
	// Sharing is a sharing decision for a selector shape, with its query.
	Sharing Kind = "sharing"
	// Windows is what the partial-window guard remembers of a query's
	// answers: when each of its series was first seen.
	Windows Kind = "windows"
)

// DefaultMaxBytes is the default budget (--query-cache-max-bytes): some 30
// cluster-wide answers of the largest clusters, or thousands of
// per-namespace ones, well inside the Deployment's 1 GiB limit.
const DefaultMaxBytes = 256 << 20

// EntryBytes is what the store spends on one entry besides its key and
// value: the list element, the map slot and the entry itself.
const EntryBytes = 200

// sweepEvery is how often expired entries are dropped from the whole
// store (they are also dropped when read).
const sweepEvery = time.Second

// Budget is a least recently used store bounded in estimated bytes. It is
// safe for concurrent use. A nil *Budget keeps nothing.
type Budget struct {
	max int64
	now func() time.Time

	mu      sync.Mutex
	items   map[key]*list.Element // of *item
	lru     list.List             // most recently used first
	bytes   int64
	kinds   map[Kind]*usage
	sweepAt time.Time
}

// key names an entry: its kind, its scope (the backend a query goes to:
// kept apart rather than joined to the name, which may be a query text of
// tens of kB that a request would otherwise copy to look it up) and name.
type key struct {
	kind  Kind
	scope string
	k     string
}

type item struct {
	key     key
	v       any
	size    int64
	expires time.Time // zero: until evicted
}

type usage struct{ bytes, entries int64 }

// New returns a Budget of maxBytes (DefaultMaxBytes when not positive).
func New(maxBytes int64) *Budget {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	limitBytes.Set(float64(maxBytes))
	return &Budget{max: maxBytes, now: time.Now, items: map[key]*list.Element{}, kinds: map[Kind]*usage{}}
}

// WithClock sets the clock expiry is measured with (tests).
func (b *Budget) WithClock(now func() time.Time) *Budget {
	b.now = now
	return b
}

// Max returns the budget in bytes.
func (b *Budget) Max() int64 {
	if b == nil {
		return 0
	}
	return b.max
}

// Get returns the value kept for kind and k, marking it recently used. An
// expired value is dropped and not returned.
func (b *Budget) Get(kind Kind, k string) (any, bool) { return b.GetIn(kind, "", k) }

// GetIn is Get for k in scope (a backend's name): the same k in two scopes
// names two entries.
func (b *Budget) GetIn(kind Kind, scope, k string) (any, bool) {
	if b == nil {
		return nil, false
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.items[key{kind, scope, k}]
	if !ok {
		return nil, false
	}
	it := el.Value.(*item)
	if !it.expires.IsZero() && !now.Before(it.expires) {
		b.remove(el)
		return nil, false
	}
	b.lru.MoveToFront(el)
	return it.v, true
}

// Put keeps v for kind and k until expires (zero: until evicted), charging
// size bytes plus the key and EntryBytes, then evicts the least recently
// used entries of any kind until the store fits the budget. It reports
// false, keeping nothing (and dropping what k held), for an entry larger
// than a quarter of the budget.
func (b *Budget) Put(kind Kind, k string, v any, size int64, expires time.Time) bool {
	return b.PutIn(kind, "", k, v, size, expires)
}

// PutIn is Put for k in scope (see GetIn).
func (b *Budget) PutIn(kind Kind, scope, k string, v any, size int64, expires time.Time) bool {
	if b == nil {
		return false
	}
	size += EntryBytes + int64(len(scope)+len(k))
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	kk := key{kind, scope, k}
	if el, ok := b.items[kk]; ok {
		b.remove(el) // never left in place of the value given
	}
	if size > b.max/4 {
		skipped.WithLabelValues(string(kind)).Inc()
		return false
	}
	b.items[kk] = b.lru.PushFront(&item{key: kk, v: v, size: size, expires: expires})
	b.account(kind, size, 1)
	if now.After(b.sweepAt) {
		for el := b.lru.Back(); el != nil; {
			prev := el.Prev()
			if it := el.Value.(*item); !it.expires.IsZero() && !now.Before(it.expires) {
				b.remove(el)
			}
			el = prev
		}
		b.sweepAt = now.Add(sweepEvery)
	}
	for b.bytes > b.max {
		el := b.lru.Back()
		evictions.WithLabelValues(string(el.Value.(*item).key.kind)).Inc()
		b.remove(el)
	}
	return true
}

// Remove drops the value kept for kind and k, if any.
func (b *Budget) Remove(kind Kind, k string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.items[key{kind, "", k}]; ok {
		b.remove(el)
	}
}

// Usage returns the bytes and entries kept of kind.
func (b *Budget) Usage(kind Kind) (bytes, entries int64) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if u := b.kinds[kind]; u != nil {
		return u.bytes, u.entries
	}
	return 0, 0
}

// Bytes returns the bytes kept of every kind.
func (b *Budget) Bytes() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}

// remove drops an entry; b.mu is held.
func (b *Budget) remove(el *list.Element) {
	it := b.lru.Remove(el).(*item)
	delete(b.items, it.key)
	b.account(it.key.kind, -it.size, -1)
}

// account adds to the totals and the self-metrics; b.mu is held.
func (b *Budget) account(kind Kind, size, n int64) {
	b.bytes += size
	u := b.kinds[kind]
	if u == nil {
		u = &usage{}
		b.kinds[kind] = u
	}
	u.bytes += size
	u.entries += n
	usedBytes.WithLabelValues(string(kind)).Set(float64(u.bytes))
	usedEntries.WithLabelValues(string(kind)).Set(float64(u.entries))
}

// Sizes of what a decoded vector is made of, measured with prom's decoder
// (Go 1.26, amd64): a sample with two short labels keeps 325 bytes alive,
// 82 of them the answer's text.
const (
	sampleBytes   = int64(unsafe.Sizeof(model.Sample{}) + unsafe.Sizeof(&model.Sample{}))
	mapBytes      = 200 // a label map of up to 8 labels
	labelBytes    = 32  // each label past 8
	jsonPerSample = 40  // {"metric":{},"value":[1800000000.123,"12.5"]},
	jsonPerLabel  = 6   // "":"",
)

// VectorSize estimates the memory a decoded vector keeps alive: its
// samples and label maps, and the answer's text, since the decoder slices
// label strings out of it (so the text is counted, not the strings).
func VectorSize(vec model.Vector) int64 {
	n := int64(cap(vec)) * 8
	for _, s := range vec {
		n += sampleBytes + mapBytes + jsonPerSample
		if extra := len(s.Metric) - 8; extra > 0 {
			n += int64(extra) * labelBytes
		}
		for k, v := range s.Metric {
			n += jsonPerLabel + int64(len(k)+len(v))
		}
		if s.Histogram != nil {
			n += int64(len(s.Histogram.Buckets)) * 64
		}
	}
	return n
}

var (
	limitBytes = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "promgate_memory_budget_limit_bytes",
		Help:           "The memory budget (--query-cache-max-bytes) of everything kept for requests: cached answers, guarded queries and their histories, indexes, lists and sharing decisions.",
		StabilityLevel: metrics.ALPHA,
	})
	usedBytes = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_memory_budget_bytes",
		Help:           "Estimated memory kept within the budget, by kind: answer (cached backend answers), guarded (queries rewritten by the partial-window guard), windows (when the series of a guarded query were first seen), index (shared answers indexed by object), list (lists of values read from them, with their encodings), sharing (sharing decisions, and shared queries rendered per narrowing).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	usedEntries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_memory_budget_entries",
		Help:           "Entries kept within the budget, by kind.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	evictions = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_memory_budget_evictions_total",
		Help:           "Entries evicted, least recently used first, to keep the budget, by kind of the entry evicted.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	skipped = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_memory_budget_skipped_total",
		Help:           "Entries not kept because they exceed a quarter of the budget, by kind.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"kind"})
	registerOnce sync.Once
)

// RegisterMetrics registers the budget's self-metrics with the server's
// registry (served on /metrics), once at start (server.RegisterMetrics)
// and before New, which sets the limit's gauge; later calls do nothing.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(limitBytes, usedBytes, usedEntries, evictions, skipped)
	})
}
