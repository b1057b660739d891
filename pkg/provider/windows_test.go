package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/internal/klogtest"
	"github.com/promgate/promgate/pkg/promql"
)

// TestUnguardableLoggedOncePerRule: a query shape the guard cannot rewrite
// (the common "... or vector(0)") is said once per rule at -v=0, not once
// per query text, which requests vary at will.
func TestUnguardableLoggedOncePerRule(t *testing.T) {
	log := klogtest.Capture(t, 0)
	r := &Runner{Budget: budget.New(1 << 20)}
	for _, field := range []string{"rules[7].metricsQuery", "rules[8].metricsQuery"} {
		for i := range 200 {
			text := fmt.Sprintf(`sum(rate(x{rule="%s",status="s%d"}[1m])) or vector(0)`, field, i)
			expr, err := promql.Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			q := promql.Query{Text: text, Expr: expr, Checked: true}
			if got := r.Text(Query{Query: q, Field: field}); got != text {
				t.Fatalf("sent %s, want the query as it is", got)
			}
		}
	}
	out := log.String()
	if n := strings.Count(out, "cannot be guarded"); n != 2 {
		t.Errorf("%d log lines for 400 requests of 2 rules, want 2:\n%s", n, out)
	}
}

// TestGuardedRewritesInBudget: the rewrites are remembered within the
// budget, whatever the number of distinct texts, and reused.
func TestGuardedRewritesInBudget(t *testing.T) {
	const limit = 256 << 10
	b := budget.New(limit)
	r := &Runner{Budget: b}
	var first string
	for i := range 2000 {
		text := fmt.Sprintf(`sum(rate(x{status="%s"}[1m])) by (pod)`, strings.Repeat("v", 100)+fmt.Sprint(i))
		expr, err := promql.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Text(Query{Query: promql.Query{Text: text, Expr: expr, Checked: true}, Field: "rules[0].metricsQuery"})
		if got == text {
			t.Fatal("the query was not guarded")
		}
		if i == 1999 {
			first = got
			again := r.Text(Query{Query: promql.Query{Text: text, Expr: expr, Checked: true}, Field: "rules[0].metricsQuery"})
			if again != first {
				t.Error("the rewrite remembered differs")
			}
		}
	}
	bytes, n := b.Usage(budget.Guarded)
	t.Logf("2000 texts: %d rewrites kept, %d kB", n, bytes>>10)
	if b.Bytes() > limit || n == 0 || n == 2000 {
		t.Errorf("%d rewrites, %d bytes kept in a budget of %d: want some, within it", n, b.Bytes(), limit)
	}
}

// TestPlanGuard: explain's plan shows the rule's query and the guard apart,
// with the text sent when the guard changed it.
func TestPlanGuard(t *testing.T) {
	const text = `sum by (pod) (rate(x{pod="a"}[1m]))`
	expr, err := promql.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Backend: "default", Query: promql.Query{Text: text, Expr: expr, Checked: true}}
	tests := []struct {
		name     string
		run      *Runner
		q        Query
		guard    string
		sentDiff bool
	}{
		{"guarded", &Runner{}, q, `series are left out while samples cover the window of rate(x{pod="a"}[1m]) only in part`, true},
		{"partial windows served", &Runner{Windows: GuardOff}, q, "off: partial windows are served (--partial-window-guard=off)", false},
		{"another dialect", &Runner{}, Query{Query: promql.Query{Text: "x[1m] default 0"}}, "off: the query is not parsed as PromQL", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.run.Plan(tc.q)
			if p.Query != tc.q.Query.Text || p.Backend != tc.q.Backend {
				t.Errorf("query %q on %q, want the rule's %q on %q", p.Query, p.Backend, tc.q.Query.Text, tc.q.Backend)
			}
			if !strings.HasPrefix(p.Guard, tc.guard) {
				t.Errorf("guard %q, want it to start %q", p.Guard, tc.guard)
			}
			if (p.Sent != "") != tc.sentDiff || tc.sentDiff && !strings.HasPrefix(p.Sent, text+" and (") {
				t.Errorf("sent %q", p.Sent)
			}
		})
	}
}
