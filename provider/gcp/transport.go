package gcp

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/credentials"
	"cloud.google.com/go/auth/httptransport"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// clientConfig describes the HTTP client a Google API client runs on.
type clientConfig struct {
	base          *http.Client
	observe       provider.RequestObserver
	credsFile     string
	noAuth        bool
	scopes        []string
	endpointNamer func(*http.Request) string
}

// newHTTPClient builds the client every request goes through: the
// caller's client (or a default) with each attempt reported to observe,
// and Google credentials on top. We build it ourselves, rather than let
// the Google client libraries do it, because only then can the token
// requests and every retried attempt pass the instrumented transport. The
// caller's client is copied, not modified, because it may be shared.
func newHTTPClient(cfg clientConfig) (*http.Client, error) {
	// FailFast: the BigQuery client retries io.ErrUnexpectedEOF until the
	// caller's deadline, so a server that cuts answers short would turn
	// into a timeout after the whole refresh deadline; read as
	// *httpx.TruncatedBodyError, it is a malformed response at once.
	c := httpx.NewClient(cfg.base, httpx.ClientOptions{
		Timeout: defaultHTTPTimeout, Observe: cfg.observe, Endpoint: cfg.endpointNamer,
		MaxResponseBytes: MaxResponseBytes, FailFast: true,
	})
	if cfg.noAuth {
		return c, nil
	}

	// Token requests use the same instrumented client, without auth.
	tokenClient := *c
	dopts := &credentials.DetectOptions{Scopes: cfg.scopes, Client: &tokenClient}
	var (
		creds *auth.Credentials
		err   error
	)
	if cfg.credsFile != "" {
		// Only service-account keys: a key file of another type (an
		// external account config, say) can make the library fetch
		// URLs or run commands it names, which a config file should
		// not be able to do unnoticed.
		creds, err = credentials.NewCredentialsFromFile(credentials.ServiceAccount, cfg.credsFile, dopts)
		if err != nil {
			return nil, fmt.Errorf("gcp: credentials file %s: %w", cfg.credsFile, err)
		}
	} else {
		creds, err = credentials.DetectDefault(dopts)
		if err != nil {
			return nil, fmt.Errorf("gcp: Application Default Credentials: %w", err)
		}
	}
	if err := httptransport.AddAuthorizationMiddleware(c, creds); err != nil {
		return nil, fmt.Errorf("gcp: credentials: %w", err)
	}
	return c, nil
}

// BigQuery REST paths, matched on their suffix so that endpoint prefixes
// ("/bigquery/v2/") and path-prefixed proxies do not matter.
var (
	queriesPath      = regexp.MustCompile(`/projects/[^/]+/queries$`)
	queryResultsPath = regexp.MustCompile(`/projects/[^/]+/queries/[^/]+$`)
	jobsPath         = regexp.MustCompile(`/projects/[^/]+/jobs$`)
	jobPath          = regexp.MustCompile(`/projects/[^/]+/jobs/[^/]+$`)
)

// bigQueryEndpoint maps a request to the fixed endpoint label set.
func bigQueryEndpoint(req *http.Request) string {
	path := req.URL.Path
	switch {
	case isTokenRequest(req):
		return "token"
	case req.Method == http.MethodPost && queriesPath.MatchString(path):
		return "jobs.query"
	case req.Method == http.MethodGet && queryResultsPath.MatchString(path):
		return "jobs.getQueryResults"
	case req.Method == http.MethodPost && jobsPath.MatchString(path):
		return "jobs.insert"
	case req.Method == http.MethodGet && jobPath.MatchString(path):
		return "jobs.get"
	}
	return "other"
}

// isTokenRequest recognises OAuth token requests: Google's token endpoint
// (oauth2.googleapis.com/token, or another universe's) and the metadata
// server's token path.
func isTokenRequest(req *http.Request) bool {
	host := req.URL.Hostname()
	return strings.HasPrefix(host, "oauth2.") || strings.HasSuffix(req.URL.Path, "/token")
}
