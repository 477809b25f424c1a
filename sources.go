package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/collector"
	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/demo"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
)

// buildSources turns the configuration into provider clients. It is the
// only place that knows both the config model and the provider packages.
// ov changes, by source name, what the demo's fake endpoints need and a
// configuration cannot say (their own TLS roots, no authentication).
func buildSources(ctx context.Context, cfg *config.Config, m *collector.Metrics, logger *slog.Logger, ov map[string]demo.Override) (out []collector.Source, err error) {
	defer func() {
		if err != nil {
			collector.CloseSources(out)
			out = nil
		}
	}()
	for _, g := range cfg.GCP {
		p, err := gcp.New(ctx, gcp.Options{
			Project:               g.Project,
			CarbonTable:           g.CarbonTable,
			BillingTable:          g.BillingTable,
			BillingAccount:        g.BillingAccount,
			Location:              g.Location,
			MaxBytesBilled:        g.MaxBytesBilled,
			CredentialsFile:       g.CredentialsFile,
			Endpoint:              g.Endpoint,
			WithoutAuthentication: ov[g.Name].WithoutAuthentication,
			HTTPClient:            ov[g.Name].HTTPClient,
			Observe:               m.RequestObserver(provider.GCP, g.Name),
			ObserveBytes:          m.BytesObserver(provider.GCP, g.Name),
			Logger:                logger.With("provider", provider.GCP, "source_name", g.Name),
		})
		if err != nil {
			return out, fmt.Errorf("gcp source %q: %w", g.Name, err)
		}
		out = append(out, collector.Source{
			Name: g.Name,
			Identity: strings.Join([]string{provider.GCP, g.Endpoint, g.CarbonTable, g.BillingTable,
				"account=" + g.BillingAccount}, "|"),
			Provider: p,
		})
	}
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
			HTTPClient:              ov[acc.Name].HTTPClient,
			Observe:                 m.RequestObserver(provider.Azure, acc.Name),
			Logger:                  logger.With("provider", provider.Azure, "source_name", acc.Name),
		})
		if err != nil {
			return out, fmt.Errorf("azure source %q: %w", acc.Name, err)
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
			HTTPClient:          ov[acc.Name].HTTPClient,
			Observe:             m.RequestObserver(provider.IBM, acc.Name),
			Logger:              logger.With("provider", provider.IBM, "source_name", acc.Name),
		})
		if err != nil {
			return out, fmt.Errorf("ibm source %q: %w", acc.Name, err)
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
