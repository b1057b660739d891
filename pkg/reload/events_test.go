package reload

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
)

// TestPodEvents: a refusal is recorded as a Warning Event on the Pod the
// downward API names, its message cut at 1,000 bytes; without the Pod's
// name and namespace, or a client, there is no recorder.
func TestPodEvents(t *testing.T) {
	var (
		mu     sync.Mutex
		events []corev1.Event
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev corev1.Event
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/namespaces/promgate/events" || json.Unmarshal(body, &ev) != nil {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	rc := &rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}}
	for _, tt := range []struct {
		name, pod, ns string
		rc            *rest.Config
		refused       string
		want          string // the Event's message; "" for no recorder
	}{
		{name: "recorded", pod: "promgate-0", ns: "promgate", rc: rc, refused: "config c.yaml: bad", want: "config c.yaml: bad"},
		{name: "long message cut", pod: "promgate-0", ns: "promgate", rc: rc, refused: strings.Repeat("x", 1500), want: strings.Repeat("x", 1000) + "..."},
		{name: "no pod name", ns: "promgate", rc: rc},
		{name: "no namespace", pod: "promgate-0", rc: rc},
		{name: "no client", pod: "promgate-0", ns: "promgate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POD_NAME", tt.pod)
			t.Setenv("POD_NAMESPACE", tt.ns)
			record := PodEvents(tt.rc)
			if tt.want == "" {
				if record != nil {
					t.Fatal("a recorder, want none")
				}
				return
			}
			mu.Lock()
			events = nil
			mu.Unlock()
			record(errors.New(tt.refused))
			mu.Lock()
			defer mu.Unlock()
			if len(events) != 1 {
				t.Fatalf("%d Events, want 1", len(events))
			}
			ev := events[0]
			if ev.Message != tt.want || ev.Type != corev1.EventTypeWarning || ev.Reason != "ConfigRefused" ||
				ev.InvolvedObject.Name != tt.pod || ev.InvolvedObject.Kind != "Pod" || ev.GenerateName != tt.pod+"." {
				t.Errorf("Event %+v", ev)
			}
		})
	}
}
