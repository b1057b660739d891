package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// world is the loopback world test/e2e/hack/world.sh wrote into its run
// directory, with promgate registered (as test/bench/cmd/loadgen reads it).
type world struct {
	promgateURL  string
	apiserverURL string
	fakepromURL  string
	direct       *http.Client // to promgate, presenting kube-apiserver's front-proxy certificate
	aggregated   *http.Client // to kube-apiserver, as kubernetes-admin
	plain        *http.Client // to the fake Prometheus
}

func loadWorld(runDir, fakepromURL string) (*world, error) {
	env, err := readEnv(filepath.Join(runDir, "env"))
	if err != nil {
		return nil, fmt.Errorf("the world is not up: %w", err)
	}
	w := &world{
		promgateURL:  env["E2E_PROMGATE_URL"],
		apiserverURL: env["E2E_APISERVER_URL"],
		fakepromURL:  strings.TrimSuffix(fakepromURL, "/"),
		plain:        &http.Client{Timeout: 30 * time.Second},
	}
	pki := env["E2E_PKI_DIR"]
	if w.promgateURL == "" || w.apiserverURL == "" || pki == "" {
		return nil, fmt.Errorf("%s/env lacks E2E_PROMGATE_URL, E2E_APISERVER_URL or E2E_PKI_DIR: is promgate registered?", runDir)
	}
	if w.direct, err = tlsClient(filepath.Join(pki, "promgate-ca.crt"), filepath.Join(pki, "front-proxy-client")); err != nil {
		return nil, err
	}
	if w.aggregated, err = tlsClient(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin")); err != nil {
		return nil, err
	}
	return w, nil
}

// readEnv reads the `export K='V'` lines of world.sh's env file.
func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env, sc.Err()
}

// tlsClient trusts caFile and presents <cert>.crt/<cert>.key, over HTTP/2
// (one multiplexed connection, as client-go and kube-apiserver's proxy use).
func tlsClient(caFile, cert string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", caFile)
	}
	kp, err := tls.LoadX509KeyPair(cert+".crt", cert+".key")
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// target is where requests go: promgate directly or through kube-apiserver.
type target struct {
	base   string
	client *http.Client
	header http.Header
}

func (w *world) target(name string) (target, error) {
	switch name {
	case "direct":
		// requestheader authentication: promgate trusts these headers from
		// a client presenting the front-proxy-client certificate.
		h := http.Header{}
		h.Set("X-Remote-User", "kubernetes-admin")
		h.Set("X-Remote-Group", "system:masters")
		return target{base: w.promgateURL, client: w.direct, header: h}, nil
	case "aggregated":
		return target{base: w.apiserverURL, client: w.aggregated, header: http.Header{}}, nil
	}
	return target{}, fmt.Errorf("unknown target %q (direct or aggregated)", name)
}

// get sends one GET and returns the status code and body.
func (t target) get(ctx context.Context, path, accept string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", accept)
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// selfMetrics are the gauges of promgate's own /metrics the soak follows.
type selfMetrics struct {
	RSSBytes   float64 `json:"rssBytes"`   // process_resident_memory_bytes
	Goroutines float64 `json:"goroutines"` // go_goroutines
	HeapBytes  float64 `json:"heapBytes"`  // go_memstats_heap_inuse_bytes (0 if absent)
	OpenFDs    float64 `json:"openFDs"`    // process_open_fds (0 if absent)
	// BudgetBytes is the sum of promgate_memory_budget_bytes{kind} over
	// the kinds, BudgetByKind each of them, BudgetLimit
	// promgate_memory_budget_limit_bytes (all 0 or empty if absent).
	BudgetBytes  float64            `json:"budgetBytes,omitempty"`
	BudgetByKind map[string]float64 `json:"budgetByKind,omitempty"`
	BudgetLimit  float64            `json:"budgetLimitBytes,omitempty"`
}

// budgetMetric is the memory budget's gauge of the bytes kept, by kind.
const budgetMetric = "promgate_memory_budget_bytes"

// scrape reads promgate's /metrics (directly, as kube-apiserver's front
// proxy: kube-apiserver does not proxy an aggregated server's /metrics).
func (w *world) scrape(ctx context.Context) (selfMetrics, error) {
	var m selfMetrics
	t, _ := w.target("direct")
	code, body, err := t.get(ctx, "/metrics", "text/plain")
	if err != nil {
		return m, fmt.Errorf("promgate /metrics: %w", err)
	}
	if code != http.StatusOK {
		return m, fmt.Errorf("promgate /metrics: HTTP %d", code)
	}
	return parseSelfMetrics(body)
}

// parseSelfMetrics picks the gauges of selfMetrics out of a text
// exposition; process_resident_memory_bytes and go_goroutines must be there.
func parseSelfMetrics(body []byte) (selfMetrics, error) {
	var m selfMetrics
	dst := map[string]*float64{
		"process_resident_memory_bytes":      &m.RSSBytes,
		"go_goroutines":                      &m.Goroutines,
		"go_memstats_heap_inuse_bytes":       &m.HeapBytes,
		"process_open_fds":                   &m.OpenFDs,
		"promgate_memory_budget_limit_bytes": &m.BudgetLimit,
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if kind, ok := budgetKind(line); ok {
			_, val, _ := strings.Cut(line, "} ")
			v, err := strconv.ParseFloat(firstField(val), 64)
			if err != nil {
				return m, fmt.Errorf("promgate /metrics: %s{kind=%q}: %w", budgetMetric, kind, err)
			}
			if m.BudgetByKind == nil {
				m.BudgetByKind = map[string]float64{}
			}
			m.BudgetByKind[kind] += v
			m.BudgetBytes += v
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		p := dst[name]
		if !ok || p == nil {
			continue
		}
		v, err := strconv.ParseFloat(firstField(val), 64)
		if err != nil {
			return m, fmt.Errorf("promgate /metrics: %s: %w", name, err)
		}
		*p, seen[name] = v, true
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines"} {
		if !seen[name] {
			return m, fmt.Errorf("promgate /metrics has no %s", name)
		}
	}
	return m, nil
}

// firstField returns the first field of s ("" if none).
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// budgetKind returns the kind of a promgate_memory_budget_bytes{kind="K"}
// sample line.
func budgetKind(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, budgetMetric+"{")
	if !ok {
		return "", false
	}
	labels, _, ok := strings.Cut(rest, "}")
	if !ok {
		return "", false
	}
	for _, l := range strings.Split(labels, ",") {
		if v, ok := strings.CutPrefix(l, `kind="`); ok {
			return strings.TrimSuffix(v, `"`), true
		}
	}
	return "", true
}

// backendStats returns the fake Prometheus' counters (GET /stats).
func (w *world) backendStats(ctx context.Context) (fakeprom.Stats, error) {
	var st fakeprom.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.fakepromURL+"/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := w.plain.Do(req)
	if err != nil {
		return st, fmt.Errorf("fake Prometheus /stats: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("fake Prometheus /stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// resetBackendStats zeroes them (POST /stats/reset).
func (w *world) resetBackendStats(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.fakepromURL+"/stats/reset", nil)
	if err != nil {
		return err
	}
	resp, err := w.plain.Do(req)
	if err != nil {
		return fmt.Errorf("fake Prometheus /stats/reset: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fake Prometheus /stats/reset: %s", resp.Status)
	}
	return nil
}
