// Package hotpath serves the requests HPAs send most, lists of custom
// metric values about namespaced objects, without the API library's
// generic request chain, and hands every other request to that chain.
//
// A request through the library's chain (its filters, go-restful's
// dispatch, the parameter decoding) costs more CPU than promgate's own
// work on a cached answer. The hot path does for the requests it takes
// what the chain does that matters to them, with the library's own
// objects: the server's authenticator and authorizer decide, on the
// attributes the library's request-info resolver and
// filters.GetAuthorizerAttributes build; the answer is written by
// responsewriters.WriteObjectNegotiated with the group's serializer, as
// custom-metrics-apiserver's list handler writes it; apiserver_request_*
// metrics are recorded with the labels the library gives the route.
//
// It takes a request only when nothing about it needs the chain; anything
// unusual goes to the chain untouched, which then answers as it always
// did: a method other than GET, another path, a query parameter other
// than labelSelector and metricLabelSelector (pretty, timeout,
// fieldSelector, …), impersonation headers, a request the authenticator
// does not accept or an anonymous one, one the authorizer does not allow
// (the chain then writes the 401 or 403), a selector that does not parse
// (the chain's 400), and every request while the hot path has as many in
// flight as the chain's own limit. New returns the chain itself where the
// server's configuration asks for what the hot path does not do: an audit
// policy, CORS, HSTS headers or API priority and fairness.
package hotpath

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/metrics"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/wire"
)

// CustomMetrics answers custom metric requests (custom-metrics-apiserver's
// CustomMetricsProvider, without discovery).
type CustomMetrics interface {
	GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error)
	GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error)
}

// SharedLists is a CustomMetrics whose lists may be shared by the requests
// that read the same answer.
type SharedLists interface {
	// SharedMetricBySelector is GetMetricBySelector for a caller that does
	// not change the list; a list shared with other requests comes with
	// the memo of its encodings (else nil).
	SharedMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, *wire.Memo, error)
}

// Config is what the hot path needs of the server.
type Config struct {
	// Next is the library's handler chain: every request the hot path
	// does not take goes there.
	Next http.Handler
	// Authenticator and APIAudiences are the server's authentication
	// (genericapiserver.Config.Authentication).
	Authenticator authenticator.Request
	APIAudiences  authenticator.Audiences
	// Authorizer is the server's (genericapiserver.Config.Authorization).
	Authorizer authorizer.Authorizer
	// Resolver is the server's request-info resolver.
	Resolver request.RequestInfoResolver
	// MaxInFlight bounds the requests on the hot path at once (the
	// server's --max-requests-inflight); past it, requests take the chain,
	// which applies its own limit. Zero (the chain's "no limit"): no
	// request takes the hot path, which never runs unbounded.
	MaxInFlight int
	// Timeout bounds a request (the server's --request-timeout).
	Timeout time.Duration
	// Custom answers custom.metrics.k8s.io, with Serializer (the group's
	// negotiated serializer, as installed).
	Custom     CustomMetrics
	Serializer runtime.NegotiatedSerializer
}

// Handler serves the hot requests and passes the others on.
type Handler struct {
	cfg Config
	// produces are the media types the serializer writes: go-restful
	// routes a request only when it accepts one of them.
	produces []string
	inFlight chan struct{}
}

// New returns the handler, or cfg.Next alone (and why) when the server's
// configuration asks for what the hot path does not do; ask is that
// configuration's part the chain would act on.
func New(cfg Config, ask Needs) (http.Handler, string) {
	if why := ask.why(); why != "" {
		return cfg.Next, why
	}
	if cfg.Custom == nil || cfg.Serializer == nil || cfg.Authenticator == nil || cfg.Authorizer == nil ||
		cfg.Resolver == nil || cfg.MaxInFlight <= 0 {
		return cfg.Next, "the server has no authentication, authorization or in-flight limit to apply"
	}
	var produces []string
	for _, info := range cfg.Serializer.SupportedMediaTypes() {
		produces = append(produces, info.MediaType)
	}
	return &Handler{
		cfg:      cfg,
		produces: produces,
		inFlight: make(chan struct{}, cfg.MaxInFlight),
	}, ""
}

// Needs is what of the server's configuration the library's chain would
// act on and the hot path does not.
type Needs struct {
	Audit, CORS, HSTS, PriorityAndFairness bool
}

func (n Needs) why() string {
	switch {
	case n.Audit:
		return "an audit policy is configured"
	case n.CORS:
		return "CORS is configured"
	case n.HSTS:
		return "HSTS directives are configured"
	case n.PriorityAndFairness:
		return "API priority and fairness is enabled"
	}
	return ""
}

// customPrefix is the path of the custom metrics group.
const customPrefix = "/apis/" + custom_metrics.GroupName + "/"

// ServeHTTP answers a hot request, or passes it on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	cr, ok := parseCustom(req)
	if !ok || !h.accepts(req.Header.Get("Accept")) {
		h.cfg.Next.ServeHTTP(w, req)
		return
	}
	select {
	case h.inFlight <- struct{}{}:
	default:
		h.cfg.Next.ServeHTTP(w, req)
		return
	}
	defer func() { <-h.inFlight }()
	start := time.Now()
	ctx, ok := h.admit(req)
	if !ok {
		h.cfg.Next.ServeHTTP(w, req)
		return
	}
	h.serveCustom(ctx, w, req, cr, start)
}

// admit authenticates and authorizes req as the library's chain would,
// returning the request's context with its user and request info; false:
// the chain must decide (and answer a refusal).
func (h *Handler) admit(req *http.Request) (context.Context, bool) {
	for k := range req.Header {
		if strings.HasPrefix(k, "Impersonate-") {
			return nil, false
		}
	}
	ctx := req.Context()
	if len(h.cfg.APIAudiences) > 0 {
		ctx = authenticator.WithAudiences(ctx, h.cfg.APIAudiences)
	}
	areq := req.WithContext(ctx)
	resp, ok, err := h.cfg.Authenticator.AuthenticateRequest(areq)
	if err != nil || !ok || anonymous(resp.User) || !audiencesAcceptable(h.cfg.APIAudiences, resp.Audiences) {
		return nil, false
	}
	info, err := h.cfg.Resolver.NewRequestInfo(areq)
	if err != nil {
		return nil, false
	}
	ctx = request.WithUser(request.WithRequestInfo(ctx, info), resp.User)
	attrs, err := filters.GetAuthorizerAttributes(ctx)
	if err != nil {
		return nil, false
	}
	// As the library's filter: an authorizer may allow despite an error.
	if decision, _, _ := h.cfg.Authorizer.Authorize(ctx, attrs); decision != authorizer.DecisionAllow {
		return nil, false
	}
	return ctx, true
}

// audiencesAcceptable is the library's check (filters/authentication.go)
// of the audiences a token was accepted for.
func audiencesAcceptable(api, got authenticator.Audiences) bool {
	return len(api) == 0 || len(got) == 0 || len(api.Intersect(got)) > 0
}

// anonymous reports whether u is the anonymous user, whom the library's
// chain serves with HTTP/2 mitigations the hot path leaves to it.
func anonymous(u user.Info) bool {
	if u.GetName() == user.Anonymous {
		return true
	}
	for _, g := range u.GetGroups() {
		if g == user.AllUnauthenticated {
			return true
		}
	}
	return false
}

// accepts reports whether go-restful would route a request with this
// Accept header (route.go, matchesAccept, v3.13.0): the empty header, or
// one of its media types (parameters left out) is */* or one the
// serializer writes. Other requests take the chain, which answers 406.
func (h *Handler) accepts(accept string) bool {
	if accept == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.TrimSpace(mt)
		if mt == "*/*" || slices.Contains(h.produces, mt) {
			return true
		}
	}
	return false
}

// customRequest is a hot custom metrics request:
// GET /apis/custom.metrics.k8s.io/VERSION/namespaces/NS/RESOURCE/NAME/METRIC
// with at most a label selector and a metric label selector.
type customRequest struct {
	version, namespace, resource, name, metric string
	selector, metricSelector                   string
}

// parseCustom recognizes a hot custom metrics request.
func parseCustom(req *http.Request) (customRequest, bool) {
	var cr customRequest
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, customPrefix) {
		return cr, false
	}
	parts := strings.Split(req.URL.Path[len(customPrefix):], "/")
	if len(parts) != 6 || (parts[0] != "v1beta1" && parts[0] != "v1beta2") || parts[1] != "namespaces" || parts[3] == "metrics" {
		return cr, false
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return cr, false // no object has such a name; the chain answers
		}
	}
	cr = customRequest{version: parts[0], namespace: parts[2], resource: parts[3], name: parts[4], metric: parts[5]}
	if req.URL.RawQuery == "" {
		return cr, true
	}
	for k, v := range req.URL.Query() {
		if len(v) != 1 {
			return cr, false
		}
		switch k {
		case "labelSelector":
			cr.selector = v[0]
		case "metricLabelSelector":
			cr.metricSelector = v[0]
		default:
			return cr, false
		}
	}
	return cr, true
}

// serveCustom answers cr as custom-metrics-apiserver's list handler and
// REST storage do (pkg/apiserver/endpoints/handlers/get.go and
// pkg/registry/custom_metrics/reststorage.go, v1.37.0), under the route's
// instrumentation (installer/cmhandlers.go).
func (h *Handler) serveCustom(ctx context.Context, w http.ResponseWriter, req *http.Request, cr customRequest, start time.Time) {
	selector, err := labels.Parse(cr.selector)
	if err != nil {
		h.cfg.Next.ServeHTTP(w, req)
		return
	}
	metricSelector := labels.Everything()
	if cr.metricSelector != "" {
		if metricSelector, err = labels.Parse(cr.metricSelector); err != nil {
			h.cfg.Next.ServeHTTP(w, req)
			return
		}
	}
	if auditID := req.Header.Get(auditinternal.HeaderAuditID); auditID != "" {
		w.Header().Set(auditinternal.HeaderAuditID, auditID)
	} else {
		w.Header().Set(auditinternal.HeaderAuditID, uuid.New().String())
	}
	w.Header().Set("Cache-Control", "no-cache, private")
	delegate := &metrics.ResponseWriterDelegator{ResponseWriter: w}
	ctx = request.WithNamespace(ctx, cr.namespace)
	if h.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.Timeout)
		defer cancel()
	}
	req = req.WithContext(ctx)
	gv := schema.GroupVersion{Group: custom_metrics.GroupName, Version: cr.version}
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			klog.ErrorS(nil, "Panic serving a request", "path", req.URL.Path, "panic", r)
			if delegate.Status() == 0 {
				http.Error(delegate, "internal error", http.StatusInternalServerError)
			}
		}
		metrics.MonitorRequest(req, "LIST", gv.Group, gv.Version, "*", "*", "resource", "custom-metrics", false, "",
			delegate.Status(), delegate.ContentLength(), time.Since(start))
	}()

	info := cmprovider.CustomMetricInfo{GroupResource: schema.ParseGroupResource(cr.resource), Metric: cr.metric, Namespaced: true}
	var list *custom_metrics.MetricValueList
	var memo *wire.Memo
	if shared, ok := h.cfg.Custom.(SharedLists); ok && cr.name == "*" {
		// A list every poll of the namespace reads is encoded once per
		// answer, not per request.
		list, memo, err = shared.SharedMetricBySelector(ctx, cr.namespace, selector, info, metricSelector)
	} else if cr.name == "*" {
		list, err = h.cfg.Custom.GetMetricBySelector(ctx, cr.namespace, selector, info, metricSelector)
	} else {
		var one *custom_metrics.MetricValue
		if one, err = h.cfg.Custom.GetMetricByName(ctx, types.NamespacedName{Namespace: cr.namespace, Name: cr.name}, info, metricSelector); err == nil {
			list = &custom_metrics.MetricValueList{Items: []custom_metrics.MetricValue{*one}}
		}
	}
	if err != nil {
		responsewriters.ErrorNegotiated(err, h.cfg.Serializer, gv, delegate, req)
		return
	}
	// custom-metrics-apiserver's handler observes each value's age in
	// metrics_apiserver_metric_freshness_seconds, which promgate does not
	// register (its own promgate_served_sample_age_seconds is observed per
	// answer): there it is a clock read per value and nothing else, 7 % of
	// promgate's CPU in make bench's row 15. The hot path leaves it out.
	if memo.Write(delegate, req, h.cfg.Serializer, gv) {
		return
	}
	responsewriters.WriteObjectNegotiated(wire.Memoized(h.cfg.Serializer, memo), negotiation.DefaultEndpointRestrictions, gv, delegate, req, http.StatusOK, list, false)
}
