package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/promgate/promgate/test/exporter/workload"
)

func TestMux(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(newMux(workload.NewModel(nil), &ready))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before sync = %d", code)
	}
	ready.Store(true)
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/control/state"} {
		if code, body := get(path); code != http.StatusOK {
			t.Errorf("%s = %d %s", path, code, body)
		}
	}
	resp, err := srv.Client().Post(srv.URL+"/control/queue?namespace=a&queue=q&value=3", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, body := get("/metrics"); !strings.Contains(body, `queue_messages_ready{namespace="a",queue="q"} 3`) {
		t.Errorf("/metrics lacks the queue:\n%s", body)
	}
}

func TestRunBadKubeconfig(t *testing.T) {
	err := run(context.Background(), "127.0.0.1:0", filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("run with a missing kubeconfig = %v", err)
	}
}
