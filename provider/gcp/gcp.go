// Package gcp reads Google Cloud's Carbon Footprint export and, optionally,
// the standard Cloud Billing export from BigQuery and turns them into
// provider records.
//
// Carbon Footprint has no API of its own: Google exports it monthly into a
// carbon_footprint table through a BigQuery Data Transfer Service config
// (see Setup), and the exporter reads that table with SQL. Every byte a
// query scans is billed to Options.Project, so every query selects only the
// columns it needs, filters on the months asked for, bounds the billing
// export's partitions, and sets a maximum bytes billed.
//
// Labels. Account is project.id, or provider.AccountPlaceholder ("none")
// for rows Google attributes to no project (deleted projects, account-level
// charges and tax). Service is service.description ("Compute Engine"):
// Google's display name, the only readable service identifier in either
// export, and a bounded set (one per Google Cloud service). Location is
// location.region when the row has one, else location.location, lower-cased:
// zones collapse into their region ("us-central1-a" → "us-central1") and
// multi-regions and countries keep their own name ("US" → "us", "global").
// Rows without a service or location get Unknown.
//
// Emissions. The carbon table reports kgCO2e per scope: scope 1, scope 2
// location-based and market-based, and scope 3. Each (project, service,
// location, month) yields three records, scopes 1, 2 and 3, with
// EmissionsGrams the location-based figure. Google defines the market-based
// total as scope1 + scope2.market_based + scope3: only scope 2 has a
// market-based variant. So when scope2.market_based is present, each record
// also carries MarketBasedGrams: scope 1 and scope 3 repeat their
// location-based value and scope 2 carries scope2.market_based, and the
// three sum to Google's market-based total. Before 2023 Google publishes no
// market-based figure (NULL); those records carry none, never a zero.
//
// Cost. Billing rows become records with provider.ScopeNone and CostUSD:
// the net cost (cost plus credits, all cost types: regular, tax, adjustment,
// rounding error) of the invoice month, summed exactly in integer micros of
// the billing currency and converted to US dollars with the row's
// currency_conversion_rate (local units per USD).
//
// Provisional months. A source that asks for them (provisional: true)
// also reads the cost of the months Google has not exported emissions for
// yet, the current one to date, from the same billing query (see
// ReadCosts): its provider implements provider.CostFeed.
//
// Allocation. A source that sets allocate_by reads the same cost grouped,
// in addition, by the value of each key's label (see ReadTagCosts): its
// provider implements provider.TagFeed.
package gcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/option"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// GCP's publication schedule. The Carbon Footprint export lands on the
// 15th of the following month, i.e. 14 days after the month ends.
//
// SettleDelay is 30 days. Google does not rewrite exported months on its
// own: a month changes only when its transfer run is repeated (a failed
// run retried, a manual re-run or a backfill), which in practice happens
// within weeks of publication. Keeping a month open for 30 more days polls
// it daily through that period (and the carbon_model_version of each poll
// is compared, so a restatement is counted); keeping months open longer
// would re-scan the billing export's partitions of every open month on
// every poll, which costs money for changes that do not come. By the time
// a month is final its invoice month has closed too: billing corrections
// of month M are booked in later invoice months. Exported so that the fake
// and the demo dataset agree with the provider on which months exist.
const (
	PublishDelay = 14 * 24 * time.Hour
	SettleDelay  = 30 * 24 * time.Hour
)

// GramsPerKilogram converts the carbon table's kgCO2e to grams.
const GramsPerKilogram = 1000.0

// Unknown is the service or location label of rows that name none, so that
// the label is never empty and such rows stay visible in sums.
const Unknown = "unknown"

// DefaultMaxBytesBilled bounds every query when Options.MaxBytesBilled is
// zero: 10 GiB, about US$0.06 at on-demand prices, far above what the
// carbon table and a few months of a typical billing export's needed
// columns scan, and low enough that a missing partition filter fails fast
// instead of scanning years of billing data.
const DefaultMaxBytesBilled int64 = 10 << 30

// minMaxBytesBilled is BigQuery's minimum charge per table a query reads:
// a lower cap makes every query fail.
const minMaxBytesBilled int64 = 10 << 20

// DefaultCarbonTable is the table the Carbon Footprint export writes into
// its destination dataset.
const DefaultCarbonTable = "carbon_footprint"

// BillingExportLag is how far past the end of an invoice month the billing
// query reads partitions. The billing export is partitioned by export time,
// and rows of invoice month M keep arriving after M ends: usage of its last
// hours (invoice months end at midnight US/Pacific, up to eight hours after
// midnight UTC), and tax and rounding rows when the invoice closes in the
// first days of the next month. Rows of invoice month M exported later
// than this are not counted.
const BillingExportLag = 7 * 24 * time.Hour

const defaultHTTPTimeout = 60 * time.Second

// MaxResponseBytes bounds one response body. Query result pages are at
// most 10 MiB by BigQuery's own limit; anything far beyond is broken.
const MaxResponseBytes = 64 << 20

// Options configures one GCP source: one carbon export dataset and,
// optionally, one billing export table.
type Options struct {
	// Project runs (and pays for) the query jobs. Required.
	Project string
	// CarbonTable is "project.dataset.table", or "project.dataset" for
	// the export's own table name (DefaultCarbonTable). Required.
	CarbonTable string
	// BillingTable is the standard billing export table
	// ("project.dataset.gcp_billing_export_v1_XXXXXX_XXXXXX_XXXXXX").
	// Optional: without it no cost records are produced.
	BillingTable string
	// BillingAccount, when set, restricts the carbon rows to one billing
	// account ("XXXXXX-XXXXXX-XXXXXX"). A carbon export can carry several
	// billing accounts in one dataset while each billing account has its
	// own billing export table: configure one source per billing account,
	// each with the shared CarbonTable, its BillingAccount and its
	// BillingTable, so that no emissions are reported twice.
	BillingAccount string
	// Location is the datasets' location ("US", "EU", "europe-west1").
	// Optional: BigQuery infers it from the tables, but naming it saves
	// a lookup and makes a mismatch an explicit error.
	Location string
	// MaxBytesBilled caps every query's billed bytes: a query that would
	// bill more fails instead of running. 0 selects
	// DefaultMaxBytesBilled. BigQuery bills at least 10 MiB per table, so
	// lower values make every query fail.
	MaxBytesBilled int64
	// CredentialsFile is a service-account key file. Empty selects
	// Application Default Credentials.
	CredentialsFile string
	// Endpoint overrides the BigQuery REST endpoint
	// ("http://127.0.0.1:9050/bigquery/v2/"): tests, the emulator, the
	// demo and private endpoints.
	Endpoint string
	// WithoutAuthentication sends no credentials. Tests and demo only.
	WithoutAuthentication bool
	// HTTPClient is the base client. Its Transport and Timeout are kept;
	// nil selects a client with a 60s timeout that honours
	// HTTPS_PROXY/NO_PROXY.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt, retries and token
	// requests included. Endpoint names: "jobs.query",
	// "jobs.getQueryResults", "jobs.insert", "jobs.get", "token", "other",
	// and for the cost feed's requests (ReadCosts) the same names
	// prefixed with "costs.", for the tag feed's (ReadTagCosts) with
	// "tags.".
	Observe provider.RequestObserver
	// ObserveBytes, when set, is told the totalBytesProcessed of every
	// query job.
	ObserveBytes func(bytes float64)
	// Logger receives debug logs of queries and their bytes; nil discards.
	Logger *slog.Logger
	// TagKeys are the label keys the source allocates by (allocate_by):
	// ReadTagCosts reads all of them in one query, which bills the bytes
	// of one (see ReadTagCosts).
	TagKeys []string
}

// tableRef is a validated, fully qualified table name.
type tableRef struct{ project, dataset, table string }

func (t tableRef) String() string { return t.project + "." + t.dataset + "." + t.table }

// sql returns the table quoted for use in a FROM clause. The parts are
// validated, so quoting cannot be escaped.
func (t tableRef) sql() string { return "`" + t.String() + "`" }

// Identifier shapes. Project ids are 6–30 lower-case letters, digits and
// hyphens, starting with a letter and not ending with a hyphen, optionally
// prefixed by a domain ("example.com:my-project"); dataset ids are letters,
// digits and underscores; export table names are letters, digits,
// underscores and (for billing account ids) hyphens. The configuration,
// the client and gcp-setup share these, so that a name one accepts is not
// refused by another; they keep names safe inside backquotes and catch
// typos before any query is billed.
var (
	projectPattern = regexp.MustCompile(`^(?:[a-z0-9][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	datasetPattern = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
	tablePattern   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// parseTable parses "project.dataset.table", or "project.dataset" when
// defaultTable is set. A domain-scoped project id contains a dot, so the
// dataset and table are taken from the right.
func parseTable(what, s, defaultTable string) (tableRef, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (tableRef, error) {
		want := "project.dataset.table"
		if defaultTable != "" {
			want += " or project.dataset"
		}
		return tableRef{}, fmt.Errorf("gcp: %s %q: %s (want %s)", what, s, why, want)
	}
	// Split off the project: everything up to the first dot after an
	// optional "domain:" prefix.
	rest := s
	prefix := ""
	if i := strings.LastIndex(s, ":"); i >= 0 {
		prefix, rest = s[:i+1], s[i+1:]
	}
	parts := strings.Split(rest, ".")
	var ref tableRef
	switch {
	case len(parts) == 3:
		ref = tableRef{prefix + parts[0], parts[1], parts[2]}
	case len(parts) == 2 && defaultTable != "":
		ref = tableRef{prefix + parts[0], parts[1], defaultTable}
	default:
		return bad("wrong number of parts")
	}
	switch {
	case !projectPattern.MatchString(ref.project):
		return bad("invalid project id")
	case !datasetPattern.MatchString(ref.dataset):
		return bad("invalid dataset id")
	case !tablePattern.MatchString(ref.table):
		return bad("invalid table name")
	}
	return ref, nil
}

// Provider reads one carbon export dataset (and billing export table). It
// is safe for concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	client  *bigquery.Client
	carbon  tableRef
	billing *tableRef

	// mu guards partial, the carbon rows of the last fetch whose billing
	// query failed (see Fetch).
	mu      sync.Mutex
	partial *partialFetch

	// tagSlot, a semaphore of one, is held by the tag read under way;
	// its holder alone uses tags, the values read for keys not asked for
	// yet (see ReadTagCosts).
	tagSlot chan struct{}
	tags    *keptTags
}

var _ provider.Provider = (*Provider)(nil)

// New validates opts and builds the BigQuery client. It looks up
// credentials (which reads the key file or the ADC sources) but sends no
// request.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if !projectPattern.MatchString(opts.Project) {
		return nil, fmt.Errorf("gcp: project %q: want a Google Cloud project id", opts.Project)
	}
	carbon, err := parseTable("carbon table", opts.CarbonTable, DefaultCarbonTable)
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: opts, carbon: carbon, log: opts.Logger, tagSlot: make(chan struct{}, 1)}
	if strings.TrimSpace(opts.BillingTable) != "" {
		b, err := parseTable("billing table", opts.BillingTable, "")
		if err != nil {
			return nil, err
		}
		p.billing = &b
	}
	if opts.BillingAccount != "" {
		p.opts.BillingAccount = strings.ToUpper(strings.TrimSpace(opts.BillingAccount))
		if !billingAccountPattern.MatchString(p.opts.BillingAccount) {
			return nil, fmt.Errorf("gcp: billing account %q: want XXXXXX-XXXXXX-XXXXXX", opts.BillingAccount)
		}
	}
	switch {
	case opts.MaxBytesBilled == 0:
		p.opts.MaxBytesBilled = DefaultMaxBytesBilled
	case opts.MaxBytesBilled < 0:
		return nil, fmt.Errorf("gcp: max bytes billed %d is negative", opts.MaxBytesBilled)
	}
	if len(opts.TagKeys) > provider.MaxAllocationKeys {
		return nil, fmt.Errorf("gcp: %d tag keys; at most %d", len(opts.TagKeys), provider.MaxAllocationKeys)
	}
	for _, k := range opts.TagKeys {
		if err := checkTagKey(k); err != nil {
			return nil, fmt.Errorf("gcp: tag key %q: %w", k, err)
		}
	}
	p.opts.TagKeys = slices.Clone(opts.TagKeys)
	if opts.WithoutAuthentication && opts.CredentialsFile != "" {
		return nil, errors.New("gcp: a credentials file and no authentication exclude each other")
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}

	hc, err := newHTTPClient(clientConfig{
		base:          opts.HTTPClient,
		observe:       opts.Observe,
		credsFile:     opts.CredentialsFile,
		noAuth:        opts.WithoutAuthentication,
		scopes:        []string{bigquery.Scope},
		endpointNamer: bigQueryEndpoint,
		pages:         true,
	})
	if err != nil {
		return nil, err
	}
	copts := []option.ClientOption{option.WithHTTPClient(hc)}
	if opts.Endpoint != "" {
		copts = append(copts, option.WithEndpoint(opts.Endpoint))
	}
	p.client, err = bigquery.NewClient(ctx, opts.Project, copts...)
	if err != nil {
		return nil, fmt.Errorf("gcp: BigQuery client: %w", err)
	}
	return p, nil
}

// Close releases the BigQuery client.
func (p *Provider) Close() error { return p.client.Close() }

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}
