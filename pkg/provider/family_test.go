package provider

import (
	"runtime"
	"strings"
	"testing"
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
