// Package demo runs in-process fake provider endpoints that speak each
// provider's wire format with a built-in dataset, and a configuration that
// points the real provider clients at them. Demo data therefore travels
// the same code paths as production data.
package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// The fake endpoints accept only this key; it opens nothing real.
const ibmAPIKey = "demo-ibm-api-key"

// Source names of the demo.
const (
	GCPSource   = "gcp-demo"
	AzureSource = "azure-demo"
	IBMSource   = "ibm-demo"
)

// Override is what a demo source needs that a configuration cannot say.
type Override struct {
	// HTTPClient trusts the fake's own TLS certificate.
	HTTPClient *http.Client
	// WithoutAuthentication skips credentials the fake does not check.
	WithoutAuthentication bool
}

// Env is a running demo.
type Env struct {
	cfg     *config.Config
	ov      map[string]Override
	servers []*http.Server
	logger  *slog.Logger
}

// GCPLatestTotals returns, in base units, the totals of the latest month
// in the GCP demo dataset as of now.
func GCPLatestTotals(now time.Time) gcpfake.Totals { return gcpfake.DemoLatestTotals(now) }

// AzureLatestTotals returns, in grams per scope, the totals of the latest
// month in the Azure demo dataset as of now (denied subscriptions excluded,
// as the API excludes them).
func AzureLatestTotals(now time.Time) map[provider.Scope]float64 {
	ds, m := azurefake.Demo(now), azurefake.LatestMonth(now)
	out := map[provider.Scope]float64{}
	for _, sc := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
		out[sc] = ds.Total(m, sc) * azure.GramsPerKilogram
	}
	return out
}

// IBMLatestTotals returns, in base units, the totals of the latest month in
// the IBM demo dataset as of now: what the exporter must report for it.
func IBMLatestTotals(now time.Time) (grams, joules float64) {
	carbon, energy := ibmfake.Demo(now).Total(ibmfake.LatestPublished(now))
	return carbon * ibm.GramsPerCarbonEmission, energy * ibm.JoulesPerEnergyConsumption
}

// Start starts the fake endpoints on loopback ports.
func Start(ctx context.Context, now time.Time, logger *slog.Logger) (*Env, error) {
	e := &Env{logger: logger, cfg: config.Default(), ov: map[string]Override{}}

	gcpData := gcpfake.Demo(now)
	gcpURL, err := e.serve(ctx, gcpfake.NewServer(gcpData), nil)
	if err != nil {
		return nil, err
	}
	e.ov[GCPSource] = Override{WithoutAuthentication: true}
	e.cfg.GCP = []config.GCPExport{{
		Name:           GCPSource,
		Project:        gcpData.Project,
		CarbonTable:    gcpData.CarbonTable,
		BillingTable:   gcpData.BillingTable,
		Location:       gcpData.Location,
		MaxBytesBilled: config.DefaultGCPMaxBytesBilled,
		Endpoint:       gcpURL + gcpfake.BasePath,
	}}

	// Azure's SDK sends tokens only over TLS: the fake serves a
	// certificate of its own and the demo client trusts just that.
	serverTLS, roots, _, err := azurefake.NewTLSConfig()
	if err != nil {
		return nil, fmt.Errorf("azure demo certificate: %w", err)
	}
	azureURL, err := e.serve(ctx, azurefake.NewServer(azurefake.Demo(now), azurefake.DemoClientID, azurefake.DemoClientSecret), serverTLS)
	if err != nil {
		return nil, err
	}
	e.ov[AzureSource] = Override{HTTPClient: &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}}
	e.cfg.Azure = []config.AzureAccount{{
		Name:                    AzureSource,
		Credential:              "client_secret",
		TenantID:                azurefake.DemoTenantID,
		ClientID:                azurefake.DemoClientID,
		ClientSecret:            config.Secret(azurefake.DemoClientSecret),
		Cloud:                   config.DefaultAzureCloud,
		AuthorityHost:           azureURL,
		ResourceManagerEndpoint: azureURL,
		ListSubscriptions:       true,
		RequestBudget:           config.DefaultAzureRequestBudget,
	}}

	ibmData := ibmfake.Demo(now)
	ibmURL, err := e.serve(ctx, ibmfake.NewServer(ibmData, ibmAPIKey), nil)
	if err != nil {
		return nil, err
	}
	e.cfg.IBM = []config.IBMAccount{{
		Name:         IBMSource,
		APIKey:       config.Secret(ibmAPIKey),
		EnterpriseID: ibmData.EnterpriseID,
		APIURL:       ibmURL,
		IAMURL:       ibmURL,
	}}
	return e, nil
}

func (e *Env) serve(ctx context.Context, h http.Handler, tlsConfig *tls.Config) (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return "", fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		l, scheme = tls.NewListener(l, tlsConfig), "https"
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(e.logger.Handler(), slog.LevelDebug)}
	e.servers = append(e.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("Demo endpoint stopped", "err", err)
		}
	}()
	return scheme + "://" + l.Addr().String(), nil
}

// Config returns the configuration that points at the fakes.
func (e *Env) Config() *config.Config { return e.cfg }

// Overrides returns, by source name, what the sources need to reach the
// fakes.
func (e *Env) Overrides() map[string]Override { return e.ov }

// Close stops the fakes.
func (e *Env) Close() {
	for _, s := range e.servers {
		_ = s.Close()
	}
	e.servers = nil
}
