package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand returns promgate's command tree. Without a subcommand it
// serves, so that an existing prometheus-adapter Deployment can switch
// binaries without changing its arguments.
func newRootCommand() *cobra.Command {
	serve := newServeCommand()
	root := &cobra.Command{
		Use:   "promgate",
		Short: "Serve the Kubernetes metrics APIs from Prometheus",
		Long: `promgate is an aggregated API server that answers metrics.k8s.io (kubectl top,
HPA Resource metrics), custom.metrics.k8s.io and external.metrics.k8s.io
from Prometheus, driven by prometheus-adapter-compatible rules.

Without a subcommand, promgate runs "serve".`,
		SilenceUsage: true,
		Args:         serve.Args,
		RunE:         serve.RunE,
	}
	root.Flags().AddFlagSet(serve.Flags())
	root.AddCommand(serve, newCheckCommand(), newExplainCommand())
	return root
}
