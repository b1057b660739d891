package main

import (
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	genericapiserver "k8s.io/apiserver/pkg/server"
)

// runServe validates the flags and runs the server until a signal.
func runServe(o *serveOptions) error {
	if errs := o.Validate(); len(errs) > 0 {
		return utilerrors.NewAggregate(errs)
	}
	cfg, err := o.ServerConfig()
	if err != nil {
		return err
	}
	ctx := genericapiserver.SetupSignalContext()
	s, err := cfg.Complete()
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
