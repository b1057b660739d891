package server

import (
	"net/http"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/hotpath"
)

// installHotPath puts the hot path (pkg/hotpath) in front of the handler
// chain the server builds, with the server's own authentication,
// authorization, request-info resolver and limits.
func installHotPath(c *genericapiserver.Config, cm hotpath.CustomMetrics) {
	build := c.BuildHandlerChainFunc
	c.BuildHandlerChainFunc = func(api http.Handler, c *genericapiserver.Config) http.Handler {
		h, why := hotPath(build(api, c), c, cm)
		if why != "" {
			klog.InfoS("Every request takes the API library's request chain", "reason", why)
		}
		return h
	}
}

// hotPath is the hot path in front of chain, built on c (or chain alone,
// and why).
func hotPath(chain http.Handler, c *genericapiserver.Config, cm hotpath.CustomMetrics) (http.Handler, string) {
	return hotpath.New(hotpath.Config{
		Next:          chain,
		Authenticator: c.Authentication.Authenticator,
		APIAudiences:  c.Authentication.APIAudiences,
		Authorizer:    c.Authorization.Authorizer,
		Resolver:      c.RequestInfoResolver,
		MaxInFlight:   c.MaxRequestsInFlight,
		Timeout:       c.RequestTimeout,
		Custom:        cm,
		Serializer:    metricsSerializer(),
	}, hotpath.Needs{
		Audit:               c.AuditBackend != nil && c.AuditPolicyRuleEvaluator != nil,
		CORS:                len(c.CorsAllowedOriginList) > 0,
		HSTS:                len(c.HSTSDirectives) > 0,
		PriorityAndFairness: c.FlowControl != nil,
	})
}
