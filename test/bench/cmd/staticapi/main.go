// Command staticapi is the floor of promgate's request path, for the
// benchmark: an aggregated API server built like promgate (the same
// custom-metrics-apiserver and k8s.io/apiserver, the same delegated
// authentication and authorization, the same flags) whose custom metrics
// provider answers every Pods request for its metric with a list prepared
// at start: N pods of the namespace, shaped as promgate's answer (described
// object, metric with selector, timestamp, window, a milli-quantity value).
// What it costs per request is what the library costs to authenticate,
// authorize, convert and encode an answer of that size; promgate's p99 and
// CPU per request are compared with it (make bench, docs/performance.md).
//
// world.sh register-promgate starts it in promgate's place
// (PROMGATE_BIN=staticapi): flags it does not know (promgate's own) are
// ignored.
package main

import (
	"context"
	goflag "flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "staticapi:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	base := &basecmd.AdapterBase{Name: "staticapi", FlagSet: pflag.NewFlagSet("staticapi", pflag.ContinueOnError)}
	fs := base.Flags()
	pods := fs.Int("pods", 300, "pods in every namespace's answer")
	metric := fs.String("metric", "http_requests_per_second", "the one Pods metric served")
	// promgate's own flags, which world.sh and the benchmark pass
	// (--name=value), are ignored.
	fs.ParseErrorsAllowlist.UnknownFlags = true
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	base.WithCustomMetrics(newProvider(*metric, *pods))
	srv, err := base.Server()
	if err != nil {
		return err
	}
	klog.InfoS("starting staticapi", "metric", *metric, "pods", *pods)
	return srv.GenericAPIServer.PrepareRun().RunWithContext(genericapiserver.SetupSignalContext())
}

// provider serves one Pods metric from a prepared list.
type provider struct {
	info  cmprovider.CustomMetricInfo
	items []custom_metrics.MetricValue // namespace left empty
}

func newProvider(metric string, pods int) *provider {
	p := &provider{info: cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: metric}}
	window := int64(60)
	now := metav1.NewTime(time.Now())
	for j := range pods {
		p.items = append(p.items, custom_metrics.MetricValue{
			DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "/v1", Name: "pod-" + strconv.Itoa(j)},
			Metric:          custom_metrics.MetricIdentifier{Name: metric},
			Timestamp:       now,
			WindowSeconds:   &window,
			Value:           *resource.NewMilliQuantity(int64(10000+100*(j%10)), resource.DecimalSI),
		})
	}
	return p
}

func (p *provider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	return []cmprovider.CustomMetricInfo{p.info}
}

func (p *provider) GetMetricByName(_ context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValue, error) {
	if info != p.info {
		return nil, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	v := p.items[0]
	v.DescribedObject.Namespace, v.DescribedObject.Name = name.Namespace, name.Name
	return &v, nil
}

func (p *provider) GetMetricBySelector(_ context.Context, namespace string, _ labels.Selector, info cmprovider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValueList, error) {
	if info != p.info {
		return nil, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	items := make([]custom_metrics.MetricValue, len(p.items))
	copy(items, p.items)
	for i := range items {
		items[i].DescribedObject.Namespace = namespace
	}
	return &custom_metrics.MetricValueList{Items: items}, nil
}
