//go:build e2e && linux

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/prom"
)

// serviceAccountDir is where rest.InClusterConfig reads the token and
// ca.crt; it cannot be changed.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// childEnv names the parameter file of TestInClusterChild; childNSEnv the
// mount namespace of the parent, which the child must not be in.
const (
	childEnv   = "PROMGATE_AUTH_INCLUSTER_CHILD"
	childNSEnv = "PROMGATE_AUTH_PARENT_MNT_NS"
)

// The parts of the in-cluster scenario, each run by a child of its own:
// client-go shares one TLS transport among the clients of a process that
// read the same CA file, and re-reads that file only every 5 minutes
// (ClientsAllowCARotation), so a client with the right ca.crt after one
// with the wrong ca.crt would still use the wrong one.
const (
	partWrongCA = "wrong-ca"
	partMain    = "main"
)

// childParams is what the in-cluster scenario needs.
type childParams struct {
	// SADir is the directory mounted over serviceAccountDir; the scenario
	// writes token and ca.crt there.
	SADir string
	// URL is vmauth's https:// URL; AuthConfig its auth config file;
	// Log its output; Upstream the Prometheus it proxies to.
	URL, AuthConfig, Log, Upstream string
	// Part is the part of the scenario to run.
	Part string
	// ClusterCA signed vmauth's serving certificate; OtherCA did not.
	ClusterCA, OtherCA    []byte
	Token1, Token2, Wrong string
}

// testInCluster: Options.InCluster, with the service account files at
// their fixed paths. The test binary runs itself again (twice, see
// partWrongCA) in a private mount namespace (CLONE_NEWNS, mounts private)
// where a temporary directory is mounted over serviceAccountDir, so that
// nothing changes on the machine; KUBERNETES_SERVICE_HOST and _PORT are
// set for the child only. vmauth
// serves TLS with a certificate of the cluster CA (ca.crt) and accepts
// the service account token, which is rotated; client-go re-reads a token
// file only about once a minute, so the rotation takes that long.
//
// If a mount namespace cannot be made, the same scenario runs here with a
// kubeconfig whose user has tokenFile, which is the same client-go code
// path apart from rest.InClusterConfig.
func testInCluster(t *testing.T, e env) {
	dir := t.TempDir()
	saDir := mustMkdir(t, filepath.Join(dir, "serviceaccount"))
	clusterCA, otherCA := newCA(t, "cluster CA"), newCA(t, "another CA")
	p := childParams{
		SADir:      saDir,
		AuthConfig: filepath.Join(dir, "auth.yml"),
		Upstream:   e.upstream,
		ClusterCA:  clusterCA.certPEM(),
		OtherCA:    otherCA.certPEM(),
		Token1:     secret("sa-token-1"),
		Token2:     secret("sa-token-2"),
		Wrong:      secret("wrong"),
	}
	writeVMAuthConfig(t, p.AuthConfig, vmUser{name: "sa-1", token: p.Token1, upstream: p.Upstream})
	vm := startVMAuth(t, "vmauth-sa", p.AuthConfig, clusterCA.serverCert(t), false)
	p.URL, p.Log = "https://"+vm.addr, vm.logPath
	_, statErr := os.Stat(serviceAccountDir)

	for _, part := range []string{partWrongCA, partMain} {
		p.Part = part
		if !runChild(t, p, filepath.Join(dir, part+".json"), strings.TrimPrefix(vm.addr, "127.0.0.1:")) {
			t.Log("a private mount namespace cannot be made: testing a kubeconfig with tokenFile instead of in-cluster")
			kubeconfig := filepath.Join(dir, "kubeconfig")
			writeKubeconfig(t, kubeconfig, p.URL, filepath.Join(saDir, "ca.crt"), map[string]string{"tokenFile": filepath.Join(saDir, "token")})
			p.Part = partMain
			serviceAccountScenario(t, p, prom.Options{URL: p.URL, AuthConfigFile: kubeconfig})
			return
		}
	}
	// Nothing changed outside the children's namespaces.
	if _, err := os.Stat(serviceAccountDir); (err == nil) != (statErr == nil) {
		t.Errorf("%s changed outside the child: before %v, after %v", serviceAccountDir, statErr, err)
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), serviceAccountDir) {
		t.Errorf("a mount on %s is visible outside the child", serviceAccountDir)
	}
}

// runChild runs TestInClusterChild with p in a new mount namespace, with
// KUBERNETES_SERVICE_HOST and _PORT (port) set for it only. It returns
// false if the namespace cannot be made.
func runChild(t *testing.T, p childParams, paramFile, port string) bool {
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, paramFile, b)
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInClusterChild$", "-test.v", "-test.count=1", "-test.timeout=100s")
	cmd.Env = append(os.Environ(),
		childEnv+"="+paramFile,
		childNSEnv+"="+ns,
		"KUBERNETES_SERVICE_HOST=127.0.0.1",
		"KUBERNETES_SERVICE_PORT="+port,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
			t.Logf("unshare(CLONE_NEWNS): %v", err)
			return false
		}
		t.Fatalf("starting the child in a mount namespace: %v", err)
	}
	err = cmd.Wait()
	t.Logf("child (%s) in a private mount namespace:\n%s", p.Part, out.String())
	if err != nil {
		t.Fatalf("the in-cluster child (%s) failed: %v", p.Part, err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestInClusterChild") {
		t.Fatalf("the in-cluster child (%s) did not run its test", p.Part)
	}
	return true
}

// TestInClusterChild is the in-cluster scenario, run only by
// testInCluster in a private mount namespace.
func TestInClusterChild(t *testing.T) {
	paramFile := os.Getenv(childEnv)
	if paramFile == "" {
		t.Skip("runs only when TestAuth/in-cluster re-executes the test binary")
	}
	b, err := os.ReadFile(paramFile)
	if err != nil {
		t.Fatal(err)
	}
	var p childParams
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	mountServiceAccount(t, p.SADir)
	serviceAccountScenario(t, p, prom.Options{URL: p.URL, InCluster: true})
}

// mountServiceAccount mounts src over serviceAccountDir, after checking
// that this process has a mount namespace of its own. If the directory
// does not exist, a tmpfs is mounted on its deepest existing parent (in
// this namespace only) to make it.
func mountServiceAccount(t *testing.T, src string) {
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if parent := os.Getenv(childNSEnv); parent == "" || ns == parent {
		t.Fatalf("not in a mount namespace of its own (%s, parent %s): refusing to mount", ns, parent)
	}
	if _, err := os.Stat(serviceAccountDir); err != nil {
		dir := filepath.Dir(serviceAccountDir)
		for {
			if _, err := os.Stat(dir); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		real, err := filepath.EvalSymlinks(dir)
		if err != nil || real == "/" {
			t.Fatalf("no directory to mount a tmpfs on for %s (%s, %v)", serviceAccountDir, real, err)
		}
		if err := syscall.Mount("tmpfs", real, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
			t.Fatalf("mounting a tmpfs on %s: %v", real, err)
		}
		mustMkdir(t, serviceAccountDir)
	}
	if err := syscall.Mount(src, serviceAccountDir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting %s on %s: %v", src, serviceAccountDir, err)
	}
	t.Logf("mounted %s on %s in mount namespace %s", src, serviceAccountDir, ns)
}

// serviceAccountScenario checks a client whose options take the CA and
// token from p.SADir: a wrong CA or token fails, the right ones pass, and
// a rotation of the token (both accepted for a while, then the old one
// revoked) fails no request of a continuous query loop.
func serviceAccountScenario(t *testing.T, p childParams, opts prom.Options) {
	hc := httpsClient(p.ClusterCA)
	user1 := vmUser{name: "sa-1", token: p.Token1, upstream: p.Upstream}
	user2 := vmUser{name: "sa-2", token: p.Token2, upstream: p.Upstream}
	write := func(name, data string) { writeAtomic(t, filepath.Join(p.SADir, name), []byte(data)) }
	secrets := []string{p.Token1, p.Token2, p.Wrong}

	if p.Part == partWrongCA {
		t.Run("ca.crt of another CA", func(t *testing.T) {
			write("ca.crt", string(p.OtherCA))
			write("token", p.Token1)
			check(t, newClient(t, opts), tlsFailure("certificate signed by unknown authority"), secrets...)
		})
		return
	}
	write("ca.crt", string(p.ClusterCA))
	for _, tc := range []struct {
		name, token string
		want        outcome
	}{
		{"wrong token", p.Wrong, unauthorized},
		{"right CA and token", p.Token1, ok},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write("token", tc.token)
			check(t, newClient(t, opts), tc.want, secrets...)
		})
	}

	t.Run("rotation", func(t *testing.T) {
		write("token", p.Token1)
		c := newClient(t, opts)
		check(t, c, ok)
		stop := make(chan struct{})
		res := loop(c, 100*time.Millisecond, stop)
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
				<-res
			}
		}()

		// 1. vmauth accepts both tokens, as while a projected token is
		// refreshed.
		writeVMAuthConfig(t, p.AuthConfig, user1, user2)
		waitTokenStatus(t, hc, p.URL, p.Token2, 200)
		before := served(t, p.Log, "sa-2")
		// 2. The kubelet writes the new token.
		write("token", p.Token2)
		rotated := time.Now()
		// 3. client-go sends it once its cached token is older than about
		// 50s (a minute, less 10s of leeway).
		waitFor(t, 75*time.Second, "requests with the new token", func() bool {
			return served(t, p.Log, "sa-2") > before
		})
		t.Logf("client-go sent the new token %v after the rotation", time.Since(rotated).Round(100*time.Millisecond))
		// 4. The old token is revoked.
		writeVMAuthConfig(t, p.AuthConfig, user2)
		waitTokenStatus(t, hc, p.URL, p.Token1, 401)
		revoked := served(t, p.Log, "sa-2")
		waitFor(t, 5*time.Second, "requests with the new token after the revocation", func() bool {
			return served(t, p.Log, "sa-2") >= revoked+10
		})
		close(stop)
		(<-res).assertNoFailures(t, 100)
		check(t, c, ok)
	})
	t.Run("no secret in klog at -v=10", func(t *testing.T) {
		if !strings.Contains(klogOut.String(), p.URL+"/api/v1/query") || !strings.Contains(klogOut.String(), "Bearer <masked>") {
			t.Fatal("client-go logged no request headers: the check below would prove nothing")
		}
		assertNotLogged(t, secrets...)
	})
}
