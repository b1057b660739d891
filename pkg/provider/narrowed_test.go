package provider

import (
	"strconv"
	"strings"
	"testing"

	"github.com/promgate/promgate/pkg/budget"
)

// TestNarrowed: a rendered shared query is found again only for the same
// scope and owner and the same narrowing (Demand's lists by identity, a
// one-name list by its name), and the texts are kept in the memory budget,
// charged for their text and lists.
func TestNarrowed(t *testing.T) {
	nss := []string{"a", "b"}
	objs := []string{"x", "y"}
	owner, other := new(int), new(int)
	m := Narrowed{Budget: budget.New(1 << 20)}
	m.Put("metric", NarrowedFor{Owner: owner, Namespaces: nss, Objects: objs}, "narrowed", 8)
	m.Put("metric", NarrowedFor{Owner: owner, Namespaces: []string{"c"}}, "alone c", 7)
	m.Put("metric", NarrowedFor{Owner: owner, Namespaces: []string{"e"}}, "alone e", 7)
	m.Put("metric{x=y}", NarrowedFor{Owner: owner}, "wide, x=y", 9)
	for _, tt := range []struct {
		name, scope string
		k           NarrowedFor
		want        string // "": not found
	}{
		{"the same lists", "metric", NarrowedFor{Owner: owner, Namespaces: nss, Objects: objs}, "narrowed"},
		{"equal lists, not the same", "metric", NarrowedFor{Owner: owner, Namespaces: []string{"a", "b"}, Objects: objs}, ""},
		{"a list's prefix", "metric", NarrowedFor{Owner: owner, Namespaces: nss[:1], Objects: objs}, ""},
		{"objects dropped", "metric", NarrowedFor{Owner: owner, Namespaces: nss}, ""},
		{"another scope (metric selector)", "metric{x=z}", NarrowedFor{Owner: owner, Namespaces: nss, Objects: objs}, ""},
		{"another owner", "metric", NarrowedFor{Owner: other, Namespaces: nss, Objects: objs}, ""},
		{"one namespace, by name", "metric", NarrowedFor{Owner: owner, Namespaces: []string{"c"}}, "alone c"},
		{"another waiting namespace", "metric", NarrowedFor{Owner: owner, Namespaces: []string{"e"}}, "alone e"},
		{"a namespace not kept", "metric", NarrowedFor{Owner: owner, Namespaces: []string{"d"}}, ""},
		{"the whole cluster", "metric{x=y}", NarrowedFor{Owner: owner}, "wide, x=y"},
		{"the whole cluster, another scope", "metric", NarrowedFor{Owner: owner}, ""},
		{"an empty list is not nil", "metric{x=y}", NarrowedFor{Owner: owner, Namespaces: []string{}}, ""},
	} {
		v, ok := m.Get(tt.scope, tt.k)
		if got, _ := v.(string); got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
	bytes, n := m.Budget.Usage(budget.Sharing)
	if want := int64(4*(8+7+7+9) + 16*6 + 7); n != 4 || bytes < want {
		t.Errorf("budget: %d texts of %d bytes, want 4 of at least %d", n, bytes, want)
	}
	small := Narrowed{Budget: budget.New(64 << 10)}
	for i := range 100 {
		small.Put(strconv.Itoa(i), NarrowedFor{Owner: owner}, strings.Repeat("x", 1000), 1000)
	}
	if _, n := small.Budget.Usage(budget.Sharing); small.Budget.Bytes() > small.Budget.Max() || n == 0 || n == 100 {
		t.Errorf("a budget of %d bytes holds %d in %d of 100 texts of 4 kB", small.Budget.Max(), small.Budget.Bytes(), n)
	}
	var none Narrowed // no budget: keeps nothing
	none.Put("metric", NarrowedFor{Owner: owner}, "x", 1)
	if _, ok := none.Get("metric", NarrowedFor{Owner: owner}); ok {
		t.Error("kept without a budget")
	}
}
