package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestForms: the forms guardcost sends for a rule's query, and what it
// reads of Prometheus' answers (a /api/v1/query speaking Prometheus'
// format, stats=all included).
func TestForms(t *testing.T) {
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		q := r.Form.Get("query")
		sent = append(sent, q)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(q, "topk(1, "):
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"x","pod":"a"},"value":[1,"1"]}]}}`))
		case r.Form.Get("stats") == "all":
			_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}],"stats":{"timings":{"evalTotalTime":0.25},"samples":{"totalQueryableSamples":42}}}}`))
		default:
			_, _ = w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"unexpected"}`))
		}
	}))
	defer srv.Close()
	c := &client{base: srv.URL, http: &http.Client{Timeout: 5 * time.Second}}

	forms, err := floorForms(context.Background(), c, `sum by (pod) (rate(x{pod!=""}[1m]))`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"and one window":  `(sum by (pod) (rate(x{pod!=""}[1m]))) and ((sum by (pod) (count_over_time(x{pod!=""}[1m]))) > 0)`,
		"and one instant": `(sum by (pod) (rate(x{pod!=""}[1m]))) and ((sum by (pod) (timestamp(x{pod!=""}))) > 0)`,
		"one series":      `last_over_time({__name__="x",pod="a"}[1m30s])`,
	}
	for _, f := range forms {
		if w, ok := want[f.name]; ok && f.text != w {
			t.Errorf("%s: %s, want %s", f.name, f.text, w)
		}
		if f.name == "ingredients" && (strings.Count(f.text, `"guard_part"`) != 5 || !strings.Contains(f.text, `count_over_time(x{pod!=""}[30s] offset 30s)`)) {
			t.Errorf("ingredients: %s", f.text)
		}
	}
	if len(forms) != 4 {
		t.Errorf("%d forms, want 4", len(forms))
	}
	if len(sent) != 1 || sent[0] != `topk(1, x{pod!=""})` {
		t.Errorf("sent %q, want the one-series lookup", sent)
	}

	st, err := c.query(context.Background(), "up")
	if err != nil || st.eval != 0.25 || st.samples != 42 || st.series != 2 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if _, err := c.vector(context.Background(), "up"); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Errorf("an error answer: %v", err)
	}
}
