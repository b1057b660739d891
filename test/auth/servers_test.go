//go:build e2e

package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The ports of this package: 127.0.0.1:29500-29699.
const (
	firstPort = 29500
	lastPort  = 29699
)

var ports struct {
	sync.Mutex
	next int
}

// freeAddr returns 127.0.0.1:port for a port of the package's range that
// nothing listens on and that this process has not handed out before.
func freeAddr(t testing.TB) string {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.next == 0 {
		ports.next = firstPort
	}
	for ; ports.next <= lastPort; ports.next++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports.next))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = l.Close()
		ports.next++
		return addr
	}
	t.Fatalf("no free port left in 127.0.0.1:%d-%d", firstPort, lastPort)
	return ""
}

// binary is the path of a tool in the repository's .cache/bin.
func binary(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, ".cache", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing (%v): run make tools", name, err)
	}
	return p
}

// process is a server started by a test and stopped at its end.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
}

// startProcess starts bin with args, its output in a file of the test's
// temporary directory, and stops it (SIGTERM, then SIGKILL) when the test
// ends. The output's tail is logged if the test failed.
func startProcess(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", name, tail(p.output(), 30))
		}
	})
	return p
}

func (p *process) output() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// waitOutput waits until the process has printed substr n times.
func (p *process) waitOutput(t testing.TB, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(p.output(), substr) < n {
		select {
		case <-p.done:
			t.Fatalf("%s exited before printing %q:\n%s", p.name, substr, tail(p.output(), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within a minute:\n%s", p.name, substr, tail(p.output(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startPrometheus starts Prometheus with the web config file webConfig (if
// not ""). With scrapeSelf it scrapes itself every second, so that "up"
// has a series; this needs a plain HTTP listener. The HTTP server's read
// timeout, which is also its idle timeout, is one second: a keep-alive
// connection left idle for longer is closed by the server, so a client
// has to make a new TLS handshake after that.
func startPrometheus(t testing.TB, name, webConfig string, scrapeSelf bool) (addr string) {
	t.Helper()
	dir := t.TempDir()
	addr = freeAddr(t)
	cfg := "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
	if scrapeSelf {
		cfg += fmt.Sprintf("scrape_configs:\n- job_name: self\n  static_configs:\n  - targets: [%q]\n", addr)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeAtomic(t, cfgPath, []byte(cfg))
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--web.read-timeout=1s",
		"--log.level=info",
	}
	if webConfig != "" {
		args = append(args, "--web.config.file="+webConfig)
	}
	p := startProcess(t, name, binary(t, "prometheus"), args...)
	p.waitOutput(t, "Server is ready to receive web requests.", 1)
	return addr
}

// vmauth is a running vmauth.
type vmauth struct {
	*process
	// addr serves HTTPS (or plain HTTP without a serving certificate);
	// plainAddr plain HTTP, if asked for.
	addr, plainAddr string
}

// startVMAuth starts vmauth with the auth config file config, re-read
// every 200ms. It serves HTTPS with serving (when serving.cert is set,
// otherwise plain HTTP) and, when plain is true, plain HTTP on a second
// address as well.
func startVMAuth(t testing.TB, name, config string, serving keyPair, plain bool) *vmauth {
	t.Helper()
	dir := t.TempDir()
	v := &vmauth{addr: freeAddr(t)}
	listen, useTLS := v.addr, strconv.FormatBool(serving.cert != nil)
	if plain {
		v.plainAddr = freeAddr(t)
		listen, useTLS = listen+","+v.plainAddr, useTLS+",false"
	}
	args := []string{
		"-auth.config=" + config,
		"-configCheckInterval=200ms",
		"-httpListenAddr=" + listen,
		"-tls=" + useTLS,
		"-loggerLevel=INFO",
	}
	if serving.cert != nil {
		certFile, keyFile := serving.write(t, dir, "serving")
		args = append(args, "-tlsCertFile="+certFile, "-tlsKeyFile="+keyFile)
	}
	v.process = startProcess(t, name, binary(t, "vmauth"), args...)
	n := 1
	if plain {
		n = 2
	}
	v.waitOutput(t, "started server at", n)
	return v
}

// vmUser is a user of a vmauth auth config, with a bearer token or a
// username and password. vmauth logs each of its requests.
type vmUser struct {
	name, token        string
	username, password string
	// upstream is the URL prefix requests are proxied to; with header set
	// ("Name: value"), only requests carrying that header are.
	upstream, header string
}

// writeVMAuthConfig replaces vmauth's auth config with users.
func writeVMAuthConfig(t testing.TB, path string, users ...vmUser) {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "- name: %q\n  access_log: {}\n", u.name)
		if u.token != "" {
			fmt.Fprintf(&b, "  bearer_token: %q\n", u.token)
		} else {
			fmt.Fprintf(&b, "  username: %q\n  password: %q\n", u.username, u.password)
		}
		if u.header == "" {
			fmt.Fprintf(&b, "  url_prefix: %q\n", u.upstream)
			continue
		}
		fmt.Fprintf(&b, "  url_map:\n  - src_headers: [%q]\n    url_prefix: %q\n", u.header, u.upstream)
	}
	writeAtomic(t, path, []byte(b.String()))
}

// probeAgent is the User-Agent of the test's own requests to vmauth, which
// served leaves out.
const probeAgent = "promgate-auth-test-probe"

// served counts the requests of user that vmauth, logging to logPath,
// answered with 200, apart from the test's own probes. Unlike
// vmauth_user_requests_total, which /metrics refreshes once a second,
// the access log is written as each request ends.
func served(t testing.TB, logPath, user string) int {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "access_log ") && strings.Contains(line, "status_code=200 ") &&
			strings.Contains(line, fmt.Sprintf("username=%q", user)) && !strings.Contains(line, probeAgent) {
			n++
		}
	}
	return n
}

// httpsClient trusts the CA PEM ca only.
func httpsClient(ca []byte) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// statusWithToken is the HTTP status of an instant query of vector(1)
// sent to base with the bearer token, outside promgate's client.
func statusWithToken(ctx context.Context, hc *http.Client, base, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query=vector(1)", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", probeAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// waitTokenStatus waits until vmauth answers a query with token by want,
// that is until it has re-read its config.
func waitTokenStatus(t testing.TB, hc *http.Client, base, token string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		code, err := statusWithToken(ctx, hc, base, token)
		if err == nil && code == want {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("vmauth at %s did not answer HTTP %d for a token within 30s (last: %d, %v)", base, want, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
