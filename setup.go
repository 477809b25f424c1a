package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
)

// gcpSetupFlags are the gcp-setup command's flags.
type gcpSetupFlags struct {
	project, billingAccount, dataset, location string
	backfillFrom, credentialsFile, endpoint    string
	dryRun                                     bool
}

// gcpSetup creates the Carbon Footprint export and requests its backfill.
func gcpSetup(ctx context.Context, f *gcpSetupFlags, out io.Writer) error {
	var from provider.Month
	if f.backfillFrom != "" {
		m, err := provider.ParseMonth(f.backfillFrom)
		if err != nil {
			return fmt.Errorf("--backfill-from: %w", err)
		}
		from = m
	}
	return gcp.Setup(ctx, gcp.SetupOptions{
		Project: f.project, Location: f.location, BillingAccount: f.billingAccount, Dataset: f.dataset,
		BackfillFrom: from, DryRun: f.dryRun, Endpoint: f.endpoint, CredentialsFile: f.credentialsFile, Out: out,
	})
}
