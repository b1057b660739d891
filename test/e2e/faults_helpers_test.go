//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// worldSh runs a hack/world.sh subcommand against this run's world, failing the test on error.
func worldSh(t testing.TB, args ...string) {
	t.Helper()
	if err := runScript(world.Root, filepath.Join(world.Root, "test", "e2e", "hack", "world.sh"), args...); err != nil {
		t.Fatalf("world.sh %s: %v", strings.Join(args, " "), err)
	}
}

// promgateFlag returns the value of --name=V on the running promgate's command line, or def.
func promgateFlag(t testing.TB, name, def string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(world.RunDir, "pids", "promgate.pid"))
	if err != nil {
		t.Fatalf("promgate pid file: %v", err)
	}
	pid := strings.Fields(string(b))[0]
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		t.Fatalf("promgate command line: %v", err)
	}
	v := def
	for _, a := range strings.Split(string(cmdline), "\x00") {
		if s, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = s // the last one wins, as with pflag
		}
	}
	return v
}

// promgateDuration is promgateFlag parsed as a duration.
func promgateDuration(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	s := promgateFlag(t, name, def.String())
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("promgate --%s=%q: %v", name, s, err)
	}
	return d
}

// apiAnswer is the outcome of one GET.
type apiAnswer struct {
	Code    int           // HTTP status; 0 if the request failed
	Body    string        // the body (a metav1.Status for errors)
	Message string        // .message of a Status body
	Reason  string        // .reason of a Status body
	Took    time.Duration // time to the full answer
	Err     error         // transport error
}

func (a apiAnswer) String() string {
	if a.Err != nil {
		return fmt.Sprintf("error after %v: %v", a.Took.Round(time.Millisecond), a.Err)
	}
	if a.Code/100 == 2 {
		return fmt.Sprintf("HTTP %d after %v: %s", a.Code, a.Took.Round(time.Millisecond), truncate(a.Body, 300))
	}
	return fmt.Sprintf("HTTP %d %s after %v: %s", a.Code, a.Reason, a.Took.Round(time.Millisecond), truncate(a.Message, 300))
}

// apiGetter GETs raw paths with one client's credentials.
type apiGetter struct {
	base   string
	client *http.Client
	token  string
}

// adminGetter talks to kube-apiserver as the world's admin.
func adminGetter(t testing.TB) apiGetter {
	t.Helper()
	c, err := rest.HTTPClientFor(RESTConfig(t))
	if err != nil {
		t.Fatalf("http client: %v", err)
	}
	return apiGetter{base: world.APIServerURL, client: c}
}

// tokenGetter talks to base (kube-apiserver, or promgate directly) with a bearer token;
// serverName is the name the serving certificate is checked against, caFile its CA.
func tokenGetter(t testing.TB, base, caFile, serverName, token string) apiGetter {
	t.Helper()
	cfg := &rest.Config{Host: base, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile, ServerName: serverName}}
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatalf("http client: %v", err)
	}
	return apiGetter{base: base, client: c, token: token}
}

// get GETs path (with its query) and reads the whole answer; it never fails the test.
func (g apiGetter) get(ctx context.Context, path string, header http.Header) apiAnswer {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+path, nil)
	if err != nil {
		return apiAnswer{Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return apiAnswer{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := apiAnswer{Code: resp.StatusCode, Body: string(b), Took: time.Since(start), Err: err}
	if resp.StatusCode/100 != 2 {
		var st struct{ Message, Reason string }
		if json.Unmarshal(b, &st) == nil {
			a.Message, a.Reason = st.Message, st.Reason
		} else {
			a.Message = string(b)
		}
	}
	return a
}

// podMetricsList is the part of metrics.k8s.io's PodMetricsList the tests read.
type podMetricsList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Containers []struct {
			Name  string            `json:"name"`
			Usage map[string]string `json:"usage"`
		} `json:"containers"`
	} `json:"items"`
}

// auditEvent is one line of kube-apiserver's audit log (the fields read here).
type auditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Stage          string    `json:"stage"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// auditEvents reads the world's audit log (promgate's LIST and WATCH requests, see world.sh)
// and returns the events of user stamped in [from, to).
func auditEvents(t testing.TB, user string, from, to time.Time) []auditEvent {
	t.Helper()
	path := world.Env["E2E_AUDIT_LOG"]
	if path == "" {
		path = filepath.Join(world.LogDir, "kube-apiserver-audit.log")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("audit log: %v (world.sh starts kube-apiserver with --audit-log-path)", err)
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e auditEvent
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.User.Username != user {
			continue
		}
		// One event per request: a LIST when it completes, a WATCH when it starts.
		if e.Stage != "ResponseComplete" && !(e.Verb == "watch" && e.Stage == "ResponseStarted") ||
			e.Verb == "watch" && e.Stage == "ResponseComplete" {
			continue
		}
		if !e.StageTimestamp.Before(from) && e.StageTimestamp.Before(to) {
			out = append(out, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return out
}

// isWatch tells a WATCH (including a list streamed as ?watch=true&sendInitialEvents=true)
// from a LIST.
func (e auditEvent) isWatch() bool { return e.Verb == "watch" }
