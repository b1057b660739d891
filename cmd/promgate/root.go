package main

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	"k8s.io/klog/v2"
)

// newRootCommand returns promgate's command tree; serve runs the server
// with o once the flags are parsed. Without a subcommand promgate serves,
// so that an existing prometheus-adapter Deployment can switch images
// without changing its arguments.
func newRootCommand(o *serveOptions, serve func(*serveOptions) error) *cobra.Command {
	run := func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			klog.Warningf("Ignoring the argument %q: it names the prometheus-adapter binary (the Helm chart passes it first); promgate serves without it. Remove it from the Deployment's args.", args[0])
		}
		return serve(o)
	}
	fss := o.Flags()
	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the metrics API server (the default)",
		Args:  legacyArgs,
		RunE:  run,
	}
	addFlagSets(serveCmd, fss)
	root := &cobra.Command{
		Use:   "promgate",
		Short: "Serve the Kubernetes metrics APIs from Prometheus",
		Long: `promgate is an aggregated API server that answers metrics.k8s.io (kubectl top,
HPA Resource metrics), custom.metrics.k8s.io and external.metrics.k8s.io
from Prometheus, driven by prometheus-adapter-compatible rules.

Without a subcommand, promgate runs "serve". It accepts every flag of
prometheus-adapter, and a leading argument naming prometheus-adapter's binary
(/adapter), as its Helm chart passes.`,
		SilenceUsage: true,
		Args:         legacyArgs,
		RunE:         run,
	}
	addFlagSets(root, fss)
	root.AddCommand(serveCmd, newCheckCommand(), newExplainCommand())
	// What component-base's cli.Run also does, so that the command parses
	// the same however it is run: -v, --vmodule and --log-flush-frequency
	// for every subcommand, and "_" accepted for "-" in flag names.
	root.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	logs.AddFlags(root.PersistentFlags())
	setSectionedHelp(root, fss)
	setSectionedHelp(serveCmd, fss)
	return root
}

// addFlagSets adds every section of fss to cmd's flags.
func addFlagSets(cmd *cobra.Command, fss cliflag.NamedFlagSets) {
	for _, name := range fss.Order {
		cmd.Flags().AddFlagSet(fss.FlagSets[name])
	}
}

// legacyBinaryNames are the base names of prometheus-adapter's binary.
var legacyBinaryNames = []string{"adapter", "prometheus-adapter"}

// legacyArgs accepts no positional argument, or one naming
// prometheus-adapter's binary (any path): the prometheus-community chart
// passes "/adapter" as the first argument, because it replaces the
// image's arguments and the image's entrypoint was the binary itself.
func legacyArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || len(args) == 1 && isLegacyBinary(args[0]) {
		return nil
	}
	bad := args[0]
	if isLegacyBinary(bad) {
		bad = args[1]
	}
	var cmds []string
	for _, c := range cmd.Root().Commands() {
		if c.IsAvailableCommand() {
			cmds = append(cmds, c.Name())
		}
	}
	return fmt.Errorf("unknown command %q for %q (commands: %s; a single leading prometheus-adapter binary path such as /adapter is ignored)",
		bad, cmd.CommandPath(), strings.Join(cmds, ", "))
}

func isLegacyBinary(arg string) bool {
	return slices.Contains(legacyBinaryNames, path.Base(arg))
}
