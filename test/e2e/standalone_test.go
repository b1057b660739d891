//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// standalone is a second promgate process started by a test with its own
// arguments, next to the world's registered one.
type standalone struct {
	port    int
	logPath string
	cmd     *exec.Cmd
	client  *http.Client // authenticates as the cluster admin (client certificate)
}

// startPromgate starts bin/promgate with args (which must not set
// --secure-port: it is given a free port) and waits for /readyz. The
// process is killed at the end of the test.
func startPromgate(t *testing.T, name string, args ...string) *standalone {
	t.Helper()
	s := &standalone{port: freePort(t), logPath: filepath.Join(world.LogDir, "promgate-"+name+".log")}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, fmt.Sprintf("--secure-port=%d", s.port))
	s.cmd = exec.Command(filepath.Join(world.Root, "bin", "promgate"), args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-exited
		logFile.Close()
	})
	pki := filepath.Join(world.RunDir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	// promgate serves a certificate of its own (--cert-dir) or the world's;
	// what is tested here is what it answers, not who it is.
	s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
	WaitFor(t, 60*time.Second, "promgate ("+name+") /readyz", func() (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("promgate (%s) exited: see %s", name, s.logPath)
		default:
		}
		code, _, err := s.get("/readyz")
		return err == nil && code == http.StatusOK, nil
	})
	return s
}

// get fetches path from the standalone promgate as the cluster admin.
func (s *standalone) get(path string) (int, string, error) {
	resp, err := s.client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", s.port, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// worldArgs are the flags a promgate needs in this world: kubeconfigs for
// what a pod gets from its service account, loopback, the world's
// Prometheus.
func worldArgs() []string {
	kcfg := world.Env["E2E_PROMGATE_KUBECONFIG"]
	return []string{
		"--lister-kubeconfig=" + kcfg,
		"--authentication-kubeconfig=" + kcfg,
		"--authorization-kubeconfig=" + kcfg,
		"--bind-address=127.0.0.1",
	}
}
