package budget

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// put is one Put of a test: kind, key and value size.
type put struct {
	kind Kind
	key  string
	size int64
}

func TestBudget(t *testing.T) {
	const unit = 1000
	cost := func(key string) int64 { return unit + EntryBytes + int64(len(key)) }
	tests := []struct {
		name  string
		max   int64
		puts  []put
		get   []put // read in between: after the first len(puts)-1 puts
		kept  []put
		gone  []put
		bytes map[Kind]int64
	}{
		{
			name: "fits",
			max:  10 * cost("a"),
			puts: []put{{Answer, "a", unit}, {Guarded, "a", unit}, {Index, "a", unit}},
			kept: []put{{Answer, "a", unit}, {Guarded, "a", unit}, {Index, "a", unit}},
			bytes: map[Kind]int64{
				Answer: cost("a"), Guarded: cost("a"), Index: cost("a"),
			},
		},
		{
			name: "the least recently used goes first, whatever its kind",
			max:  4*cost("a") + cost("a")/2,
			puts: []put{{Answer, "a", unit}, {Guarded, "b", unit}, {Answer, "c", unit}, {Index, "d", unit}, {Sharing, "e", unit}},
			kept: []put{{Guarded, "b", unit}, {Answer, "c", unit}, {Index, "d", unit}, {Sharing, "e", unit}},
			gone: []put{{Answer, "a", unit}},
		},
		{
			name: "a read keeps an entry",
			max:  4*cost("a") + cost("a")/2,
			puts: []put{{Answer, "a", unit}, {Guarded, "b", unit}, {Answer, "c", unit}, {Index, "d", unit}, {Sharing, "e", unit}},
			get:  []put{{Answer, "a", unit}},
			kept: []put{{Answer, "a", unit}, {Answer, "c", unit}, {Index, "d", unit}, {Sharing, "e", unit}},
			gone: []put{{Guarded, "b", unit}},
		},
		{
			name: "kinds do not share keys",
			max:  10 * cost("a"),
			puts: []put{{Answer, "a", unit}, {Index, "a", 2 * unit}},
			kept: []put{{Answer, "a", unit}, {Index, "a", 2 * unit}},
		},
		{
			name: "a key put again replaces its entry",
			max:  20 * cost("a"),
			puts: []put{{Answer, "a", unit}, {Answer, "a", 3 * unit}},
			kept: []put{{Answer, "a", 3 * unit}},
			bytes: map[Kind]int64{
				Answer: 3*unit + EntryBytes + 1,
			},
		},
		{
			name: "over a quarter of the budget is not kept",
			max:  4 * cost("a"),
			puts: []put{{Answer, "a", unit}, {Answer, "big", 4 * unit}},
			kept: []put{{Answer, "a", unit}},
			gone: []put{{Answer, "big", 4 * unit}},
		},
		{
			name: "too large for a key that holds a value: the old one goes too",
			max:  4 * cost("a"),
			puts: []put{{Answer, "a", unit}, {Answer, "b", unit}, {Answer, "a", 4 * unit}},
			kept: []put{{Answer, "b", unit}},
			gone: []put{{Answer, "a", unit}},
		},
		{
			name: "the key is charged: a long key fills the budget",
			max:  4 * cost("a"),
			puts: []put{{Guarded, "a", unit}, {Guarded, strings.Repeat("k", unit), 0}},
			kept: []put{{Guarded, strings.Repeat("k", unit), 0}, {Guarded, "a", unit}},
			bytes: map[Kind]int64{
				Guarded: cost("a") + EntryBytes + unit,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.max)
			for i, p := range tt.puts {
				if i == len(tt.puts)-1 {
					for _, g := range tt.get {
						if _, ok := b.Get(g.kind, g.key); !ok {
							t.Fatalf("%s %q missing before the last put", g.kind, g.key)
						}
					}
				}
				b.Put(p.kind, p.key, p.size, p.size, time.Time{})
			}
			for _, p := range tt.kept {
				if v, ok := b.Get(p.kind, p.key); !ok || v.(int64) != p.size {
					t.Errorf("%s %q = %v, %v; want %d", p.kind, p.key, v, ok, p.size)
				}
			}
			for _, p := range tt.gone {
				if v, ok := b.Get(p.kind, p.key); ok {
					t.Errorf("%s %q = %v, want it gone", p.kind, p.key, v)
				}
			}
			if got := b.Bytes(); got > tt.max {
				t.Errorf("%d bytes kept, budget %d", got, tt.max)
			}
			var sum int64
			for _, k := range []Kind{Answer, Guarded, Index, Sharing} {
				got, _ := b.Usage(k)
				sum += got
				if want, ok := tt.bytes[k]; ok && got != want {
					t.Errorf("%s: %d bytes, want %d", k, got, want)
				}
			}
			if sum != b.Bytes() {
				t.Errorf("kinds add up to %d bytes, total %d", sum, b.Bytes())
			}
		})
	}
}

func TestBudgetExpiry(t *testing.T) {
	now := time.Unix(1000, 0)
	b := New(1 << 20).WithClock(func() time.Time { return now })
	b.Put(Answer, "short", 1, 10, now.Add(time.Second))
	b.Put(Index, "long", 2, 10, now.Add(time.Minute))
	b.Put(Guarded, "forever", 3, 10, time.Time{})
	now = now.Add(2 * time.Second)
	if _, ok := b.Get(Answer, "short"); ok {
		t.Error("an expired entry was returned")
	}
	// A put drops what expired, read or not.
	b.Put(Answer, "x", 4, 10, now.Add(time.Second))
	now = now.Add(2 * time.Minute)
	b.Put(Answer, "y", 5, 10, now.Add(time.Second))
	if _, n := b.Usage(Index); n != 0 {
		t.Errorf("%d index entries left after they expired", n)
	}
	if _, n := b.Usage(Answer); n != 1 {
		t.Errorf("%d answers, want only the last", n)
	}
	if v, ok := b.Get(Guarded, "forever"); !ok || v.(int) != 3 {
		t.Errorf("an entry without expiry is gone: %v, %v", v, ok)
	}
}

// TestBudgetScopes: a name in two scopes is two entries, and the scope is
// charged as the name is.
func TestBudgetScopes(t *testing.T) {
	b := New(1 << 20)
	b.PutIn(Answer, "a", "q", 1, 10, time.Time{})
	b.PutIn(Answer, "b", "q", 2, 10, time.Time{})
	b.Put(Answer, "q", 3, 10, time.Time{})
	for scope, want := range map[string]int{"a": 1, "b": 2, "": 3} {
		if v, ok := b.GetIn(Answer, scope, "q"); !ok || v.(int) != want {
			t.Errorf("scope %q: %v, %v, want %d", scope, v, ok, want)
		}
	}
	if got, want := b.Bytes(), int64(3*(10+EntryBytes)+2+3); got != want {
		t.Errorf("%d bytes charged, want %d", got, want)
	}
}

func TestNilBudgetKeepsNothing(t *testing.T) {
	var b *Budget
	if b.Put(Answer, "a", 1, 1, time.Time{}) {
		t.Error("a nil budget kept an entry")
	}
	if _, ok := b.Get(Answer, "a"); ok {
		t.Error("a nil budget returned an entry")
	}
	b.Remove(Answer, "a")
	if b.Bytes() != 0 || b.Max() != 0 {
		t.Error("a nil budget has a size")
	}
}

// TestBudgetConcurrent fills one budget from many goroutines and kinds,
// as the providers and engines do; with -race it checks the locking, and
// that the bound holds throughout.
func TestBudgetConcurrent(t *testing.T) {
	const max = 64 << 10
	b := New(max)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind := []Kind{Answer, Guarded, Index, Sharing}[g%4]
			for i := range 2000 {
				k := fmt.Sprintf("%d-%d", g, i%300)
				if _, ok := b.Get(kind, k); !ok {
					b.Put(kind, k, i, int64(i%700), time.Time{})
				}
				if i%100 == 0 {
					b.Remove(kind, k)
				}
				if got := b.Bytes(); got > max {
					t.Errorf("%d bytes kept, budget %d", got, max)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestVectorSize(t *testing.T) {
	vec := make(model.Vector, 100)
	for i := range vec {
		vec[i] = &model.Sample{Metric: model.Metric{"pod": model.LabelValue(strings.Repeat("p", 100))}, Value: 1}
	}
	if n := VectorSize(vec); n < 100*(100+40) || n > 100*400 {
		t.Errorf("VectorSize of 100 samples of a 100-byte label = %d, not near the JSON and structures it keeps", n)
	}
}
