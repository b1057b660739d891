package main

import (
	"errors"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/explain"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
)

// explainBackends are the backends as explain asks them for series.
func explainBackends(s *backend.Set) map[string]explain.ExplainBackend {
	out := map[string]explain.ExplainBackend{}
	for _, n := range s.Names() {
		b, _ := s.Get(n)
		out[n] = explain.ExplainBackend{Series: b.Client, URL: b.URL}
	}
	return out
}

// installExplain serves the running server's explanations at
// explain.Path (and under the other custom.metrics.k8s.io versions),
// reached through the aggregation layer. The server's filters authorize
// resource "explain" of custom.metrics.k8s.io (deploy/base/rbac-explain.yaml);
// the handler then asks the server's delegating authorizer (a cached
// SubjectAccessReview) whether the caller may read the metric explained,
// where it is explained (explain.Explainer.Access). It reads the live
// catalog and plans with the serving providers, so a report names the
// query a request would send now. Call it after the server is built and
// before it runs.
func installExplain(s *genericapiserver.GenericAPIServer, disc *catalog.Discoverer,
	backends *backend.Set, mapper apimeta.RESTMapper, maxAge time.Duration, cp *custom.Provider, ep *external.Provider) error {
	if s.Authorizer == nil {
		return errors.New("explain: the server has no authorizer to ask whether a caller may read the metric explained")
	}
	e := &explain.Explainer{
		Catalog: disc, Mapper: mapper, // the rules of the current snapshot, reloads included
		MaxAge: maxAge, Backend: backends.Default().Client.Name(), Backends: explainBackends(backends),
		CustomPlanner: cp, ExternalPlanner: ep,
	}
	paths, err := explain.Install(s.Handler.GoRestfulContainer, explain.Handler(e, s.Authorizer))
	if err != nil {
		return err
	}
	klog.InfoS("Serving explanations", "paths", paths)
	return nil
}
