package gcp_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
			name: "allocation",
			cfg: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", BillingTable: "my-project.billing.t",
				AllocateBy: []string{"team", "k8s-namespace", "k8s-label/app.kubernetes.io/name", "project:cost-center"}, AllocateTop: 20},
			has: []string{"allocate_top"},
			want: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", BillingTable: "my-project.billing.t",
				MaxBytesBilled: gcp.DefaultMaxBytesBilled, AllocateBy: []string{"team", "k8s-namespace", "k8s-label/app.kubernetes.io/name", "project:cost-center"},
				AllocateTop: 20},
		},
		{
			name: "allocation, the default top",
			cfg:  gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", BillingTable: "my-project.billing.t", AllocateBy: []string{"team"}},
			want: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", BillingTable: "my-project.billing.t",
				MaxBytesBilled: gcp.DefaultMaxBytesBilled, AllocateBy: []string{"team"}, AllocateTop: provider.DefaultAllocationTop},
		},
		{
			name: "allocation errors",
			cfg:  gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", AllocateBy: []string{"team", "project:", " env", "team"}},
			has:  []string{"allocate_top"},
			want: gcp.Config{Name: "gcp", Project: "my-project", CarbonTable: "my-project.carbon.t", MaxBytesBilled: gcp.DefaultMaxBytesBilled,
				AllocateBy: []string{"team", "project:", " env", "team"}, AllocateTop: provider.DefaultAllocationTop},
			errors: []string{
				`allocate_top: allocate_top must be between 1 and 1000`,
				`allocate_by.2: allocate_by has an empty key or one with leading or trailing spaces`,
				`allocate_by.3: allocate_by lists a key twice`,
				`allocate_by.1: gcp.allocate_by: project: must be followed by the key of a project label`,
				`allocate_by: gcp entry "gcp" allocates by labels, which are read from the billing export: set billing_table`,
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
			if !reflect.DeepEqual(cfg, tt.want) {
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

// TestFeedsByConfig: a source's provider implements exactly the feeds its
// entry asks for.
func TestFeedsByConfig(t *testing.T) {
	for _, tt := range []struct {
		provisional bool
		allocate    []string
	}{{false, nil}, {true, nil}, {false, []string{"team"}}, {true, []string{"team", "k8s-namespace"}}} {
		cfg := gcp.Config{Name: "gcp", Project: project, CarbonTable: carbonTable, BillingTable: billingTable,
			Provisional: tt.provisional, AllocateBy: tt.allocate}
		c := &checker{}
		cfg.Check(c)
		if top := cfg.Allocation().Top; len(c.errors) > 0 || (len(tt.allocate) > 0 && top != provider.DefaultAllocationTop) {
			t.Errorf("%+v: errors %q, allocation %+v", tt, c.errors, cfg.Allocation())
		}
		p, err := cfg.New(t.Context(), provider.Env{Logger: slog.New(slog.DiscardHandler),
			Connection: provider.Connection{WithoutAuthentication: true}})
		if err != nil {
			t.Fatal(err)
		}
		_, cost := p.(provider.CostFeed)
		_, tags := p.(provider.TagFeed)
		if cost != tt.provisional || tags != (len(tt.allocate) > 0) {
			t.Errorf("provisional %v, allocate_by %v: a cost feed %v, a tag feed %v", tt.provisional, tt.allocate, cost, tags)
		}
		_ = p.Close()
	}
}

// TestDemoAllocation: the demo source allocates by team and by GKE's
// namespaces, and the demo's billing export carries three to six values
// of each besides untagged cost.
func TestDemoAllocation(t *testing.T) {
	now := time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC)
	d := startDemo(t, now)
	keys, _ := d.Entries[0]["allocate_by"].([]string)
	if !reflect.DeepEqual(keys, []string{"team", "k8s-namespace"}) {
		t.Fatalf("the demo entry allocates by %v", d.Entries[0]["allocate_by"])
	}
	ds := gcpfake.Demo(now)
	p := newProvider(t, gcp.Options{Project: ds.Project, CarbonTable: ds.CarbonTable, BillingTable: ds.BillingTable,
		Location: ds.Location, Endpoint: d.Entries[0]["endpoint"].(string), WithoutAuthentication: true, TagKeys: keys}, nil)
	last := gcpfake.LatestPublished(now)
	for _, key := range keys {
		values := map[string]float64{}
		for _, r := range readTags(t, p, key, last) {
			values[r.Value] += r.CostUSD
		}
		if n := len(values) - 1; n < 3 || n > 6 || values[""] <= 0 {
			t.Errorf("%s: values %v; want 3 to 6 and untagged cost", key, slices.Sorted(maps.Keys(values)))
		}
		if want := ds.TagTotals(last, key); !maps.EqualFunc(values, want, near) {
			t.Errorf("%s: %v, the fake's %v", key, values, want)
		}
	}
}
