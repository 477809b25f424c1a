// Package azure reads Azure Carbon Optimization emissions
// (Microsoft.Carbon, API version 2025-04-01) through the official
// armcarbonoptimization client and turns them into provider records.
//
// Authentication is azidentity's: the default credential chain
// (environment, workload identity, managed identity, Azure CLI, ...) or an
// explicit service principal with a client secret or certificate. Retries
// of 429 (honouring Retry-After) and 5xx answers are azcore's retry policy;
// this package only bounds them and classifies what is left.
//
// Secrets: the client secret and certificate password are held by the
// credential and by Options. They are never logged, and every error this
// package returns is scrubbed of them. azcore's own logging (package
// azcore/log) is off unless the process sets a listener; when set, it
// redacts Authorization headers and never logs request bodies, which is
// where the token request carries the secret.
package azure

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/costmanagement/armcostmanagement/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// Azure's publication schedule. Microsoft documents that the previous
// month's emissions are available by day 19 of the current month, so a
// month is due 18 days after it ends. Microsoft documents no restatement
// window; we keep re-checking a month for 30 days after publication, until
// the next month lands. That catches late corrections, and a publication
// later than day 19 (the month is outside the API's date range until then,
// so a fetch returns nothing for it), at 3 report requests per subscription
// batch per refresh.
const (
	PublishDelay = 18 * 24 * time.Hour
	SettleDelay  = 30 * 24 * time.Hour
)

// GramsPerKilogram converts the API's kgCO2e (latestMonthEmissions) to the
// grams every record carries.
const GramsPerKilogram = 1000.0

// Unknown is the service or location label of items that name none, so
// that the label is never empty and such items stay visible in sums.
const Unknown = "unknown"

// Credential kinds of Options.Credential.
const (
	CredentialDefault           = "default"
	CredentialClientSecret      = "client_secret"
	CredentialClientCertificate = "client_certificate"
)

// Cloud names of Options.Cloud.
const (
	CloudPublic       = "public"
	CloudChina        = "china"
	CloudUSGovernment = "usgovernment"
)

// Limits of the API and of this client. The API caps subscriptionList at
// 100 ids and pageSize at 5000 items, and serves the last 12 months. The
// page and size bounds only stop a broken or hostile server from holding
// us forever or exhausting memory.
//
// MaxResponseBytes bounds every answer. The largest the API sends is a
// page of 5000 items of about 600 bytes, 3 MB. azcore reads an answer
// whole before decoding it, at about 2.5 times its size (io.ReadAll's
// chunks and its final copy), and Concurrency answers are read at once,
// so the bound is what keeps a hostile answer from costing more than
// about 40 MiB each.
const (
	MaxSubscriptionsPerRequest = 100
	MaxPageSize                = 5000
	MaxMonths                  = 12

	defaultMaxRetries    = 3
	defaultRetryDelay    = 4 * time.Second
	defaultMaxRetryDelay = 60 * time.Second
	defaultConcurrency   = 4
	defaultHTTPTimeout   = 2 * time.Minute
	maxConcurrency       = 16
	maxPages             = 1000
	MaxResponseBytes     = 16 << 20
)

// DefaultRequestBudget is Options.RequestBudget and the configuration's
// request_budget when unset: a cap on the ARM requests of one refresh, so
// that a misconfiguration cannot run up thousands of calls.
const DefaultRequestBudget = 500

// Options configures one Azure source: one identity and the subscriptions
// it reports on.
type Options struct {
	// TenantID is the Entra tenant (GUID or domain). Required for
	// client_secret and client_certificate; optional for default, where
	// it selects the tenant of the Azure CLI and workload identity.
	TenantID string
	// Credential is "default" (or empty), "client_secret" or
	// "client_certificate".
	Credential string
	// ClientID is the application (client) id of the service principal.
	// The default credential reads AZURE_CLIENT_ID instead.
	ClientID string
	// ClientSecret is the resolved secret value. It never appears in logs
	// or errors.
	ClientSecret string
	// CertificatePath is a PEM or PKCS#12 file holding the certificate and
	// its private key, for client_certificate.
	CertificatePath string
	// CertificatePassword is the resolved password of a PKCS#12 file,
	// optional. It never appears in logs or errors.
	CertificatePassword string

	// Cloud is "public" (default), "china" or "usgovernment".
	Cloud string
	// AuthorityHost overrides the cloud's Entra authority, for private
	// clouds and tests. Instance discovery (a request to
	// login.microsoftonline.com) is disabled for hosts that are not one of
	// the well-known Microsoft authorities, because the public discovery
	// service knows nothing of them.
	AuthorityHost string
	// ResourceManagerEndpoint overrides the cloud's ARM endpoint.
	ResourceManagerEndpoint string
	// ResourceManagerAudience overrides the audience of ARM tokens.
	ResourceManagerAudience string

	// Subscriptions are the subscription ids to report on; they are
	// compared case-insensitively and sent lower-cased, as the API wants.
	// Their display names, for the _info metric, come from listing the
	// subscriptions the identity can read (at most once a day; when the
	// identity may not list them, they are reported without names).
	Subscriptions []string
	// ListSubscriptions adds every subscription the identity can list
	// (except deleted ones) to Subscriptions, at every fetch, and gives
	// the _info metric their display names.
	ListSubscriptions bool

	// HTTPClient is the base client; its Transport and Timeout are kept.
	// Nil selects a client with a 2 minute timeout that honours
	// HTTPS_PROXY/NO_PROXY. Tests and the demo pass the TLS test server's
	// client.
	HTTPClient *http.Client
	// Observe, when set, is told of every HTTP attempt, retries and token
	// requests included. Endpoint names: "token", "openid_configuration",
	// "carbon_emission_reports", "carbon_date_range", "subscriptions",
	// "cost_management_query", "cost_management_tag_query", "other".
	Observe provider.RequestObserver

	// MaxRetries bounds azcore's retries of 408, 429, 5xx and network
	// errors: 0 selects 3, a negative value disables retries.
	MaxRetries int
	// RetryDelay is the first backoff step when the server sends no
	// Retry-After (0 selects 4s); MaxRetryDelay caps every wait (0 selects
	// 60s). A Retry-After longer than MaxRetryDelay is not waited for: the
	// fetch fails at once with provider.ReasonThrottled and the server's
	// delay, so that the collector's backoff does the waiting. Nor is any
	// wait that would outlast the fetch's deadline: the fetch fails with
	// the answer in hand rather than a timeout.
	RetryDelay, MaxRetryDelay time.Duration
	// RequestBudget caps the ARM requests (every attempt, retries
	// included; token requests excluded) of one Fetch: 0 selects 500. A
	// fetch that needs more fails before its first request when the need
	// is known up front, else when the budget runs out.
	RequestBudget int
	// PageSize is the ItemDetailsReport page size, 1 to 5000: 0 selects
	// 5000, the API's maximum, which minimises requests.
	PageSize int
	// Concurrency bounds the report requests in flight: 0 selects 4.
	Concurrency int

	// Provisional says that the source asks for provisional months: the
	// exporter then reads the subscriptions' cost (Costs, through Cost
	// Management, which needs Cost Management Reader) to estimate the
	// months Azure has not published. Costs and TagCosts work either
	// way: New always builds the Cost Management client, which makes no
	// request until one of them is called, so that an entry with
	// provisional or allocate_by (or both) has it.
	Provisional bool

	// Logger receives denied subscriptions (warn, once per subscription)
	// and debug logs of requests and paging; nil discards.
	Logger *slog.Logger
}

// Provider reads the Carbon Optimization emissions of a set of
// subscriptions. It is safe for concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	cloud   cloud.Configuration
	http    *http.Client
	secrets []string
	subs    []string // configured subscriptions, lower-cased, sorted, unique

	// cert and key are parsed once in New for client_certificate.
	certs []*x509.Certificate
	key   crypto.PrivateKey

	mu sync.Mutex
	// cl is replaced, not mutated, when ARM rejects a token that the
	// credential still believes valid (see renew).
	cl *clients
	// logged holds the subscriptions whose denial was logged already.
	logged map[string]bool
	// names holds the names of configured subscriptions (see withNames).
	names subscriptionNames
}

// clients are the ARM clients, built on one credential.
type clients struct {
	carbon *armcarbonoptimization.CarbonServiceClient
	subs   *armsubscriptions.Client
	cost   *armcostmanagement.QueryClient
}

var _ provider.Provider = (*Provider)(nil)

// subscriptionIDPattern is the shape of a subscription id once
// lower-cased, the form the API wants. Checking it up front turns a typo
// into a config error instead of an opaque 400 (or a silent "Denied") at
// every refresh.
var subscriptionIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// New validates opts and prepares the credential and ARM clients. It makes
// no request.
func New(opts Options) (*Provider, error) {
	p := &Provider{logged: map[string]bool{}}
	for _, s := range []string{opts.ClientSecret, opts.CertificatePassword} {
		if s != "" {
			p.secrets = append(p.secrets, s)
		}
	}
	if err := p.validate(&opts); err != nil {
		return nil, errors.New(httpx.Scrub(err.Error(), p.secrets...))
	}
	p.opts = opts
	p.log = opts.Logger
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if p.cloud, err = cloudConfig(opts); err != nil {
		return nil, err
	}
	p.http = instrumentedClient(opts.HTTPClient, opts.Observe)

	if opts.Credential == CredentialClientCertificate {
		data, err := os.ReadFile(opts.CertificatePath)
		if err != nil {
			return nil, fmt.Errorf("azure: client certificate: %w", err)
		}
		p.certs, p.key, err = azidentity.ParseCertificates(data, []byte(opts.CertificatePassword))
		if err != nil {
			return nil, fmt.Errorf("azure: client certificate %s: %s (want PEM with the certificate and an unencrypted private key, or PKCS#12 with its password)",
				opts.CertificatePath, httpx.Scrub(err.Error(), p.secrets...))
		}
	}
	if p.cl, err = p.newClients(); err != nil {
		return nil, err
	}
	return p, nil
}

// validate checks option combinations and fills defaults. Its messages
// name options, never their secret values.
func (p *Provider) validate(o *Options) error {
	o.Credential = strings.ToLower(strings.TrimSpace(o.Credential))
	o.TenantID = strings.TrimSpace(o.TenantID)
	o.ClientID = strings.TrimSpace(o.ClientID)
	switch o.Credential {
	case "", CredentialDefault:
		o.Credential = CredentialDefault
		switch {
		case o.ClientSecret != "" || o.CertificatePath != "" || o.CertificatePassword != "":
			return errors.New("azure: a client secret or certificate is set but credential is default; set credential to client_secret or client_certificate")
		case o.ClientID != "":
			return errors.New("azure: client id is not used by the default credential; set AZURE_CLIENT_ID for a user-assigned managed identity or workload identity, or use credential client_secret or client_certificate")
		}
	case CredentialClientSecret:
		switch {
		case o.TenantID == "" || o.ClientID == "":
			return errors.New("azure: credential client_secret needs a tenant id and a client id")
		case o.ClientSecret == "":
			return errors.New("azure: credential client_secret needs a client secret, and it is empty")
		case strings.TrimSpace(o.ClientSecret) != o.ClientSecret:
			// Never echo the secret, not even in part.
			return errors.New("azure: client secret has leading or trailing whitespace; check how the secret was stored")
		case o.CertificatePath != "" || o.CertificatePassword != "":
			return errors.New("azure: credential client_secret does not use a certificate; remove the certificate settings")
		}
	case CredentialClientCertificate:
		switch {
		case o.TenantID == "" || o.ClientID == "":
			return errors.New("azure: credential client_certificate needs a tenant id and a client id")
		case o.CertificatePath == "":
			return errors.New("azure: credential client_certificate needs a certificate path")
		case o.ClientSecret != "":
			return errors.New("azure: credential client_certificate does not use a client secret; remove it")
		}
	default:
		return fmt.Errorf("azure: unknown credential %q: want default, client_secret or client_certificate", o.Credential)
	}

	seen := map[string]bool{}
	for _, s := range o.Subscriptions {
		id := strings.ToLower(strings.TrimSpace(s))
		if !subscriptionIDPattern.MatchString(id) {
			return fmt.Errorf("azure: subscription id %q: want a GUID such as 00000000-0000-0000-0000-000000000000", s)
		}
		if !seen[id] {
			seen[id] = true
			p.subs = append(p.subs, id)
		}
	}
	slices.Sort(p.subs)
	if len(p.subs) == 0 && !o.ListSubscriptions {
		return errors.New("azure: no subscriptions: list subscription ids or enable listing the subscriptions the identity can read")
	}

	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = defaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = -1 // azcore: negative means no retries
	}
	switch {
	case o.RetryDelay == 0:
		o.RetryDelay = defaultRetryDelay
	case o.RetryDelay < 0:
		return fmt.Errorf("azure: retry delay %s is negative", o.RetryDelay)
	}
	switch {
	case o.MaxRetryDelay == 0:
		o.MaxRetryDelay = defaultMaxRetryDelay
	case o.MaxRetryDelay < 0:
		return fmt.Errorf("azure: max retry delay %s is negative", o.MaxRetryDelay)
	}
	switch {
	case o.RequestBudget == 0:
		o.RequestBudget = DefaultRequestBudget
	case o.RequestBudget < 0:
		return fmt.Errorf("azure: request budget %d is negative", o.RequestBudget)
	}
	switch {
	case o.PageSize == 0:
		o.PageSize = MaxPageSize
	case o.PageSize < 0 || o.PageSize > MaxPageSize:
		return fmt.Errorf("azure: page size %d: want 1 to %d", o.PageSize, MaxPageSize)
	}
	switch {
	case o.Concurrency == 0:
		o.Concurrency = defaultConcurrency
	case o.Concurrency < 0 || o.Concurrency > maxConcurrency:
		return fmt.Errorf("azure: concurrency %d: want 1 to %d", o.Concurrency, maxConcurrency)
	}
	return nil
}

// cloudConfig returns the cloud configuration with the overrides applied.
// The SDK's cloud values are package variables shared by every client in
// the process, so the services map is copied, never modified.
func cloudConfig(o Options) (cloud.Configuration, error) {
	var base cloud.Configuration
	switch strings.ToLower(strings.TrimSpace(o.Cloud)) {
	case "", CloudPublic, "azurepublic", "azurecloud":
		base = cloud.AzurePublic
	case CloudChina, "azurechina", "azurechinacloud":
		base = cloud.AzureChina
	case CloudUSGovernment, "azuregovernment", "azureusgovernment", "azureusgovernmentcloud":
		base = cloud.AzureGovernment
	default:
		return cloud.Configuration{}, fmt.Errorf("azure: unknown cloud %q: want public, china or usgovernment", o.Cloud)
	}
	cfg := cloud.Configuration{
		ActiveDirectoryAuthorityHost: base.ActiveDirectoryAuthorityHost,
		Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{},
	}
	rm := base.Services[cloud.ResourceManager]
	if o.AuthorityHost != "" {
		u, err := httpsURL("authority host", o.AuthorityHost)
		if err != nil {
			return cloud.Configuration{}, err
		}
		cfg.ActiveDirectoryAuthorityHost = u + "/"
	}
	if o.ResourceManagerEndpoint != "" {
		u, err := httpsURL("resource manager endpoint", o.ResourceManagerEndpoint)
		if err != nil {
			return cloud.Configuration{}, err
		}
		rm.Endpoint = u
	}
	if o.ResourceManagerAudience != "" {
		if _, err := httpsURL("resource manager audience", o.ResourceManagerAudience); err != nil {
			return cloud.Configuration{}, err
		}
		rm.Audience = strings.TrimSpace(o.ResourceManagerAudience)
	}
	if rm.Endpoint == "" || rm.Audience == "" {
		return cloud.Configuration{}, errors.New("azure: the cloud has no resource manager endpoint and audience; set both")
	}
	cfg.Services[cloud.ResourceManager] = rm
	return cfg, nil
}

// httpsURL checks an endpoint override and returns it without a trailing
// slash. Entra and azcore refuse to send credentials over plain http, so
// http is rejected here, where the message can say which setting is wrong.
func httpsURL(what, s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("azure: %s %q: %w", what, s, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("azure: %s %q: want an absolute https URL", what, s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("azure: %s %q: must not carry a query, fragment or user info", what, s)
	}
	return strings.TrimRight(s, "/"), nil
}

// knownAuthority reports whether host is the authority of a public cloud,
// which Entra's instance discovery knows.
func knownAuthority(host string) bool {
	for _, c := range []cloud.Configuration{cloud.AzurePublic, cloud.AzureChina, cloud.AzureGovernment} {
		if strings.EqualFold(strings.TrimRight(c.ActiveDirectoryAuthorityHost, "/"), strings.TrimRight(host, "/")) {
			return true
		}
	}
	return false
}

// newClients builds the credential and ARM clients. Every one of them
// sends through p.http, so Observe sees token requests as well as ARM
// requests, and every one of them has azcore's retry policy above it.
func (p *Provider) newClients() (*clients, error) {
	o := p.opts
	co := policy.ClientOptions{
		Cloud:     p.cloud,
		Transport: p.http,
		Retry: policy.RetryOptions{
			MaxRetries:    int32(o.MaxRetries),
			RetryDelay:    o.RetryDelay,
			MaxRetryDelay: o.MaxRetryDelay,
			ShouldRetry:   p.shouldRetry,
		},
		PerCallPolicies: []policy.Policy{triesPolicy{}},
		Telemetry:       policy.TelemetryOptions{ApplicationID: "cloudcarbon-exporter"},
	}
	noDiscovery := !knownAuthority(p.cloud.ActiveDirectoryAuthorityHost)

	var cred azcore.TokenCredential
	var err error
	switch o.Credential {
	case CredentialDefault:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: co, TenantID: o.TenantID, DisableInstanceDiscovery: noDiscovery,
		})
	case CredentialClientSecret:
		cred, err = azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, o.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case CredentialClientCertificate:
		cred, err = azidentity.NewClientCertificateCredential(o.TenantID, o.ClientID, p.certs, p.key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	}
	if err != nil {
		return nil, fmt.Errorf("azure: %s credential: %s", o.Credential, httpx.Scrub(err.Error(), p.secrets...))
	}

	armOpts := &arm.ClientOptions{
		ClientOptions: co,
		// Automatic resource provider registration is a write (POST
		// .../providers/Microsoft.Carbon/register) that a read-only
		// exporter must not attempt and its reader role could not do
		// anyway; Microsoft.Carbon's operations are tenant-level.
		DisableRPRegistration: true,
	}
	armOpts.PerRetryPolicies = []policy.Policy{requestBudgetPolicy{}}
	tagged := taggedCredential{cred: cred}
	carbon, err := armcarbonoptimization.NewCarbonServiceClient(tagged, armOpts)
	if err != nil {
		return nil, fmt.Errorf("azure: carbon client: %w", err)
	}
	// armsubscriptions is Microsoft's client for GET /subscriptions: it
	// shares the credential, retry policy and transport with the carbon
	// client, so listing costs no second HTTP or auth stack, and its
	// module is small (generated models only).
	subs, err := armsubscriptions.NewClient(tagged, armOpts)
	if err != nil {
		return nil, fmt.Errorf("azure: subscriptions client: %w", err)
	}
	// The cost client shares them too, with two policies of its own:
	// pages that follow a nextLink (nextLinkPolicy), and Cost
	// Management's throttling headers read as Retry-After
	// (costRetryAfterPolicy).
	costOpts := *armOpts
	costOpts.PerCallPolicies = append(slices.Clone(armOpts.PerCallPolicies), nextLinkPolicy{})
	costOpts.PerRetryPolicies = append(slices.Clone(armOpts.PerRetryPolicies), costRetryAfterPolicy{})
	cost, err := armcostmanagement.NewQueryClient(tagged, &costOpts)
	if err != nil {
		return nil, fmt.Errorf("azure: cost management client: %w", err)
	}
	return &clients{carbon: carbon, subs: subs, cost: cost}, nil
}

// current returns the clients in use.
func (p *Provider) current() *clients {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cl
}

// renew replaces the clients that received a 401, so that the next request
// gets a token from a fresh credential. azcore's bearer policy drops its
// own cached token on a 401, but the credential's MSAL cache would hand the
// same token back until it expires; a fresh credential has an empty cache.
// Comparing with the current clients keeps concurrent requests from
// discarding each other's fresh tokens.
func (p *Provider) renew(used *clients) (*clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl != used {
		return p.cl, nil
	}
	cl, err := p.newClients()
	if err != nil {
		return nil, err
	}
	p.cl = cl
	return cl, nil
}

// call runs one SDK call with the current clients. A 401 that survives
// azcore's own handling (it answers CAE claims challenges itself) is
// retried once with renewed clients; see renew.
func (p *Provider) call(ctx context.Context, what string, fn func(context.Context, *clients) error) error {
	return p.callFor(ctx, statusHint, what, fn)
}

// callFor is call for an API whose error answers hint gives hints for.
func (p *Provider) callFor(ctx context.Context, hint func(int) string, what string, fn func(context.Context, *clients) error) error {
	cl := p.current()
	for attempt := 0; ; attempt++ {
		var raw *http.Response
		err := fn(policy.WithCaptureResponse(ctx, &raw), cl)
		if err == nil {
			return nil
		}
		if re, ok := errors.AsType[*azcore.ResponseError](err); ok && re.StatusCode == http.StatusUnauthorized && attempt == 0 && ctx.Err() == nil {
			p.log.DebugContext(ctx, "azure token rejected; renewing the credential", "request", what)
			if cl, err = p.renew(cl); err != nil {
				return p.fail(provider.ReasonAuth, 0, err)
			}
			continue
		}
		return p.classifyFor(ctx, hint, what, err, raw)
	}
}

// Provisional reports whether the source asks for provisional months
// (Options.Provisional), so that the exporter reads its cost (Costs).
func (p *Provider) Provisional() bool { return p.opts.Provisional }

// Close implements provider.Provider; the client holds nothing that needs
// releasing beyond idle connections, which the HTTP client's pool closes.
func (p *Provider) Close() error { return nil }

// Name implements provider.Provider.
func (p *Provider) Name() string { return Name }

// Schedule implements provider.Provider.
func (p *Provider) Schedule() provider.Schedule { return publication() }
