// Package scaleway reads Scaleway's Environmental Footprint API (estimated
// carbon emissions and water usage per project, region, zone and SKU)
// through the official Go SDK's environmental_footprint/v1alpha1 UserAPI,
// and turns it into provider records: one per project × product category ×
// region × month, with CO2e in grams and water in cubic metres.
//
// The SDK does not retry, and a real 429 carries neither a body nor a
// Retry-After header (only x-envoy-ratelimited), so the SDK is handed an
// HTTP client built on hashicorp/go-retryablehttp that retries throttling,
// 5xx and connection errors with jittered exponential backoff (see
// transport.go).
//
// Secrets: the secret key is held by the SDK client and by Options; it is
// sent only as X-Auth-Token, never logged, and every error this package
// returns is scrubbed of it. The SDK's own request dumps (SCW_DEBUG) need
// its standard client, which this package never gives it, so they never
// happen.
package scaleway

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	billing "github.com/scaleway/scaleway-sdk-go/api/billing/v2beta1"
	ef "github.com/scaleway/scaleway-sdk-go/api/environmental_footprint/v1alpha1"
	"github.com/scaleway/scaleway-sdk-go/scw"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// DefaultAPIURL is the public Scaleway API, the SDK's own default.
const DefaultAPIURL = "https://api.scaleway.com"

// GramsPerKilogram converts the API's kg_co2_equivalent ("the estimated
// carbon emissions in kilograms of CO₂ equivalent (kgCO₂e)", per the SDK's
// Impact type) to the grams every record carries. m3_water_usage is
// already in the exporter's unit, cubic metres.
const GramsPerKilogram = 1e3

// FirstMonth (2024-10) is the first month the API serves: Scaleway's
// documentation says start_date must not be before 2024-10-01, and the API
// answers 400 to an earlier one. No request ever asks for anything before
// it. Spelled as provider.Month counts it (year*12 + month-1), so that it
// can be a constant.
const FirstMonth = provider.Month(2024*12 + 9)

// Scaleway's publication schedule. Scaleway documents no publication day:
// the console shows the month in progress, and a month's report appears in
// GetImpactReportAvailability once the month is over. PublishDelay puts
// the expected date on the 4th, so that the refresher's fast polling,
// which starts a few days before the expected date and lasts a week after
// it, covers the 1st to the 11th: the month is asked for every fast
// interval from the first day it can exist. Scaleway says its figures can
// change when it updates energy mixes, PUE or its method; SettleDelay
// re-checks a month for a month after publication, at one request per
// refresh, to catch late usage and such corrections.
const (
	PublishDelay = 3 * 24 * time.Hour
	SettleDelay  = 30 * 24 * time.Hour
)

// Unknown is the service or location label of impact the API attributes
// to no product category or region, so that the label is never empty and
// such impact stays visible in sums.
const Unknown = "unknown"

// ParentTypeOrganization is the parent type of every project's _info
// entry: a project belongs to one organization.
const ParentTypeOrganization = "organization"

// Defaults and limits of the client. The body limit stops a broken or
// hostile server from exhausting memory: a month of a large organization
// (hundreds of projects, thousands of SKUs) is a few megabytes.
const (
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultConcurrency = 2
	MaxConcurrency     = 8

	MaxResponseBytes   = 32 << 20
	defaultHTTPTimeout = time.Minute
	userAgent          = "cloudcarbon_exporter"
)

// Shapes Scaleway gives its identifiers (those of the SDK's validation
// package), checked before the SDK sees them: the SDK quotes a malformed
// secret key in its error, which must never reach a log.
var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	accessKeyPattern = regexp.MustCompile(`^SCW[A-Z0-9]{17}$`)
	profilePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// Options configures one Scaleway source: one organization read with one
// API key.
type Options struct {
	// OrganizationID is the organization whose footprint is read. Empty
	// takes the profile's default_organization_id or
	// SCW_DEFAULT_ORGANIZATION_ID; one of them is required.
	OrganizationID string
	// ProjectIDs, when set, limits the data to these projects.
	ProjectIDs []string

	// AccessKey and SecretKey are the API key. The API authenticates with
	// the secret key alone (X-Auth-Token), but the SDK requires the access
	// key beside it. When both are empty, the SDK's configuration supplies
	// them: Profile (or SCW_PROFILE, or the file's active_profile) from
	// the Scaleway configuration file, overridden by SCW_ACCESS_KEY,
	// SCW_SECRET_KEY and the other SCW_* variables unless Profile is set.
	AccessKey, SecretKey string
	Profile              string

	// APIURL overrides the API endpoint, for tests and private endpoints.
	// Empty takes the profile's api_url or SCW_API_URL when the SDK's
	// configuration supplies the key, else DefaultAPIURL.
	APIURL string

	// HTTPClient is the base client of every attempt; its Transport and
	// Timeout are kept. Nil selects a client of its own with a one-minute
	// timeout per attempt that honours HTTPS_PROXY and NO_PROXY.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt, retries included.
	// Endpoint names: "impact_data", "report_availability",
	// "billing_consumptions", "other".
	Observe provider.RequestObserver

	// MaxAttempts bounds the attempts of one request: 0 selects
	// DefaultMaxAttempts, a negative value 1.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// attempts (0 selects DefaultMinBackoff and DefaultMaxBackoff). A
	// Retry-After longer than MaxBackoff is not waited for: the fetch fails
	// at once with provider.ReasonThrottled and the server's delay.
	MinBackoff, MaxBackoff time.Duration
	// Concurrency bounds the months requested at once: 0 selects
	// DefaultConcurrency, at most MaxConcurrency.
	Concurrency int

	// Provisional says that the source asks for provisional months: the
	// exporter then reads the organization's consumption (Costs, through
	// the Billing API, which needs BillingReadOnly) to estimate the months
	// Scaleway has not published. Costs works either way.
	Provisional bool

	// Logger receives the retry layer's debug messages and warnings about
	// the API's answers; nil discards.
	Logger *slog.Logger
}

// Provider reads one organization's Environmental Footprint data. It is
// safe for concurrent use.
type Provider struct {
	opts    Options
	org     string
	api     *ef.UserAPI
	billing *billing.API
	http    *http.Client // below the retry layer, for Close
	log     *slog.Logger
	secrets []string
	// pause holds every request of the source back while one waits out
	// a 429, which Scaleway sends without Retry-After.
	pause httpx.Pause

	mu sync.Mutex
	// projects are every project any fetch has seen, so that the _info
	// entries keep projects whose usage lies in months not fetched again.
	projects map[string]bool
}

var _ provider.Provider = (*Provider)(nil)

// New resolves the credentials (from Options, else from the SDK's
// configuration file and environment) and prepares the client. It makes no
// request.
func New(opts Options) (*Provider, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.MaxAttempts == 0:
		opts.MaxAttempts = DefaultMaxAttempts
	case opts.MaxAttempts < 0:
		opts.MaxAttempts = 1
	}
	opts.MinBackoff = cmp.Or(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = cmp.Or(opts.MaxBackoff, DefaultMaxBackoff)
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultConcurrency)
	switch {
	case opts.MinBackoff < 0 || opts.MaxBackoff < opts.MinBackoff:
		return nil, fmt.Errorf("scaleway: backoff bounds %s and %s: want 0 < min <= max", opts.MinBackoff, opts.MaxBackoff)
	case opts.Concurrency < 1 || opts.Concurrency > MaxConcurrency:
		return nil, fmt.Errorf("scaleway: concurrency %d: want 1 to %d", opts.Concurrency, MaxConcurrency)
	case (opts.AccessKey == "") != (opts.SecretKey == ""):
		return nil, errors.New("scaleway: set both the access key and the secret key, or neither to use the SDK's profile and environment")
	case opts.AccessKey != "" && opts.Profile != "":
		return nil, errors.New("scaleway: set an API key or a profile, not both")
	case opts.Profile != "" && !profilePattern.MatchString(opts.Profile):
		return nil, errors.New("scaleway: the profile name must be letters, digits, '_', '.' and '-'")
	}

	creds := credentials{accessKey: opts.AccessKey, secretKey: opts.SecretKey, organizationID: opts.OrganizationID, apiURL: opts.APIURL}
	if opts.SecretKey == "" {
		var err error
		if creds, err = fromSDK(opts, logger); err != nil {
			return nil, err
		}
	}
	creds.apiURL = strings.TrimRight(cmp.Or(creds.apiURL, DefaultAPIURL), "/")
	if err := creds.check(); err != nil {
		return nil, err
	}
	for i, id := range opts.ProjectIDs {
		if !uuidPattern.MatchString(id) {
			return nil, fmt.Errorf("scaleway: project id %d is not a UUID", i+1)
		}
	}

	p := &Provider{
		opts:     opts,
		org:      creds.organizationID,
		log:      logger,
		secrets:  []string{creds.secretKey},
		projects: make(map[string]bool),
	}
	p.http = httpx.NewClient(opts.HTTPClient, httpx.ClientOptions{
		Timeout:          defaultHTTPTimeout,
		Observe:          opts.Observe,
		Endpoint:         endpointOf,
		MaxResponseBytes: MaxResponseBytes,
		FailFast:         true,
		Pause:            &p.pause,
	})
	client, err := scw.NewClient(
		scw.WithAuth(creds.accessKey, creds.secretKey),
		scw.WithAPIURL(creds.apiURL),
		scw.WithHTTPClient(p.retrying(p.http)),
		scw.WithUserAgent(userAgent),
	)
	if err != nil {
		// The checks above leave nothing for the SDK to quote, but its
		// messages do quote keys: scrub all the same.
		return nil, fmt.Errorf("scaleway: creating the SDK client: %w", httpx.Redact(err, creds.secretKey))
	}
	p.api = ef.NewUserAPI(client)
	p.billing = billing.NewAPI(client)
	return p, nil
}

// credentials are what an API call needs besides the request.
type credentials struct {
	accessKey, secretKey string
	organizationID       string
	apiURL               string
	// source names where the key came from, for messages.
	source string
}

// check validates the resolved credentials without ever quoting the
// secret key.
func (c *credentials) check() error {
	from := cmp.Or(c.source, "the entry")
	switch {
	case c.secretKey == "":
		return fmt.Errorf("scaleway: no API key: set access_key and secret_key (or secret_key_file or secret_key_env) in the entry, "+
			"or SCW_ACCESS_KEY and SCW_SECRET_KEY, or a profile of the Scaleway configuration file %s", scw.GetConfigPath())
	case c.accessKey == "":
		return fmt.Errorf("scaleway: %s gives a secret key without its access key; the SDK needs both", from)
	case !accessKeyPattern.MatchString(c.accessKey):
		return fmt.Errorf("scaleway: the access key from %s must be SCW followed by 17 capital letters and digits, as the console shows it", from)
	case !uuidPattern.MatchString(c.secretKey):
		return fmt.Errorf("scaleway: the secret key from %s must be a UUID, as the console shows it (the value is not shown)", from)
	case c.organizationID == "":
		return errors.New("scaleway: no organization: set organization_id in the entry, default_organization_id in the profile or SCW_DEFAULT_ORGANIZATION_ID")
	case !uuidPattern.MatchString(c.organizationID):
		return fmt.Errorf("scaleway: the organization id from %s is not a UUID", from)
	}
	if err := provider.CheckURL(c.apiURL); err != nil {
		// The URL is not quoted: user info could hold a password.
		return fmt.Errorf("scaleway: the API URL from %s %w", from, err)
	}
	return nil
}

// yamlLine finds the line number in a YAML parser's message, the only
// part of it that is shown: the rest may quote the file, keys included.
var yamlLine = regexp.MustCompile(`line \d+`)

// fromSDK resolves the credentials the way the SDK's documentation
// suggests (scw.LoadConfig, GetActiveProfile, then WithEnv): the active
// profile of the configuration file, overridden by the environment. A
// profile named in the entry is taken alone, since the entry chose it
// explicitly. Values the entry sets win over both.
func fromSDK(opts Options, logger *slog.Logger) (credentials, error) {
	path := scw.GetConfigPath()
	cfg, err := scw.LoadConfig()
	if _, missing := errors.AsType[*scw.ConfigFileNotFoundError](err); missing {
		if opts.Profile != "" {
			return credentials{}, fmt.Errorf("scaleway: profile %q: the Scaleway configuration file %s does not exist", opts.Profile, path)
		}
		cfg, err = &scw.Config{}, nil
	}
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		// Stat and read errors name the file and the cause, no content.
		return credentials{}, fmt.Errorf("scaleway: the Scaleway configuration file: %w", pe)
	}
	if err != nil {
		where := ""
		if l := yamlLine.FindString(err.Error()); l != "" {
			where = " (" + l + ")"
		}
		return credentials{}, fmt.Errorf("scaleway: the Scaleway configuration file %s cannot be read or parsed%s; "+
			"the parser's message is not shown, since it may quote a key", path, where)
	}
	var p *scw.Profile
	source := "the Scaleway configuration file and SCW_* environment"
	if opts.Profile != "" {
		if p, err = cfg.GetProfile(opts.Profile); err != nil {
			return credentials{}, fmt.Errorf("scaleway: profile %q is not in the Scaleway configuration file %s", opts.Profile, path)
		}
		source = fmt.Sprintf("profile %q", opts.Profile)
	} else {
		if p, err = cfg.GetActiveProfile(); err != nil {
			return credentials{}, fmt.Errorf("scaleway: the active profile (SCW_PROFILE or active_profile) is not in the Scaleway configuration file %s", path)
		}
		p = scw.MergeProfiles(p, scw.LoadEnvProfile())
	}
	if p.Insecure != nil && *p.Insecure {
		logger.Warn("The Scaleway configuration asks for insecure TLS; it is ignored, certificates are always verified")
	}
	c := credentials{source: source}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&c.accessKey, p.AccessKey}, {&c.secretKey, p.SecretKey}, {&c.organizationID, p.DefaultOrganizationID}, {&c.apiURL, p.APIURL}} {
		if f.src != nil {
			*f.dst = strings.TrimSpace(*f.src)
		}
	}
	c.organizationID = cmp.Or(opts.OrganizationID, c.organizationID)
	c.apiURL = cmp.Or(opts.APIURL, c.apiURL)
	return c, nil
}

// OrganizationID returns the organization the provider reads, however it
// was configured.
func (p *Provider) OrganizationID() string { return p.org }

// Provisional reports whether the source asks for provisional months
// (Options.Provisional), so that the exporter reads its cost (Costs).
func (p *Provider) Provisional() bool { return p.opts.Provisional }

// Close implements provider.Provider; the client holds nothing beyond idle
// connections.
func (p *Provider) Close() error {
	p.http.CloseIdleConnections()
	return nil
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }

func publication() provider.Schedule {
	return provider.Schedule{PublishDelay: PublishDelay, SettleDelay: SettleDelay}
}

// sortedProjects returns the projects seen so far.
func (p *Provider) sortedProjects() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.projects))
	for id := range p.projects {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// endpointOf names a request's endpoint for the requests self-metric: a
// small fixed set, never a URL.
func endpointOf(req *http.Request) string {
	switch {
	case strings.HasSuffix(req.URL.Path, pathImpactData):
		return EndpointImpactData
	case strings.HasSuffix(req.URL.Path, pathAvailability):
		return EndpointAvailability
	case strings.HasSuffix(req.URL.Path, pathConsumptions):
		return EndpointConsumptions
	}
	return "other"
}

// Endpoint names of the requests self-metric, and the API paths they
// stand for (per the SDK).
const (
	EndpointImpactData   = "impact_data"
	EndpointAvailability = "report_availability"
	EndpointConsumptions = "billing_consumptions"

	pathImpactData   = "/environmental-footprint/v1alpha1/data/query"
	pathAvailability = "/environmental-footprint/v1alpha1/reports/availability"
	pathConsumptions = "/billing/v2beta1/consumptions"
)
