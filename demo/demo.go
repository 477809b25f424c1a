// Package demo runs in-process fake provider endpoints that speak each
// provider's wire format with a built-in dataset, and a configuration that
// points the real provider clients at them. Demo data therefore travels
// the same code paths as production data.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/config"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// The fake endpoints accept only this key; it opens nothing real.
const ibmAPIKey = "demo-ibm-api-key"

// Env is a running demo.
type Env struct {
	cfg     *config.Config
	servers []*http.Server
	logger  *slog.Logger
}

// IBMLatestTotals returns, in base units, the totals of the latest month in
// the IBM demo dataset as of now: what the exporter must report for it.
func IBMLatestTotals(now time.Time) (grams, joules float64) {
	carbon, energy := ibmfake.Demo(now).Total(ibmfake.LatestPublished(now))
	return carbon * ibm.GramsPerCarbonEmission, energy * ibm.JoulesPerEnergyConsumption
}

// Start starts the fake endpoints on loopback ports.
func Start(ctx context.Context, now time.Time, logger *slog.Logger) (*Env, error) {
	e := &Env{logger: logger, cfg: config.Default()}
	ibmData := ibmfake.Demo(now)
	ibmURL, err := e.serve(ctx, ibmfake.NewServer(ibmData, ibmAPIKey))
	if err != nil {
		return nil, err
	}
	e.cfg.IBM = []config.IBMAccount{{
		Name:         "ibm-demo",
		APIKey:       config.Secret(ibmAPIKey),
		EnterpriseID: ibmData.EnterpriseID,
		APIURL:       ibmURL,
		IAMURL:       ibmURL,
	}}
	return e, nil
}

func (e *Env) serve(ctx context.Context, h http.Handler) (string, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		e.Close()
		return "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	e.servers = append(e.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("Demo endpoint stopped", "err", err)
		}
	}()
	return "http://" + l.Addr().String(), nil
}

// Config returns the configuration that points at the fakes.
func (e *Env) Config() *config.Config { return e.cfg }

// Close stops the fakes.
func (e *Env) Close() {
	for _, s := range e.servers {
		_ = s.Close()
	}
	e.servers = nil
}
