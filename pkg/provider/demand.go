package provider

import (
	"slices"
	"sync"
	"time"
)

// Demand remembers, per shared query, the namespaces that requests asked
// it about recently, so that the query reads those namespaces only:
// Prometheus' work per cycle then follows the HPAs, not the cluster. A
// namespace not asked about for TTL is forgotten. It is bounded: a shared
// query asked about more than MaxNamespaces namespaces, or one more than
// the bytes of all the names allow, reads the whole cluster, as without
// Demand. Namespaces come from request paths, so the bounds hold whatever
// requests name. A nil *Demand knows no namespaces. Safe for concurrent
// use.
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
)

// demandSet is the namespaces one shared query was asked about, with when
// each was last asked about, and their sorted list, which the query's
// text is made from; the list is replaced, never changed, so callers may
// keep it.
type demandSet struct {
	asked map[string]time.Time
	list  []string
	// wide: the query was asked about more namespaces than it may read;
	// it reads the whole cluster until the set is swept below the bound.
	wide bool
}

// Namespaces records that a request asked the shared query key about
// namespace at now, and returns the namespaces the query reads, sorted:
// namespace and those asked about within TTL; nil when the query reads
// the whole cluster (past a bound).
func (d *Demand) Namespaces(key, namespace string, now time.Time) []string {
	if d == nil {
		return nil
	}
	maxNS, maxBytes, ttl := d.MaxNamespaces, d.MaxBytes, d.TTL
	if maxNS <= 0 {
		maxNS = DefaultDemandNamespaces
	}
	if maxBytes <= 0 {
		maxBytes = DefaultDemandBytes
	}
	if ttl <= 0 {
		ttl = DefaultDemandTTL
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
			return nil
		}
		if d.sets == nil {
			d.sets = map[string]*demandSet{}
		}
		s = &demandSet{asked: map[string]time.Time{}}
		d.sets[key] = s
		d.bytes += len(key)
	}
	if _, ok := s.asked[namespace]; ok {
		s.asked[namespace] = now
		if s.wide {
			return nil
		}
		return s.list
	}
	if len(s.asked) >= maxNS || d.bytes+len(namespace) > maxBytes {
		s.wide = true
		return nil
	}
	s.asked[namespace] = now
	d.bytes += len(namespace)
	list := make([]string, 0, len(s.list)+1)
	list = append(list, s.list...)
	i, _ := slices.BinarySearch(list, namespace)
	s.list = slices.Insert(list, i, namespace)
	if s.wide {
		return nil
	}
	return s.list
}

// sweep forgets the namespaces of s not asked about within ttl, and s
// itself when none is left; d.mu is held.
func (d *Demand) sweep(key string, s *demandSet, now time.Time, ttl time.Duration) {
	var keep []string
	for _, ns := range s.list {
		if now.Sub(s.asked[ns]) < ttl {
			keep = append(keep, ns)
			continue
		}
		delete(s.asked, ns)
		d.bytes -= len(ns)
	}
	if len(keep) < len(s.list) {
		s.list = keep
		s.wide = false
	}
	if len(s.list) == 0 {
		delete(d.sets, key)
		d.bytes -= len(key)
	}
}
