// Package aws reads the AWS Sustainability API (estimated carbon emissions
// by scope and method, and water withdrawals) and, optionally, the
// organization's account names, and turns them into provider records;
// for provisional months, its cost feed reads Cost Explorer's
// GetCostAndUsage, keyed like the emissions, and for allocation its tag
// feed reads the same cost split by a cost allocation tag.
//
// The generated service/sustainability module is not available, so the
// three operations it would provide are written out in api.go on top of
// the SDK's core: the default credential chain (environment, shared
// profiles with SSO and role_arn, web identity / IRSA, ECS and EC2 roles)
// from config.LoadDefaultConfig, SigV4 from aws/signer/v4, retry decisions
// and backoff from aws/retry, restJson1 error decoding from
// aws/protocol/restjson. Organizations, Cost Explorer and STS are the
// SDK's generated clients.
//
// Secrets: a static secret access key is held by the credential provider
// and by Options; it is never logged, and every error this package returns
// is scrubbed of it. The SDK logs requests only when ClientLogMode asks it
// to, which this package never does; its other messages go to the
// source's logger, scrubbed too.
package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Partitions, each with the endpoint and SigV4 signing region the
// Sustainability API's Smithy endpoint rules give it. The SDK's other
// clients (STS, Organizations) use the same region, so that their default
// endpoints are in the same partition.
const (
	PartitionAWS   = "aws"
	PartitionUSGov = "aws-us-gov"
	PartitionChina = "aws-cn"

	EndpointAWS   = "https://api.sustainability.us-east-1.api.aws"
	EndpointUSGov = "https://sustainability.us-gov.api.aws"
	EndpointChina = "https://sustainability.global.api.amazonwebservices.com.cn"
)

type partition struct{ endpoint, region string }

// partitionNamed returns a partition's endpoint and signing region.
func partitionNamed(name string) (partition, bool) {
	switch name {
	case PartitionAWS:
		return partition{EndpointAWS, "us-east-1"}, true
	case PartitionUSGov:
		return partition{EndpointUSGov, "us-gov-west-1"}, true
	case PartitionChina:
		return partition{EndpointChina, "cn-northwest-1"}, true
	}
	return partition{}, false
}

// AWS's publication schedule. AWS publishes a month's estimates between
// the 15th and the 21st of the next month; PublishDelay puts the expected
// date at the start of the 16th, so that the refresher's fast polling
// (from a few days before the expected date to a week after it) spans the
// whole window. AWS recomputes figures when it revises its model (see
// Result.Revisions) and documents no other restatement window; re-checking
// a month for 60 days after publication also catches late corrections of
// usage, at one request per refresh.
const (
	PublishDelay = 15 * 24 * time.Hour
	SettleDelay  = 60 * 24 * time.Hour
)

// GramsPerMetricTon converts the API's EmissionsUnit MT_CO2E ("MTCO2e",
// metric tons of CO2-equivalent) to the grams every record carries.
const GramsPerMetricTon = 1e6

// MaxMonths is how many months the API serves, ending with the latest
// published one; older months are never asked for.
const MaxMonths = 38

// WaterYears is how many calendar years of water every fetch asks for:
// the year of the latest published month and the two before, whose first
// days all lie within the API's MaxMonths.
const WaterYears = 3

// Unknown is the region or service label of rows that name none, so that
// the label is never empty and such rows stay visible in sums.
const Unknown = "unknown"

// Limits of the API and of this client. The API caps MaxResults at 5000.
// The page and size bounds only stop a broken or hostile server from
// holding us forever or exhausting memory; a 5000-result page is about
// 4 MiB.
const (
	MaxPageSize      = 5000
	maxPages         = 1000
	MaxResponseBytes = 32 << 20

	defaultHTTPTimeout = time.Minute
	roleSessionName    = "cloudcarbon-exporter"
)

// Options configures one AWS source: one identity reading the
// Sustainability API.
type Options struct {
	// Partition is "aws" (default), "aws-us-gov" or "aws-cn".
	Partition string
	// Endpoint overrides the partition's Sustainability API endpoint, for
	// private endpoints and tests.
	Endpoint string

	// Profile selects a shared configuration profile; empty follows the
	// SDK (AWS_PROFILE, else "default").
	Profile string
	// AccessKeyID and SecretAccessKey are static keys; empty selects the
	// SDK's default credential chain. The secret never appears in logs or
	// errors.
	AccessKeyID, SecretAccessKey string
	// RoleARN, when set, is assumed (STS AssumeRole) with the credentials
	// above, presenting ExternalID when set.
	RoleARN, ExternalID string

	// Organizations reads account names with Organizations ListAccounts.
	Organizations bool
	// OrganizationsEndpoint overrides the Organizations endpoint. STS and
	// Organizations endpoints also follow the SDK's own settings
	// (AWS_ENDPOINT_URL_STS, a profile's services section, ...).
	OrganizationsEndpoint string
	// CostExplorerEndpoint overrides the Cost Explorer endpoint of the
	// cost and tag feeds (Costs, TagCosts); the partition's by default,
	// or the SDK's settings (AWS_ENDPOINT_URL_COST_EXPLORER, ...).
	CostExplorerEndpoint string

	// HTTPClient is the base client of the Sustainability, Organizations
	// and role_arn STS requests; its Transport and Timeout are kept. Nil
	// selects the SDK's client with a one-minute timeout, which honours
	// HTTPS_PROXY/NO_PROXY and AWS_CA_BUNDLE.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt of those requests,
	// retries included. Endpoint names: "carbon_emissions",
	// "carbon_dimension_values", "water_allocation", "organizations",
	// "cost_and_usage" (Cost Explorer, for the cost feed),
	// "cost_and_usage_by_tag" (Cost Explorer, for the tag feed), "sts",
	// "other".
	Observe provider.RequestObserver

	// MaxAttempts bounds the attempts of one request (aws/retry's standard
	// retryer: throttling, 5xx and connection errors): 0 selects 3, a
	// negative value 1.
	MaxAttempts int
	// MaxBackoff caps the retryer's backoff (0 selects 20s, the SDK's).
	// A Retry-After longer than it is not waited for: the fetch fails at
	// once with provider.ReasonThrottled and the server's delay.
	MaxBackoff time.Duration
	// Backoff replaces the retryer's exponential jitter backoff; tests
	// use it to keep retries fast and to see them.
	Backoff retry.BackoffDelayer
	// PageSize is the MaxResults of every query, 1 to 5000: 0 selects
	// 5000, the API's maximum, which minimises requests.
	PageSize int

	// Now is the clock that decides which months and years AWS serves;
	// nil selects time.Now.
	Now func() time.Time
	// Logger receives denied optional calls (warn, once) and debug logs
	// of paging; nil discards.
	Logger *slog.Logger
}

// Provider reads one AWS identity's view of the Sustainability API: a
// management account sees every account of its organization, a member
// account itself. It is safe for concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	api     sustainabilityAPI
	org     *organizations.Client // nil unless Options.Organizations
	ce      *costexplorer.Client  // the cost and tag feeds'; it sends nothing until Costs or TagCosts is called
	secrets []string

	mu sync.Mutex
	// deniedLogged records which optional calls were denied and logged,
	// so that a denial is logged once, not at every refresh.
	deniedLogged map[string]bool
	// names is the last organization listing, kept for fetches whose
	// listing fails transiently.
	names *orgListing
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.CostFeed = (*Provider)(nil)
	_ provider.TagFeed  = (*Provider)(nil)
)

// New loads the SDK configuration (shared files and environment; no
// request is made) and prepares the clients.
func New(ctx context.Context, opts Options) (*Provider, error) {
	part, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts.loadOptions(part, logger)...)
	if err != nil {
		return nil, fmt.Errorf("aws: loading the SDK configuration: %s", httpx.Scrub(err.Error(), opts.SecretAccessKey))
	}
	// One client below the SDK's clients created from here on and the
	// hand-written one, so that every attempt is observed, every body
	// bounded and every request paused by a Retry-After. The credential
	// chain's own requests (web identity, SSO, instance and task roles)
	// keep the SDK's client: it was built while loading the configuration.
	base := opts.HTTPClient
	if base == nil {
		base = &http.Client{Transport: doer{cfg.HTTPClient}}
	}
	hc := httpx.NewClient(base, httpx.ClientOptions{
		Observe:          opts.Observe,
		Endpoint:         methodOf,
		MaxResponseBytes: MaxResponseBytes,
		FailFast:         true,
	})
	hc.Transport = ownBody{hc.Transport}
	cfg.HTTPClient = hc
	if opts.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), opts.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = roleSessionName
				if opts.ExternalID != "" {
					o.ExternalID = aws.String(opts.ExternalID)
				}
			}))
	}
	if cfg.Credentials == nil {
		return nil, errors.New("aws: the SDK configuration has no credential provider")
	}
	p := &Provider{
		opts: opts,
		log:  logger,
		api: &restClient{endpoint: opts.Endpoint, region: part.region, http: hc, creds: cfg.Credentials,
			signer: v4.NewSigner(), retryer: opts.retryer(), maxWait: opts.MaxBackoff},
		secrets:      []string{opts.SecretAccessKey},
		deniedLogged: make(map[string]bool),
	}
	if opts.Organizations {
		p.org = organizations.NewFromConfig(cfg, func(o *organizations.Options) {
			if opts.OrganizationsEndpoint != "" {
				o.BaseEndpoint = aws.String(opts.OrganizationsEndpoint)
			}
		})
	}
	p.ce = costexplorer.NewFromConfig(cfg, func(o *costexplorer.Options) {
		if opts.CostExplorerEndpoint != "" {
			o.BaseEndpoint = aws.String(opts.CostExplorerEndpoint)
		}
	})
	return p, nil
}

// resolve checks o and fills in its defaults, and returns its partition.
func (o *Options) resolve() (partition, error) {
	o.Partition = cmp.Or(o.Partition, PartitionAWS)
	part, ok := partitionNamed(o.Partition)
	if !ok {
		return part, fmt.Errorf("aws: unknown partition %q: want %s, %s or %s", o.Partition, PartitionAWS, PartitionUSGov, PartitionChina)
	}
	o.Endpoint = strings.TrimRight(cmp.Or(o.Endpoint, part.endpoint), "/")
	for _, u := range []struct{ what, v string }{{"endpoint", o.Endpoint}, {"organizations endpoint", o.OrganizationsEndpoint},
		{"cost explorer endpoint", o.CostExplorerEndpoint}} {
		if u.v == "" {
			continue
		}
		if err := provider.CheckURL(u.v); err != nil {
			// The URL is not quoted: user info could hold a password.
			return part, fmt.Errorf("aws: %s %w", u.what, err)
		}
	}
	switch {
	case (o.AccessKeyID == "") != (o.SecretAccessKey == ""):
		return part, errors.New("aws: set both the access key id and the secret access key, or neither")
	case o.AccessKeyID != "" && o.Profile != "":
		return part, errors.New("aws: set static keys or a profile, not both")
	case o.ExternalID != "" && o.RoleARN == "":
		return part, errors.New("aws: an external id needs a role ARN to assume")
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return part, fmt.Errorf("aws: page size %d: want 1 to %d", o.PageSize, MaxPageSize)
	case o.MaxBackoff < 0:
		return part, fmt.Errorf("aws: max backoff %s is negative", o.MaxBackoff)
	}
	o.PageSize = cmp.Or(o.PageSize, MaxPageSize)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, retry.DefaultMaxBackoff)
	switch {
	case o.MaxAttempts == 0:
		o.MaxAttempts = retry.DefaultMaxAttempts
	case o.MaxAttempts < 0:
		o.MaxAttempts = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return part, nil
}

// loadOptions are the options of config.LoadDefaultConfig for o.
func (o *Options) loadOptions(part partition, logger *slog.Logger) []func(*config.LoadOptions) error {
	load := []func(*config.LoadOptions) error{
		config.WithRegion(part.region),
		config.WithRetryer(func() aws.Retryer { return o.retryer() }),
		// The SDK's few warnings go to the source's log instead of stderr.
		config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			level := slog.LevelDebug
			if c == logging.Warn {
				level = slog.LevelWarn
			}
			logger.Log(context.Background(), level, "AWS SDK: "+httpx.Scrub(fmt.Sprintf(format, v...), o.SecretAccessKey))
		})),
	}
	if o.HTTPClient == nil {
		// The SDK's own client, so that it can apply a custom CA bundle
		// (AWS_CA_BUNDLE, a profile's ca_bundle), which it refuses to do
		// to any other.
		load = append(load, config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(defaultHTTPTimeout)))
	}
	if o.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(o.Profile))
	}
	if o.AccessKeyID != "" {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")))
	}
	return load
}

// retryer is the SDK's standard retryer as o configures it, which never
// retries what httpx marks final: a body cut short or too large, a
// refresh over its budget, an untrusted certificate, a Retry-After longer
// than the request may wait. The SDK would retry some of them (a
// certificate error is a connection error to it) until the attempts run
// out, to the same end.
func (o *Options) retryer() *retry.Standard {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		if o.Backoff != nil {
			so.Backoff = o.Backoff
		}
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(finalError)}, so.Retryables...)
	})
}

// finalError tells the retryer not to retry the failures httpx marks
// final, and leaves every other error to its other rules.
func finalError(err error) aws.Ternary {
	if _, ok := errors.AsType[provider.Classified](err); ok || httpx.IsCertificateError(err) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// doer turns the SDK's HTTP client into a transport, so that the
// exporter's instrumentation and body limit can sit on top of it.
type doer struct{ c aws.HTTPClient }

func (d doer) RoundTrip(req *http.Request) (*http.Response, error) { return d.c.Do(req) }

// Close implements provider.Provider; the clients hold nothing beyond idle
// connections, which the HTTP client's pool closes.
func (p *Provider) Close() error { return nil }

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}
