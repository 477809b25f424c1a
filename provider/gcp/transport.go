package gcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	// pages reads answers whole and charges each page of query results
	// to the refresh's budget (see pageTransport): BigQuery clients only.
	pages bool
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
	if cfg.pages {
		c.Transport = pageTransport{base: c.Transport}
	}
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

// bigQueryEndpoint maps a request to the fixed endpoint label set. The
// requests of the cost feed (see Provider.ReadCosts) and of the tag feed
// (Provider.ReadTagCosts) carry their feed's mark in their context and
// are named with its prefix, "costs." or "tags.", so that the requests
// provisional months and allocation cost are told apart from those of
// the published data.
func bigQueryEndpoint(req *http.Request) string {
	path := req.URL.Path
	if isTokenRequest(req) {
		return "token"
	}
	name := "other"
	switch {
	case req.Method == http.MethodPost && queriesPath.MatchString(path):
		name = "jobs.query"
	case req.Method == http.MethodGet && queryResultsPath.MatchString(path):
		name = "jobs.getQueryResults"
	case req.Method == http.MethodPost && jobsPath.MatchString(path):
		name = "jobs.insert"
	case req.Method == http.MethodGet && jobPath.MatchString(path):
		name = "jobs.get"
	}
	if f := feedOf(req.Context()); f != nil {
		return f.endpointPrefix + name
	}
	return name
}

// isTokenRequest recognises OAuth token requests: Google's token endpoint
// (oauth2.googleapis.com/token, or another universe's) and the metadata
// server's token path.
func isTokenRequest(req *http.Request) bool {
	host := req.URL.Hostname()
	return strings.HasPrefix(host, "oauth2.") || strings.HasSuffix(req.URL.Path, "/token")
}

// pageTransport reads every answer whole, within MaxResponseBytes, before
// the BigQuery client decodes it, and charges every page of query results
// to the refresh's budget (httpx.Page).
//
// The client decodes a page only once its JSON decoder holds all of it,
// in a buffer that doubles as it fills: an answer cut at the cap would
// cost several times the cap before the cut surfaced. Read here, in one
// buffer that grows no further than the cap, such an answer costs about
// twice the cap and never reaches the decoder. The client's paging loop
// follows page tokens on its own, pages without rows included, so this
// is the one place that sees every page: a page counted past the
// budget's limits fails its request, which the client does not retry.
type pageTransport struct {
	base http.RoundTripper
}

func (t pageTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// Once the refresh is over budget, a request can only read more.
	if err := httpx.Overrun(ctx); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	body, err := readAnswer(resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK && isResultPage(req) {
		if err := chargePage(ctx, body); err != nil {
			return nil, err
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// isResultPage recognises the requests whose answers carry query result
// rows: jobs.query and jobs.getQueryResults.
func isResultPage(req *http.Request) bool {
	return (req.Method == http.MethodPost && queriesPath.MatchString(req.URL.Path)) ||
		(req.Method == http.MethodGet && queryResultsPath.MatchString(req.URL.Path))
}

// chargePage charges one page of results to the budget: its rows, or an
// empty page when it holds none but links to another. An answer of a job
// still running, or the empty end of a result, is no page. An answer that
// is not JSON is left to the client, whose decoding says so.
func chargePage(ctx context.Context, body []byte) error {
	var page struct {
		Rows      []struct{} `json:"rows"`
		PageToken string     `json:"pageToken"`
	}
	if json.Unmarshal(body, &page) != nil || (len(page.Rows) == 0 && page.PageToken == "") {
		return nil
	}
	return httpx.Page(ctx, len(page.Rows))
}

// firstReadBytes is the buffer an answer of unknown length starts in.
const firstReadBytes = 64 << 10

// readAnswer reads body whole into one buffer that starts at the announced
// length (or firstReadBytes) and doubles as it fills, to at most
// MaxResponseBytes+1 bytes: about twice the cap in all. io.ReadAll grows by a quarter at a time once
// large, which for an answer near the cap allocates several times its
// size. The transport below bounds the body; the check here only keeps
// the buffer from growing past the cap whatever sits below.
func readAnswer(body io.Reader, length int64) ([]byte, error) {
	const most = MaxResponseBytes + 1
	size := int64(firstReadBytes)
	if length >= 0 {
		size = length + 1 // room to read the end without growing
	}
	buf := make([]byte, 0, min(size, most))
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= most {
				return nil, &httpx.ResponseTooLargeError{Limit: MaxResponseBytes}
			}
			next := 2 * cap(buf)
			if next >= MaxResponseBytes {
				// Straight to the most, not to the cap and then one
				// more byte: that step would cost the cap again.
				next = most
			}
			buf = append(make([]byte, 0, next), buf...)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
