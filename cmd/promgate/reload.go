package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/reload"
	"github.com/promgate/promgate/pkg/rules"
)

// resourceGetter is the metrics.k8s.io getter a reload can replace.
type resourceGetter struct {
	p atomic.Pointer[resource.Provider]
}

func (g *resourceGetter) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	return g.p.Load().GetPodMetrics(pods...)
}

func (g *resourceGetter) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	return g.p.Load().GetNodeMetrics(nodes...)
}

// reloader builds the configuration watcher: a changed file is parsed
// (from the bytes the watcher hashed, never a second read), compiled and
// checked whole, then swapped in (rules into discovery, which keeps
// serving the current snapshot until the new rules' discovery is done;
// resource rules into metrics.k8s.io). In-flight requests finish with the
// rules they started with.
func (o *serveOptions) reloader(disc *catalog.Discoverer, backends *backend.Set, mapper apimeta.RESTMapper, rg *resourceGetter, restConfig *rest.Config) *reload.Watcher {
	return &reload.Watcher{
		Path:     o.configFile,
		Interval: o.reloadInterval,
		Prepare: func(ctx context.Context, path string, data []byte) (func(), error) {
			cfg, err := config.ParseFile(path, data)
			if err != nil {
				return nil, err
			}
			if why := backends.Changed(cfg); why != "" {
				return nil, fmt.Errorf("config %s: the new configuration %s: backends are applied at start, so that needs a restart", path, why)
			}
			customRules, externalRules, err := rules.Compile(cfg)
			if err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
			var rp *resource.Provider
			switch {
			case rg != nil && cfg.ResourceRules == nil:
				return nil, errors.New("resourceRules were removed: metrics.k8s.io is served, so that needs a restart (or --enable-resource-metrics=false)")
			case rg != nil:
				rp, err = o.resourceProvider(cfg.ResourceRules, backends, mapper)
				if err != nil {
					return nil, fmt.Errorf("config %s: %w", path, err)
				}
			case cfg.ResourceRules != nil && o.resourceAPI:
				klog.InfoS("resourceRules added: metrics.k8s.io is served after a restart", "config", path)
			}
			for _, w := range configWarnings(cfg, customRules, externalRules) {
				klog.InfoS("Config loaded with a warning: prometheus-adapter accepts this, promgate cannot check it", "config", path, "warning", w)
			}
			return func() {
				disc.SetRules(customRules, externalRules)
				if rp != nil {
					rg.p.Store(rp)
				}
				go disc.Refresh(ctx)
			}, nil
		},
		Refused: podEvents(restConfig),
	}
}

// podEvents returns a function that records a refused configuration as a
// Warning Event on promgate's Pod, when POD_NAME and POD_NAMESPACE are set
// (the Deployment sets them from the downward API) and promgate may
// create Events there; otherwise nil (the log and the metrics say it).
func podEvents(restConfig *rest.Config) func(error) {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" || restConfig == nil {
		return nil
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil
	}
	return func(refused error) {
		now := metav1.NewTime(time.Now())
		msg := refused.Error()
		if len(msg) > 1000 {
			msg = msg[:1000] + "..."
		}
		ev := &corev1.Event{
			ObjectMeta:          metav1.ObjectMeta{GenerateName: name + ".", Namespace: ns},
			InvolvedObject:      corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, APIVersion: "v1"},
			Reason:              "ConfigRefused",
			Message:             msg,
			Type:                corev1.EventTypeWarning,
			Source:              corev1.EventSource{Component: "promgate"},
			FirstTimestamp:      now,
			LastTimestamp:       now,
			Count:               1,
			ReportingController: "promgate",
			ReportingInstance:   name,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cs.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			klog.V(2).InfoS("Could not record the refused configuration as an Event (grant create on events in promgate's namespace to get one)", "err", err)
		}
	}
}
