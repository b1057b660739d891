package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/server"
)

func newCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check CONFIG...",
		Short: "Validate configuration files without a cluster or Prometheus",
		Long: `check parses each configuration file strictly, compiles every rule (regular
expressions, templates, and the PromQL they render) and reports every error
with the rule and field at fault.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				cfg, err := config.Load(path)
				var report []string
				if err == nil {
					report, err = server.CheckConfig(cfg)
					if err != nil {
						err = fmt.Errorf("config %s: %w", path, err)
					}
				}
				if err != nil {
					failed++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d rules, %d external rules, resource rules: %v)\n", path, len(cfg.Rules), len(cfg.ExternalRules), cfg.ResourceRules != nil)
				for _, line := range report {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s\n", line)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d config files are invalid", failed, len(args))
			}
			return nil
		},
	}
}
