package provider

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestFamiliesBounded: whatever family names requests bring, families
// stays within its bounds, and it keeps no history alive.
func TestFamiliesBounded(t *testing.T) {
	var f families
	for i := range 20000 {
		key := strings.Repeat("k", i%700) + string(rune('a'+i%26)) + strings.Repeat("x", i%13)
		for range 3 {
			f.note(key, &history{})
		}
		if len(f.byKey) > maxFamilies || f.bytes > maxFamilyBytes {
			t.Fatalf("after %d notes: %d families, %d bytes", i, len(f.byKey), f.bytes)
		}
	}
	for _, fam := range f.byKey {
		if len(fam.texts) > maxFamilyTexts {
			t.Fatalf("a family keeps %d texts", len(fam.texts))
		}
	}
	runtime.GC()
	live := 0
	for _, fam := range f.byKey {
		for _, p := range fam.texts {
			if p.Value() != nil {
				live++
			}
		}
	}
	if live > 0 {
		t.Errorf("%d histories kept alive by families alone", live)
	}
}

// TestFamilyHoldsWaitingNamespaces: a family remembers the texts of as
// many waiting namespaces as Demand lets a shared query read, so that a
// join of the last of them still starts from what the first saw.
func TestFamilyHoldsWaitingNamespaces(t *testing.T) {
	var f families
	at := time.Unix(1000, 0)
	g := &guardResult{shortest: time.Minute}
	var kept []*history // the budget keeps them alive
	var data model.Vector
	for i := range DefaultDemandNamespaces {
		s := &model.Sample{Metric: model.Metric{"namespace": model.LabelValue(fmt.Sprint("ns-", i)), "pod": "p"}}
		h := &history{seen: at, first: map[model.Fingerprint]time.Time{s.Metric.Fingerprint(): at.Add(-time.Hour)}}
		kept = append(kept, h)
		f.note("family", h)
		data = append(data, s)
	}
	joined := &history{}
	first, ok := f.inherited("family", joined, at.Add(15*time.Second), g, data)
	if !ok || len(first) != len(data) {
		t.Errorf("the joined text inherits %d of its %d series (ok %v): the family forgot waiting namespaces", len(first), len(data), ok)
	}
	runtime.KeepAlive(kept)
}
