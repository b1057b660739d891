package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// request is one kind of API call and how to check its answer.
type request struct {
	kind string // for per-kind percentiles: "pods", "external", "resource"
	path string
	// marker occurs once per item of the answer (e.g. "describedObject").
	marker string
	// want is the exact item count expected; 0 means at least one.
	want int
}

// outcome is the result of one call.
type outcome struct {
	kind    string
	latency time.Duration
	err     string // empty on success
}

func (r request) do(ctx context.Context, t target) outcome {
	start := time.Now()
	code, body, err := t.get(ctx, r.path)
	o := outcome{kind: r.kind, latency: time.Since(start)}
	switch {
	case err != nil:
		o.err = classify(err)
	case code != 200:
		o.err = fmt.Sprintf("HTTP %d", code)
	default:
		n := bytes.Count(body, []byte(`"`+r.marker+`"`))
		if bytes.HasPrefix(body, []byte(protoPrefix)) {
			var err error
			if n, err = protoItems(body); err != nil {
				o.err = err.Error()
				return o
			}
		}
		if (r.want > 0 && n != r.want) || n == 0 {
			o.err = fmt.Sprintf("%d items, want %s", n, wantText(r.want))
		}
	}
	return o
}

func wantText(n int) string {
	if n == 0 {
		return "some"
	}
	return fmt.Sprint(n)
}

func classify(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "deadline exceeded"), strings.Contains(s, "Timeout"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// recorder collects outcomes from concurrent workers.
type recorder struct {
	mu       sync.Mutex
	outcomes []outcome
	dropped  int
}

func (r *recorder) add(o outcome) {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, o)
	r.mu.Unlock()
}

// closedLoop runs workers that each send req back to back until d has
// passed (or max requests were sent), and returns what they saw.
func closedLoop(ctx context.Context, t target, req request, workers int, d time.Duration, maxRequests int) *recorder {
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				mu.Lock()
				if sent >= maxRequests {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				rec.add(req.do(ctx, t))
			}
		}()
	}
	wg.Wait()
	return rec
}

// scheduled is a request to send at an offset from the start.
type scheduled struct {
	at  time.Duration
	req request
}

// openLoop sends every request at its scheduled time, whether or not
// earlier ones have been answered (so that a slow server cannot slow the
// load down), with at most maxInFlight outstanding; a request that finds
// the limit reached is dropped and counted.
func openLoop(ctx context.Context, t target, plan []scheduled, maxInFlight int) *recorder {
	rec := &recorder{}
	sort.SliceStable(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	var last time.Duration
	if len(plan) > 0 {
		last = plan[len(plan)-1].at
	}
	ctx, cancel := context.WithTimeout(ctx, last+60*time.Second)
	defer cancel()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, s := range plan {
		if wait := time.Until(start.Add(s.at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			rec.mu.Lock()
			rec.dropped++
			rec.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(r request) {
			defer wg.Done()
			defer func() { <-sem }()
			rec.add(r.do(ctx, t))
		}(s.req)
	}
	wg.Wait()
	return rec
}

// summarize fills r's request fields from rec.
func summarize(rec *recorder, measured time.Duration, r *Result) {
	all := make([]time.Duration, 0, len(rec.outcomes))
	byKind := map[string][]time.Duration{}
	r.ErrorKinds = map[string]int{}
	for _, o := range rec.outcomes {
		if o.err != "" {
			r.Errors++
			k := o.err
			if o.kind != "" {
				k = o.kind + ": " + o.err // which API failed, in a mix (B)
			}
			r.ErrorKinds[k]++
		}
		all = append(all, o.latency)
		byKind[o.kind] = append(byKind[o.kind], o.latency)
	}
	r.Requests = len(rec.outcomes)
	r.Dropped = rec.dropped
	r.MeasuredSeconds = measured.Seconds()
	if measured > 0 {
		r.RequestsPerSecond = float64(r.Requests) / measured.Seconds()
	}
	r.Latency = fakeprom.PercentilesOf(all)
	if len(byKind) > 1 {
		r.ByKind = map[string]fakeprom.Percentiles{}
		for k, ds := range byKind {
			r.ByKind[k] = fakeprom.PercentilesOf(ds)
		}
	}
	if len(r.ErrorKinds) == 0 {
		r.ErrorKinds = nil
	}
}

// protoPrefix starts a Kubernetes protobuf answer.
const protoPrefix = "k8s\x00"

// protoItems counts the items of a list answer in Kubernetes protobuf:
// the runtime.Unknown envelope's raw object (field 2) is a list whose
// field 2 repeats once per item.
func protoItems(body []byte) (int, error) {
	raw, ok := protoField(body[len(protoPrefix):], 2, nil)
	if !ok {
		return 0, errors.New("protobuf answer without a raw object")
	}
	n := 0
	protoField(raw, 2, func([]byte) { n++ })
	return n, nil
}

// protoField scans a message's top-level fields: each length-delimited
// field numbered field goes to each (if not nil); the last one is
// returned.
func protoField(msg []byte, field uint64, each func([]byte)) ([]byte, bool) {
	var last []byte
	found := false
	for len(msg) > 0 {
		tag, n := binary.Uvarint(msg)
		if n <= 0 {
			return nil, false
		}
		msg = msg[n:]
		switch tag & 7 {
		case 0:
			if _, n = binary.Uvarint(msg); n <= 0 {
				return nil, false
			}
			msg = msg[n:]
		case 2:
			l, n := binary.Uvarint(msg)
			if n <= 0 || uint64(len(msg)-n) < l {
				return nil, false
			}
			v := msg[n : n+int(l)]
			msg = msg[n+int(l):]
			if tag>>3 == field {
				last, found = v, true
				if each != nil {
					each(v)
				}
			}
		default:
			return nil, false
		}
	}
	return last, found
}
