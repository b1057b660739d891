package resource

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/quantity"
)

// unlabeledReport is what warnUnlabeled says of a query field's samples
// that lack the labels naming objects.
type unlabeledReport struct{ field, labels, hint string }

// gather is the one matching step from answers to objects: it walks the
// samples of both rules' answers and adds each to the value that slot
// returns for it. slot returns ok false for a sample without the labels
// that name objects (counted, and reported per field with report), and a
// nil value for one of an object not asked for.
func (p *Provider) gather(results [2][]result, report func(*rule) unlabeledReport, slot func(*rule, result, *model.Sample) (*containerData, bool)) {
	for i, r := range []*rule{p.cpu, p.memory} {
		if r == nil {
			continue
		}
		unlabeled := 0
		for _, res := range results[i] {
			for _, s := range res.vec {
				cd, ok := slot(r, res, s)
				switch {
				case !ok:
					unlabeled++
				case cd != nil:
					cd.values[i].add(s)
				}
			}
		}
		if unlabeled > 0 {
			rep := report(r)
			p.warnUnlabeled(rep.field, unlabeled, rep.labels, rep.hint)
		}
	}
}

// usage converts a CPU and a memory value into a ResourceList, or says why
// it cannot. It returns the earlier of the two sample timestamps.
func (p *Provider) usage(cpu, mem *value) (corev1.ResourceList, model.Time, string) {
	rl := corev1.ResourceList{}
	for _, x := range []struct {
		v    *value
		name corev1.ResourceName
	}{{cpu, corev1.ResourceCPU}, {mem, corev1.ResourceMemory}} {
		if (x.name == corev1.ResourceCPU && p.cpu == nil) || (x.name == corev1.ResourceMemory && p.memory == nil) {
			continue // not configured
		}
		switch {
		case x.v.bad:
			return nil, 0, fmt.Sprintf("%s value %v is not a finite, non-negative number", x.name, x.v.badValue)
		case x.v.n == 0:
			return nil, 0, fmt.Sprintf("no %s value", x.name)
		}
		v := x.v.sum
		if x.name == corev1.ResourceCPU {
			v = roundCPU(v)
		}
		q, err := quantity.FromFloat(v)
		if err != nil {
			return nil, 0, fmt.Sprintf("%s: %v", x.name, err)
		}
		if x.name == corev1.ResourceMemory {
			q = binarySI(q)
		}
		rl[x.name] = q
	}
	ts := cpu.ts
	if p.cpu == nil || (p.memory != nil && mem.ts < ts) {
		ts = mem.ts
	}
	return rl, ts, ""
}

// primary is the rule whose labels name objects in messages.
func (p *Provider) primary() *rule {
	if p.cpu != nil {
		return p.cpu
	}
	return p.memory
}

// cpuPrecision is the finest CPU step reported, in cores (0.1 millicore).
// A rate computed from scraped counters carries jitter of a few parts in
// 10^5 (scrape timestamps are not exact); kubectl rounds millicores up, so
// unrounded 100.0008m would print as 101m.
const cpuPrecision = 1e-4

// roundCPU rounds cores to cpuPrecision; values too small to round to a
// step are kept, so that a nearly idle container never reads as zero.
func roundCPU(cores float64) float64 {
	r := math.Round(cores/cpuPrecision) * cpuPrecision
	if r == 0 {
		return cores
	}
	return r
}

// binarySI returns q with binary suffixes (20Mi rather than 20971520), as
// metrics-server prints memory. The value is unchanged.
func binarySI(q resource.Quantity) resource.Quantity {
	return *resource.NewDecimalQuantity(*q.AsDec(), resource.BinarySI)
}

// containerData holds a container's (or a node's) CPU and memory values.
type containerData struct {
	values [2]value // cpu, memory
}

// value accumulates the samples for one object and resource. Several
// series for the same object are added up, as `sum by` would, so that a
// query that aggregates less than expected still gives the object's total.
type value struct {
	n        int
	sum      float64
	ts       model.Time // earliest sample
	bad      bool       // some sample was NaN, ±Inf or negative
	badValue float64
}

func (v *value) add(s *model.Sample) {
	f := float64(s.Value)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		if !v.bad {
			v.bad, v.badValue = true, f
		}
		return
	}
	v.n++
	v.sum += f
	if v.ts == 0 || s.Timestamp < v.ts {
		v.ts = s.Timestamp
	}
}

// warnUnlabeled reports series that lack the labels naming objects, which
// points at a label mapping or scrape configuration problem. It logs at
// most once a minute per query so that HPA polling does not flood the log.
func (p *Provider) warnUnlabeled(field string, n int, labels, hint string) {
	if !p.warnings.allow(field, p.runner.Clock()) {
		return
	}
	klog.ErrorS(nil, "Resource metrics query returned series without the labels that name objects; they are ignored",
		"field", field, "series", n, "labels", labels, "hint", hint)
}

// throttle lets an event through at most once a minute per key.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if last, ok := t.last[key]; ok && now.Sub(last) < time.Minute {
		return false
	}
	t.last[key] = now
	return true
}

// distinct returns values sorted and de-duplicated.
func distinct(values []string) []string {
	sort.Strings(values)
	out := make([]string, 0, len(values))
	for _, v := range values {
		if len(out) == 0 || v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
