package ibmfake

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
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

// Paths the fake serves.
const (
	TokenPath  = "/identity/token"
	CarbonPath = "/v1/carbon_emissions"
)

const (
	apikeyGrant     = "urn:ibm:params:oauth:grant-type:apikey"
	defaultTokenTTL = time.Hour
	maxLimit        = 100
)

// Fault replaces the real answer to the next Times requests to a path.
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

// Server is the fake IBM Cloud: IAM token endpoint and Carbon Calculator on
// one handler. It is safe for concurrent use.
type Server struct {
	apiKey  string
	signKey []byte
	ds      Dataset
	rows    []Row // ds.Rows merged by key and sorted
	ents    map[string]Entity

	mu       sync.Mutex
	ttl      time.Duration
	tokens   map[string]time.Time // access token -> expiry
	seq      int
	latency  time.Duration
	pageMax  int // the most rows a page holds; 0: maxLimit
	inFlight int // carbon requests being served
	maxIn    int // highest inFlight seen
	// answers caches grouped answers by query (paging aside): grouping
	// sorts the whole dataset, which at scale would cost the fake more
	// per page than the client spends, and the dataset never changes.
	answers  map[string]answer
	requests fakehttp.Counter[string]
	faults   fakehttp.Faults[string]
}

// maxAnswers bounds the answer cache; a test issues a handful of
// distinct queries.
const maxAnswers = 16

// NewServer serves ds to clients that present apiKey.
func NewServer(ds Dataset, apiKey string) *Server {
	signKey := make([]byte, 32)
	_, _ = rand.Read(signKey)
	s := &Server{
		apiKey:  apiKey,
		signKey: signKey,
		ds:      ds,
		ents:    make(map[string]Entity, len(ds.Entities)),
		ttl:     defaultTokenTTL,
		tokens:  make(map[string]time.Time),
		answers: make(map[string]answer),
	}
	for _, e := range ds.Entities {
		s.ents[e.ID] = e
	}
	// The API returns one row per account/service/resource
	// group/location/month; merge duplicates a dataset may contain.
	type key struct {
		account, service, location, rg string
		month                          provider.Month
	}
	merged := make(map[key]Row)
	for _, r := range ds.Rows {
		k := key{r.AccountID, r.Service, r.Location, r.ResourceGroupID, r.Month}
		m, ok := merged[k]
		if ok {
			m.CarbonEmission += r.CarbonEmission
			m.EnergyConsumption += r.EnergyConsumption
		} else {
			m = r
		}
		merged[k] = m
	}
	s.rows = slices.Collect(maps.Values(merged))
	slices.SortFunc(s.rows, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.AccountID, b.AccountID),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location),
			cmp.Compare(a.ResourceGroupID, b.ResourceGroupID))
	})
	return s
}

// Requests returns how many requests reached path, faults and rejected
// ones included; AccountSummaryPath counts the account summaries of every
// account and month.
func (s *Server) Requests(path string) int {
	return s.requests.Get(path)
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = d
}

// SetLatency holds every answer from now on back by d, as a distant API
// would; requests whose client gives up meanwhile get no answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetPageMax makes pages hold at most n rows, whatever limit the client
// asks for, as a server may.
func (s *Server) SetPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageMax = n
}

// MaxInFlight returns the highest number of carbon_emissions requests
// the fake has served at once, latency included.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxIn
}

// ExpireTokens revokes every token issued so far, as IBM does when a key
// is rotated: clients holding one get 401 until they fetch a new one.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Inject queues f for path: the next f.Times requests to path get f
// instead of the real answer. Faults queued for one path are served in
// order; AccountSummaryPath matches every account summary.
func (s *Server) Inject(path string, f Fault) {
	s.faults.Inject(path, f)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Requests and faults of the account summary are counted and
	// queued under its route, whatever the account and month.
	key := r.URL.Path
	if summaryRoute.MatchString(key) {
		key = AccountSummaryPath
	}
	s.requests.Inc(key)
	s.mu.Lock()
	latency := s.latency
	if r.URL.Path == CarbonPath {
		s.inFlight++
		s.maxIn = max(s.maxIn, s.inFlight)
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			// Not a 200 with an empty body (see fakehttp.Fault.Write).
			panic(http.ErrAbortHandler)
		}
	}
	if f, ok := s.faults.Next(key); ok {
		f.Write(w, r)
		return
	}

	switch key {
	case TokenPath:
		s.serveToken(w, r)
	case CarbonPath:
		s.serveCarbon(w, r)
	case AccountSummaryPath:
		s.serveSummary(w, r)
	case EnterpriseUsagePath:
		s.serveEnterpriseUsage(w, r)
	default:
		apiError(w, r, http.StatusNotFound, "No resource found at "+r.URL.Path+".")
	}
}

// serveToken implements the IAM apikey grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		iamError(w, http.StatusMethodNotAllowed, "BXNIM0101E", "Method not allowed.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		iamError(w, http.StatusBadRequest, "BXNIM0109E", "The request body could not be parsed.")
		return
	}
	if r.PostForm.Get("grant_type") != apikeyGrant {
		iamError(w, http.StatusBadRequest, "BXNIM0103E", "Grant type is not supported or missing.")
		return
	}
	key := r.PostForm.Get("apikey")
	if key == "" {
		iamError(w, http.StatusBadRequest, "BXNIM0109E", "Property missing or empty: apikey.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.apiKey)) != 1 {
		// Like IAM, never echo the key.
		iamError(w, http.StatusBadRequest, "BXNIM0415E", "Provided API key could not be found.")
		return
	}

	now := time.Now()
	s.mu.Lock()
	ttl := s.ttl
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	exp := now.Add(ttl)
	tok := s.jwt(now, exp, seq)
	s.mu.Lock()
	s.tokens[tok] = exp
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"refresh_token": "not_supported",
		"token_type":    "Bearer",
		"expires_in":    int64(ttl / time.Second),
		"expiration":    exp.Unix(),
		"scope":         "ibm openid",
	})
}

// jwt mints an HS256 token shaped like IAM's. go-sdk-core's IAM
// authenticator reads expiry from the token response, not the JWT, but a
// real three-segment JWT keeps clients that do decode it honest.
func (s *Server) jwt(iat, exp time.Time, seq int) string {
	account := s.ds.EnterpriseID
	if account == "" && len(s.rows) > 0 {
		account = s.rows[0].AccountID
	}
	if account == "" && len(s.ds.Costs) > 0 {
		account = s.ds.Costs[0].AccountID
	}
	return fakehttp.HS256(s.signKey, map[string]any{
		"iam_id":     "iam-ServiceId-fake",
		"id":         "iam-ServiceId-fake",
		"sub":        "ServiceId-fake",
		"sub_type":   "ServiceId",
		"account":    map[string]any{"bss": account, "valid": true},
		"iat":        iat.Unix(),
		"exp":        exp.Unix(),
		"iss":        "https://iam.cloud.ibm.com/identity",
		"grant_type": apikeyGrant,
		"scope":      "ibm openid",
		"client_id":  "default",
		"jti":        fmt.Sprintf("fake-%d", seq),
	})
}

// authorize checks the bearer token as the Carbon Calculator does.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	return s.authorizeWith(r, func(msg string) { apiError(w, r, http.StatusUnauthorized, msg) })
}

// authorizeWith checks the bearer token, answering a rejected one with
// refuse.
func (s *Server) authorizeWith(r *http.Request, refuse func(msg string)) bool {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		refuse("Token not specified.")
		return false
	}
	s.mu.Lock()
	exp, known := s.tokens[strings.TrimSpace(tok)]
	s.mu.Unlock()
	switch {
	case !known:
		refuse("Invalid token.")
		return false
	case !time.Now().Before(exp):
		refuse("Token expired.")
		return false
	}
	return true
}

var (
	monthParam = regexp.MustCompile(`^(gte|lte):(20[0-9]{2})-(0[1-9]|1[0-2])$`)
	idParam    = regexp.MustCompile(`^[a-z0-9]{32}$`)
)

// query is a validated /v1/carbon_emissions request.
type query struct {
	from, to          provider.Month
	groupBy           string
	filterType        string // "" or the filter entity's type
	filterID          string
	accounts          map[string]bool // nil: all
	services          map[string]bool // lower-cased; nil: all
	locations         map[string]bool
	limit, offset     int
	enterpriseFilters int
}

func (s *Server) parseQuery(r *http.Request) (*query, int, string) {
	v := r.URL.Query()
	now := time.Now()
	q := &query{
		from:    provider.NewMonth(now.Year(), time.January),
		to:      provider.MonthOf(now) - 1,
		groupBy: "month",
		limit:   maxLimit,
	}

	var months []string
	for _, m := range v["month"] {
		months = append(months, splitList(m)...)
	}
	if len(months) > 2 {
		return nil, http.StatusBadRequest, "month accepts at most two conditions."
	}
	seen := map[string]bool{}
	for _, m := range months {
		sm := monthParam.FindStringSubmatch(m)
		if sm == nil {
			return nil, http.StatusBadRequest, fmt.Sprintf("Invalid month %q: want gte:YYYY-MM or lte:YYYY-MM.", m)
		}
		if seen[sm[1]] {
			return nil, http.StatusBadRequest, fmt.Sprintf("Duplicate month condition %q.", sm[1])
		}
		seen[sm[1]] = true
		pm, err := provider.ParseMonth(sm[2] + "-" + sm[3])
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Sprintf("Invalid month %q.", m)
		}
		if sm[1] == "gte" {
			q.from = pm
		} else {
			q.to = pm
		}
	}

	if g := v.Get("group_by"); g != "" {
		switch g {
		case "month", "service", "location", "resource_group", "enterprise_group", "enterprise_account", "none":
			q.groupBy = g
		default:
			return nil, http.StatusBadRequest, fmt.Sprintf("Invalid group_by %q.", g)
		}
	}

	var bad string
	if q.limit, bad = intParam(v, "limit", maxLimit, 1, maxLimit); bad != "" {
		return nil, http.StatusBadRequest, bad
	}
	if q.offset, bad = intParam(v, "offset", 0, 0, 2147483647); bad != "" {
		return nil, http.StatusBadRequest, bad
	}

	for _, f := range []struct{ param, typ string }{
		{"enterprise_id", TypeEnterprise},
		{"enterprise_group_id", TypeAccountGroup},
		{"enterprise_account_id", TypeAccount},
	} {
		id := v.Get(f.param)
		if id == "" {
			continue
		}
		q.enterpriseFilters++
		if !idParam.MatchString(id) {
			return nil, http.StatusBadRequest, fmt.Sprintf("Invalid %s: want 32 lower-case letters and digits.", f.param)
		}
		e, ok := s.ents[id]
		if s.ds.EnterpriseID == "" || !ok || e.Type != f.typ {
			return nil, http.StatusForbidden, "An authenticated access token without proper access to carbon calculator was provided."
		}
		q.filterType, q.filterID = f.typ, id
		q.accounts = s.accountsUnder(id)
	}
	if q.enterpriseFilters > 1 {
		return nil, http.StatusBadRequest, "Use at most one of enterprise_id, enterprise_group_id and enterprise_account_id."
	}
	switch q.groupBy {
	case "resource_group":
		if q.filterType == TypeEnterprise || q.filterType == TypeAccountGroup {
			return nil, http.StatusBadRequest, "group_by=resource_group is not supported with enterprise_id or enterprise_group_id."
		}
	case "enterprise_group", "enterprise_account":
		if s.ds.EnterpriseID == "" {
			return nil, http.StatusBadRequest, fmt.Sprintf("group_by=%s is only supported for enterprise accounts.", q.groupBy)
		}
	}

	q.services = lowerSet(v["services"])
	q.locations = lowerSet(v["locations"])
	return q, 0, ""
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func lowerSet(vals []string) map[string]bool {
	var set map[string]bool
	for _, v := range vals {
		for _, p := range splitList(v) {
			if set == nil {
				set = map[string]bool{}
			}
			set[strings.ToLower(p)] = true
		}
	}
	return set
}

// intParam parses an integer parameter; the string is an error message
// for the client.
func intParam(v url.Values, name string, def, lo, hi int) (int, string) {
	s := v.Get(name)
	if s == "" {
		return def, ""
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Sprintf("Invalid %s %q: want an integer from %d to %d.", name, s, lo, hi)
	}
	return n, ""
}

// accountsUnder returns the accounts at or below entity id.
func (s *Server) accountsUnder(id string) map[string]bool {
	out := map[string]bool{}
	for _, e := range s.ds.Entities {
		if e.Type == TypeAccount && s.isUnder(e.ID, id) {
			out[e.ID] = true
		}
	}
	return out
}

func (s *Server) isUnder(id, ancestor string) bool {
	for range len(s.ents) + 1 { // bounded: a cyclic dataset must not hang
		if id == ancestor {
			return true
		}
		e, ok := s.ents[id]
		if !ok || e.ParentID == "" {
			return false
		}
		id = e.ParentID
	}
	return false
}

// Wire types, shaped like IBM's documented examples.
type wireMonth struct {
	Value string `json:"value,omitempty"`
	Min   string `json:"min,omitempty"`
	Max   string `json:"max,omitempty"`
}

type wireGroup struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type wireRow struct {
	AccountID         string     `json:"account_id,omitempty"`
	CarbonEmission    float64    `json:"carbon_emission"`
	EnergyConsumption float64    `json:"energy_consumption"`
	Service           string     `json:"service,omitempty"`
	Location          string     `json:"location,omitempty"`
	ResourceGroupID   string     `json:"resource_group_id,omitempty"`
	PUE               *float64   `json:"power_utilization_efficiency,omitempty"`
	EmissionFactor    *float64   `json:"carbon_emission_factor,omitempty"`
	EntityType        string     `json:"entity_type,omitempty"`
	EntityID          string     `json:"entity_id,omitempty"`
	EntityName        string     `json:"entity_name,omitempty"`
	ParentEntityID    string     `json:"parent_entity_id,omitempty"`
	ParentEntityName  string     `json:"parent_entity_name,omitempty"`
	Month             wireMonth  `json:"month"`
	GroupBy           *wireGroup `json:"group_by,omitempty"`

	accounts map[string]bool
	min, max provider.Month
}

type href struct {
	Href string `json:"href"`
}

type wirePage struct {
	CarbonEmissions []*wireRow `json:"carbon_emissions"`
	TotalEmission   float64    `json:"total_emission"`
	Offset          int        `json:"offset"`
	Limit           int        `json:"limit"`
	TotalCount      int        `json:"total_count"`
	First           *href      `json:"first"`
	Last            *href      `json:"last"`
	Previous        *href      `json:"previous,omitempty"`
	Next            *href      `json:"next,omitempty"`
}

func (s *Server) serveCarbon(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		apiError(w, r, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	if !s.authorize(w, r) {
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/csv") {
		apiError(w, r, http.StatusNotAcceptable, "text/csv is not supported by this fake.")
		return
	}
	q, status, msg := s.parseQuery(r)
	if q == nil {
		apiError(w, r, status, msg)
		return
	}

	s.mu.Lock()
	if s.pageMax > 0 {
		q.limit = min(q.limit, s.pageMax)
	}
	s.mu.Unlock()
	a := s.answer(q)
	rows := a.rows
	page := wirePage{Offset: q.offset, Limit: q.limit, TotalCount: len(rows), TotalEmission: a.total, CarbonEmissions: []*wireRow{}}
	if q.offset < len(rows) {
		page.CarbonEmissions = rows[q.offset:min(q.offset+q.limit, len(rows))]
	}
	link := func(offset int) *href {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		if r.TLS != nil {
			u.Scheme = "https"
		}
		v := r.URL.Query()
		v.Set("offset", strconv.Itoa(offset))
		v.Set("limit", strconv.Itoa(q.limit))
		u.RawQuery = v.Encode()
		return &href{Href: u.String()}
	}
	lastOffset := 0
	if len(rows) > 0 {
		lastOffset = (len(rows) - 1) / q.limit * q.limit
	}
	page.First, page.Last = link(0), link(lastOffset)
	if q.offset > 0 {
		page.Previous = link(max(q.offset-q.limit, 0))
	}
	if q.offset+q.limit < len(rows) {
		page.Next = link(q.offset + q.limit)
	}
	writeJSON(w, http.StatusOK, page)
}

// answer is the whole answer to a query, before paging.
type answer struct {
	rows  []*wireRow
	total float64 // total_emission
}

// answer groups the dataset as q asks, or returns the cached answer.
func (s *Server) answer(q *query) answer {
	key := fmt.Sprintf("%s|%s|%s|%s|%q|%q", q.from, q.to, q.groupBy, q.filterID,
		slices.Sorted(maps.Keys(q.services)), slices.Sorted(maps.Keys(q.locations)))
	s.mu.Lock()
	a, ok := s.answers[key]
	s.mu.Unlock()
	if ok {
		return a
	}
	// Concurrent first requests may each group; their answers are equal.
	a.rows = s.group(q)
	for _, row := range a.rows {
		a.total += row.CarbonEmission
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.answers) >= maxAnswers {
		clear(s.answers)
	}
	s.answers[key] = a
	return a
}

// group filters the dataset and aggregates it as group_by asks, in a
// stable order.
func (s *Server) group(q *query) []*wireRow {
	var keys []groupKey
	byKey := map[groupKey]*wireRow{}
	var lo, hi provider.Month
	first := true
	for _, r := range s.rows {
		if !q.selects(r) {
			continue
		}
		if first || r.Month < lo {
			lo = r.Month
		}
		if first || r.Month > hi {
			hi = r.Month
		}
		first = false
		k := s.keyOf(q.groupBy, r)
		row := byKey[k]
		if row == nil {
			row = &wireRow{accounts: map[string]bool{}, min: r.Month, max: r.Month}
			byKey[k] = row
			keys = append(keys, k)
		}
		row.add(q.groupBy, r, k)
	}
	slices.SortStableFunc(keys, func(a, b groupKey) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.account, b.account),
			cmp.Compare(a.service, b.service), cmp.Compare(a.location, b.location), cmp.Compare(a.rg, b.rg))
	})
	out := make([]*wireRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.finish(q, byKey[k], k, lo, hi))
	}
	return out
}

// groupKey is what rows are grouped by; the fields group_by does not name
// stay empty.
type groupKey struct {
	month                          provider.Month
	account, service, location, rg string
}

// selects reports whether the query's months and filters keep r.
func (q *query) selects(r Row) bool {
	return r.Month >= q.from && r.Month <= q.to &&
		(q.accounts == nil || q.accounts[r.AccountID]) &&
		(q.services == nil || q.services[strings.ToLower(r.Service)]) &&
		(q.locations == nil || q.locations[strings.ToLower(r.Location)])
}

func (s *Server) keyOf(groupBy string, r Row) groupKey {
	switch groupBy {
	case "none":
		return groupKey{r.Month, r.AccountID, r.Service, r.Location, r.ResourceGroupID}
	case "month":
		return groupKey{month: r.Month}
	case "service":
		return groupKey{service: r.Service}
	case "location":
		return groupKey{location: r.Location}
	case "resource_group":
		return groupKey{rg: r.ResourceGroupID}
	case "enterprise_account":
		return groupKey{account: r.AccountID}
	case "enterprise_group":
		return groupKey{account: s.ents[r.AccountID].ParentID}
	}
	return groupKey{}
}

// add sums r into the row of its group and sets the fields that group_by
// shows.
func (row *wireRow) add(groupBy string, r Row, k groupKey) {
	row.CarbonEmission += r.CarbonEmission
	row.EnergyConsumption += r.EnergyConsumption
	row.accounts[r.AccountID] = true
	row.min, row.max = min(row.min, r.Month), max(row.max, r.Month)
	switch groupBy {
	case "none":
		row.Month.Value = r.Month.String()
		row.Service, row.Location, row.ResourceGroupID = r.Service, r.Location, r.ResourceGroupID
	case "month":
		row.Month.Value = r.Month.String()
		row.GroupBy = &wireGroup{Type: "month", Value: r.Month.String()}
	case "service":
		row.Service = r.Service
		row.GroupBy = &wireGroup{Type: "service", Value: r.Service}
	case "location":
		row.Location = r.Location
		row.GroupBy = &wireGroup{Type: "location", Value: r.Location}
		pue, factor := locationFactors(r.Location)
		row.PUE, row.EmissionFactor = &pue, &factor
	case "resource_group":
		row.ResourceGroupID = r.ResourceGroupID
		row.GroupBy = &wireGroup{Type: "resource_group", Value: r.ResourceGroupID}
	case "enterprise_account":
		row.GroupBy = &wireGroup{Type: "enterprise_account", Value: r.AccountID}
	case "enterprise_group":
		row.GroupBy = &wireGroup{Type: "enterprise_group", Value: k.account}
	}
}

// finish sets the month range and the entity fields of a grouped row.
func (s *Server) finish(q *query, row *wireRow, k groupKey, lo, hi provider.Month) *wireRow {
	if q.groupBy != "none" && q.groupBy != "month" {
		row.Month.Min, row.Month.Max = row.min.String(), row.max.String()
	} else {
		row.Month.Min, row.Month.Max = lo.String(), hi.String()
	}
	if len(row.accounts) == 1 {
		for a := range row.accounts {
			row.AccountID = a
		}
	}
	switch {
	case q.groupBy == "enterprise_account":
		// The grouped entity is the account itself.
		s.setEntity(row, s.ents[k.account])
	case q.groupBy == "enterprise_group":
		s.setEntity(row, s.ents[k.account])
		row.AccountID = ""
	case q.filterID != "":
		// Other groupings describe the filter's entity, as in IBM's
		// examples; a single-account filter names the account only there.
		s.setEntity(row, s.ents[q.filterID])
		if q.filterType == TypeAccount {
			row.AccountID = ""
		}
	}
	return row
}

func (s *Server) setEntity(row *wireRow, e Entity) {
	row.EntityType, row.EntityID, row.EntityName = e.Type, e.ID, e.Name
	row.ParentEntityID, row.ParentEntityName = e.ParentID, e.ParentName
}

// locationFactors returns a plausible power usage effectiveness and
// emission factor for location-grouped rows.
func locationFactors(loc string) (pue, factor float64) {
	switch loc {
	case "Dallas":
		return 1.42, 0.38
	case "Washington DC":
		return 1.38, 0.32
	case "Frankfurt":
		return 1.35, 0.35
	case "London":
		return 1.3, 0.19
	case "Tokyo":
		return 1.45, 0.46
	case "Sydney":
		return 1.5, 0.62
	}
	return 1.4, 0.4
}

// EmptyPage answers a carbon_emissions request with a page that holds no
// row but links to the next, as a broken server might forever.
func EmptyPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	offset, _ := strconv.Atoi(v.Get("offset"))
	v.Set("offset", strconv.Itoa(offset+maxLimit))
	next := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: v.Encode()}
	writeJSON(w, http.StatusOK, wirePage{Offset: offset, Limit: maxLimit, CarbonEmissions: []*wireRow{}, Next: &href{Href: next.String()}})
}

// ErrorFault is the Carbon Calculator's error answer with status.
func ErrorFault(status int) Fault {
	body, _ := json.Marshal(errorBody(status, http.StatusText(status), CarbonPath))
	return Fault{Status: status, Body: string(body)}
}

// apiError answers in the Carbon Calculator's error shape. IBM sends
// status as a string.
func apiError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	writeJSON(w, status, errorBody(status, msg, r.URL.Path))
}

func errorBody(status int, msg, path string) map[string]string {
	return map[string]string{
		"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"status":    strconv.Itoa(status),
		"error":     http.StatusText(status),
		"message":   msg,
		"path":      path,
		"trace":     "",
	}
}

// iamError answers in IAM's error shape.
func iamError(w http.ResponseWriter, status int, code, msg string) {
	now := time.Now().UTC()
	writeJSON(w, status, map[string]any{
		"errorCode":    code,
		"errorMessage": msg,
		"context": map[string]string{
			"requestId":   fmt.Sprintf("fake-%d", now.UnixNano()),
			"requestType": "incoming.Identity_Token",
			"url":         "https://iam.cloud.ibm.com",
			"startTime":   now.Format(time.RFC1123),
			"endTime":     now.Format(time.RFC1123),
			"locale":      "en_US",
		},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
