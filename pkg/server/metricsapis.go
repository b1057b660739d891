package server

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapi "k8s.io/apiserver/pkg/endpoints"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cminstaller "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver/installer"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	customstorage "sigs.k8s.io/custom-metrics-apiserver/pkg/registry/custom_metrics"
	externalstorage "sigs.k8s.io/custom-metrics-apiserver/pkg/registry/external_metrics"

	"github.com/promgate/promgate/pkg/wire"
)

// The custom and external metrics APIs are installed here rather than by
// custom-metrics-apiserver's CustomMetricsAdapterServer, whose
// InstallCustomMetricsAPI and InstallExternalMetricsAPI (pkg/apiserver,
// cmapis.go and emapis.go, v1.37.0) this follows step for step with one
// difference: the groups' serializer is wire.Negotiated's, which writes
// the metrics lists without reflection. TestMetricsAPIsAsLibrary serves
// the same requests through both installations and compares the answers.

// metricsSerializer is the custom and external groups' serializer: the
// library's codecs (the group info's default), the lists written by wire.
func metricsSerializer() runtime.NegotiatedSerializer {
	return wire.Negotiated(cmapiserver.Codecs)
}

// installCustomMetrics installs custom.metrics.k8s.io, every version the
// library's scheme has (v1beta2 preferred), served by p.
func installCustomMetrics(gs *genericapiserver.GenericAPIServer, p cmprovider.CustomMetricsProvider) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(custom_metrics.GroupName, cmapiserver.Scheme, runtime.NewParameterCodec(cmapiserver.Scheme), cmapiserver.Codecs)
	info.NegotiatedSerializer = metricsSerializer()
	container := gs.Handler.GoRestfulContainer
	for i, gv := range info.PrioritizedVersions {
		api := metricsAPI(&info, gv, customstorage.NewREST(p), cmprovider.NewCustomMetricResourceLister(p))
		api.Handlers = &cminstaller.CMHandlers{}
		if err := api.InstallREST(container); err != nil {
			return err
		}
		if i == 0 {
			group := discoveryGroup(gv)
			gs.DiscoveryGroupManager.AddGroup(group)
			container.Add(discovery.NewAPIGroupHandler(gs.Serializer, group).WebService())
		}
	}
	return nil
}

// installExternalMetrics installs external.metrics.k8s.io/v1beta1, served
// by p.
func installExternalMetrics(gs *genericapiserver.GenericAPIServer, p cmprovider.ExternalMetricsProvider) error {
	info := genericapiserver.NewDefaultAPIGroupInfo(external_metrics.GroupName, cmapiserver.Scheme, metav1.ParameterCodec, cmapiserver.Codecs)
	info.NegotiatedSerializer = metricsSerializer()
	gv := info.PrioritizedVersions[0]
	api := metricsAPI(&info, gv, externalstorage.NewREST(p), cmprovider.NewExternalMetricResourceLister(p))
	api.Handlers = &cminstaller.EMHandlers{}
	if err := api.InstallREST(gs.Handler.GoRestfulContainer); err != nil {
		return err
	}
	group := discoveryGroup(gv)
	gs.DiscoveryGroupManager.AddGroup(group)
	gs.Handler.GoRestfulContainer.Add(discovery.NewAPIGroupHandler(gs.Serializer, group).WebService())
	return nil
}

// metricsAPI is one version of a metrics group, as the library builds it
// (the caller sets its Handlers).
func metricsAPI(info *genericapiserver.APIGroupInfo, gv schema.GroupVersion, storage rest.Storage,
	lister discovery.APIResourceLister) *cminstaller.MetricsAPIGroupVersion {
	return &cminstaller.MetricsAPIGroupVersion{
		DynamicStorage: storage,
		APIGroupVersion: &genericapi.APIGroupVersion{
			Root:             genericapiserver.APIGroupPrefix,
			GroupVersion:     gv,
			MetaGroupVersion: info.MetaGroupVersion,
			ParameterCodec:   info.ParameterCodec,
			Serializer:       info.NegotiatedSerializer,
			Creater:          info.Scheme,
			Convertor:        info.Scheme,
			UnsafeConvertor:  runtime.UnsafeObjectConvertor(info.Scheme),
			Typer:            info.Scheme,
			Namer:            runtime.Namer(meta.NewAccessor()),
		},
		ResourceLister: lister,
	}
}

// discoveryGroup is the group's discovery document: one version,
// preferred.
func discoveryGroup(gv schema.GroupVersion) metav1.APIGroup {
	v := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
	return metav1.APIGroup{Name: gv.Group, Versions: []metav1.GroupVersionForDiscovery{v}, PreferredVersion: v}
}
