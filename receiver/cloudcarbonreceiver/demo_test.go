package cloudcarbonreceiver

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/cloudcarbon/cloudcarbon_exporter/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/receiver/cloudcarbonreceiver/internal/metadata"
)

// demoConfig is the default configuration with demo set.
func demoConfig() *Config {
	cfg := createDefaultConfig(clouds.All())
	cfg.Demo = true
	return cfg
}

// startDemo starts a receiver with cfg on host and waits until every
// source has finished its first refresh; it stops it when the test ends.
func startDemo(t *testing.T, cfg *Config) *cloudcarbonReceiver {
	t.Helper()
	r := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
	if err := r.start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	waitReady(t, r)
	return r
}

func waitReady(t *testing.T, r *cloudcarbonReceiver) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r.mu.Lock()
		snap := r.engine.store.Snapshot()
		r.mu.Unlock()
		if snap.Ready() && len(snap.Sources) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo sources did not finish their first refresh in 2 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSettled waits until no source has work due within a minute: the
// older months, the cost of provisional months and the tag weights of
// allocations are read after the first data.
func waitSettled(t *testing.T, r *cloudcarbonReceiver) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		r.mu.Lock()
		snap := r.engine.store.Snapshot()
		r.mu.Unlock()
		settled := len(snap.Sources) > 0
		for _, d := range snap.Sources {
			settled = settled && d.NextRefresh.After(time.Now().Add(time.Minute))
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the demo sources still had work due after 2 minutes")
		}
	}
}

func scrape(t *testing.T, r *cloudcarbonReceiver) pmetric.Metrics {
	t.Helper()
	md, err := r.scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return md
}
