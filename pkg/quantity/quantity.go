// Package quantity converts Prometheus sample values to Kubernetes
// resource.Quantity values without overflow or silent loss.
package quantity

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// ErrNotFinite is returned for NaN and ±Inf, which no Quantity can hold.
var ErrNotFinite = errors.New("value is not a finite number")

// FromFloat returns v as a Quantity parsed from its shortest decimal text,
// so large values keep their magnitude (no int64(v*1000) overflow) and
// small ones their digits down to the Quantity's nano precision (values
// below one nano round up to 1n, as resource.Quantity does). NaN and ±Inf
// give ErrNotFinite: the caller decides what absence means.
func FromFloat(v float64) (resource.Quantity, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return resource.Quantity{}, fmt.Errorf("%w: %v", ErrNotFinite, v)
	}
	if q, ok := fromDecimal(v); ok {
		return q, nil
	}
	format := byte('f')
	if math.Abs(v) >= 1e21 {
		format = 'g' // keep the text short; Quantity accepts exponents
	}
	q, err := resource.ParseQuantity(strconv.FormatFloat(v, format, -1, 64))
	if err != nil {
		return resource.Quantity{}, fmt.Errorf("value %v: %w", v, err)
	}
	// Print with SI suffixes (500m, 150n, 3Gi stays 3221225472) whatever
	// notation the float's text used.
	q.Format = resource.DecimalSI
	return q, nil
}

// fromDecimal is FromFloat's fast path for values whose shortest decimal
// text has more than nine decimals (common for rates: 13.000000000000002,
// 0.13333333333333333) and at most 18 digits once cut to nano precision
// (below about 1e9): it builds the Quantity from those digits, rounding a
// non-zero remainder below one nano up (away from zero), exactly as
// resource.ParseQuantity of the text does; ParseQuantity would take its
// arbitrary-precision path, several times slower to build and to
// serialize.
func fromDecimal(v float64) (resource.Quantity, bool) {
	var buf [32]byte
	text := strconv.AppendFloat(buf[:0], v, 'f', -1, 64)
	neg := text[0] == '-'
	if neg {
		text = text[1:]
	}
	intPart, frac := text, []byte(nil)
	for i, c := range text {
		if c == '.' {
			intPart, frac = text[:i], text[i+1:]
			break
		}
	}
	if len(frac) <= 9 {
		// ParseQuantity keeps such values exact in an int64 itself,
		// cheaply (and keeps their text to print them).
		return resource.Quantity{}, false
	}
	roundUp := false
	for _, c := range frac[9:] {
		if c != '0' {
			roundUp = true
			break
		}
	}
	frac = frac[:9]
	if len(intPart)+len(frac) > 18 {
		return resource.Quantity{}, false
	}
	var m int64
	for _, part := range [2][]byte{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return resource.Quantity{}, false
			}
			m = m*10 + int64(c-'0')
		}
	}
	if roundUp {
		m++
	}
	if neg {
		m = -m
	}
	return *resource.NewScaledQuantity(m, resource.Scale(-len(frac))), true
}
