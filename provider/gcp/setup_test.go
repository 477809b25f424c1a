package gcp_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery/datatransfer/apiv1/datatransferpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

var setupNow = time.Date(2026, time.November, 22, 10, 30, 15, 0, time.UTC)

func setupEnv(t *testing.T, configs ...*datatransferpb.TransferConfig) (*gcpfake.TransferServer, gcp.SetupOptions, *bytes.Buffer) {
	t.Helper()
	fake := gcpfake.NewTransferServer(configs...)
	ts := httptest.NewServer(fake)
	t.Cleanup(ts.Close)
	out := &bytes.Buffer{}
	return fake, gcp.SetupOptions{
		Project:               "carbon-host",
		Location:              "US",
		BillingAccount:        "0a1b2c-3d4e5f-6a7b8c",
		Dataset:               "carbon_export",
		Endpoint:              ts.URL,
		WithoutAuthentication: true,
		HTTPClient:            ts.Client(),
		Out:                   out,
		Now:                   func() time.Time { return setupNow },
	}, out
}

func carbonConfig(name, dataset, accounts string) *datatransferpb.TransferConfig {
	return &datatransferpb.TransferConfig{
		Name:         name,
		DisplayName:  "existing",
		DataSourceId: gcpfake.CarbonFootprintDataSource,
		Destination:  &datatransferpb.TransferConfig_DestinationDatasetId{DestinationDatasetId: dataset},
		Params:       &structpb.Struct{Fields: map[string]*structpb.Value{"billing_accounts": structpb.NewStringValue(accounts)}},
	}
}

func TestSetupCreates(t *testing.T) {
	fake, opts, out := setupEnv(t,
		// Another billing account into the same dataset, and another
		// data source: neither is this export.
		carbonConfig("projects/carbon-host/locations/us/transferConfigs/other", "carbon_export", "FFFFFF-000000-111111"),
		&datatransferpb.TransferConfig{Name: "projects/carbon-host/locations/us/transferConfigs/ads", DataSourceId: "google_ads",
			Destination: &datatransferpb.TransferConfig_DestinationDatasetId{DestinationDatasetId: "carbon_export"}},
	)
	if err := gcp.Setup(t.Context(), opts); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	configs := fake.Configs()
	if len(configs) != 3 {
		t.Fatalf("configs = %d, want one created", len(configs))
	}
	c := configs[2]
	if !strings.HasPrefix(c.GetName(), "projects/carbon-host/locations/us/transferConfigs/") ||
		c.GetDataSourceId() != "61cede5a-0000-2440-ad42-883d24f8f7b8" ||
		c.GetDestinationDatasetId() != "carbon_export" ||
		c.GetParams().GetFields()["billing_accounts"].GetStringValue() != "0A1B2C-3D4E5F-6A7B8C" ||
		c.GetDisplayName() != "Carbon Footprint 0A1B2C-3D4E5F-6A7B8C" {
		t.Errorf("created config %v", c)
	}
	if n := len(fake.ManualRuns()); n != 0 {
		t.Errorf("manual runs = %d without a backfill month", n)
	}
	for _, s := range []string{"Created transfer config " + c.GetName(), "Note: transfer config projects/carbon-host/locations/us/transferConfigs/other", "No backfill requested"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestSetupIsIdempotent(t *testing.T) {
	existing := carbonConfig("projects/123456/locations/us/transferConfigs/abc", "carbon_export", "FFFFFF-000000-111111, 0A1B2C-3D4E5F-6A7B8C")
	fake, opts, out := setupEnv(t, existing)
	fake.SetProjectNumber("carbon-host", "123456")
	opts.Location = "" // look in every location of the project
	opts.BackfillFrom = provider.NewMonth(2025, time.March)
	if err := gcp.Setup(t.Context(), opts); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if n := len(fake.Configs()); n != 1 {
		t.Errorf("configs = %d, want the existing one only", n)
	}
	if n := fake.Requests(gcpfake.EndpointTransferCreate); n != 0 {
		t.Errorf("create requests = %d, want 0", n)
	}
	if !strings.Contains(out.String(), "already exists: projects/123456/locations/us/transferConfigs/abc") {
		t.Errorf("output does not report the existing config:\n%s", out)
	}
	// The backfill goes to the existing config.
	runs := fake.ManualRuns()
	if len(runs) != 1 || runs[0].GetParent() != existing.GetName() {
		t.Fatalf("manual runs = %v, want one on the existing config", runs)
	}
}

func TestSetupBackfill(t *testing.T) {
	tests := []struct {
		name      string
		from      provider.Month
		wantStart string
		wantRuns  int
		wantOut   string
	}{
		// 2021-01 is exported by the run of 2021-02-15; the last run
		// before now (2026-11-22) is 2026-11-15, for October 2026.
		{"earliest", provider.NewMonth(2021, time.January), "2021-02-15T00:00:00Z", 70, "Requested a backfill of 2021-01 to 2026-10"},
		{"recent", provider.NewMonth(2026, time.September), "2026-10-15T00:00:00Z", 2, "Requested a backfill of 2026-09 to 2026-10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, opts, out := setupEnv(t)
			opts.BackfillFrom = tt.from
			if err := gcp.Setup(t.Context(), opts); err != nil {
				t.Fatalf("Setup: %v", err)
			}
			runs := fake.ManualRuns()
			if len(runs) != 1 {
				t.Fatalf("manual run requests = %d, want 1", len(runs))
			}
			r := runs[0].GetRequestedTimeRange()
			if got := r.GetStartTime().AsTime().Format(time.RFC3339); got != tt.wantStart {
				t.Errorf("startTime = %s, want %s", got, tt.wantStart)
			}
			if got := r.GetEndTime().AsTime(); !got.Equal(setupNow) {
				t.Errorf("endTime = %v, want now (%v)", got, setupNow)
			}
			if runs[0].GetParent() != fake.Configs()[0].GetName() {
				t.Errorf("backfill of %s, want the created config %s", runs[0].GetParent(), fake.Configs()[0].GetName())
			}
			want := fmt.Sprintf("%s (runs from %s to 2026-11-22T10:30:15Z): %d transfer runs", tt.wantOut, tt.wantStart, tt.wantRuns)
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

func TestSetupDryRunSendsNothing(t *testing.T) {
	var requests int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests++
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(ts.Close)
	out := &bytes.Buffer{}
	err := gcp.Setup(t.Context(), gcp.SetupOptions{
		Project: "carbon-host", Location: "EU", BillingAccount: "0A1B2C-3D4E5F-6A7B8C", Dataset: "carbon-host.carbon_export",
		BackfillFrom: provider.NewMonth(2024, time.June), DryRun: true,
		// Credentials are not even looked up.
		CredentialsFile: "/nonexistent/key.json",
		Endpoint:        ts.URL, HTTPClient: ts.Client(), Out: out, Now: func() time.Time { return setupNow },
	})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if requests != 0 {
		t.Errorf("dry run sent %d requests", requests)
	}
	for _, s := range []string{
		"Dry run: no request is sent.",
		`Otherwise would create in projects/carbon-host/locations/eu: displayName "Carbon Footprint 0A1B2C-3D4E5F-6A7B8C", dataSourceId 61cede5a-0000-2440-ad42-883d24f8f7b8, destinationDatasetId carbon_export, params.billing_accounts 0A1B2C-3D4E5F-6A7B8C.`,
		"Would request a backfill of 2024-06 to 2026-10: startManualRuns with requestedTimeRange startTime 2024-07-15T00:00:00Z, endTime 2026-11-22T10:30:15Z.",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("dry-run output lacks %q:\n%s", s, out)
		}
	}
}

func TestSetupValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*gcp.SetupOptions)
		err  string
	}{
		{"bad billing account", func(o *gcp.SetupOptions) { o.BillingAccount = "123" }, `billing account "123": want XXXXXX-XXXXXX-XXXXXX`},
		{"dataset in another project", func(o *gcp.SetupOptions) { o.Dataset = "other.carbon" }, "not in project carbon-host"},
		{"backfill too early", func(o *gcp.SetupOptions) { o.BackfillFrom = provider.NewMonth(2020, time.December) }, "Google exports no month before 2021-01"},
		{"backfill not exported yet", func(o *gcp.SetupOptions) { o.BackfillFrom = provider.NewMonth(2026, time.October) + 1 }, "exported on 2026-12-15, which is not past yet"},
		{"bad location", func(o *gcp.SetupOptions) { o.Location = "us central" }, `location "us central"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, opts, _ := setupEnv(t)
			tt.edit(&opts)
			err := gcp.Setup(t.Context(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Setup error = %v, want %q", err, tt.err)
			}
			if n := fake.Requests(""); n != 0 {
				t.Errorf("invalid options sent %d requests", n)
			}
		})
	}
}

func TestSetupPermissionHint(t *testing.T) {
	fake, opts, _ := setupEnv(t)
	fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointTransferCreate, Status: http.StatusForbidden,
		Body: `{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`})
	err := gcp.Setup(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "Carbon Footprint Viewer") || !strings.Contains(err.Error(), "creating the transfer config in projects/carbon-host/locations/us") {
		t.Fatalf("Setup error = %v, want a permission hint", err)
	}
}
