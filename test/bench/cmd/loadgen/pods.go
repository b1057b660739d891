package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// ensurePods makes the cluster hold (at least) the pods of layout, all
// Running on kwok's nodes, and then points the fake Prometheus at
// seriesSpec's layout (the same when empty, so that every pod has series
// and every series a pod; a larger one that begins with layout's
// namespaces gives series to pods the cluster does not have, as a
// Prometheus shared by several clusters does).
func ensurePods(ctx context.Context, w *world, spec, seriesSpec string, nodes int, timeout time.Duration) error {
	layout, err := fakeprom.ParseLayout(spec)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", w.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()

	type job struct {
		ns   string
		j, g int
	}
	var jobs []job
	g := 0
	for _, ns := range layout {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
		existing, err := cs.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, p := range existing.Items {
			have[p.Name] = true
		}
		for j := range ns.Pods {
			if !have[fakeprom.PodName(j)] {
				jobs = append(jobs, job{ns.Name, j, g + j})
			}
		}
		g += ns.Pods
	}
	logf("creating %d pods (layout %s, %d pods in all)", len(jobs), summarizeLayout(layout), layout.Pods())

	ch := make(chan job)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range ch {
				if err := createPod(ctx, cs, jb.ns, jb.j, jb.g, nodes); err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
				}
			}
		}()
	}
feed:
	for _, jb := range jobs {
		select {
		case ch <- jb:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	logf("created %d pods in %.1fs; waiting for them to be Running", len(jobs), time.Since(start).Seconds())

	want := layout.Pods()
	for {
		running, err := countRunning(ctx, cs)
		if err != nil {
			return err
		}
		if running >= want {
			logf("%d pods Running after %.1fs", running, time.Since(start).Seconds())
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d pods Running after %v", running, want, time.Since(start).Round(time.Second))
		case <-time.After(2 * time.Second):
		}
	}
	if seriesSpec == "" {
		seriesSpec = spec
	} else {
		series, err := fakeprom.ParseLayout(seriesSpec)
		if err != nil {
			return fmt.Errorf("series layout: %w", err)
		}
		if len(series) < len(layout) || !slices.Equal(series[:len(layout)], layout) {
			return fmt.Errorf("series layout %s does not begin with the pods' layout %s", summarizeLayout(series), summarizeLayout(layout))
		}
	}
	_, err = w.fakeprom(ctx, http.MethodPost, "/control/layout", url.Values{"layout": {seriesSpec}, "nodes": {strconv.Itoa(nodes)}})
	return err
}

func createPod(ctx context.Context, cs kubernetes.Interface, ns string, j, g, nodes int) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fakeprom.PodName(j), Namespace: ns, Labels: map[string]string{"app": fakeprom.AppName(j)}},
		Spec: corev1.PodSpec{
			// Bound directly to its kwok node (as fakeprom's series say), without the scheduler.
			NodeName:    fakeprom.NodeName(g % nodes),
			Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
			Containers:  []corev1.Container{{Name: "c-0", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	// A new namespace's default ServiceAccount appears a moment after it:
	// until then the ServiceAccount admission plugin refuses pods.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pod %s/%s: %w", ns, pod.Name, err)
}

func countRunning(ctx context.Context, cs kubernetes.Interface) (int, error) {
	n := 0
	cont := ""
	for range 1000 { // at most 1000 pages of 500
		list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running", Limit: 500, Continue: cont})
		if err != nil {
			return 0, err
		}
		n += len(list.Items)
		cont = list.Continue
		if cont == "" {
			break
		}
	}
	return n, nil
}

func summarizeLayout(l fakeprom.Layout) string {
	if len(l) <= 3 {
		return l.String()
	}
	return fmt.Sprintf("%s=%d … %s=%d (%d namespaces)", l[0].Name, l[0].Pods, l[len(l)-1].Name, l[len(l)-1].Pods, len(l))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[loadgen %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
