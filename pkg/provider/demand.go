package provider

import (
	"slices"
	"sync"
	"time"

	"github.com/promgate/promgate/pkg/promql"
)

// Demand remembers, per shared query, the namespaces that requests asked
// it about recently, so that the query reads those namespaces only:
// Prometheus' work per cycle then follows the HPAs, not the cluster (nor
// the other clusters and departed pods a shared Prometheus holds series
// of). A namespace not asked about for TTL is forgotten.
//
// Namespaces join a query in batches: a namespace asked about while the
// query's list changed less than JoinEvery ago waits for the next change,
// and its requests meanwhile read their own query (Reach.Alone).
// So a query's text, and with it the cached answer every request shares,
// changes at most once per JoinEvery however many namespaces HPAs start
// polling at once; one joining at a time would change it per namespace.
//
// With MaxObjects, a query is narrowed further to the objects requests
// asked about (the pods of their HPAs, say): it reads those names in those
// namespaces, which is what the requests' own queries would read
// together. Objects join with the namespaces, in the same batches; until
// its objects join, a request reads its namespace's query (Reach.Alone).
//
// It is bounded: a shared query asked about more than MaxNamespaces
// namespaces, or one more than the bytes of all the names allow, reads the
// whole cluster, as without Demand; one asked about more than MaxObjects
// objects reads whole namespaces. Namespaces and objects come from request
// paths and selectors, so the bounds hold whatever requests name. A nil
// *Demand reads the whole cluster. Safe for concurrent use.
type Demand struct {
	// MaxNamespaces bounds the namespaces of one shared query (default
	// DefaultDemandNamespaces).
	MaxNamespaces int
	// MaxObjects bounds the object names of one shared query; 0: a query
	// reads whole namespaces.
	MaxObjects int
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
	// DefaultDemandObjects is promgate's default --shared-query-objects:
	// a thousand pod names make a matcher of about 30 kB.
	DefaultDemandObjects = 1000
	DefaultDemandBytes   = 1 << 20
	DefaultDemandTTL     = 10 * time.Minute
	// DefaultDemandJoinEvery is the HPA controller's default sync period:
	// the namespaces a starting set of HPAs polls join within one cycle.
	DefaultDemandJoinEvery = 15 * time.Second
)

// Reach is what a shared query reads for one request.
type Reach struct {
	// Namespaces, when not nil, are the namespaces the shared query reads
	// (the request's among them), sorted; the slice is never changed.
	Namespaces []string
	// Objects, when not nil, are the object names the shared query reads
	// in those namespaces (the request's among them), sorted; the slice is
	// never changed. Nil: all objects of the namespaces.
	Objects []string
	// Alone: the request's namespace, or one of its objects, has not
	// joined the query yet; the request reads its namespace alone (all
	// its objects: one query for every request of the namespace waiting).
	Alone bool
}

// Wide reports whether the query reads the whole cluster.
func (r Reach) Wide() bool { return r.Namespaces == nil && !r.Alone }

// Narrowing is what the shared query reads for a request about namespace:
// the namespaces (nil: the whole cluster, r Wide) and the part that
// selects the objects by objectLabel in them (all, or those r names).
func (r Reach) Narrowing(namespace, objectLabel string) (namespaces []string, objects promql.Part) {
	switch {
	case r.Alone:
		return []string{namespace}, promql.AnyPart(objectLabel)
	case r.Namespaces != nil && r.Objects != nil:
		return r.Namespaces, promql.OneOfPart(objectLabel, r.Objects)
	}
	return r.Namespaces, promql.AnyPart(objectLabel)
}

// demandSet is one shared query's namespaces and objects: when each was
// last asked about, the sorted lists the query reads (replaced, never
// changed, so callers may keep them), those waiting to join, and when the
// lists last grew.
type demandSet struct {
	asked   map[string]time.Time
	list    []string
	pending []string
	joined  time.Time
	// wide: the query was asked about more namespaces than it may read;
	// it reads the whole cluster until the set is swept below the bound.
	wide bool

	// objects are the object names asked about (in any of the
	// namespaces), names the sorted ones joined, pendingObjects those
	// waiting. objectsWide: more than MaxObjects were asked about; the
	// query reads whole namespaces until the set is swept below the bound.
	objects        map[string]time.Time
	names          []string
	pendingObjects []string
	objectsWide    bool
	wideSince      time.Time // when objectsWide was set
}

// Ask records that a request asked the shared query key about objects (a
// sorted, distinct list of names) of namespace at now, and returns what
// the query reads for it. With nil objects, or without MaxObjects, the
// query reads whole namespaces.
func (d *Demand) Ask(key, namespace string, objects []string, now time.Time) Reach {
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
	byObject := d.MaxObjects > 0 && objects != nil
	if byObject {
		d.askObjects(s, objects, now, ttl, maxBytes)
	}
	// The waiting namespaces and objects join now if the lists have not
	// grown for JoinEvery (the first ones at once).
	if (len(s.pending) > 0 || len(s.pendingObjects) > 0) && (len(s.list) == 0 || now.Sub(s.joined) >= every) {
		s.list, s.pending = joined(s.list, s.pending)
		s.names, s.pendingObjects = joined(s.names, s.pendingObjects)
		s.joined = now
	}
	if _, member := slices.BinarySearch(s.list, namespace); !member {
		return Reach{Alone: true}
	}
	if !byObject || s.objectsWide {
		return Reach{Namespaces: s.list}
	}
	for _, o := range objects {
		if _, member := slices.BinarySearch(s.names, o); !member {
			return Reach{Alone: true}
		}
	}
	return Reach{Namespaces: s.list, Objects: s.names}
}

// askObjects records the objects asked about at now, queuing the new ones
// to join; past MaxObjects (or the bytes) the set reads whole namespaces;
// d.mu is held.
func (d *Demand) askObjects(s *demandSet, objects []string, now time.Time, ttl time.Duration, maxBytes int) {
	if s.objectsWide {
		return
	}
	if s.objects == nil {
		s.objects = map[string]time.Time{}
	}
	for _, o := range objects {
		at, ok := s.objects[o]
		switch {
		case !ok:
			if len(s.objects) >= d.MaxObjects || d.bytes+len(o) > maxBytes {
				d.forgetObjects(s)
				s.objectsWide, s.wideSince = true, now
				return
			}
			d.bytes += len(o)
			s.pendingObjects = append(s.pendingObjects, o)
			s.objects[o] = now
		case now.Sub(at) >= ttl/8:
			// Written rarely: a poll of hundreds of pods reads the map
			// and writes it about once per eighth of the TTL.
			s.objects[o] = now
		}
	}
}

// forgetObjects drops the objects of s and their bytes; d.mu is held.
func (d *Demand) forgetObjects(s *demandSet) {
	for o := range s.objects {
		d.bytes -= len(o)
	}
	s.objects, s.names, s.pendingObjects = nil, nil, nil
}

// joined returns list with pending merged in, sorted, as a new slice (the
// old one may be held by callers), and no pending.
func joined(list, pending []string) ([]string, []string) {
	if len(pending) == 0 {
		return list, nil
	}
	out := make([]string, 0, len(list)+len(pending))
	out = append(append(out, list...), pending...)
	slices.Sort(out)
	return out, nil
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
	if s.objectsWide && now.Sub(s.wideSince) >= ttl {
		// Read whole namespaces for a TTL; then learn the objects anew.
		s.objectsWide = false
	}
	var names []string
	for _, o := range s.names {
		if now.Sub(s.objects[o]) < ttl {
			names = append(names, o)
		}
	}
	s.pendingObjects = slices.DeleteFunc(s.pendingObjects, func(o string) bool { return now.Sub(s.objects[o]) >= ttl })
	for o, at := range s.objects {
		if now.Sub(at) >= ttl {
			delete(s.objects, o)
			d.bytes -= len(o)
		}
	}
	if len(names) < len(s.names) {
		s.names = names
	}
	if len(s.asked) == 0 {
		d.forgetObjects(s)
		delete(d.sets, key)
		d.bytes -= len(key)
	}
}
