// Package ibm reads IBM Cloud Carbon Calculator emissions
// (GET /v1/carbon_emissions) and turns them into provider records.
//
// There is no IBM Go SDK for the Carbon Calculator, so the package speaks
// the REST API itself and borrows only IAM token handling and HTTP retries
// from github.com/IBM/go-sdk-core.
//
// A source that asks for provisional months also reads the cost of the
// months IBM has not published emissions for yet from the Usage Reports
// and Enterprise Usage Reports APIs, in the same way (see ReadCosts).
//
// Secrets: the API key is held by the IAM authenticator and by Options; it
// is never logged, and every error this package returns is scrubbed of it.
// go-sdk-core has a process-wide logger (core.GetLogger) that defaults to
// LevelError on stderr. Nothing this package triggers logs at that level,
// and at debug level go-sdk-core passes request and response dumps through
// core.RedactSecrets (Authorization headers, apikey= form fields,
// access_token/refresh_token JSON fields). The package therefore leaves the
// global logger alone: changing it from library code would silently change
// every other go-sdk-core user in the process. Do not raise that logger
// to debug in production: its response dumps redact only known secret
// fields, so a server that echoed the key in an error message would have
// it logged.
package ibm

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Endpoint defaults: the public, global Carbon Calculator and IAM
// endpoints, and those of the Usage Reports and Enterprise Usage Reports
// APIs, which the cost feed of provisional months reads. Private
// endpoints and test servers override them.
const (
	DefaultAPIURL                    = "https://api.carbon-calculator.cloud.ibm.com"
	DefaultIAMURL                    = "https://iam.cloud.ibm.com"
	DefaultUsageReportsURL           = "https://billing.cloud.ibm.com"
	DefaultEnterpriseUsageReportsURL = "https://enterprise.cloud.ibm.com"
)

// IBM's publication schedule. IBM says new data appears about 16 days after
// the billing period closes; a month can still be restated while the
// billing month is reconciled, which we bound at 30 days after that.
const (
	PublishDelay = 16 * 24 * time.Hour
	SettleDelay  = 30 * 24 * time.Hour
)

// Units of the Carbon Calculator's figures. IBM's API reference gives no
// unit for carbon_emission or energy_consumption, and IBM's prose docs
// contradict themselves ("metric tons ... (kgCO2e)"). A third-party client
// of the same API treats carbon_emission as grams of CO2e and
// energy_consumption as watt-hours, and the magnitudes IBM's examples show
// fit that reading best, so we use it. Each unit is one constant: if IBM
// clarifies, change the factor here and nothing else.
const (
	// GramsPerCarbonEmission converts carbon_emission to grams of CO2e
	// (carbon_emission is taken to be in gCO2e).
	GramsPerCarbonEmission = 1.0
	// JoulesPerEnergyConsumption converts energy_consumption to joules
	// (energy_consumption is taken to be in Wh; 1 Wh = 3600 J).
	JoulesPerEnergyConsumption = 3600.0
)

// Unknown is the service or location label of rows that name none, so that
// the label is never empty and such rows stay visible in sums.
const Unknown = "unknown"

// Request and paging limits. IBM caps limit at 100. The page and size
// bounds only stop a broken or hostile server from holding us forever or
// exhausting memory; real accounts are orders of magnitude below them.
const (
	pageLimit        = 100
	maxPages         = 10000
	MaxResponseBytes = 16 << 20

	defaultMaxRetries       = 3
	defaultMaxRetryInterval = 30 * time.Second
	defaultHTTPTimeout      = 60 * time.Second

	// DefaultPageConcurrency and MaxPageConcurrency bound the pages of one
	// query in flight. Eight turns a 500-page enterprise from half a
	// minute of round trips into a few seconds without looking like a
	// flood to IBM; the cap keeps a typo from becoming one.
	DefaultPageConcurrency = 8
	MaxPageConcurrency     = 32

	carbonPath = "/v1/carbon_emissions"
	iamPath    = "/identity/token"
)

// Options configures one IBM Cloud source (one API key).
type Options struct {
	// APIKey is the resolved IAM API key. It never appears in logs or
	// errors.
	APIKey string
	// APIURL is the Carbon Calculator base URL; DefaultAPIURL when empty.
	APIURL string
	// IAMURL is the IAM base URL (without /identity/token); DefaultIAMURL
	// when empty.
	IAMURL string
	// UsageReportsURL and EnterpriseUsageReportsURL are the base URLs of
	// the Usage Reports API (a standard account's cost) and of the
	// Enterprise Usage Reports API (an enterprise's), which the cost feed
	// reads (see ReadCosts); DefaultUsageReportsURL and
	// DefaultEnterpriseUsageReportsURL when empty.
	UsageReportsURL, EnterpriseUsageReportsURL string

	// At most one of the enterprise scopes may be set; with none set the
	// key's own (standard) account is read.
	EnterpriseID, EnterpriseGroupID, EnterpriseAccountID string

	// AccountName is the display name given to accounts the API does not
	// name. IBM reports no names for a standard account, so this is how a
	// standard account gets a readable name. It is used only for the
	// single-account scopes (standard and EnterpriseAccountID).
	AccountName string

	// HTTPClient is the base client. Its Transport and Timeout are kept;
	// nil selects a client with a 60s timeout that honours
	// HTTPS_PROXY/NO_PROXY.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt, retries and token
	// requests included. Endpoint names: "iam_token", "carbon_emissions",
	// the cost feed's "usage_account_summary" and
	// "enterprise_usage_reports", and "other".
	Observe provider.RequestObserver

	// MaxRetries bounds HTTP-level retries of 429 and 5xx answers and of
	// network errors: 0 selects 3, a negative value disables retries.
	MaxRetries int
	// IAMTimeout bounds each IAM token request, connecting and reading
	// the answer included: 0 selects DefaultIAMTimeout (30s). The fetch's
	// context bounds it too. A hung IAM endpoint thus costs its own source
	// at most this long per token, and never holds up another source.
	IAMTimeout time.Duration

	// MaxRetryInterval bounds the wait between retries: 0 selects 30s. A
	// Retry-After longer than this is not waited for; the fetch fails at
	// once with provider.ReasonThrottled and the server's Retry-After, so
	// that the caller's backoff, not a blocked goroutine, does the waiting.
	MaxRetryInterval time.Duration

	// PageConcurrency bounds the pages of one query fetched at once. The
	// first page of a query is fetched alone, as only it tells how many
	// there are; the others then go out in parallel. 0 selects
	// DefaultPageConcurrency, 1 fetches pages one after another. The
	// result does not depend on it.
	PageConcurrency int

	// Logger receives debug logs of requests and paging; nil discards.
	Logger *slog.Logger
}

// Provider reads one IBM Cloud account, account group or enterprise. It is
// safe for concurrent use.
type Provider struct {
	opts   Options
	apiURL *url.URL
	// usageURL and enterpriseURL are the cost feed's APIs.
	usageURL, enterpriseURL *url.URL
	log                     *slog.Logger
	service                 *core.BaseService
	iamHTTP                 *http.Client
	maxRetry                time.Duration

	// iamSem serialises this source's token requests (see iam.go); its
	// wait obeys the caller's context.
	iamSem chan struct{}
	// tokMu guards tok, the cached IAM token, and dropped, the last one
	// IBM rejected, which an error answer may still echo.
	tokMu   sync.Mutex
	tok     iamToken
	dropped string
}

var _ provider.Provider = (*Provider)(nil)

// enterpriseIDPattern is the documented shape of enterprise, account group
// and account ids; checking it up front turns a typo into a config error
// instead of an opaque 400 at every refresh.
var enterpriseIDPattern = regexp.MustCompile(`^[a-z0-9]{32}$`)

// New validates opts and prepares the IAM authenticator and HTTP clients. It
// makes no request.
func New(opts Options) (*Provider, error) {
	if strings.TrimSpace(opts.APIKey) == "" {
		return nil, errors.New("ibm: API key is empty")
	}
	if opts.APIKey != strings.TrimSpace(opts.APIKey) || core.HasBadFirstOrLastChar(opts.APIKey) {
		// Never echo the key, not even in part.
		return nil, errors.New("ibm: API key has leading or trailing whitespace, quotes or braces; check how the secret was stored")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	if opts.IAMURL == "" {
		opts.IAMURL = DefaultIAMURL
	}
	apiURL, err := parseBaseURL("API URL", opts.APIURL)
	if err != nil {
		return nil, err
	}
	iamURL, err := parseBaseURL("IAM URL", opts.IAMURL)
	if err != nil {
		return nil, err
	}
	opts.UsageReportsURL = cmp.Or(opts.UsageReportsURL, DefaultUsageReportsURL)
	opts.EnterpriseUsageReportsURL = cmp.Or(opts.EnterpriseUsageReportsURL, DefaultEnterpriseUsageReportsURL)
	usageURL, err := parseBaseURL("usage reports URL", opts.UsageReportsURL)
	if err != nil {
		return nil, err
	}
	enterpriseURL, err := parseBaseURL("enterprise usage reports URL", opts.EnterpriseUsageReportsURL)
	if err != nil {
		return nil, err
	}
	opts.APIURL = apiURL.String()
	opts.UsageReportsURL, opts.EnterpriseUsageReportsURL = usageURL.String(), enterpriseURL.String()
	// go-sdk-core appends /identity/token itself and strips it if given.
	opts.IAMURL = strings.TrimSuffix(iamURL.String(), iamPath)

	scopes := 0
	for _, s := range []struct{ name, v string }{
		{"enterprise ID", opts.EnterpriseID},
		{"enterprise group ID", opts.EnterpriseGroupID},
		{"enterprise account ID", opts.EnterpriseAccountID},
	} {
		if s.v == "" {
			continue
		}
		scopes++
		if !enterpriseIDPattern.MatchString(s.v) {
			return nil, fmt.Errorf("ibm: %s %q: want 32 lower-case letters and digits", s.name, s.v)
		}
	}
	if scopes > 1 {
		return nil, errors.New("ibm: set at most one of enterprise ID, enterprise group ID and enterprise account ID")
	}

	switch {
	case opts.MaxRetries == 0:
		opts.MaxRetries = defaultMaxRetries
	case opts.MaxRetries < 0:
		opts.MaxRetries = 0
	}
	switch {
	case opts.MaxRetryInterval == 0:
		opts.MaxRetryInterval = defaultMaxRetryInterval
	case opts.MaxRetryInterval < 0:
		return nil, fmt.Errorf("ibm: max retry interval %s is negative", opts.MaxRetryInterval)
	}
	switch {
	case opts.IAMTimeout == 0:
		opts.IAMTimeout = DefaultIAMTimeout
	case opts.IAMTimeout < 0:
		return nil, fmt.Errorf("ibm: IAM timeout %s is negative", opts.IAMTimeout)
	}
	switch {
	case opts.PageConcurrency == 0:
		opts.PageConcurrency = DefaultPageConcurrency
	case opts.PageConcurrency < 0 || opts.PageConcurrency > MaxPageConcurrency:
		return nil, fmt.Errorf("ibm: page concurrency %d: want 1 to %d", opts.PageConcurrency, MaxPageConcurrency)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	p := &Provider{
		opts:          opts,
		apiURL:        apiURL,
		usageURL:      usageURL,
		enterpriseURL: enterpriseURL,
		log:           logger,
		maxRetry:      opts.MaxRetryInterval,
		iamSem:        make(chan struct{}, 1),
	}
	base := opts.HTTPClient
	if base == nil {
		base = defaultClient(opts.PageConcurrency)
	}
	p.iamHTTP = instrumentedClient(base, opts.Observe)
	// Validates the key and URL the way go-sdk-core will use them.
	if _, err = p.newAuthenticator(p.iamHTTP); err != nil {
		return nil, err
	}
	p.service, err = core.NewBaseService(&core.ServiceOptions{
		URL:           opts.APIURL,
		Authenticator: preparedToken{},
	})
	if err != nil {
		return nil, fmt.Errorf("ibm: %s", httpx.Scrub(err.Error(), opts.APIKey))
	}
	p.service.Client = p.retryingClient(p.iamHTTP)
	return p, nil
}

func parseBaseURL(what, s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("ibm: %s %q: %w", what, s, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("ibm: %s %q: want an absolute http(s) URL", what, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("ibm: %s %q: must not carry a query, fragment or user info", what, u.Redacted())
	}
	return u, nil
}

// Close implements provider.Provider; the client holds nothing that needs
// releasing beyond idle connections, which the HTTP client's pool closes.
func (p *Provider) Close() error { return nil }

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }
