//go:build e2e

package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/prom"
)

// klogOut receives everything klog prints, at -v=10, for the tests that
// check that no secret is logged.
var klogOut syncBuffer

// TestMain logs klog at its most verbose into klogOut: client-go's
// transport logs requests, their headers and curl commands from -v=6 on.
func TestMain(m *testing.M) {
	fs := flag.NewFlagSet("klog", flag.ExitOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{
		"v":               "10",
		"logtostderr":     "false",
		"alsologtostderr": "false",
		"stderrthreshold": "FATAL",
	} {
		if err := fs.Set(name, value); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	klog.SetOutput(&klogOut)
	os.Exit(m.Run())
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// assertNotLogged fails t if klog's output holds any of secrets, showing
// the lines with the secret masked.
func assertNotLogged(t testing.TB, secrets ...string) {
	t.Helper()
	out := klogOut.String()
	for _, s := range secrets {
		if s == "" || !strings.Contains(out, s) {
			continue
		}
		var lines []string
		for l := range strings.Lines(out) {
			if strings.Contains(l, s) {
				lines = append(lines, strings.ReplaceAll(strings.TrimSpace(l), s, "<SECRET>"))
			}
		}
		t.Errorf("klog output holds a secret in %d lines, e.g.:\n%s", len(lines), tail(strings.Join(lines, "\n"), 5))
	}
}

// secret returns a random string with a recognizable prefix.
func secret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newClient builds promgate's client from opts, with a 10s timeout.
func newClient(t testing.TB, opts prom.Options) *prom.Client {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	c, err := prom.New(opts)
	if err != nil {
		t.Fatalf("prom.New: %v", err)
	}
	return c
}

// outcome is what a request of the client should end with: success
// (kind ""), or a failure of that kind, HTTP status code (0: none) and a
// text the error holds.
type outcome struct {
	kind prom.Kind
	// alt is another kind accepted in place of kind.
	alt  prom.Kind
	code int
	text string
}

var (
	ok = outcome{}
	// unauthorized is a 401: credentials refused.
	unauthorized = outcome{kind: prom.Unauthorized, code: 401}
)

// tlsFailure is the outcome of a TLS handshake that fails for reason.
func tlsFailure(reason string) outcome {
	return outcome{kind: prom.Unreachable, text: reason}
}

// query runs an instant query of vector(1) and a series request through
// c and returns the first error.
func query(ctx context.Context, c *prom.Client) error {
	v, err := c.Query(ctx, "vector(1)", time.Time{})
	if err != nil {
		return err
	}
	if len(v) != 1 || v[0].Value != 1 {
		return fmt.Errorf("vector(1) returned %v", v)
	}
	now := time.Now()
	return c.Series(ctx, "up", now.Add(-time.Minute), now, func(string, []prom.Label) {})
}

// check runs an instant query and a series request through c and fails
// t unless both end as want. A failure must name the backend and hold no
// secret, neither in its text nor in prom.Summary.
func check(t testing.TB, c *prom.Client, want outcome, secrets ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	now := time.Now()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"query", func() error {
			v, err := c.Query(ctx, "vector(1)", time.Time{})
			if err == nil && (len(v) != 1 || v[0].Value != 1) {
				t.Errorf("query vector(1) returned %v", v)
			}
			return err
		}},
		{"series", func() error {
			return c.Series(ctx, "up", now.Add(-time.Minute), now, func(string, []prom.Label) {})
		}},
	} {
		err := op.do()
		if want.kind == "" {
			if err != nil {
				t.Errorf("%s: %v (summary: %s)", op.name, err, prom.Summary(err))
			}
			continue
		}
		if err == nil {
			t.Errorf("%s succeeded, want a failure of kind %q", op.name, want.kind)
			continue
		}
		msg, summary := err.Error(), prom.Summary(err)
		t.Logf("%s: %s\n\tsummary: %s", op.name, msg, summary)
		if k := prom.KindOf(err); k != want.kind && (want.alt == "" || k != want.alt) {
			t.Errorf("%s: kind %q, want %q: %v", op.name, k, want.kind, err)
		}
		code := 0
		if ke, ok := errors.AsType[*prom.KindError](err); ok {
			code = ke.Code
		}
		if code != want.code {
			t.Errorf("%s: HTTP status %d, want %d: %v", op.name, code, want.code, err)
		}
		if want.code != 0 && !strings.Contains(summary, fmt.Sprintf("HTTP %d", want.code)) {
			t.Errorf("%s: summary %q does not name HTTP %d", op.name, summary, want.code)
		}
		if !strings.Contains(msg, c.Name()) || !strings.Contains(summary, c.Name()) {
			t.Errorf("%s: error does not name the backend %s: %q / %q", op.name, c.Name(), msg, summary)
		}
		if want.text != "" && !strings.Contains(msg, want.text) {
			t.Errorf("%s: error %q does not say %q", op.name, msg, want.text)
		}
		for _, s := range secrets {
			if s != "" && (strings.Contains(msg, s) || strings.Contains(summary, s)) {
				t.Errorf("%s: the error holds a secret: %q", op.name, strings.ReplaceAll(msg, s, "<SECRET>"))
			}
		}
	}
}

// loop runs query through c every interval until stop is closed, and
// reports how many rounds succeeded and the failures.
func loop(c *prom.Client, interval time.Duration, stop <-chan struct{}) <-chan loopResult {
	res := make(chan loopResult, 1)
	go func() {
		var r loopResult
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := query(ctx, c)
			cancel()
			if err != nil {
				r.failures = append(r.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			} else {
				r.ok++
			}
			select {
			case <-stop:
				res <- r
				return
			case <-tick.C:
			}
		}
	}()
	return res
}

type loopResult struct {
	ok       int
	failures []string
}

// assertNoFailures fails t if any round of the loop failed, or if fewer
// than least rounds ran.
func (r loopResult) assertNoFailures(t testing.TB, least int) {
	t.Helper()
	t.Logf("query loop: %d rounds succeeded, %d failed", r.ok, len(r.failures))
	if len(r.failures) > 0 {
		t.Errorf("%d requests failed during the rotation, e.g.:\n%s", len(r.failures), strings.Join(r.failures[:min(len(r.failures), 5)], "\n"))
	}
	if r.ok < least {
		t.Errorf("only %d rounds of the query loop ran, want at least %d", r.ok, least)
	}
}
