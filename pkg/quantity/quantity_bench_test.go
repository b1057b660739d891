package quantity

import "testing"

// BenchmarkFromFloat converts typical sample values (rates with float
// noise, whole numbers, byte counts) and serializes them as the API does.
func BenchmarkFromFloat(b *testing.B) {
	values := []float64{13.000000000000002, 0.13333333333333333, 19, 0.25, 67108864, 1.0 / 3}
	b.ReportAllocs()
	for b.Loop() {
		for _, v := range values {
			q, err := FromFloat(v)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := q.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
