package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// helpColumns is the width flag help is wrapped at.
const helpColumns = 100

// setSectionedHelp prints cmd's flags by section, as Kubernetes components
// do, after the usage line and the subcommands; flags of cmd in no section
// (the global logging flags) come last. Subcommands without their own
// sections (completion, help) inherit the functions and show their flags
// in one section.
func setSectionedHelp(cmd *cobra.Command, fss cliflag.NamedFlagSets) {
	usage := func(c *cobra.Command, w io.Writer) {
		sections := fss
		if c != cmd {
			sections = cliflag.NamedFlagSets{}
		}
		fmt.Fprintf(w, "Usage:\n  %s\n", c.UseLine())
		if c.HasAvailableSubCommands() {
			fmt.Fprintf(w, "\nAvailable Commands:\n")
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() || sub.Name() == "help" {
					fmt.Fprintf(w, "  %-12s %s\n", sub.Name(), sub.Short)
				}
			}
		}
		cliflag.PrintSections(w, withRest(c, sections), helpColumns)
		if c.HasAvailableSubCommands() {
			fmt.Fprintf(w, "\nUse \"%s [command] --help\" for more information about a command.\n", c.CommandPath())
		}
	}
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		usage(c, c.OutOrStderr())
		return nil
	})
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		about := c.Long
		if about == "" {
			about = c.Short
		}
		fmt.Fprintf(c.OutOrStdout(), "%s\n\n", about)
		usage(c, c.OutOrStdout())
	})
}

// withRest is fss and a "global" section of c's flags in no section of fss.
func withRest(c *cobra.Command, fss cliflag.NamedFlagSets) cliflag.NamedFlagSets {
	seen := map[string]bool{}
	for _, fs := range fss.FlagSets {
		fs.VisitAll(func(f *pflag.Flag) { seen[f.Name] = true })
	}
	out := cliflag.NamedFlagSets{Order: append([]string(nil), fss.Order...), FlagSets: map[string]*pflag.FlagSet{}}
	for k, v := range fss.FlagSets {
		out.FlagSets[k] = v
	}
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if !seen[f.Name] && !f.Hidden {
			out.FlagSet("global").AddFlag(f)
		}
	})
	c.InheritedFlags().VisitAll(func(f *pflag.Flag) {
		if !seen[f.Name] && !f.Hidden && out.FlagSet("global").Lookup(f.Name) == nil {
			out.FlagSet("global").AddFlag(f)
		}
	})
	return out
}
