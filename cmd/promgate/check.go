package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/rules"
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
				if err == nil {
					err = compileAll(cfg)
					if err != nil {
						err = fmt.Errorf("config %s: %w", path, err)
					}
				}
				if err != nil {
					failed++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				res := 0
				if cfg.ResourceRules != nil {
					res = 1
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d rules, %d external rules, resource rules: %v)\n", path, len(cfg.Rules), len(cfg.ExternalRules), res == 1)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d config files are invalid", failed, len(args))
			}
			return nil
		},
	}
}

// compileAll compiles every rule, resource rules against the core
// resources (pods, nodes, namespaces) that they describe.
func compileAll(cfg *config.Config) error {
	_, _, err := rules.Compile(cfg)
	if cfg.ResourceRules == nil {
		return err
	}
	mapper := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	for _, kind := range []string{"Pod", "Service", "Endpoints"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: kind}, apimeta.RESTScopeNamespace)
	}
	for _, kind := range []string{"Node", "Namespace"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: kind}, apimeta.RESTScopeRoot)
	}
	_, rerr := resource.New(cfg.ResourceRules, offline{}, mapper, resource.Options{})
	return errors.Join(err, rerr)
}

// offline is the querier of `check`, which never queries.
type offline struct{}

func (offline) Query(context.Context, string, time.Time) (model.Vector, error) {
	return nil, errors.New("promgate check does not query Prometheus")
}
