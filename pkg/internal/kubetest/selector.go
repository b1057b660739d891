package kubetest

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

// WideSelector returns the label selector "key in (...)" of n values, each
// size bytes (a label value has at most 63) and distinct for each i: a
// hostile caller's selector, different in every request.
func WideSelector(t testing.TB, key string, i, n, size int) labels.Selector {
	t.Helper()
	vals := make([]string, n)
	for j := range vals {
		v := fmt.Sprintf("r%dv%d", i, j)
		vals[j] = strings.Repeat("x", max(0, size-len(v))) + v
	}
	sel, err := labels.Parse(key + " in (" + strings.Join(vals, ",") + ")")
	if err != nil {
		t.Fatal(err)
	}
	return sel
}
