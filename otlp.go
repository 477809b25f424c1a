package main

import (
	"context"
	"net"
	"os"
	"reflect"
	"time"

	"github.com/prometheus/common/version"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
)

// applyOTLP starts, restarts or stops the OTLP push to match c. Unchanged
// settings leave a running pusher alone.
func (a *app) applyOTLP(ctx context.Context, c config.OTLP) error {
	if a.otlp != nil && reflect.DeepEqual(a.otlpConfig, c) {
		return nil
	}
	if !c.Enabled {
		a.stopOTLP()
		return nil
	}
	headers := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		headers[k] = v.Value()
	}
	p, err := collector.StartOTLP(ctx, a.reg, collector.OTLPOptions{
		Interval: c.Interval, Endpoint: c.Endpoint, Insecure: c.Insecure, Headers: headers, Timeout: c.Timeout,
		ServiceVersion: version.Version, ServiceInstanceID: a.instanceID(),
	}, a.metrics, a.logger)
	if err != nil {
		return err // the running pusher, if any, goes on
	}
	a.stopOTLP()
	a.otlp, a.otlpConfig = p, c
	a.logger.Info("Pushing metrics over OTLP", "interval", c.Interval)
	return nil
}

// stopOTLP pushes once more and stops the pusher.
func (a *app) stopOTLP() {
	if a.otlp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(a.otlpConfig.Timeout, 10*time.Second)+time.Second)
	defer cancel()
	if err := a.otlp.Shutdown(ctx); err != nil {
		a.logger.Warn("Final OTLP push failed", "err", err)
	}
	a.otlp = nil
}

// instanceID names this exporter the way a Prometheus target would be
// named: host and port.
func (a *app) instanceID() string {
	host, _ := os.Hostname()
	port := "9874"
	if w := a.flags.web; w != nil && w.WebListenAddresses != nil && len(*w.WebListenAddresses) > 0 {
		if _, p, err := net.SplitHostPort((*w.WebListenAddresses)[0]); err == nil {
			port = p
		}
	}
	return net.JoinHostPort(host, port)
}
