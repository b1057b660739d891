package quantity

import (
	"errors"
	"math"
	"testing"
)

func TestFromFloat(t *testing.T) {
	tests := []struct {
		in        float64
		want      string
		wantMilli int64
		err       error
	}{
		{in: 0, want: "0", wantMilli: 0},
		{in: 1, want: "1", wantMilli: 1000},
		{in: 0.5, want: "500m", wantMilli: 500},
		{in: 2.25, want: "2250m", wantMilli: 2250},
		{in: 1234567, want: "1234567", wantMilli: 1234567000},
		{in: -3.5, want: "-3500m", wantMilli: -3500},
		{in: 1.5e-7, want: "150n"},
		{in: 1e-12, want: "1n"}, // below nano precision rounds up
		{in: 9.3e18, want: "9300P"},
		{in: 1e300, want: "1e+300"},
		{in: math.NaN(), err: ErrNotFinite},
		{in: math.Inf(1), err: ErrNotFinite},
		{in: math.Inf(-1), err: ErrNotFinite},
	}
	for _, tt := range tests {
		q, err := FromFloat(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("FromFloat(%v) error = %v, want %v", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("FromFloat(%v): %v", tt.in, err)
		}
		if got := q.String(); got != tt.want {
			t.Errorf("FromFloat(%v) = %s, want %s", tt.in, got, tt.want)
		}
		if tt.wantMilli != 0 && q.MilliValue() != tt.wantMilli {
			t.Errorf("FromFloat(%v).MilliValue() = %d, want %d", tt.in, q.MilliValue(), tt.wantMilli)
		}
	}
	// Huge values must not wrap around as int64(v*1000) would.
	q, err := FromFloat(1e19)
	if err != nil || q.Sign() <= 0 || q.AsApproximateFloat64() != 1e19 {
		t.Errorf("FromFloat(1e19) = %v (%v), want 1e19", q.String(), err)
	}
}
