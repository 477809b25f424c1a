// Package demo runs every cloud's in-process fake with its built-in
// dataset, and yields the configuration that points the real provider
// clients at them. Demo data therefore travels the same code paths as
// production data, configuration parsing included.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Env is a running demo.
type Env struct {
	// Config points every source at its fake.
	Config *config.Config
	// Connections are what the sources need to reach the fakes that a
	// configuration cannot say, by source name.
	Connections map[string]provider.Connection
	closers     []func()
}

// Start starts the fakes of plugins on loopback ports, with datasets whose
// latest month is the one published by now.
func Start(ctx context.Context, now time.Time, logger *slog.Logger, plugins []provider.Plugin) (_ *Env, err error) {
	e := &Env{Connections: map[string]provider.Connection{}}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	doc := map[string]any{}
	for _, pl := range plugins {
		if pl.Demo == nil {
			continue
		}
		d, err := pl.Demo(ctx, now, logger.With("provider", pl.Name))
		if err != nil {
			return nil, fmt.Errorf("start the %s demo: %w", pl.Name, err)
		}
		e.closers = append(e.closers, d.Close)
		doc[pl.Name] = d.Entries
		maps.Copy(e.Connections, d.Connections)
	}
	text, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	if e.Config, err = config.Parse(text, "demo", func(string) string { return "" }, plugins); err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	return e, nil
}

// Close stops the fakes.
func (e *Env) Close() {
	for _, c := range e.closers {
		c()
	}
	e.closers = nil
}
