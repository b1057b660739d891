package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/explain"
	"github.com/promgate/promgate/pkg/objects"
)

// installExplain serves the running server's explanations at
// explain.Path (and under the other custom.metrics.k8s.io versions),
// reached through the aggregation layer. The server's filters authorize
// resource "explain" of custom.metrics.k8s.io (deploy/base/rbac-explain.yaml);
// the handler then asks the server's delegating authorizer (a cached
// SubjectAccessReview) whether the caller may read the metric explained,
// where it is explained (explain.Explainer.Access). e reads the live
// catalog and plans with the serving providers, so a report names the
// query a request would send now. Call it after the server is built and
// before it runs.
func installExplain(s *genericapiserver.GenericAPIServer, e *explain.Explainer) error {
	if s.Authorizer == nil {
		return errors.New("explain: the server has no authorizer to ask whether a caller may read the metric explained")
	}
	paths, err := explain.Install(s.Handler.GoRestfulContainer, explain.Handler(e, s.Authorizer))
	if err != nil {
		return err
	}
	klog.InfoS("Serving explanations", "paths", paths)
	return nil
}

// Explain runs one discovery with c against its backends, mapping labels
// to the resources of the cluster of rc, and explains req with providers
// built as the server builds them (offline `promgate explain`). The
// configuration file's warnings go to warnings.
func (c *Config) Explain(ctx context.Context, rc *rest.Config, req explain.Request, warnings io.Writer) (*explain.Report, error) {
	f, err := loadConfigFile(c.ConfigFile)
	if err != nil {
		return nil, err
	}
	for _, w := range f.cfg.Warnings() {
		fmt.Fprintf(warnings, "warning: %s\n", w)
	}
	backends, err := c.newBackends(f, nil)
	if err != nil {
		return nil, err
	}
	mapper, err := newMapper(rc)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	cat := staticCatalog{c.newDiscoverer(f, backends, mapper).Refresh(ctx)}
	cp, ep := c.newProviders(cat, c.newRunner(backends, nil), objects.New(md, mapper, ctx.Done()), mapper)
	e := c.newExplainer(cat, mapper, backends, cp, ep)
	e.Custom, e.External = f.custom, f.external
	return e.Explain(ctx, req)
}

// ExplainRemote asks the running promgate of the cluster of rc, through
// kube-apiserver, with rc's credentials; it writes the answer to w, as
// JSON when asJSON.
func ExplainRemote(ctx context.Context, rc *rest.Config, req explain.Request, asJSON bool, w io.Writer) error {
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return err
	}
	r := dc.RESTClient().Get().AbsPath(explain.Path)
	for k, vs := range req.Values() {
		r = r.Param(k, vs[0])
	}
	if asJSON {
		r = r.Param("format", "json")
	}
	body, err := r.DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("GET %s through kube-apiserver: %w", explain.Path, err)
	}
	_, err = w.Write(body)
	return err
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
