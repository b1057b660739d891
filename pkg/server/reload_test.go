package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

// malformedSecrets are configurations with a credential where the schema
// wants another kind of value, the credential, and the field each error
// must name.
var malformedSecrets = []struct{ name, config, secret, field string }{
	{"header as a string", "  http:\n    http_headers:\n      X-Token: hunter2-t0ken\n", "hunter2-t0ken", `backends[0].http.http_headers["X-Token"]`},
	{"basic_auth as user:password", "  http: {basic_auth: admin:hunter2-t0ken}\n", "admin:hunter2-t0ken", "backends[0].http.basic_auth"},
	{"authorization as a header line", "  http: {authorization: hunter2-t0ken}\n", "hunter2-t0ken", "backends[0].http.authorization"},
	{"password in a bad proxy_url", "  http: {proxy_url: 'http://u:hunter2-t0ken%zz@proxy:3128'}\n", "hunter2-t0ken", "backends[0].http.proxy_url"},
}

// quotes reports whether msg holds secret, or the seven characters of it
// that yaml.v2 quotes of a value longer than ten.
func quotes(msg, secret string) bool {
	return strings.Contains(msg, secret) || strings.Contains(msg, secret[:7])
}

func writeBackendConfig(t *testing.T, path, http string) {
	t.Helper()
	data := "backends:\n- name: b\n  url: https://b:9090\n" + http
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedEventQuotesNoSecret: the Event recorded on promgate's Pod
// for a refused reload names the field and quotes nothing of the
// credential.
func TestRefusedEventQuotesNoSecret(t *testing.T) {
	var (
		mu       sync.Mutex
		messages []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev corev1.Event
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/namespaces/promgate/events") || json.Unmarshal(body, &ev) != nil {
			t.Errorf("unexpected request %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		messages = append(messages, ev.Message)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	t.Setenv("POD_NAME", "promgate-0")
	t.Setenv("POD_NAMESPACE", "promgate")
	for _, tt := range malformedSecrets {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "promgate.yaml")
			if err := os.WriteFile(path, []byte("rules: []\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := &Server{cfg: &Config{ConfigFile: path}}
			w := s.reloader(nil, nil, nil, &rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
			if w.Refused == nil {
				t.Fatal("no Event recorder")
			}
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			writeBackendConfig(t, path, tt.config)
			mu.Lock()
			messages = nil
			mu.Unlock()
			if w.Check(context.Background(), false) {
				t.Fatal("the configuration was applied")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(messages) != 1 {
				t.Fatalf("%d Events, want 1", len(messages))
			}
			if quotes(messages[0], tt.secret) {
				t.Errorf("the Event quotes the credential: %s", messages[0])
			}
			if !strings.Contains(messages[0], tt.field) {
				t.Errorf("the Event does not name %s: %s", tt.field, messages[0])
			}
		})
	}
}
