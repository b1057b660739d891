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
