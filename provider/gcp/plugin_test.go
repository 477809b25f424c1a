package gcp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

// checker is a provider.Checker that records what Check reports.
type checker struct {
	has    map[string]bool
	errors []string // "key: message"
	files  []string
}

func (c *checker) Errorf(key, format string, args ...any) {
	c.errors = append(c.errors, key+": "+fmt.Errorf(format, args...).Error())
}

func (c *checker) Has(key string) bool { return c.has[key] }

func (c *checker) Secret(provider.SecretRef, bool) {}

func (c *checker) File(key string, path *string) {
	if *path != "" {
		c.files = append(c.files, key+"="+*path)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name   string
		cfg    gcp.Config
		has    []string
		want   gcp.Config
		errors []string
	}{
		{
			name: "carbon table default suffix",
			cfg:  gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon"},
			want: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.carbon_footprint",
				MaxBytesBilled: gcp.DefaultMaxBytesBilled},
		},
		{
			name: "domain-scoped project",
			cfg:  gcp.Config{Name: "gcp", Project: "example.com:my-project", CarbonTable: "example.com:my-project.carbon"},
			want: gcp.Config{Name: "gcp", Project: "example.com:my-project", CarbonTable: "example.com:my-project.carbon.carbon_footprint",
				MaxBytesBilled: gcp.DefaultMaxBytesBilled},
		},
		{
			name: "max_bytes_billed given",
			cfg:  gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", MaxBytesBilled: 20 << 20},
			has:  []string{"max_bytes_billed"},
			want: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", MaxBytesBilled: 20 << 20},
		},
		{
			name: "errors",
			cfg: gcp.Config{Name: "prod", Project: "X", BillingTable: "acme.billing", BillingAccount: "abc",
				Endpoint: "https://user:pw@bigquery.example.com/"},
			has: []string{"max_bytes_billed"},
			want: gcp.Config{Name: "prod", Project: "X", BillingTable: "acme.billing", BillingAccount: "abc",
				Endpoint: "https://user:pw@bigquery.example.com/"},
			errors: []string{
				`project: gcp.project is not a project id (6 to 30 small letters, digits and hyphens, such as my-project-123)`,
				`: gcp entry "prod" has no carbon_table; set the Carbon Footprint export's project.dataset.table, e.g. my-project.carbon.carbon_footprint`,
				`billing_table: gcp.billing_table must be project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX`,
				`billing_account: gcp.billing_account must look like 012345-6789AB-CDEF01`,
				`max_bytes_billed: gcp.max_bytes_billed must be at least 10485760 (10 MiB), BigQuery's minimum charge per query`,
				`endpoint: gcp.endpoint must not contain a user name or password`,
			},
		},
		{
			name: "no project, bad carbon table",
			cfg:  gcp.Config{Name: "gcp", CarbonTable: "my-project.carbon.t.x"},
			want: gcp.Config{Name: "gcp", CarbonTable: "my-project.carbon.t.x", MaxBytesBilled: gcp.DefaultMaxBytesBilled},
			errors: []string{
				`: gcp entry "gcp" has no project; set the project that runs the queries (it needs the BigQuery Job User role)`,
				`carbon_table: gcp.carbon_table must be project.dataset.table, e.g. my-project.carbon.carbon_footprint`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &checker{has: map[string]bool{}}
			for _, k := range tt.has {
				c.has[k] = true
			}
			cfg := tt.cfg
			cfg.Check(c)
			if !reflect.DeepEqual(c.errors, tt.errors) {
				t.Errorf("errors:\n got %q\nwant %q", c.errors, tt.errors)
			}
			if cfg != tt.want {
				t.Errorf("checked config = %+v, want %+v", cfg, tt.want)
			}
		})
	}
}

func TestConfigCheckCredentialsFile(t *testing.T) {
	c := &checker{}
	cfg := gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon", CredentialsFile: "key.json"}
	cfg.Check(c)
	if len(c.errors) != 0 || !reflect.DeepEqual(c.files, []string{"credentials_file=key.json"}) {
		t.Errorf("errors %q, files %q: want credentials_file handed to File", c.errors, c.files)
	}
}

// TestIdentity pins the format state files of earlier releases hold.
func TestIdentity(t *testing.T) {
	cfg := gcp.Config{Project: "my-project", CarbonTable: "my-project.carbon.carbon_footprint",
		BillingTable: "my-project.billing.gcp_billing_export_v1_012345_6789AB_CDEF01", BillingAccount: "012345-6789AB-CDEF01",
		Endpoint: "https://bq.example.com/bigquery/v2/", Location: "EU", MaxBytesBilled: 1 << 30}
	want := "gcp|https://bq.example.com/bigquery/v2/|my-project.carbon.carbon_footprint|" +
		"my-project.billing.gcp_billing_export_v1_012345_6789AB_CDEF01|account=012345-6789AB-CDEF01"
	if got := cfg.Identity(); got != want {
		t.Errorf("Identity = %q, want %q", got, want)
	}
}

func TestPlugin(t *testing.T) {
	p := gcp.Plugin()
	if p.Name != "gcp" || p.Schedule.PublishDelay != gcp.PublishDelay || p.Schedule.SettleDelay != gcp.SettleDelay {
		t.Errorf("plugin %s, schedule %+v", p.Name, p.Schedule)
	}
	if _, ok := p.NewConfig().(*gcp.Config); !ok {
		t.Errorf("NewConfig = %T, want *gcp.Config", p.NewConfig())
	}
}

// setupCommand declares gcp-setup on a fresh application and returns it
// with its runner.
func setupCommand(t *testing.T) (*kingpin.Application, func(context.Context, *bytes.Buffer) error) {
	t.Helper()
	cmds := gcp.Plugin().Commands
	if len(cmds) != 1 || cmds[0].Name != "gcp-setup" {
		t.Fatalf("commands = %+v, want gcp-setup", cmds)
	}
	app := kingpin.New("test", "")
	app.Terminate(nil)
	run := cmds[0].Setup(app.Command(cmds[0].Name, cmds[0].Help))
	return app, func(ctx context.Context, out *bytes.Buffer) error { return run(ctx, out) }
}

func TestSetupCommandDryRun(t *testing.T) {
	app, run := setupCommand(t)
	if _, err := app.Parse([]string{"gcp-setup", "--project=carbon-host", "--billing-account=0A1B2C-3D4E5F-6A7B8C",
		"--dataset=carbon_export", "--location=EU", "--backfill-from=2024-06", "--dry-run"}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, s := range []string{
		"Dry run: no request is sent.",
		"Would look for a transfer config in projects/carbon-host/locations/eu with data source " + gcpfake.CarbonFootprintDataSource,
		"destination dataset carbon_export and billing account 0A1B2C-3D4E5F-6A7B8C",
		"Would request a backfill of 2024-06 to ",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("dry-run output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestSetupCommandFlags(t *testing.T) {
	app, _ := setupCommand(t)
	if _, err := app.Parse([]string{"gcp-setup", "--project=carbon-host", "--dataset=carbon_export"}); err == nil ||
		!strings.Contains(err.Error(), "billing-account") {
		t.Errorf("parse without --billing-account: %v, want it required", err)
	}

	app, run := setupCommand(t)
	if _, err := app.Parse([]string{"gcp-setup", "--project=carbon-host", "--billing-account=0A1B2C-3D4E5F-6A7B8C",
		"--dataset=carbon_export", "--backfill-from=2024-6-1", "--dry-run"}); err != nil {
		t.Fatalf("parse: %v", err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), &out); err == nil || !strings.HasPrefix(err.Error(), "--backfill-from: ") {
		t.Errorf("run = %v, want a --backfill-from error", err)
	}
}

// TestConfigNewError checks that a client New refuses is a nil
// provider.Provider, not an interface holding a nil *gcp.Provider that the
// exporter would later call Close on.
func TestConfigNewError(t *testing.T) {
	cfg := gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon",
		CredentialsFile: filepath.Join(t.TempDir(), "missing.json")}
	cfg.Check(&checker{})
	src, err := cfg.New(t.Context(), provider.Env{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || src != nil {
		t.Errorf("New with a missing credentials file = %#v, %v; want nil and an error", src, err)
	}
}
