package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
)

// buildSources turns the configuration into provider clients. It is the
// only place that knows both the config model and the provider packages.
func buildSources(cfg *config.Config, m *collector.Metrics, logger *slog.Logger) ([]collector.Source, error) {
	var out []collector.Source
	for _, acc := range cfg.IBM {
		p, err := ibm.New(ibm.Options{
			APIKey:              acc.APIKey.Value(),
			APIURL:              acc.APIURL,
			IAMURL:              acc.IAMURL,
			EnterpriseID:        acc.EnterpriseID,
			EnterpriseGroupID:   acc.EnterpriseGroupID,
			EnterpriseAccountID: acc.EnterpriseAccountID,
			AccountName:         acc.AccountName,
			Observe:             m.RequestObserver(provider.IBM, acc.Name),
			Logger:              logger.With("provider", provider.IBM, "source_name", acc.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("ibm source %q: %w", acc.Name, err)
		}
		out = append(out, collector.Source{
			Name: acc.Name,
			Identity: strings.Join([]string{provider.IBM, acc.APIURL,
				"enterprise=" + acc.EnterpriseID, "group=" + acc.EnterpriseGroupID, "account=" + acc.EnterpriseAccountID}, "|"),
			Provider: p,
		})
	}
	return out, nil
}
