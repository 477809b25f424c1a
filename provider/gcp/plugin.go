package gcp

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

// Name is the provider label value of gcp data and the key of its
// configuration section.
const Name = "gcp"

// example is the gcp section of the example configuration.
//
//go:embed example.yml
var example string

// Plugin describes Google Cloud to the exporter.
func Plugin() provider.Plugin {
	return provider.Plugin{
		Name:      Name,
		Schedule:  publication(),
		NewConfig: func() provider.SourceConfig { return &Config{} },
		Demo:      demo,
		Example:   example,
		Commands:  []provider.Command{setupCommand()},
		Counters:  []provider.Counter{{Name: bytesProcessedTotal, Help: "Bytes processed by BigQuery queries, as reported by the jobs; BigQuery bills by this figure."}},
		Methodology: provider.Methodology{
			Source: "Google Cloud Carbon Footprint export in BigQuery (carbon_footprint table); cost from the standard billing export",
			Includes: "Google Cloud's scope 1, scope 2 and scope 3 emissions allocated to the billing account's usage, per project, service and region: " +
				"scope 2 location-based and, from January 2023, market-based; billing cost net of credits",
			Unit: "kgCO2e, converted to grams (x 1000); cost in the billing currency, converted to US dollars with the export's currency_conversion_rate",
			URL:  "https://cloud.google.com/carbon-footprint/docs/methodology",
			ModelVersion: "carbon_model_version, an integer Google raises when it changes its model (twice a year since 2024): " +
				"a month served under another version is a restatement, and the stored months are fetched again",
		},
	}
}

// bytesProcessedTotal is the self-metric of what the queries cost.
const bytesProcessedTotal = "bigquery_bytes_processed_total"

// Config is one entry of the gcp section: one Carbon Footprint export in
// BigQuery, with the billing export of the same billing account for cost.
// After Check, Name, CarbonTable (project.dataset.table) and
// MaxBytesBilled are set and CredentialsFile is absolute.
type Config struct {
	Name string `yaml:"name"`
	// Project runs (and pays for) the query jobs.
	Project string `yaml:"project"`
	// CarbonTable is project.dataset.table, or project.dataset for the
	// export's default table name carbon_footprint.
	CarbonTable string `yaml:"carbon_table"`
	// BillingTable is the standard billing export table,
	// project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX, or the
	// detailed one (gcp_billing_export_resource_v1_…, a superset of its
	// columns, which alone has GKE cost allocation's labels); without it
	// there is no cost metric.
	BillingTable string `yaml:"billing_table,omitempty"`
	// BillingAccount keeps only this billing account's carbon rows, for a
	// dataset that holds several.
	BillingAccount string `yaml:"billing_account,omitempty"`
	// Location is the datasets' location, e.g. US or EU.
	Location string `yaml:"location,omitempty"`
	// MaxBytesBilled fails any query that would bill more, a guard
	// against a misconfigured table scan.
	MaxBytesBilled int64 `yaml:"max_bytes_billed"`
	// CredentialsFile is a service-account key; empty selects Application
	// Default Credentials.
	CredentialsFile string `yaml:"credentials_file,omitempty"`
	// Endpoint overrides the BigQuery REST endpoint.
	Endpoint string `yaml:"endpoint,omitempty"`
	// Provisional asks for provisional months: the cost of the months
	// Google has not exported emissions for yet, the current one to date,
	// read from the billing export (which needs billing_table), from which
	// the exporter estimates their emissions.
	Provisional bool `yaml:"provisional"`
	// AllocateBy are the label keys by which the source's emissions are
	// allocated, each in proportion to the cost of its values within a
	// project, service, location and month: a resource label's key as the
	// billing export spells it (team, or GKE cost allocation's
	// k8s-namespace and k8s-label/<key>), or a project label's prefixed
	// with "project:". Read from the billing export (which needs
	// billing_table): one more query per refresh for all the keys.
	AllocateBy []string `yaml:"allocate_by,omitempty"`
	// AllocateTop is how many values per key are kept, by cost; the rest
	// are folded into one value. Default 100.
	AllocateTop int `yaml:"allocate_top,omitempty"`
}

const tableHint = "project.dataset.table, e.g. my-project.carbon.carbon_footprint"

// SourceName implements provider.SourceConfig.
func (c *Config) SourceName() *string { return &c.Name }

// Check implements provider.SourceConfig. It applies the rules New
// applies, so that a configuration that passes is not refused when the
// client is built, but reports them by key for the file's lines.
func (c *Config) Check(v provider.Checker) {
	if c.Project == "" {
		v.Errorf("", "gcp entry %q has no project; set the project that runs the queries (it needs the BigQuery Job User role)", c.Name)
	} else if !projectPattern.MatchString(c.Project) {
		v.Errorf("project", "gcp.project is not a project id (6 to 30 small letters, digits and hyphens, such as my-project-123)")
	}
	if c.CarbonTable == "" {
		v.Errorf("", "gcp entry %q has no carbon_table; set the Carbon Footprint export's %s", c.Name, tableHint)
	} else if ref, err := parseTable("carbon table", c.CarbonTable, DefaultCarbonTable); err != nil {
		v.Errorf("carbon_table", "gcp.carbon_table must be %s", tableHint)
	} else {
		// Spelled out so that the printed configuration and the source's
		// identity name the table that is read.
		c.CarbonTable = ref.String()
	}
	if c.BillingTable != "" {
		if _, err := parseTable("billing table", c.BillingTable, ""); err != nil {
			v.Errorf("billing_table", "gcp.billing_table must be project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX")
		}
	}
	if c.Provisional && c.BillingTable == "" {
		v.Errorf("provisional", "gcp entry %q asks for provisional months, which are estimated from the cost in the billing export: set billing_table", c.Name)
	}
	c.checkAllocation(v)
	if c.BillingAccount != "" && !billingAccountPattern.MatchString(c.BillingAccount) {
		v.Errorf("billing_account", "gcp.billing_account must look like 012345-6789AB-CDEF01")
	}
	// Only an absent key takes the default: an explicit 0 is a mistake to
	// report, not a request for the default.
	if !v.Has("max_bytes_billed") {
		c.MaxBytesBilled = DefaultMaxBytesBilled
	} else if c.MaxBytesBilled < minMaxBytesBilled {
		v.Errorf("max_bytes_billed", "gcp.max_bytes_billed must be at least %d (10 MiB), BigQuery's minimum charge per query", minMaxBytesBilled)
	}
	v.File("credentials_file", &c.CredentialsFile)
	if c.Endpoint != "" {
		if err := provider.CheckURL(c.Endpoint); err != nil {
			v.Errorf("endpoint", "gcp.endpoint %w", err)
		}
	}
}

// checkAllocation checks allocate_by and allocate_top and, for an entry
// that allocates, sets the default of allocate_top. An entry that does not
// keeps 0, which provider.Allocation reads as the default too, so that its
// checked configuration is what it was before allocation existed.
func (c *Config) checkAllocation(v provider.Checker) {
	a := c.Allocation()
	provider.CheckAllocation(v, &a, nil)
	if len(c.AllocateBy) > 0 {
		c.AllocateTop = a.Top
	}
	for i, k := range c.AllocateBy {
		if err := checkTagKey(k); err != nil {
			v.Errorf(fmt.Sprintf("allocate_by.%d", i), "gcp.allocate_by: %w", err)
		}
	}
	if len(c.AllocateBy) > 0 && c.BillingTable == "" {
		v.Errorf("allocate_by", "gcp entry %q allocates by labels, which are read from the billing export: set billing_table", c.Name)
	}
}

// Allocation implements provider.AllocatingSource.
func (c *Config) Allocation() provider.Allocation {
	return provider.Allocation{By: c.AllocateBy, Top: c.AllocateTop}
}

var _ provider.AllocatingSource = (*Config)(nil)

// Identity implements provider.SourceConfig. Its format is that of the
// state files earlier releases wrote, so that they are still reused.
func (c *Config) Identity() string {
	return strings.Join([]string{Name, c.Endpoint, c.CarbonTable, c.BillingTable,
		"account=" + c.BillingAccount}, "|")
}

// Covers implements provider.SourceConfig: one Carbon Footprint export,
// whole or for one billing account.
func (c *Config) Covers() []provider.Coverage {
	what := "the Carbon Footprint export " + c.CarbonTable
	if c.BillingAccount != "" {
		what += " for billing account " + c.BillingAccount
	}
	return []provider.Coverage{{Key: c.CarbonTable + "|" + c.BillingAccount, What: what}}
}

// WantsProvisional implements provider.ProvisionalSource.
func (c *Config) WantsProvisional() bool { return c.Provisional }

// New implements provider.SourceConfig.
func (c *Config) New(ctx context.Context, env provider.Env) (provider.Provider, error) {
	p, err := New(ctx, Options{
		Project:               c.Project,
		CarbonTable:           c.CarbonTable,
		BillingTable:          c.BillingTable,
		BillingAccount:        c.BillingAccount,
		Location:              c.Location,
		MaxBytesBilled:        c.MaxBytesBilled,
		CredentialsFile:       c.CredentialsFile,
		Endpoint:              c.Endpoint,
		WithoutAuthentication: env.Connection.WithoutAuthentication,
		HTTPClient:            env.Connection.HTTPClient,
		Observe:               env.Observe,
		ObserveBytes:          env.Counters[bytesProcessedTotal],
		Logger:                env.Logger,
		TagKeys:               c.AllocateBy,
	})
	if err != nil {
		// A nil *Provider in the interface would not compare equal to nil.
		return nil, err
	}
	return withFeeds(p, c.Provisional, len(c.AllocateBy) > 0), nil
}

// demoSource is the demo entry's source name.
const demoSource = "gcp-demo"

// demo serves gcpfake's demo billing account. The fake checks no
// credentials, and a configuration cannot say so.
func demo(ctx context.Context, now time.Time, logger *slog.Logger) (*provider.Demo, error) {
	ds := gcpfake.Demo(now)
	url, stop, err := fakehttp.Serve(ctx, gcpfake.NewServer(ds), nil, logger)
	if err != nil {
		return nil, fmt.Errorf("gcp demo: %w", err)
	}
	return &provider.Demo{
		Entries: []map[string]any{{
			"name":          demoSource,
			"project":       ds.Project,
			"carbon_table":  ds.CarbonTable,
			"billing_table": ds.BillingTable,
			"location":      ds.Location,
			"endpoint":      url + gcpfake.BasePath,
			"provisional":   true,
			// The team label, and GKE cost allocation's namespaces on the
			// demo's cluster.
			"allocate_by": []string{"team", "k8s-namespace"},
		}},
		Connections: map[string]provider.Connection{demoSource: {WithoutAuthentication: true}},
		Close:       stop,
	}, nil
}

// setupFlags are the gcp-setup command's flags.
type setupFlags struct {
	project, billingAccount, dataset, location string
	backfillFrom, credentialsFile, endpoint    string
	dryRun                                     bool
}

// setupCommand is gcp-setup: creating the export is a one-off act with
// admin rights the exporter itself must not hold, so it is a command of
// its own rather than something the exporter does when it starts.
func setupCommand() provider.Command {
	return provider.Command{
		Name: "gcp-setup",
		Help: "Create the GCP Carbon Footprint export (a BigQuery Data Transfer config) for a billing account, " +
			"and optionally backfill its history. Does nothing when the export exists.",
		Setup: func(cmd *kingpin.CmdClause) func(context.Context, io.Writer) error {
			f := &setupFlags{}
			cmd.Flag("project", "Project that owns the transfer config and the destination dataset.").Required().StringVar(&f.project)
			cmd.Flag("billing-account", "Billing account to export, e.g. 012345-6789AB-CDEF01.").Required().StringVar(&f.billingAccount)
			cmd.Flag("dataset", "Destination dataset in --project; it must exist.").Required().StringVar(&f.dataset)
			cmd.Flag("location", "Location of the dataset, e.g. US or EU.").StringVar(&f.location)
			cmd.Flag("backfill-from", "Also load history from this month (YYYY-MM, 2021-01 at the earliest).").StringVar(&f.backfillFrom)
			cmd.Flag("credentials-file", "Service-account key file; default: Application Default Credentials.").StringVar(&f.credentialsFile)
			cmd.Flag("endpoint", "BigQuery Data Transfer API endpoint, for private endpoints.").StringVar(&f.endpoint)
			cmd.Flag("dry-run", "Print what would be done and call nothing.").BoolVar(&f.dryRun)
			return f.run
		},
	}
}

func (f *setupFlags) run(ctx context.Context, out io.Writer) error {
	var from provider.Month
	if f.backfillFrom != "" {
		m, err := provider.ParseMonth(f.backfillFrom)
		if err != nil {
			return fmt.Errorf("--backfill-from: %w", err)
		}
		from = m
	}
	return Setup(ctx, SetupOptions{
		Project: f.project, Location: f.location, BillingAccount: f.billingAccount, Dataset: f.dataset,
		BackfillFrom: from, DryRun: f.dryRun, Endpoint: f.endpoint, CredentialsFile: f.credentialsFile, Out: out,
	})
}
