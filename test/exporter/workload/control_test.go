package workload

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestControlAPI(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	m.UpsertPod(testPod("shop", "web-1", "web", nil, "app"))
	m.UpsertPod(testPod("shop", "web-2", "web", nil, "app"))
	m.UpsertNode(testNode("node-1", nil))
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()

	tests := []struct {
		name     string
		method   string
		path     string
		form     url.Values // sent as a form body when set
		wantCode int
		wantBody string // substring
	}{
		{"http rps and ratio", "POST", "/control/http?namespace=shop&app=web&rps=10&errorRatio=0.2", nil, 200, `"matchedPods": 2`},
		{"http as form body", "POST", "/control/http", url.Values{"namespace": {"shop"}, "app": {"web"}, "rps": {"10"}}, 200, `"matchedPods": 2`},
		{"http future app", "POST", "/control/http?namespace=shop&app=later&rps=3", nil, 200, `"matchedPods": 0`},
		{"http nothing to set", "POST", "/control/http?namespace=shop&app=web", nil, 400, "give rps, errorRatio or both"},
		{"http misspelt parameter", "POST", "/control/http?namespace=shop&app=web&error-ratio=0.1", nil, 400, `unknown parameter \"error-ratio\"`},
		{"http bad ratio", "POST", "/control/http?namespace=shop&app=web&errorRatio=2", nil, 400, "not in [0, 1]"},
		{"http missing app", "POST", "/control/http?namespace=shop&rps=1", nil, 400, `parameter \"app\" is required`},
		{"http repeated parameter", "POST", "/control/http?namespace=shop&app=web&rps=1&rps=2", nil, 400, "given 2 times"},
		{"http wrong method", "PUT", "/control/http?namespace=shop&app=web&rps=1", nil, 405, ""},
		{"cpu", "POST", "/control/cpu?namespace=shop&app=web&cpu=500m", nil, 200, `"matchedPods": 2`},
		{"cpu one container", "POST", "/control/cpu?namespace=shop&app=web&cpu=1&container=app", nil, 200, `"matchedPods": 2`},
		{"cpu bad quantity", "POST", "/control/cpu?namespace=shop&app=web&cpu=fast", nil, 400, "not a quantity"},
		{"cpu missing", "POST", "/control/cpu?namespace=shop&app=web", nil, 400, `parameter \"cpu\" is required`},
		{"memory", "POST", "/control/memory?namespace=shop&app=web&memory=256Mi", nil, 200, `"matchedPods": 2`},
		{"hide", "POST", "/control/hide?namespace=shop&app=web&container=app", nil, 200, `"matchedPods": 2`},
		{"unhide", "DELETE", "/control/hide?namespace=shop&app=web&container=app", nil, 200, `"matchedPods": 2`},
		{"node", "POST", "/control/node?node=node-1&cpu=2&memory=4Gi", nil, 200, `"nodeKnown": true`},
		{"node unknown", "POST", "/control/node?node=nope&cpu=2", nil, 200, `"nodeKnown": false`},
		{"queue", "POST", "/control/queue?namespace=shop&queue=orders&value=42", nil, 200, `"value": 42`},
		{"queue negative", "POST", "/control/queue?namespace=shop&queue=orders&value=-1", nil, 400, "finite number >= 0"},
		{"queue delete missing", "DELETE", "/control/queue?namespace=shop&queue=none", nil, 200, `"existed": false`},
		{"state", "GET", "/control/state?namespace=shop", nil, 200, `"requests200"`},
		{"state bad filter", "GET", "/control/state?ns=shop", nil, 400, "unknown parameter"},
		{"unknown path", "POST", "/control/nothing", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.form != nil {
				body = strings.NewReader(tc.form.Encode())
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.wantBody) {
				t.Errorf("%s %s = %d %s, want %d containing %s", tc.method, tc.path, resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
		})
	}

	// The calls above left: rps 10, ratio 0.2, cpu app=1 core, memory 256Mi,
	// node-1 at 2 cores / 4Gi, queue orders=42.
	clk.Advance(10 * time.Second)
	resp, err := srv.Client().Get(srv.URL + "/control/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	p := findPod(t, s, "shop", "web-1")
	if p.RPS != 10 || p.ErrorRatio != 0.2 {
		t.Errorf("rps %v ratio %v", p.RPS, p.ErrorRatio)
	}
	approx(t, "requests500", p.Requests500, 20)
	if c := findContainer(t, p, "app"); c.CPUCores != 1 || c.MemoryWorkingSetBytes != 256<<20 || c.Hidden {
		t.Errorf("app container %+v", c)
	}
	if len(s.Nodes) != 1 || s.Nodes[0].Cgroup.CPUCores != 2 || s.Nodes[0].Cgroup.MemoryWorkingSetBytes != 4<<30 {
		t.Errorf("nodes %+v", s.Nodes)
	}
	if len(s.Queues) != 1 || s.Queues[0].Value != 42 {
		t.Errorf("queues %+v", s.Queues)
	}
	if len(s.Overrides) != 2 || s.Overrides[1].CPU["app"] != "1" || s.Overrides[1].CPU[""] != "500m" || s.Overrides[1].Memory[""] != "256Mi" {
		t.Errorf("overrides %+v", s.Overrides)
	}
	if s.NodeOverrides["node-1"] != (ResourcesSnapshot{CPU: "2", Memory: "4Gi"}) {
		t.Errorf("node overrides %+v", s.NodeOverrides)
	}

	// Reset clears every override and queue.
	resp, err = srv.Client().Post(srv.URL+"/control/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s := m.Snapshot(Filter{}); len(s.Overrides) != 0 || len(s.Queues) != 0 || s.NodeOverrides != nil || s.Pods[0].RPS != DefaultRPS {
		t.Errorf("after reset %+v", s)
	}
}
