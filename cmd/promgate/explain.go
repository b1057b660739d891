package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/promgate/promgate/pkg/explain"
	"github.com/promgate/promgate/pkg/server"
)

// explainPrometheusTimeout is offline explain's --prometheus-timeout
// default: its one discovery lists every series at once, with no relist
// to retry, so it waits longer than a serving request (10s).
const explainPrometheusTimeout = 30 * time.Second

// explainOptions are the flags of "promgate explain". The Prometheus,
// discovery and query flags are serve's, with serve's defaults (but
// --prometheus-timeout), so that offline explain reports what the server
// serves and the query it sends.
type explainOptions struct {
	configFile string
	kubeconfig string
	server     bool
	output     string
	req        explain.Request

	prometheus *PrometheusOptions
	discovery  *DiscoveryOptions
	query      *QueryOptions
}

func newExplainOptions() *explainOptions {
	o := &explainOptions{output: "text", prometheus: NewPrometheusOptions(), discovery: NewDiscoveryOptions(), query: NewQueryOptions()}
	o.prometheus.Client.Timeout = explainPrometheusTimeout
	return o
}

// Flags returns explain's flags, by section.
func (o *explainOptions) Flags() cliflag.NamedFlagSets {
	fss := cliflag.NamedFlagSets{}
	fs := fss.FlagSet("explain")
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
	o.prometheus.AddFlags(fss.FlagSet("prometheus (offline)"))
	o.discovery.AddFlags(fss.FlagSet("discovery (offline)"))
	o.query.AddFlags(fss.FlagSet("query (offline)"))
	return fss
}

func newExplainCommand() *cobra.Command {
	o := newExplainOptions()
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
--kubeconfig, with serve's flags and defaults. With --server it asks the
running promgate of that cluster instead, through kube-apiserver, with your
credentials; it is the same as
  kubectl get --raw '` + explain.Path + `?metric=NAME&resource=pods&namespace=NS'
and needs the promgate-explain ClusterRole (deploy/base/rbac-explain.yaml) and
the right to read the metric explained (docs/security.md#explain).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fss := o.Flags()
	addFlagSets(cmd, fss)
	setSectionedHelp(cmd, fss)
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
		rc, err := o.restConfig()
		if err != nil {
			return err
		}
		return server.ExplainRemote(ctx, rc, o.req, o.output == "json", w)
	}
	cfg, err := o.serverConfig()
	if err != nil {
		return err
	}
	rc, err := o.restConfig()
	if err != nil {
		return err
	}
	rep, err := cfg.Explain(ctx, rc, o.req, w)
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

// serverConfig is the offline explanation's configuration: serve's, from
// the flags explain shares with it.
func (o *explainOptions) serverConfig() (*server.Config, error) {
	if o.configFile == "" {
		return nil, errors.New("--config is required (or --server to ask the running promgate)")
	}
	var errs []error
	errs = append(errs, o.discovery.Validate()...)
	errs = append(errs, o.query.Validate()...)
	errs = append(errs, o.prometheus.Validate()...)
	if len(errs) > 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	cfg := &server.Config{ConfigFile: o.configFile}
	o.discovery.ApplyTo(cfg)
	o.query.ApplyTo(cfg)
	NewCacheOptions().ApplyTo(cfg)
	if err := o.prometheus.ApplyTo(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
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
