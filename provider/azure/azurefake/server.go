package azurefake

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Operations: the request counters, recorded bodies and fault injection
// are keyed by these names, which match the azure provider's endpoint
// names where both exist.
const (
	OpToken             = "token"
	OpOpenID            = "openid_configuration"
	OpInstanceDiscovery = "instance_discovery"
	OpReports           = "carbon_emission_reports"
	OpDateRange         = "carbon_date_range"
	OpSubscriptions     = "subscriptions"
	OpCostQuery         = "cost_management_query"
	OpOther             = "other"
)

// API versions the fake accepts.
const (
	CarbonAPIVersion        = "2025-04-01"
	SubscriptionsAPIVersion = "2022-12-01"
)

const (
	defaultTokenTTL = time.Hour
	maxBodyBytes    = 1 << 20
	maxPageSize     = 5000
	maxSubsPerQuery = 100

	clientCredentialsGrant = "client_credentials"
	jwtBearerAssertion     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Fault replaces the real answer to the next Times requests of an
// operation.
type Fault = fakehttp.Fault

// Truncated is a 200 answer whose body stops short: its Content-Length
// promises more bytes than body holds, so the server closes the
// connection after body and the client's read ends in "unexpected EOF",
// as when a proxy or a load balancer drops a connection mid-answer. It
// differs from a complete body of invalid JSON, which reads in full.
func Truncated(body string) Fault {
	return Fault{Status: http.StatusOK, Body: body, Header: http.Header{
		"Content-Length": {strconv.Itoa(len(body) + 512)},
	}}
}

// Server is the fake Entra authority and Azure Resource Manager on one
// handler. It is safe for concurrent use. Serve it over TLS
// (httptest.NewTLSServer, or http.Server with NewTLSConfig): azidentity
// and azcore refuse to send credentials over plain http.
type Server struct {
	ds           Dataset
	clientID     string
	clientSecret string
	signKey      []byte
	marker       string
	first, last  provider.Month
	subs         map[string]Subscription
	// byKey indexes items by lower-case resource id and month, for the
	// previous month's figures.
	byKey map[itemKey]*Item

	mu        sync.Mutex
	ttl       time.Duration
	tokens    map[string]*tokenInfo
	seq       int
	certs     []*x509.Certificate
	audiences map[string]bool
	subsPage  int
	pageMax   int // the most items a report page holds; 0: pageSize
	// costPageMax is the most rows a cost query page holds; 0:
	// costPageRows.
	costPageMax int
	bodies      map[string][]string
	requests    fakehttp.Counter[string]
	faults      fakehttp.Faults[string]
}

type itemKey struct {
	id    string
	month provider.Month
}

type tokenInfo struct {
	exp      time.Time
	audience string
	cae      bool
	revoked  bool
}

// NewServer serves ds to the application clientID that presents
// clientSecret (or, once registered with AddClientCertificate, an
// assertion signed with a certificate's key).
func NewServer(ds Dataset, clientID, clientSecret string) *Server {
	signKey := make([]byte, 32)
	_, _ = rand.Read(signKey)
	s := &Server{
		ds:           ds,
		clientID:     clientID,
		clientSecret: clientSecret,
		signKey:      signKey,
		marker:       rand.Text(),
		subs:         map[string]Subscription{},
		byKey:        map[itemKey]*Item{},
		ttl:          defaultTokenTTL,
		tokens:       map[string]*tokenInfo{},
		audiences: map[string]bool{
			// What azcore asks for by default, and the other
			// audience ARM accepts.
			"https://management.core.windows.net": true,
			"https://management.azure.com":        true,
		},
		subsPage: 100,
		bodies:   map[string][]string{},
	}
	s.first, s.last = ds.Range()
	for _, sub := range ds.Subscriptions {
		s.subs[strings.ToLower(sub.ID)] = sub
	}
	for i := range ds.Items {
		it := &ds.Items[i]
		s.byKey[itemKey{strings.ToLower(it.ResourceID()), it.Month}] = it
	}
	return s
}

// AddClientCertificate registers a certificate on the application, as
// uploading it in the portal does: assertions signed with its key are
// accepted from then on.
func (s *Server) AddClientCertificate(cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs = append(s.certs, cert)
}

// AddAudience makes ARM accept tokens for audience too.
func (s *Server) AddAudience(audience string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audiences[normAudience(audience)] = true
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// SetSubscriptionsPageSize sets how many subscriptions one listing page
// holds (default 100), so that tests can make the client follow nextLink.
func (s *Server) SetSubscriptionsPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subsPage = max(n, 1)
}

// SetPageMax makes report pages hold at most n items, whatever pageSize
// the client asks for, as a server may; 0 restores pages of pageSize.
func (s *Server) SetPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageMax = max(n, 0)
}

// TokenMarker returns the random id that every access token this server
// issues carries (in its uti claim), so that a test can find a token, or
// any part of it, in whatever the client writes.
func (s *Server) TokenMarker() string { return s.marker }

// ExpireTokens revokes every token issued so far, as a critical event
// (password reset, disabled service principal) does. ARM answers tokens
// of clients that declared CAE support (the CP1 capability, which azcore
// always declares) with a claims challenge, others with invalid_token.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.revoked = true
	}
}

// Inject queues f for operation op: the next f.Times requests of op get f
// instead of the real answer. Faults queued for one operation are served
// in order.
func (s *Server) Inject(op string, f Fault) {
	s.faults.Inject(op, f)
}

// Requests returns how many requests of op arrived, faults and rejected
// ones included.
func (s *Server) Requests(op string) int {
	return s.requests.Get(op)
}

// Bodies returns the request bodies of op in arrival order. Token request
// bodies are never recorded: they carry the client secret.
func (s *Server) Bodies(op string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies[op])
}

// Queries returns the carbonEmissionReports request bodies that decoded,
// in arrival order.
func (s *Server) Queries() []Query {
	var out []Query
	for _, b := range s.Bodies(OpReports) {
		var q Query
		if json.Unmarshal([]byte(b), &q) == nil {
			out = append(out, q)
		}
	}
	return out
}

var (
	openIDPath    = regexp.MustCompile(`^/([^/]+)/v2\.0/\.well-known/openid-configuration$`)
	tokenPath     = regexp.MustCompile(`^/([^/]+)/oauth2/v2\.0/token$`)
	reportsPath   = "/providers/microsoft.carbon/carbonemissionreports"
	dateRangePath = "/providers/microsoft.carbon/querycarbonemissiondataavailabledaterange"
)

// operation names the operation of a request.
func operation(r *http.Request) string {
	p := r.URL.Path
	lp := strings.ToLower(strings.TrimRight(p, "/"))
	switch {
	case openIDPath.MatchString(p):
		return OpOpenID
	case tokenPath.MatchString(p):
		return OpToken
	case lp == "/common/discovery/instance":
		return OpInstanceDiscovery
	case lp == reportsPath:
		return OpReports
	case lp == dateRangePath:
		return OpDateRange
	case lp == "/subscriptions":
		return OpSubscriptions
	case costQueryPath.MatchString(lp):
		return OpCostQuery
	}
	return OpOther
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	var body []byte
	if op != OpToken && r.Body != nil {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			armError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body is too large.")
			return
		}
	}

	s.requests.Inc(op)
	if op != OpToken && len(body) > 0 {
		s.mu.Lock()
		s.bodies[op] = append(s.bodies[op], string(body))
		s.mu.Unlock()
	}
	if f, ok := s.faults.Next(op); ok {
		f.Write(w, r)
		return
	}

	switch op {
	case OpOpenID:
		s.serveOpenID(w, r)
	case OpToken:
		s.serveToken(w, r)
	case OpInstanceDiscovery:
		s.serveInstanceDiscovery(w, r)
	case OpReports:
		s.serveReports(w, r, body)
	case OpDateRange:
		s.serveDateRange(w, r)
	case OpSubscriptions:
		s.serveSubscriptions(w, r)
	case OpCostQuery:
		s.serveCostQuery(w, r, body)
	default:
		armError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The requested path '%s' was not found.", r.URL.Path))
	}
}

// baseURL is the server's own origin, from the request: discovery
// documents must name the host the client used, or MSAL rejects them.
func baseURL(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func (s *Server) knownTenant(t string) bool {
	return strings.EqualFold(t, s.ds.TenantID)
}

// serveOpenID answers GET /{tenant}/v2.0/.well-known/openid-configuration
// with the fields MSAL reads (authorization, token endpoint and issuer,
// which must name this host) and the rest of Entra's document.
func (s *Server) serveOpenID(w http.ResponseWriter, r *http.Request) {
	tenant := openIDPath.FindStringSubmatch(r.URL.Path)[1]
	if r.Method != http.MethodGet {
		entraError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts GET requests.")
		return
	}
	if !s.knownTenant(tenant) {
		entraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := baseURL(r) + "/" + s.ds.TenantID
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              baseURL(r) + "/" + s.ds.TenantID + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   r.Host,
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// serveInstanceDiscovery answers GET /common/discovery/instance, which
// azidentity calls unless instance discovery is disabled: it names this
// host as the only alias of itself.
func (s *Server) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	tenant := "common"
	if ae := r.URL.Query().Get("authorization_endpoint"); ae != "" {
		if u, err := url.Parse(ae); err == nil {
			if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) > 0 && parts[0] != "" {
				tenant = parts[0]
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": baseURL(r) + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": host,
			"preferred_cache":   host,
			"aliases":           []string{host},
		}},
	})
}

// serveToken implements the client credentials grant of the v2.0 token
// endpoint, with a client secret or a certificate-signed assertion.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	tenant := tokenPath.FindStringSubmatch(r.URL.Path)[1]
	if r.Method != http.MethodPost {
		entraError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		entraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	if !s.knownTenant(tenant) {
		entraError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", tenant))
		return
	}
	if g := f.Get("grant_type"); g != clientCredentialsGrant {
		entraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	if f.Get("client_id") != s.clientID {
		entraError(w, http.StatusBadRequest, "unauthorized_client", 700016,
			fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", f.Get("client_id"), s.ds.TenantID))
		return
	}
	switch {
	case f.Get("client_secret") != "":
		// Like Entra, never echo the secret.
		if s.clientSecret == "" || subtle.ConstantTimeCompare([]byte(f.Get("client_secret")), []byte(s.clientSecret)) != 1 {
			entraError(w, http.StatusUnauthorized, "invalid_client", 7000215,
				fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.clientID))
			return
		}
	case f.Get("client_assertion_type") == jwtBearerAssertion:
		aud := baseURL(r) + r.URL.Path
		if code, msg := s.checkAssertion(f.Get("client_assertion"), aud); code != 0 {
			entraError(w, http.StatusUnauthorized, "invalid_client", code, msg)
			return
		}
	default:
		entraError(w, http.StatusBadRequest, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	var audience string
	for sc := range strings.FieldsSeq(f.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			audience = normAudience(strings.TrimSuffix(sc, "/.default"))
		}
	}
	s.mu.Lock()
	known := s.audiences[audience]
	s.mu.Unlock()
	if !known {
		entraError(w, http.StatusBadRequest, "invalid_resource", 500011,
			fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", cmp.Or(audience, "(none)"), s.ds.TenantID))
		return
	}
	cae := strings.Contains(f.Get("claims"), `"CP1"`)

	now := time.Now()
	s.mu.Lock()
	ttl := s.ttl
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	exp := now.Add(ttl)
	tok := s.jwt(now, exp, seq, audience, cae)
	s.mu.Lock()
	s.tokens[tok] = &tokenInfo{exp: exp, audience: audience, cae: cae}
	s.mu.Unlock()
	secs := int64(ttl / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// checkAssertion verifies a client assertion as Entra does: a PS256 (or
// RS256) JWT whose x5t#S256 (or x5t) names a registered certificate, signed
// by its key, for this token endpoint, issued by and about the client, and
// not expired. It returns an AADSTS code and message on failure.
func (s *Server) checkAssertion(assertion, endpoint string) (int, string) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return 50027, "JWT token is invalid or malformed."
	}
	enc := base64.RawURLEncoding
	var header struct {
		Alg     string `json:"alg"`
		X5t     string `json:"x5t"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud string      `json:"aud"`
		Iss string      `json:"iss"`
		Sub string      `json:"sub"`
		Exp json.Number `json:"exp"`
		Nbf json.Number `json:"nbf"`
	}
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	sig, err3 := enc.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return 50027, "JWT token is invalid or malformed."
	}
	s.mu.Lock()
	certs := slices.Clone(s.certs)
	s.mu.Unlock()
	var cert *x509.Certificate
	for _, c := range certs {
		s256 := sha256.Sum256(c.Raw)
		s1 := sha1.Sum(c.Raw)
		if header.X5tS256 != "" && (header.X5tS256 == base64.StdEncoding.EncodeToString(s256[:]) || header.X5tS256 == enc.EncodeToString(s256[:])) ||
			header.X5t != "" && (header.X5t == base64.StdEncoding.EncodeToString(s1[:]) || header.X5t == enc.EncodeToString(s1[:])) {
			cert = c
		}
	}
	if cert == nil {
		return 700027, fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application '%s'.", s.clientID)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var verr error
	switch key := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		switch header.Alg {
		case "PS256":
			verr = rsa.VerifyPSS(key, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		case "RS256":
			verr = rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], sig)
		default:
			verr = fmt.Errorf("alg %q", header.Alg)
		}
	case *ecdsa.PublicKey:
		verr = errors.New("ECDSA certificates are not supported for client assertions")
	default:
		verr = errors.New("unsupported key")
	}
	if verr != nil {
		return 700027, "Client assertion failed signature validation."
	}
	now := time.Now().Unix()
	exp, _ := claims.Exp.Int64()
	nbf, _ := claims.Nbf.Int64()
	switch {
	case claims.Aud != endpoint:
		return 700212, fmt.Sprintf("No matching federated identity record found for presented assertion audience '%s'.", claims.Aud)
	case claims.Iss != s.clientID || claims.Sub != s.clientID:
		return 700021, "Client assertion application identifier doesn't match 'client_id' parameter."
	case exp <= now || (nbf != 0 && nbf > now+300):
		return 700024, "Client assertion is not within its valid time range."
	}
	return 0, ""
}

// normAudience makes "https://management.azure.com/" and
// "https://management.azure.com" the same audience.
func normAudience(a string) string { return strings.TrimRight(strings.TrimSpace(a), "/") }

// jwt mints an HS256 token shaped like Entra's app-only ARM tokens.
// Clients never validate it; a real three-segment JWT keeps those that
// decode it (for tid or exp) honest.
func (s *Server) jwt(iat, exp time.Time, seq int, audience string, cae bool) string {
	claims := map[string]any{
		"aud":   audience + "/",
		"iss":   "https://sts.windows.net/" + s.ds.TenantID + "/",
		"iat":   iat.Unix(),
		"nbf":   iat.Unix(),
		"exp":   exp.Unix(),
		"appid": s.clientID,
		"oid":   s.clientID,
		"sub":   s.clientID,
		"tid":   s.ds.TenantID,
		"idtyp": "app",
		"ver":   "1.0",
		"uti":   fmt.Sprintf("%s-%d", s.marker, seq),
	}
	if cae {
		claims["xms_cc"] = []string{"CP1"}
	}
	return fakehttp.HS256(s.signKey, claims)
}

// authorize checks the bearer token as ARM does.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return false
	}
	s.mu.Lock()
	info, known := s.tokens[strings.TrimSpace(tok)]
	var t tokenInfo
	if known {
		t = *info
	}
	audOK := known && s.audiences[t.audience]
	s.mu.Unlock()
	authURI := baseURL(r) + "/" + s.ds.TenantID + "/oauth2/authorize"
	switch {
	case !known:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri=%q, error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`, authURI))
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		return false
	case t.revoked && t.cae:
		claims := fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri=%q, error="insufficient_claims", claims=%q`,
			authURI, base64.StdEncoding.EncodeToString([]byte(claims))))
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token has been revoked.")
		return false
	case t.revoked || !time.Now().Before(t.exp):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri=%q, error="invalid_token", error_description="The access token has expired."`, authURI))
		armError(w, http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time is earlier than current UTC time.")
		return false
	case !audOK:
		armError(w, http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource.")
		return false
	}
	return true
}

// checkAPIVersion answers a missing or unsupported api-version as ARM does.
func checkAPIVersion(w http.ResponseWriter, r *http.Request, want string) bool {
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		armError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return false
	case v != want:
		armError(w, http.StatusBadRequest, "InvalidApiVersionParameter",
			fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", v, want))
		return false
	}
	return true
}

func (s *Server) serveDateRange(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if !checkAPIVersion(w, r, CarbonAPIVersion) || !s.authorize(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"startDate": s.first.Start().Format(time.DateOnly),
		"endDate":   s.last.Start().Format(time.DateOnly),
	})
}

// serveSubscriptions implements GET /subscriptions: every subscription of
// the dataset, denied ones included (listing needs Reader, the carbon API
// its own role), paged with nextLink.
func (s *Server) serveSubscriptions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if !checkAPIVersion(w, r, SubscriptionsAPIVersion) || !s.authorize(w, r) {
		return
	}
	offset := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			armError(w, http.StatusBadRequest, "InvalidSkipToken", "The skip token is invalid.")
			return
		}
		offset = n
	}
	s.mu.Lock()
	size := s.subsPage
	s.mu.Unlock()
	all := s.ds.Subscriptions
	page := []map[string]any{}
	for _, sub := range all[min(offset, len(all)):min(offset+size, len(all))] {
		page = append(page, map[string]any{
			"id":                  "/subscriptions/" + sub.ID,
			"authorizationSource": "RoleBased",
			"managedByTenants":    []any{},
			"subscriptionId":      sub.ID,
			"tenantId":            s.ds.TenantID,
			"displayName":         sub.DisplayName,
			"state":               cmp.Or(sub.State, "Enabled"),
			"subscriptionPolicies": map[string]string{
				"locationPlacementId": "Public_2014-09-01",
				"quotaId":             "EnterpriseAgreement_2014-09-01",
				"spendingLimit":       "Off",
			},
		})
	}
	out := map[string]any{"value": page}
	if offset+size < len(all) {
		q := url.Values{}
		q.Set("api-version", SubscriptionsAPIVersion)
		q.Set("$skiptoken", strconv.Itoa(offset+size))
		out["nextLink"] = baseURL(r) + "/subscriptions?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

// armError answers in ARM's error shape.
func armError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, armErrorBody(code, msg))
}

func armErrorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

// entraError answers in Entra's OAuth error shape.
func entraError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	now := time.Now().UTC()
	trace := fmt.Sprintf("fake-%d", now.UnixNano())
	writeJSON(w, status, map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, msg, trace, trace, now.Format("2006-01-02 15:04:05Z")),
		"error_codes":    []int{aadsts},
		"timestamp":      now.Format("2006-01-02 15:04:05Z"),
		"trace_id":       trace,
		"correlation_id": trace,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
