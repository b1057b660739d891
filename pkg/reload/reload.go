// Package reload applies a changed configuration file to a running server:
// it notices the change (the file's content, polled, which also sees a
// ConfigMap's atomic symlink swap; or SIGHUP), has the new configuration
// loaded and checked in full, and only then applies it. A configuration
// that fails is refused: the last good one keeps serving, and the refusal
// is logged, counted and handed to a callback (a Kubernetes Event).
package reload

import (
	"context"
	"crypto/sha256"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// Prepare parses and checks data, the content of the configuration file at
// path, and returns the function that switches the server to it. It must
// not read the file again: data is exactly the content whose hash the
// Watcher records, so a write after the Watcher's read is seen by the next
// poll instead of being applied under the hash of other content. path is
// for messages and for resolving the relative file names in data. Prepare
// must not change anything the server uses: a refused configuration leaves
// the server as it was.
type Prepare func(ctx context.Context, path string, data []byte) (apply func(), err error)

// Watcher reloads Path with Prepare when its content changes or on SIGHUP.
type Watcher struct {
	// Path is the configuration file.
	Path string
	// Interval is how often the file is read for changes (default 5s).
	Interval time.Duration
	// Prepare loads and checks a configuration.
	Prepare Prepare
	// Refused, if set, is told about each refused configuration.
	Refused func(err error)

	mu   sync.Mutex
	hash [sha256.Size]byte
}

// Start records the file's current content as the one the server started
// with, so that only a later change reloads. A write between the server's
// own read and Start's goes unnoticed until the next change: a server
// that has the bytes it loaded should call StartWith instead.
func (w *Watcher) Start() error {
	b, err := os.ReadFile(w.Path)
	if err != nil {
		return err
	}
	w.StartWith(b)
	return nil
}

// StartWith records data, the content the server loaded its configuration
// from, so that any other content of the file reloads. The reload metrics
// count once registered (RegisterMetrics, at start).
func (w *Watcher) StartWith(data []byte) {
	w.mu.Lock()
	w.hash = sha256.Sum256(data)
	w.mu.Unlock()
	lastSuccessful.Set(1)
	lastSuccessTime.SetToCurrentTime()
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	interval := w.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check(ctx, false)
		case <-hup:
			klog.InfoS("SIGHUP: reloading the configuration", "config", w.Path)
			w.Check(ctx, true)
		}
	}
}

// Check reloads when the file changed, or always when force is set. It
// returns whether a new configuration was applied. The file is read once:
// the bytes hashed are the bytes Prepare parses, so the recorded hash is
// always that of the configuration applied (or refused).
func (w *Watcher) Check(ctx context.Context, force bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := os.ReadFile(w.Path)
	if err != nil {
		// A ConfigMap update swaps a symlink; a read in between can fail.
		// The next poll sees the new file.
		if force {
			w.refuse(err)
		}
		return false
	}
	h := sha256.Sum256(b)
	if h == w.hash && !force {
		return false
	}
	apply, err := w.Prepare(ctx, w.Path, b)
	if err != nil {
		w.hash = h // do not retry the same broken content every poll
		w.refuse(err)
		return false
	}
	apply()
	w.hash = h
	reloads.WithLabelValues("success").Inc()
	lastSuccessful.Set(1)
	lastSuccessTime.SetToCurrentTime()
	klog.InfoS("Configuration reloaded", "config", w.Path)
	return true
}

func (w *Watcher) refuse(err error) {
	reloads.WithLabelValues("failure").Inc()
	lastSuccessful.Set(0)
	klog.ErrorS(err, "Configuration refused; the last good one keeps serving", "config", w.Path)
	if w.Refused != nil {
		w.Refused(err)
	}
}

var (
	reloads = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_config_reloads_total",
		Help:           "Configuration reloads attempted, by result (success, failure).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	lastSuccessful = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "promgate_config_last_reload_successful",
		Help:           "1 if the last configuration reload (or the start) succeeded, 0 if the current file was refused.",
		StabilityLevel: metrics.ALPHA,
	})
	lastSuccessTime = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "promgate_config_last_reload_success_timestamp_seconds",
		Help:           "When the configuration in use was loaded, as a Unix time.",
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once
)

// RegisterMetrics registers the reload metrics with the legacy registry,
// once at start (server.RegisterMetrics); later calls do nothing. Until
// then the metrics do not count.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(reloads, lastSuccessful, lastSuccessTime)
	})
}
