package quantity

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// slowPath is FromFloat without its fast path: ParseQuantity of the
// float's shortest decimal text.
func slowPath(t testing.TB, v float64) resource.Quantity {
	format := byte('f')
	if math.Abs(v) >= 1e21 {
		format = 'g'
	}
	q, err := resource.ParseQuantity(strconv.FormatFloat(v, format, -1, 64))
	if err != nil {
		t.Fatalf("ParseQuantity(%v): %v", v, err)
	}
	q.Format = resource.DecimalSI
	return q
}

// The fast path gives exactly what ParseQuantity gives: the same value,
// text and JSON.
func TestFromDecimalMatchesParseQuantity(t *testing.T) {
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 10.25, 13.000000000000002, 11.700000000000001,
		0.1 + 0.2, 1.0 / 3, -2.0 / 3, 1e-9, 1e-10, 1.5e-10, -1e-12, 0.9999999999, 999999999.9999999,
		9.2e9, 9.3e9, 123456789012.5, 1e17, 9.2e17, 9.3e18, 1e19, 1.7976931348623157e308, 5e-324,
		64 << 20, 104857600, 0.13333333333333333, 2.9999999999999996}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		exp := r.IntN(40) - 20
		v := r.Float64() * math.Pow(10, float64(exp))
		if r.IntN(4) == 0 {
			v = -v
		}
		if r.IntN(5) == 0 {
			v = math.Round(v*1000) / 1000
		}
		values = append(values, v)
	}
	for _, v := range values {
		got, err := FromFloat(v)
		if err != nil {
			t.Fatalf("FromFloat(%v): %v", v, err)
		}
		want := slowPath(t, v)
		gj, _ := got.MarshalJSON()
		wj, _ := want.MarshalJSON()
		if got.Cmp(want) != 0 || got.String() != want.String() || string(gj) != string(wj) || got.Format != want.Format {
			t.Fatalf("FromFloat(%v) = %s (%s), ParseQuantity gives %s (%s)", v, got.String(), gj, want.String(), wj)
		}
	}
}
