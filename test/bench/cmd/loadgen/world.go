package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/test/bench/fakeprom"
)

// world is the running loopback world, as test/e2e/hack/world.sh wrote it
// into its run directory.
type world struct {
	runDir       string
	env          map[string]string
	apiserverURL string
	promgateURL  string
	kubectl      string
	kubeconfig   string
	fakepromURL  string
	backendPID   int    // a real Prometheus behind the fake one; 0: none
	backendURL   string // its URL; "": not known
	accept       string // Accept header of the metrics requests (JSON when empty)

	direct     *http.Client // to promgate, as kube-apiserver's front proxy
	aggregated *http.Client // to kube-apiserver, as kubernetes-admin
	plain      *http.Client // to the fake Prometheus
}

func loadWorld(runDir, fakepromURL string, http2 bool) (*world, error) {
	w := &world{runDir: runDir, env: map[string]string{}, fakepromURL: strings.TrimSuffix(fakepromURL, "/")}
	f, err := os.Open(filepath.Join(runDir, "env"))
	if err != nil {
		return nil, fmt.Errorf("the world is not up (no %s/env): %w", runDir, err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export ")
		if !ok {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			w.env[k] = strings.Trim(v, "'")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	w.apiserverURL = w.env["E2E_APISERVER_URL"]
	w.promgateURL = w.env["E2E_PROMGATE_URL"]
	w.kubectl = w.env["E2E_KUBECTL"]
	w.kubeconfig = w.env["KUBECONFIG"]
	pki := w.env["E2E_PKI_DIR"]
	if w.apiserverURL == "" || pki == "" {
		return nil, fmt.Errorf("%s/env lacks E2E_APISERVER_URL or E2E_PKI_DIR", runDir)
	}
	if w.direct, err = tlsClient(filepath.Join(pki, "promgate-ca.crt"), filepath.Join(pki, "front-proxy-client"), http2); err != nil {
		return nil, err
	}
	if w.aggregated, err = tlsClient(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin"), http2); err != nil {
		return nil, err
	}
	w.plain = &http.Client{Timeout: 30 * time.Second}
	return w, nil
}

// tlsClient returns a client trusting caFile that presents the client
// certificate <cert>.crt/<cert>.key, over HTTP/2 when h2 (one connection
// multiplexing every request, as client-go does), else over HTTP/1.1 (one
// connection per concurrent request).
func tlsClient(caFile, cert string, h2 bool) (*http.Client, error) {
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
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no HTTP/2
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// target is where requests go: promgate directly or through kube-apiserver.
type target struct {
	name   string
	base   string
	client *http.Client
	header http.Header
	accept string // the Accept header (JSON when empty)
}

func (w *world) target(name string) (target, error) {
	switch name {
	case "direct":
		if w.promgateURL == "" {
			return target{}, fmt.Errorf("promgate is not registered in %s", w.runDir)
		}
		// requestheader authentication: promgate trusts these headers from a
		// client presenting the front-proxy-client certificate.
		h := http.Header{}
		h.Set("X-Remote-User", "kubernetes-admin")
		h.Set("X-Remote-Group", "system:masters")
		return target{name: name, base: w.promgateURL, client: w.direct, header: h, accept: w.accept}, nil
	case "aggregated":
		return target{name: name, base: w.apiserverURL, client: w.aggregated, header: http.Header{}, accept: w.accept}, nil
	}
	return target{}, fmt.Errorf("unknown target %q (direct or aggregated)", name)
}

// get sends one GET and returns the status code and body.
func (t target) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", cmp.Or(t.accept, "application/json"))
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// --- the fake Prometheus ------------------------------------------------------------------

func (w *world) fakeprom(ctx context.Context, method, path string, form url.Values) ([]byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, w.fakepromURL+path, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.plain.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fake Prometheus %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fake Prometheus %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (w *world) resetStats(ctx context.Context) error {
	_, err := w.fakeprom(ctx, http.MethodPost, "/stats/reset", url.Values{})
	return err
}

func (w *world) stats(ctx context.Context) (fakeprom.Stats, error) {
	var st fakeprom.Stats
	b, err := w.fakeprom(ctx, http.MethodGet, "/stats", nil)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// queriesByCycle counts the backend's queries in each of cycles periods
// from start, sending the counts once the last period has ended.
func (w *world) queriesByCycle(ctx context.Context, start time.Time, period time.Duration, cycles int) <-chan []int64 {
	out := make(chan []int64, 1)
	go func() {
		var counts []int64
		defer func() { out <- counts }()
		st, err := w.stats(ctx)
		if err != nil {
			return
		}
		last := st.Queries
		for c := 1; c <= cycles; c++ {
			select {
			case <-time.After(time.Until(start.Add(time.Duration(c) * period))):
			case <-ctx.Done():
				return
			}
			if st, err = w.stats(ctx); err != nil {
				return
			}
			counts = append(counts, st.Queries-last)
			last = st.Queries
		}
	}()
	return out
}

func (w *world) setLatency(ctx context.Context, d time.Duration) error {
	_, err := w.fakeprom(ctx, http.MethodPost, "/control/latency", url.Values{"d": {d.String()}})
	return err
}

// --- kube-apiserver's request counters ----------------------------------------------------

// listCounts are kube-apiserver's LIST requests so far, from
// apiserver_request_total{verb="LIST"}. Requests for the metrics APIs
// promgate serves (which kube-apiserver proxies) are not LISTs against
// kube-apiserver's storage and are left out.
type listCounts struct {
	Total float64 `json:"total"`
	Pods  float64 `json:"pods"`
	// ByResource counts LISTs by group/resource (core resources without a
	// group), to tell whose they were.
	ByResource map[string]float64 `json:"byResource,omitempty"`
}

// minus returns c - o.
func (c listCounts) minus(o listCounts) listCounts {
	out := listCounts{Total: c.Total - o.Total, Pods: c.Pods - o.Pods}
	for k, v := range c.ByResource {
		if d := v - o.ByResource[k]; d != 0 {
			if out.ByResource == nil {
				out.ByResource = map[string]float64{}
			}
			out.ByResource[k] = d
		}
	}
	return out
}

var servedGroups = map[string]bool{"metrics.k8s.io": true, "custom.metrics.k8s.io": true, "external.metrics.k8s.io": true}

func (w *world) lists(ctx context.Context) (listCounts, error) {
	var out listCounts
	t, err := w.target("aggregated")
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.base+"/metrics", nil)
	if err != nil {
		return out, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := t.client.Do(req)
	if err != nil {
		return out, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("kube-apiserver /metrics: %s", resp.Status)
	}
	// Only the one family is parsed: the rest of /metrics is large.
	var buf bytes.Buffer
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("apiserver_request_total{")) ||
			bytes.HasPrefix(line, []byte("# HELP apiserver_request_total ")) ||
			bytes.HasPrefix(line, []byte("# TYPE apiserver_request_total ")) {
			buf.Write(line)
			buf.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return out, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		return out, fmt.Errorf("parsing apiserver_request_total: %w", err)
	}
	fam := fams["apiserver_request_total"]
	if fam == nil {
		return out, fmt.Errorf("kube-apiserver /metrics has no apiserver_request_total")
	}
	for _, m := range fam.GetMetric() {
		l := labelsOf(m)
		if l["verb"] != "LIST" || servedGroups[l["group"]] {
			continue
		}
		v := m.GetCounter().GetValue()
		out.Total += v
		if out.ByResource == nil {
			out.ByResource = map[string]float64{}
		}
		gr := l["resource"]
		if l["group"] != "" {
			gr = l["group"] + "/" + gr
		}
		out.ByResource[gr] += v
		if l["resource"] == "pods" && l["group"] == "" {
			out.Pods += v
		}
	}
	return out, nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// --- process accounting --------------------------------------------------------------------

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

// procPID returns the pid world.sh recorded for a component.
func (w *world) procPID(name string) (int, error) {
	b, err := os.ReadFile(filepath.Join(w.runDir, "pids", name+".pid"))
	if err != nil {
		return 0, fmt.Errorf("%s is not running: %w", name, err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty pid file for %s", name)
	}
	return strconv.Atoi(f[0])
}

// cpuSeconds returns a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return (u + st) / clockTicks, nil
}

// peakRSSMiB returns a process's VmHWM (peak resident set size) in MiB.
func peakRSSMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// meter takes the before/after readings every scenario reports.
type meter struct {
	w             *world
	promgatePID   int
	apiserverPID  int
	cpu0, apiCPU0 float64
	backendCPU0   float64
	selfCPU0      float64
	lists0        listCounts
	start         time.Time
}

func (w *world) startMeter(ctx context.Context) (*meter, error) {
	m := &meter{w: w}
	var err error
	if m.promgatePID, err = w.procPID("promgate"); err != nil {
		return nil, err
	}
	if m.apiserverPID, err = w.procPID("kube-apiserver"); err != nil {
		return nil, err
	}
	if err := w.resetStats(ctx); err != nil {
		return nil, err
	}
	if m.lists0, err = w.lists(ctx); err != nil {
		return nil, err
	}
	if m.cpu0, err = cpuSeconds(m.promgatePID); err != nil {
		return nil, err
	}
	if m.apiCPU0, err = cpuSeconds(m.apiserverPID); err != nil {
		return nil, err
	}
	if w.backendPID != 0 {
		if m.backendCPU0, err = cpuSeconds(w.backendPID); err != nil {
			return nil, fmt.Errorf("the real Prometheus (pid %d): %w", w.backendPID, err)
		}
	}
	m.selfCPU0 = selfCPU()
	m.start = time.Now()
	return m, nil
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// stop fills in the shared fields of r.
func (m *meter) stop(ctx context.Context, r *Result) error {
	r.WallSeconds = time.Since(m.start).Seconds()
	r.LoadgenCPUSeconds = selfCPU() - m.selfCPU0
	cpu, err := cpuSeconds(m.promgatePID)
	if err != nil {
		return fmt.Errorf("promgate (pid %d) is gone: %w", m.promgatePID, err)
	}
	r.PromgateCPUSeconds = cpu - m.cpu0
	if r.PromgatePeakRSSMiB, err = peakRSSMiB(m.promgatePID); err != nil {
		return err
	}
	if api, err := cpuSeconds(m.apiserverPID); err == nil {
		r.APIServerCPUSeconds = api - m.apiCPU0
	}
	r.Backend = "fake"
	if m.w.backendPID != 0 {
		r.Backend = "prometheus"
		cpu, err := cpuSeconds(m.w.backendPID)
		if err != nil {
			return fmt.Errorf("the real Prometheus (pid %d) is gone: %w", m.w.backendPID, err)
		}
		r.BackendCPUSeconds = cpu - m.backendCPU0
	}
	st, err := m.w.stats(ctx)
	if err != nil {
		return err
	}
	r.PromQueries = st.Queries
	r.PromQueryErrors = st.Errors
	r.DistinctQueries = len(st.ByQuery)
	r.Queries = queryTexts(st.ByQuery)
	r.BackendSeconds = st.QuerySeconds
	r.BackendLatency = st.Latency
	r.Layout = st.Layout
	r.Pods = layoutPods(st.Layout)
	lists, err := m.w.lists(ctx)
	if err != nil {
		return err
	}
	r.Lists = lists.minus(m.lists0)
	return nil
}

func layoutPods(spec string) int {
	l, err := fakeprom.ParseLayout(spec)
	if err != nil {
		return 0
	}
	return l.Pods()
}

// heapProfile writes promgate's heap profile (its /debug/pprof/heap: the
// live objects at the last GC, and what was allocated since the start)
// into file, asking as cpuProfile does. An empty file name does nothing.
func (w *world) heapProfile(ctx context.Context, file string) error {
	if file == "" {
		return nil
	}
	t, err := w.target("direct")
	if err != nil {
		return err
	}
	t.accept = ""
	code, body, err := t.get(ctx, "/debug/pprof/heap")
	switch {
	case err != nil:
		return err
	case code != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.200s", code, body)
	}
	return os.WriteFile(file, body, 0o644)
}

// counters returns promgate's self-metrics whose names start with one of
// prefixes, by series (as /metrics writes them), asking as for the heap
// profile.
func (w *world) counters(ctx context.Context, prefixes ...string) (map[string]float64, error) {
	t, err := w.target("direct")
	if err != nil {
		return nil, err
	}
	t.accept = ""
	code, body, err := t.get(ctx, "/metrics")
	switch {
	case err != nil:
		return nil, err
	case code != http.StatusOK:
		return nil, fmt.Errorf("HTTP %d: %.200s", code, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		for _, p := range prefixes {
			if !strings.HasPrefix(line, p) {
				continue
			}
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
					out[line[:i]] = v
				}
			}
		}
	}
	return out, nil
}

// cpuProfile fetches promgate's CPU profile over the next d (less a
// second, so that it ends within the measured time) into file, asking as
// kube-apiserver's front proxy for an administrator; the channel gets the
// outcome. An empty file name sends nil at once.
func (w *world) cpuProfile(ctx context.Context, file string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	if file == "" {
		done <- nil
		return done
	}
	t, err := w.target("direct")
	if err != nil {
		done <- err
		return done
	}
	t.accept = ""
	secs := max(int(d.Seconds())-1, 1)
	go func() {
		code, body, err := t.get(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
		switch {
		case err != nil:
		case code != http.StatusOK:
			err = fmt.Errorf("HTTP %d: %.200s", code, body)
		default:
			err = os.WriteFile(file, body, 0o644)
		}
		done <- err
	}()
	return done
}

// backendProfile writes the CPU profile of d of a real Prometheus at url
// (its /debug/pprof/profile) into file, from now. An empty file name does
// nothing.
func backendProfile(ctx context.Context, url, file string, d time.Duration) <-chan error {
	done := make(chan error, 1)
	if file == "" || url == "" {
		done <- nil
		return done
	}
	go func() {
		c := &http.Client{Timeout: d + 30*time.Second}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(url, "/"), int(d.Seconds())), nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := c.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
		case resp.StatusCode != http.StatusOK:
			err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
		default:
			err = os.WriteFile(file, body, 0o644)
		}
		done <- err
	}()
	return done
}

// scrapeHealth is how the real Prometheus scraped during a row: a series
// missing from one answer (a rate over a window with fewer than two
// samples) comes back as new, and the guard holds it back for a window.
type scrapeHealth struct {
	// FailedScrapes are the scrapes whose up was 0.
	FailedScrapes float64 `json:"failedScrapes"`
	// SlowestScrapeSeconds is the longest scrape_duration_seconds.
	SlowestScrapeSeconds float64 `json:"slowestScrapeSeconds"`
	// ThinWindows is, at the worst of the row's 15 s steps, how many
	// container CPU series (of the default resource rule) had fewer than
	// two samples in the last minute: series rate() leaves out.
	ThinWindows float64 `json:"thinWindows"`
	// Errors are the readings that failed.
	Errors []string `json:"errors,omitempty"`
}

// scrapeHealth reads the real Prometheus' scraping over the last d, or
// nil without one. A failed reading is recorded in the result, not
// returned: it is a diagnostic beside the row.
func (w *world) scrapeHealth(ctx context.Context, d time.Duration) *scrapeHealth {
	if w.backendURL == "" {
		return nil
	}
	secs := max(int(d.Seconds()), 15)
	h := &scrapeHealth{}
	backend, err := prom.New(prom.Options{URL: w.backendURL, Timeout: time.Minute})
	if err != nil {
		h.Errors = append(h.Errors, err.Error())
		return h
	}
	for _, q := range []struct {
		query string
		into  *float64
	}{
		{fmt.Sprintf("sum(count_over_time(up[%[1]ds])) - sum(sum_over_time(up[%[1]ds]))", secs), &h.FailedScrapes},
		{fmt.Sprintf("max(max_over_time(scrape_duration_seconds[%ds]))", secs), &h.SlowestScrapeSeconds},
		{fmt.Sprintf(`max_over_time(count(count_over_time(container_cpu_usage_seconds_total{container!="",container!="POD"}[1m]) < 2)[%ds:15s])`, secs), &h.ThinWindows},
	} {
		vec, err := backend.Query(ctx, q.query, time.Now())
		if err != nil {
			h.Errors = append(h.Errors, fmt.Sprintf("%s: %v", q.query, err))
			continue
		}
		if len(vec) > 0 { // an empty answer: none
			*q.into = float64(vec[0].Value)
		}
	}
	return h
}

// queryTextBytes is how much of a query's text Result.Queries keeps: its
// start and its end.
const queryTextBytes = 240

// queryTexts counts byQuery's queries by the start of their text (at most
// 200 keys, so a run of distinct texts keeps the report small).
func queryTexts(byQuery map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for q, n := range byQuery {
		if len(q) > queryTextBytes {
			q = strings.ToValidUTF8(q[:queryTextBytes*2/3], "") + "…" + strings.ToValidUTF8(q[len(q)-queryTextBytes/3:], "")
		}
		if _, ok := out[q]; !ok && len(out) >= 200 {
			q = "(others)"
		}
		out[q] += n
	}
	return out
}
