// Package oci reads the carbon emissions that Oracle Cloud Infrastructure
// reports for a tenancy through the Usage API (RequestUsageCarbonEmissions)
// and turns them into provider records: one per compartment, service,
// region and month, location-based and market-based. For provisional
// months, its cost feed reads the same keys' cost from the same API
// (RequestSummarizedUsages, COST queries); for allocation, its tag feed
// reads that cost grouped by a tag too.
//
// Everything that talks to Oracle is the official oci-go-sdk: the usageapi
// client and its request signing, the configuration providers of the
// common and common/auth packages (API key config file, instance
// principal, OKE workload identity) and the retry decisions and backoff of
// common.DefaultRetryPolicy. This package adds what the exporter needs on
// top: a retry that stops with the refresh's context, attempts observed
// and bodies bounded below the SDK, errors that say what to grant.
//
// Secrets: a private key passphrase given in the exporter's configuration
// is held by the SDK's configuration provider and by Options; it is never
// logged, and every error this package returns is scrubbed of it. The
// private key itself is read by the SDK, never by this package. The SDK
// logs nothing unless OCI_GO_SDK_DEBUG asks it to.
package oci

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/common/auth"
	"github.com/oracle/oci-go-sdk/v65/usageapi"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Ways to authenticate, as the configuration names them.
const (
	// AuthConfigFile signs with an API key described by a profile of an
	// OCI CLI/SDK configuration file.
	AuthConfigFile = "config_file"
	// AuthInstancePrincipal signs as the compute instance the exporter
	// runs on, with certificates from the instance metadata service.
	AuthInstancePrincipal = "instance_principal"
	// AuthWorkloadIdentity signs as an OKE workload, from the pod's
	// service account token (OCI_RESOURCE_PRINCIPAL_VERSION=2.2 and
	// OCI_RESOURCE_PRINCIPAL_REGION in its environment).
	AuthWorkloadIdentity = "workload_identity"
)

// Emission calculation methods, as the configuration names them.
const (
	// MethodPowerBased allocates the energy OCI's hardware consumed to the
	// tenancy's workloads and applies the region's grid factor: both
	// location-based and market-based figures, for the services Oracle
	// meters by power.
	MethodPowerBased = "power_based"
	// MethodSpendBased multiplies spend before discounts by a regional
	// factor: market-based figures only, for most services.
	MethodSpendBased = "spend_based"
)

// Defaults of the configuration.
const (
	// DefaultConfigFile is where the OCI CLI and SDKs keep their
	// configuration.
	DefaultConfigFile = "~/.oci/config"
	// DefaultProfile is the profile the OCI CLI and SDKs read by default.
	DefaultProfile = "DEFAULT"
	// DefaultCompartmentDepth reports every compartment under its own
	// path: OCI nests compartments at most six levels below the root.
	DefaultCompartmentDepth = 6
	// MaxCompartmentDepth is the deepest compartment level OCI allows.
	MaxCompartmentDepth = 6
)

// GramsPerMetricTon converts computedCarbonEmission to the grams every
// record carries. oci-go-sdk's usageapi.UsageCarbonEmissionSummary
// documents the field as "The carbon emission usage in MTCO2 units", and
// Oracle's Emissions Management documentation expresses the figures in
// MTCO2e, metric tons of CO2-equivalent: either way metric tons.
const GramsPerMetricTon = 1e6

// OCI's publication schedule. Oracle documents no date by which a month's
// carbon figures are complete. PublishDelay puts the expected date at the
// start of the 4th of the next month, so that the refresher polls at
// refresh.interval from the 1st (three days ahead) through the 11th, and
// once figures have arrived, daily (refresh.idle_interval) until the month
// settles. OCI meters usage daily and documents late-arriving usage and
// corrections (usage reports); re-reading a month for 30 days after its
// expected date catches them, at two requests a day (one spend-based).
const (
	PublishDelay = 3 * 24 * time.Hour
	SettleDelay  = 30 * 24 * time.Hour
)

// Unknown is the service or region label of items that name none, so that
// the label is never empty and such items stay visible in sums.
const Unknown = "unknown"

// ParentTypeTenancy is the parent type of compartments: their tenancy.
const ParentTypeTenancy = "tenancy"

// Limits of this client. The page and size bounds only stop a broken or
// hostile server from holding us forever or exhausting memory.
const (
	// maxMonthsPerQuery splits long runs of months, such as a first
	// backfill, into queries of a year at most: Oracle documents no limit
	// on a query's range, and a year keeps every answer small.
	maxMonthsPerQuery = 12
	maxPages          = 1000
	MaxResponseBytes  = 32 << 20
	// maxMessageBytes bounds what an error quotes of the server's message.
	maxMessageBytes = 512

	defaultMaxAttempts = 4
	defaultMaxBackoff  = 30 * time.Second
	// authTimeout bounds each request of the instance principal's
	// metadata and federation clients, which the SDK leaves unbounded.
	authTimeout = 30 * time.Second
)

// Options configures one OCI source: one principal reading one tenancy.
type Options struct {
	// Auth is AuthConfigFile (default), AuthInstancePrincipal or
	// AuthWorkloadIdentity.
	Auth string
	// ConfigFile and Profile select the API key with AuthConfigFile:
	// DefaultConfigFile and DefaultProfile by default.
	ConfigFile, Profile string
	// PrivateKeyPassphrase decrypts the key file; empty takes the
	// profile's pass_phrase, if any. It never appears in logs or errors.
	PrivateKeyPassphrase string

	// Region selects the Usage API endpoint (the SDK derives the realm's
	// domain from it); empty takes the principal's region.
	Region string
	// TenancyID is the tenancy whose emissions are read; empty takes the
	// principal's tenancy.
	TenancyID string
	// Endpoint, scheme://host[:port] without a path, overrides the
	// endpoint derived from the region, for private endpoints, realms
	// the SDK does not know and tests.
	Endpoint string

	// Method is MethodPowerBased (default) or MethodSpendBased.
	Method string
	// CompartmentDepth is the Usage API's compartmentDepth:
	// DefaultCompartmentDepth when 0.
	CompartmentDepth int

	// HTTPClient is the base client of the Usage API requests; its
	// Transport and Timeout are kept. Nil selects the SDK's own client,
	// which honours HTTPS_PROXY/NO_PROXY and the SDK's CA settings.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt of the Usage API
	// requests, retries included. Endpoint names: "carbon_emissions",
	// "summarized_usages" (the cost feed's), "summarized_usages_by_tag"
	// (the tag feed's), "other".
	Observe provider.RequestObserver
	// PageSize is the limit of every query, 1 to 1000; 0 leaves the page
	// size to the service.
	PageSize int

	// MaxAttempts bounds the attempts of one request: 0 selects 4, a
	// negative value 1. Which failures are retried is the SDK's default
	// policy's decision: 429 TooManyRequests, 5xx but 501, timeouts and
	// broken connections.
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (0 selects 30s, the
	// SDK's). A Retry-After longer than it is not waited for: the fetch
	// fails at once with provider.ReasonThrottled and the server's delay.
	MaxBackoff time.Duration
	// Backoff replaces the SDK's exponential backoff with jitter; tests
	// use it to keep retries fast and to see them.
	Backoff func(attempt uint) time.Duration

	// Now is the clock of the cost feed, which asks for no month after
	// the current one; nil selects time.Now.
	Now func() time.Time
	// Logger receives debug logs of paging; nil discards.
	Logger *slog.Logger
}

// Provider reads one tenancy's carbon emissions. It is safe for
// concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	secrets []string

	mu sync.Mutex
	// api and tenancy are set by the first fetch that builds the client:
	// instance principals and workload identity make requests to build
	// theirs, which New must not, and a failure to build is then a failed
	// refresh, retried, instead of a failed start.
	api     *usageapi.UsageapiClient
	tenancy string
	// currencyLogged records the currencies other than US dollars that
	// the cost feed warned of, so that it warns once.
	currencyLogged map[string]bool
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.CostFeed = (*Provider)(nil)
	_ provider.TagFeed  = (*Provider)(nil)
)

// New checks opts and prepares the provider. It makes no request and
// reads no file: the SDK's client is built by the first fetch.
func New(opts Options) (*Provider, error) {
	if opts.Auth == "" {
		opts.Auth = AuthConfigFile
	}
	if opts.Method == "" {
		opts.Method = MethodPowerBased
	}
	if opts.CompartmentDepth == 0 {
		opts.CompartmentDepth = DefaultCompartmentDepth
	}
	switch opts.Auth {
	case AuthConfigFile:
		if opts.ConfigFile == "" {
			opts.ConfigFile = DefaultConfigFile
		}
		if opts.Profile == "" {
			opts.Profile = DefaultProfile
		}
	case AuthInstancePrincipal, AuthWorkloadIdentity:
		if opts.ConfigFile != "" || opts.Profile != "" || opts.PrivateKeyPassphrase != "" {
			return nil, fmt.Errorf("oci: a config file, profile or passphrase is only read with auth %s", AuthConfigFile)
		}
	default:
		return nil, fmt.Errorf("oci: unknown auth %q: want %s, %s or %s", opts.Auth, AuthConfigFile, AuthInstancePrincipal, AuthWorkloadIdentity)
	}
	switch {
	case opts.Method != MethodPowerBased && opts.Method != MethodSpendBased:
		return nil, fmt.Errorf("oci: unknown emission calculation method %q: want %s or %s", opts.Method, MethodPowerBased, MethodSpendBased)
	case opts.CompartmentDepth < 1 || opts.CompartmentDepth > MaxCompartmentDepth:
		return nil, fmt.Errorf("oci: compartment depth %d: want 1 to %d", opts.CompartmentDepth, MaxCompartmentDepth)
	case opts.PageSize < 0 || opts.PageSize > 1000:
		return nil, fmt.Errorf("oci: page size %d: want 1 to 1000, or 0 for the service's", opts.PageSize)
	case opts.MaxBackoff < 0:
		return nil, fmt.Errorf("oci: max backoff %s is negative", opts.MaxBackoff)
	}
	if opts.Endpoint != "" {
		if err := checkEndpoint(opts.Endpoint); err != nil {
			// The URL is not quoted: user info could hold a password.
			return nil, fmt.Errorf("oci: endpoint %w", err)
		}
		opts.Endpoint = strings.TrimSuffix(opts.Endpoint, "/")
	}
	switch {
	case opts.MaxAttempts == 0:
		opts.MaxAttempts = defaultMaxAttempts
	case opts.MaxAttempts < 0:
		opts.MaxAttempts = 1
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = defaultMaxBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{opts: opts, log: logger, secrets: []string{opts.PrivateKeyPassphrase}, currencyLogged: make(map[string]bool)}, nil
}

// checkEndpoint accepts what the SDK accepts as a client's Host: an
// absolute http(s) URL with no user info, path, query or fragment, since
// the SDK adds the API version's path itself.
func checkEndpoint(s string) error {
	if err := provider.CheckURL(s); err != nil {
		return err
	}
	if u, err := url.Parse(s); err == nil && strings.Trim(u.Path, "/") != "" {
		return errors.New("must not contain a path: the SDK adds /20200107 itself")
	}
	return nil
}

// Close implements provider.Provider; the client holds nothing beyond idle
// connections, which the HTTP client's pool closes.
func (p *Provider) Close() error { return nil }

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}

// client returns the Usage API client and the tenancy to read, building
// them the first time. The SDK's constructors take no context; they are
// bounded by their own timeouts (authTimeout for instance principals).
func (p *Provider) client(ctx context.Context) (*usageapi.UsageapiClient, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.api != nil {
		return p.api, p.tenancy, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, "", p.fail(provider.ReasonOf(err), 0, fmt.Errorf("oci: %w", err))
	}
	cp, err := p.configurationProvider()
	if err != nil {
		return nil, "", p.credentialsError(ctx, err)
	}
	api, err := usageapi.NewUsageapiClientWithConfigurationProvider(cp)
	if err != nil {
		return nil, "", p.credentialsError(ctx, err)
	}
	tenancy := p.opts.TenancyID
	if tenancy == "" {
		if tenancy, err = cp.TenancyOCID(); err != nil {
			return nil, "", p.credentialsError(ctx, err)
		}
	}
	if p.opts.Region != "" {
		api.SetRegion(p.opts.Region)
	}
	if p.opts.Endpoint != "" {
		api.Host = p.opts.Endpoint
	}
	// One client below the SDK's retry, so that every attempt is observed
	// and every body bounded; the SDK's own client stays the base, so
	// that its proxy and CA settings hold.
	base := p.opts.HTTPClient
	if base == nil {
		if hc, ok := api.HTTPClient.(*http.Client); ok {
			base = hc
		}
	}
	hc := httpx.NewClient(base, httpx.ClientOptions{
		Timeout:          time.Minute,
		Observe:          p.opts.Observe,
		Endpoint:         endpointOf,
		MaxResponseBytes: MaxResponseBytes,
		FailFast:         true,
	})
	hc.Transport = callerContext{base: compactJSON{base: hc.Transport}}
	api.HTTPClient = hc
	// The Usage API client comes with a circuit breaker that, after a few
	// failures, refuses to send requests for 30 seconds with a message of
	// its own. The refresher already backs off between refreshes, and
	// its errors must say what the service answered.
	api.Configuration.CircuitBreaker = nil
	p.api, p.tenancy = &api, tenancy
	return p.api, p.tenancy, nil
}

// configurationProvider returns the SDK's configuration provider of the
// configured principal.
func (p *Provider) configurationProvider() (common.ConfigurationProvider, error) {
	switch p.opts.Auth {
	case AuthInstancePrincipal:
		modifier := func(d common.HTTPRequestDispatcher) (common.HTTPRequestDispatcher, error) {
			if c, ok := d.(*http.Client); ok && c.Timeout == 0 {
				bounded := *c
				bounded.Timeout = authTimeout
				return &bounded, nil
			}
			return d, nil
		}
		if p.opts.Region != "" {
			return auth.InstancePrincipalConfigurationForRegionWithCustomClient(common.StringToRegion(p.opts.Region), modifier)
		}
		return auth.InstancePrincipalConfigurationProviderWithCustomClient(modifier)
	case AuthWorkloadIdentity:
		return auth.OkeWorkloadIdentityConfigurationProvider()
	}
	cp, err := common.ConfigurationProviderFromFileWithProfile(p.opts.ConfigFile, p.opts.Profile, p.opts.PrivateKeyPassphrase)
	if err != nil {
		return nil, err
	}
	if p.opts.Region != "" {
		// A profile need not name a region when the exporter's
		// configuration does; the SDK insists on one.
		cp = regionOverride{ConfigurationProvider: cp, region: p.opts.Region}
	}
	return cp, nil
}

// regionOverride is a configuration provider whose region is the
// exporter's configuration's.
type regionOverride struct {
	common.ConfigurationProvider
	region string
}

func (r regionOverride) Region() (string, error) { return r.region, nil }

// The request self-metric's endpoint names, a small fixed set.
const (
	endpointCarbon = "carbon_emissions"
	endpointCost   = "summarized_usages"
	// endpointTags is the cost grouped by a tag too: the same path as
	// the cost's, told apart by the context of the request.
	endpointTags  = "summarized_usages_by_tag"
	endpointOther = "other"
)

// endpointKey keys the endpoint name a caller gives its requests.
type endpointKey struct{}

// withEndpoint names the requests made under the returned context for
// the request self-metric; the SDK passes the context's values on to
// each HTTP request (sdkContext keeps them).
func withEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, endpoint)
}

// endpointOf names a request's operation for the request self-metric:
// the name its caller gave it, else the one its path gives.
func endpointOf(req *http.Request) string {
	if name, ok := req.Context().Value(endpointKey{}).(string); ok {
		return name
	}
	switch {
	case strings.HasSuffix(req.URL.Path, "/usageCarbonEmissions"):
		return endpointCarbon
	case strings.HasSuffix(req.URL.Path, "/usage"):
		return endpointCost
	}
	return endpointOther
}
