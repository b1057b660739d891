package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/explain"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/rules"
)

type explainOptions struct {
	configFile string
	kubeconfig string
	prom       prom.Options
	maxAge     time.Duration
	server     bool
	output     string
	req        explain.Request
	// As `promgate serve`'s flags of the same names: they decide the query
	// a request sends.
	maxNames       int
	batch          bool
	partialWindows bool
}

func newExplainCommand() *cobra.Command {
	o := &explainOptions{
		prom:   prom.Options{URL: "http://localhost:9090/", Timeout: 30 * time.Second},
		maxAge: 10 * time.Minute, output: "text", maxNames: 100, batch: true,
	}
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Show which rule serves a metric, or why none does, and the PromQL a request sends",
		Long: `explain answers "why is my metric not found?".

Without --metric it prints, for every rule, whether its seriesQuery failed,
how many series it kept, which metrics it serves and how many series each
filter or mapping dropped, with examples. With --metric it says which rule
serves the metric on which resources and, for each rule whose series could
have given it, why it does not (filtered by seriesFilters or name.matches,
named otherwise, no label naming a resource, another resource or scope, no
samples within --metrics-max-age, a failing seriesQuery); with --resource
(or --external) and --namespace and --name it shows the PromQL the request
sends, and with --run how many values it gives.

Offline (the default) it runs one discovery with --config against
--prometheus-url, mapping labels to the resources of the cluster of
--kubeconfig. With --server it asks the running promgate of that cluster
instead, through kube-apiserver, with your credentials; it is the same as
  kubectl get --raw '` + explain.Path + `?metric=NAME&resource=pods&namespace=NS'
and needs the promgate-explain ClusterRole (deploy/base/rbac-explain.yaml) and
the right to read the metric explained (docs/security.md#explain).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.configFile, "config", o.configFile, "Path to the rules file (offline).")
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "kubeconfig of the cluster (default: the usual kubeconfig rules).")
	fs.BoolVar(&o.server, "server", o.server, "Ask the running promgate through kube-apiserver instead of running discovery here.")
	fs.StringVarP(&o.output, "output", "o", o.output, "Output format: text or json.")
	fs.StringVar(&o.req.Metric, "metric", o.req.Metric, "The metric to explain; without it, every rule's discovery.")
	fs.StringVar(&o.req.Resource, "resource", o.req.Resource, "The resource the custom metric describes, e.g. pods or deployments.apps.")
	fs.BoolVar(&o.req.External, "external", o.req.External, "Explain an external metric.")
	fs.StringVarP(&o.req.Namespace, "namespace", "n", o.req.Namespace, "The request's namespace.")
	fs.StringVar(&o.req.Name, "name", o.req.Name, "The object (default: all of the namespace).")
	fs.StringVarP(&o.req.LabelSelector, "selector", "l", o.req.LabelSelector, "The request's labelSelector: objects (custom) or series (external).")
	fs.StringVar(&o.req.MetricLabelSelector, "metric-selector", o.req.MetricLabelSelector, "The request's metricLabelSelector (custom).")
	fs.BoolVar(&o.req.Run, "run", o.req.Run, "Run the request's query and count the values it gives.")
	fs.StringVar(&o.prom.URL, "prometheus-url", o.prom.URL, "URL of the Prometheus-compatible API (offline).")
	fs.StringVar(&o.prom.CAFile, "prometheus-ca-file", o.prom.CAFile, "CA bundle for Prometheus.")
	fs.StringVar(&o.prom.TokenFile, "prometheus-token-file", o.prom.TokenFile, "Bearer token file for Prometheus.")
	fs.BoolVar(&o.prom.AllowCredentialsOverHTTP, strings.TrimPrefix(prom.FlagAllowCredentialsOverHTTP, "--"), o.prom.AllowCredentialsOverHTTP, "Allow sending the bearer token to an http:// --prometheus-url, in the clear.")
	fs.DurationVar(&o.prom.Timeout, "prometheus-timeout", o.prom.Timeout, "Timeout of one Prometheus request.")
	fs.DurationVar(&o.maxAge, "metrics-max-age", o.maxAge, "Only series with samples this recent count.")
	fs.IntVar(&o.maxNames, "max-names-in-query", o.maxNames, "As promgate serve's flag: most object names put in one query's regex.")
	fs.BoolVar(&o.batch, "query-batching", o.batch, "As promgate serve's flag: share one query per metric where proven equivalent.")
	fs.BoolVar(&o.partialWindows, "serve-partial-windows", o.partialWindows, "As promgate serve's flag: no guard against partly filled rate windows.")
	return cmd
}

func (o *explainOptions) run(ctx context.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: want text or json", o.output)
	}
	// The flags go through the same checks as the endpoint's parameters.
	if _, err := explain.ParseRequest(o.req.Values()); err != nil {
		return err
	}
	if o.server {
		return o.runServer(ctx, w)
	}
	if o.configFile == "" {
		return errors.New("--config is required (or --server to ask the running promgate)")
	}
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return err
	}
	for _, warning := range cfg.Warnings() {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	backends, err := backend.New(backend.Defaults{Client: o.prom}, cfg.Backends)
	if err != nil {
		return err
	}
	client := backends.Default().Client
	rc, err := o.restConfig()
	if err != nil {
		return err
	}
	mapper, err := newMapper(rc)
	if err != nil {
		return err
	}
	md, err := metadata.NewForConfig(rc)
	if err != nil {
		return err
	}
	snap := catalog.New(customRules, externalRules, client, mapper, o.maxAge).WithBackends(backends.Listers()).WithMethods(backends.Methods()).Refresh(ctx)
	cat := staticCatalog{snap}
	run := &provider.Runner{Backends: backends, PartialWindows: o.partialWindows}
	cp := custom.New(cat, run, objects.New(md, mapper, ctx.Done()), mapper)
	cp.MaxNamesInQuery, cp.Batch = o.maxNames, o.batch
	ep := external.New(cat, run, mapper)
	ep.Batch = o.batch
	e := &explain.Explainer{
		Catalog: cat, Custom: customRules, External: externalRules, Mapper: mapper,
		MaxAge: o.maxAge, Backend: client.Name(), Backends: explainBackends(backends),
		CustomPlanner: cp, ExternalPlanner: ep,
	}
	rep, err := e.Explain(ctx, o.req)
	if err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}

// runServer asks the running promgate, through kube-apiserver.
func (o *explainOptions) runServer(ctx context.Context, w io.Writer) error {
	rc, err := o.restConfig()
	if err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	req := dc.RESTClient().Get().AbsPath(explain.Path)
	for k, vs := range o.req.Values() {
		req = req.Param(k, vs[0])
	}
	if o.output == "json" {
		req = req.Param("format", "json")
	}
	body, err := req.DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("GET %s through kube-apiserver: %w", explain.Path, err)
	}
	_, err = w.Write(body)
	return err
}

func (o *explainOptions) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return rc, nil
}

func newMapper(rc *rest.Config) (apimeta.RESTMapper, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), nil
}

// staticCatalog is one discovery's snapshot, for the providers.
type staticCatalog struct{ snap *catalog.Snapshot }

func (c staticCatalog) Snapshot() *catalog.Snapshot { return c.snap }
