package main

import (
	"context"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/query"
)

func (o *serveOptions) installResourceMetrics(ctx context.Context, rr *config.ResourceRules, q *query.Engine, mapper apimeta.RESTMapper, objs *objects.Cache) error {
	return nil
}
