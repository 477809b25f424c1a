package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
)

// buildSources turns the configuration into provider clients. It is the
// only place that knows both the config model and the provider packages.
// clients may supply the HTTP client of a source by name (the demo's
// fake endpoints need their own TLS roots); nil means the default.
func buildSources(cfg *config.Config, m *collector.Metrics, logger *slog.Logger, clients map[string]*http.Client) ([]collector.Source, error) {
	var out []collector.Source
	for _, acc := range cfg.Azure {
		p, err := azure.New(azure.Options{
			TenantID:                acc.TenantID,
			Credential:              acc.Credential,
			ClientID:                acc.ClientID,
			ClientSecret:            acc.ClientSecret.Value(),
			CertificatePath:         acc.CertificateFile,
			CertificatePassword:     acc.CertificatePassword.Value(),
			Cloud:                   acc.Cloud,
			AuthorityHost:           acc.AuthorityHost,
			ResourceManagerEndpoint: acc.ResourceManagerEndpoint,
			ResourceManagerAudience: acc.ResourceManagerAudience,
			Subscriptions:           acc.Subscriptions,
			ListSubscriptions:       acc.ListSubscriptions,
			RequestBudget:           acc.RequestBudget,
			HTTPClient:              clients[acc.Name],
			Observe:                 m.RequestObserver(provider.Azure, acc.Name),
			Logger:                  logger.With("provider", provider.Azure, "source_name", acc.Name),
		})
		if err != nil {
			return nil, fmt.Errorf("azure source %q: %w", acc.Name, err)
		}
		subs := slices.Sorted(slices.Values(acc.Subscriptions))
		out = append(out, collector.Source{
			Name: acc.Name,
			Identity: strings.Join([]string{provider.Azure, acc.Cloud, acc.ResourceManagerEndpoint, "tenant=" + acc.TenantID,
				"subscriptions=" + strings.Join(subs, ","), "list=" + strconv.FormatBool(acc.ListSubscriptions)}, "|"),
			Provider: p,
		})
	}
	for _, acc := range cfg.IBM {
		p, err := ibm.New(ibm.Options{
			APIKey:              acc.APIKey.Value(),
			APIURL:              acc.APIURL,
			IAMURL:              acc.IAMURL,
			EnterpriseID:        acc.EnterpriseID,
			EnterpriseGroupID:   acc.EnterpriseGroupID,
			EnterpriseAccountID: acc.EnterpriseAccountID,
			AccountName:         acc.AccountName,
			HTTPClient:          clients[acc.Name],
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
