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
func (p *Provider) gather(results [resources][]result, report func(*rule) unlabeledReport, slot func(*rule, result, *model.Sample) (*containerData, bool)) {
	for i, r := range p.rules() {
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

// The resources, in the order of Provider.rules and containerData.values.
const (
	cpuIndex = iota
	memoryIndex
	swapIndex
	resources
)

// swapResource is the resource name kubectl top --show-swap reads.
const swapResource corev1.ResourceName = "swap"

// rules are the configured rules in the order of the resources (nil: not
// configured).
func (p *Provider) rules() [resources]*rule {
	return [resources]*rule{p.cpu, p.memory, p.swap}
}

// usage converts an object's values into a ResourceList, or says why it
// cannot: CPU and memory are required (where configured); swap is added
// when it has a usable value and left out otherwise (containers and nodes
// without swap series simply lack it). It returns the earlier of the CPU
// and memory sample timestamps.
func (p *Provider) usage(values *[resources]value) (corev1.ResourceList, model.Time, string) {
	rl := corev1.ResourceList{}
	var ts model.Time
	rules := p.rules()
	for i, name := range [resources]corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, swapResource} {
		v := &values[i]
		if rules[i] == nil {
			continue // not configured
		}
		if i == swapIndex && (v.bad || v.n == 0) {
			if v.bad {
				klog.V(2).InfoS("Swap value left out", "value", v.badValue)
			}
			continue
		}
		switch {
		case v.bad:
			return nil, 0, fmt.Sprintf("%s value %v is not a finite, non-negative number", name, v.badValue)
		case v.n == 0:
			return nil, 0, fmt.Sprintf("no %s value", name)
		}
		x := v.sum
		if i == cpuIndex {
			x = roundCPU(x)
		}
		q, err := quantity.FromFloat(x)
		if err != nil {
			if i == swapIndex {
				continue
			}
			return nil, 0, fmt.Sprintf("%s: %v", name, err)
		}
		if i != cpuIndex {
			q = binarySI(q)
		}
		rl[name] = q
		if i != swapIndex && (ts == 0 || v.ts < ts) {
			ts = v.ts
		}
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

// containerData holds a container's (or a node's) CPU, memory and swap
// values.
type containerData struct {
	values [resources]value // cpu, memory, swap
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
