package provider

import (
	"slices"
	"sync"
	"time"
)

// Demand remembers, per shared query, the namespaces that requests asked
// it about recently, so that the query reads those namespaces only:
// Prometheus' work per cycle then follows the HPAs, not the cluster (nor
// the other clusters and departed pods a shared Prometheus holds series
// of). A namespace not asked about for TTL is forgotten.
//
// Namespaces join a query in batches: a namespace asked about while the
// query's list changed less than JoinEvery ago waits for the next change,
// and its requests meanwhile read their namespace alone (Reach.Alone).
// So a query's text, and with it the cached answer every request shares,
// changes at most once per JoinEvery however many namespaces HPAs start
// polling at once; one joining at a time would change it per namespace.
//
// It is bounded: a shared query asked about more than MaxNamespaces
// namespaces, or one more than the bytes of all the names allow, reads the
// whole cluster, as without Demand. Namespaces come from request paths, so
// the bounds hold whatever requests name. A nil *Demand reads the whole
// cluster. Safe for concurrent use.
type Demand struct {
	// MaxNamespaces bounds the namespaces of one shared query (default
	// DefaultDemandNamespaces).
	MaxNamespaces int
	// MaxBytes bounds the names and keys kept (default
	// DefaultDemandBytes).
	MaxBytes int
	// TTL is how long a namespace is read after the last request about it
	// (default DefaultDemandTTL).
	TTL time.Duration
	// JoinEvery is the least time between two changes of a query's
	// namespaces by joining ones (default DefaultDemandJoinEvery).
	JoinEvery time.Duration

	mu    sync.Mutex
	sets  map[string]*demandSet
	bytes int
	swept time.Time
}

// Defaults of Demand.
const (
	DefaultDemandNamespaces = 100
	DefaultDemandBytes      = 1 << 20
	DefaultDemandTTL        = 10 * time.Minute
	// DefaultDemandJoinEvery is the HPA controller's default sync period:
	// the namespaces a starting set of HPAs polls join within one cycle.
	DefaultDemandJoinEvery = 15 * time.Second
)

// Reach is what a shared query reads for one request.
type Reach struct {
	// Namespaces, when not nil, are the namespaces the shared query reads
	// (the request's among them), sorted; the slice is never changed.
	Namespaces []string
	// Alone: the request's namespace has not joined the query yet; the
	// request reads its namespace alone.
	Alone bool
}

// Wide reports whether the query reads the whole cluster.
func (r Reach) Wide() bool { return r.Namespaces == nil && !r.Alone }

// demandSet is one shared query's namespaces: when each was last asked
// about, the sorted list the query reads (replaced, never changed, so
// callers may keep it), those waiting to join, and when the list last
// grew.
type demandSet struct {
	asked   map[string]time.Time
	list    []string
	pending []string
	joined  time.Time
	// wide: the query was asked about more namespaces than it may read;
	// it reads the whole cluster until the set is swept below the bound.
	wide bool
}

// Namespaces records that a request asked the shared query key about
// namespace at now, and returns what the query reads for it.
func (d *Demand) Namespaces(key, namespace string, now time.Time) Reach {
	if d == nil {
		return Reach{}
	}
	maxNS, maxBytes, ttl, every := d.MaxNamespaces, d.MaxBytes, d.TTL, d.JoinEvery
	if maxNS <= 0 {
		maxNS = DefaultDemandNamespaces
	}
	if maxBytes <= 0 {
		maxBytes = DefaultDemandBytes
	}
	if ttl <= 0 {
		ttl = DefaultDemandTTL
	}
	if every <= 0 {
		every = DefaultDemandJoinEvery
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.swept) >= ttl/4 {
		d.swept = now
		for k, s := range d.sets {
			d.sweep(k, s, now, ttl)
		}
	}
	s, ok := d.sets[key]
	if !ok {
		if d.bytes+len(key)+len(namespace) > maxBytes {
			return Reach{}
		}
		if d.sets == nil {
			d.sets = map[string]*demandSet{}
		}
		s = &demandSet{asked: map[string]time.Time{}}
		d.sets[key] = s
		d.bytes += len(key)
	}
	if _, ok := s.asked[namespace]; !ok {
		if len(s.asked) >= maxNS || d.bytes+len(namespace) > maxBytes {
			s.wide = true
			return Reach{}
		}
		d.bytes += len(namespace)
		s.pending = append(s.pending, namespace)
	}
	s.asked[namespace] = now
	if s.wide {
		return Reach{}
	}
	// The waiting namespaces join now if the list has not grown for
	// JoinEvery (the first one at once).
	if len(s.pending) > 0 && (len(s.list) == 0 || now.Sub(s.joined) >= every) {
		list := make([]string, 0, len(s.list)+len(s.pending))
		list = append(append(list, s.list...), s.pending...)
		slices.Sort(list)
		s.list, s.pending, s.joined = list, nil, now
	}
	if _, member := slices.BinarySearch(s.list, namespace); !member {
		return Reach{Alone: true}
	}
	return Reach{Namespaces: s.list}
}

// sweep forgets the namespaces of s not asked about within ttl, and s
// itself when none is left; d.mu is held.
func (d *Demand) sweep(key string, s *demandSet, now time.Time, ttl time.Duration) {
	fresh := func(ns string) bool {
		if now.Sub(s.asked[ns]) < ttl {
			return true
		}
		delete(s.asked, ns)
		d.bytes -= len(ns)
		return false
	}
	var keep []string
	for _, ns := range s.list {
		if fresh(ns) {
			keep = append(keep, ns)
		}
	}
	s.pending = slices.DeleteFunc(s.pending, func(ns string) bool { return !fresh(ns) })
	if len(keep) < len(s.list) {
		s.list = keep
		s.wide = false
	}
	if len(s.asked) == 0 {
		delete(d.sets, key)
		d.bytes -= len(key)
	}
}
