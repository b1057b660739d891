package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/rules"
)

type explainOptions struct {
	configFile string
	kubeconfig string
	prom       prom.Options
	maxAge     time.Duration
	metric     string
}

func newExplainCommand() *cobra.Command {
	o := &explainOptions{prom: prom.Options{URL: "http://localhost:9090/", Timeout: 30 * time.Second}, maxAge: 10 * time.Minute}
	cmd := &cobra.Command{
		Use:   "explain",
		Short: "Run discovery once and show, per rule, which metrics it found and why series were dropped",
		Long: `explain answers "why is my metric not found?": it runs one discovery with the
given config against Prometheus and prints, for every rule, whether its
seriesQuery failed, how many series it kept, which metric names and resources
it produced, and how many series each filter or mapping dropped, with examples.
Label-to-resource mapping uses the cluster of --kubeconfig.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.configFile, "config", o.configFile, "Path to the rules file.")
	fs.StringVar(&o.kubeconfig, "kubeconfig", o.kubeconfig, "kubeconfig of the cluster whose resources labels map to (default: the usual kubeconfig rules).")
	fs.StringVar(&o.prom.URL, "prometheus-url", o.prom.URL, "URL of the Prometheus-compatible API.")
	fs.StringVar(&o.prom.CAFile, "prometheus-ca-file", o.prom.CAFile, "CA bundle for Prometheus.")
	fs.StringVar(&o.prom.TokenFile, "prometheus-token-file", o.prom.TokenFile, "Bearer token file for Prometheus.")
	fs.BoolVar(&o.prom.AllowCredentialsOverHTTP, strings.TrimPrefix(prom.FlagAllowCredentialsOverHTTP, "--"), o.prom.AllowCredentialsOverHTTP, "Allow sending the bearer token to an http:// --prometheus-url, in the clear.")
	fs.DurationVar(&o.prom.Timeout, "prometheus-timeout", o.prom.Timeout, "Timeout of one Prometheus request.")
	fs.DurationVar(&o.maxAge, "metrics-max-age", o.maxAge, "Only series with samples this recent count.")
	fs.StringVar(&o.metric, "metric", o.metric, "Only show where this metric name comes from.")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func (o *explainOptions) run(ctx context.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return err
	}
	for _, warning := range cfg.Warnings() {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	client, err := prom.New(o.prom)
	if err != nil {
		return err
	}
	mapper, err := o.mapper()
	if err != nil {
		return err
	}
	snap := catalog.New(custom, external, client, mapper, o.maxAge).Refresh(ctx)
	printReports(w, snap, o.metric, mapper)
	return nil
}

func (o *explainOptions) mapper() (apimeta.RESTMapper, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), nil
}

func printReports(w io.Writer, snap *catalog.Snapshot, metric string, mapper apimeta.RESTMapper) {
	byRule := map[string][]string{}
	for _, m := range snap.CustomMetrics() {
		e, _ := snap.Custom(catalog.CustomKey{Resource: m.GroupResource, Namespaced: m.Namespaced, Metric: m.Metric})
		scope := "cluster"
		if m.Namespaced {
			scope = "namespaced"
		}
		if metric == "" || m.Metric == metric {
			byRule[e.Rule.Path] = append(byRule[e.Rule.Path], fmt.Sprintf("%s/%s (%s, series %s; %s)", m.GroupResource, m.Metric, scope, e.Series, customSharing(e, m.GroupResource, m.Namespaced, mapper)))
		}
	}
	for _, m := range snap.ExternalMetrics() {
		if e, ok := snap.ExternalEntry(m.Metric); ok && (metric == "" || m.Metric == metric) {
			ns := ""
			if e.Rule.Namespaced {
				ns = e.Rule.Resources.NamespaceLabel(mapper)
			}
			ok, why := external.TemplateSharing(e.Rule.Query, ns)
			byRule[e.Rule.Path] = append(byRule[e.Rule.Path], fmt.Sprintf("external %s (series %s; %s)", m.Metric, e.Series, sharingText(ok, why)))
		}
	}
	for _, r := range snap.Reports {
		if metric != "" && len(byRule[r.Path]) == 0 && !slices.Contains(r.Metrics, metric) {
			continue
		}
		fmt.Fprintf(w, "%s  seriesQuery: %s\n", r.Path, r.SeriesQuery)
		if r.Err != "" {
			fmt.Fprintf(w, "  ERROR: %s (using the result of %s)\n", r.Err, r.LastSuccess.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "  series shapes: %d, kept: %d\n", r.Series, r.Kept)
		reasons := make([]string, 0, len(r.Dropped))
		for reason := range r.Dropped {
			reasons = append(reasons, reason)
		}
		sort.Strings(reasons)
		for _, reason := range reasons {
			fmt.Fprintf(w, "  dropped %d: %s (e.g. %s)\n", r.Dropped[reason], reason, strings.Join(r.Examples[reason], ", "))
		}
		for _, m := range byRule[r.Path] {
			fmt.Fprintf(w, "  serves %s\n", m)
		}
		for _, o := range r.Overridden {
			if metric == "" || o.Metric == metric {
				what := "external " + o.Metric
				if o.Resource.Resource != "" {
					what = o.Resource.String() + "/" + o.Metric
				}
				fmt.Fprintf(w, "  overridden %s: %s serves it (the last rule naming a metric wins)\n", what, o.By)
			}
		}
	}
}

// customSharing says whether requests for a custom metric share a query.
func customSharing(e catalog.Entry, gr schema.GroupResource, namespaced bool, mapper apimeta.RESTMapper) string {
	rl, err := e.Rule.Resources.LabelForResource(gr, mapper)
	if err != nil {
		return "no label names " + gr.String()
	}
	ns := ""
	if namespaced {
		ns = e.Rule.Resources.NamespaceLabel(mapper)
	}
	ok, why := custom.TemplateSharing(e.Rule.Query, e.Series, rl, ns)
	return sharingText(ok, why)
}

func sharingText(ok bool, why string) string {
	if ok {
		return "one query shared by all requests"
	}
	return "sent per request: " + why
}
