package ocifake

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// The Usage API's carbon operation, as the SDK calls it.
const (
	// CarbonPath is RequestUsageCarbonEmissions's path: the API version
	// the SDK's client puts before every operation, then the operation's.
	CarbonPath = "/20200107/usageCarbonEmissions"
	// OpCarbon names the operation for Requests, Bodies and Inject.
	OpCarbon = "RequestUsageCarbonEmissions"
)

// Paging: the fake's page size when the request sets no limit, and the
// largest limit it accepts.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// groupable are the groupBy values the fake implements, each with the
// item field it fills.
var groupable = []string{"service", "region", "compartmentPath", "compartmentName", "tenantId", "tenantName"}

// Fault replaces the real answer to the next Times requests.
type Fault = fakehttp.Fault

// ErrorFault is the answer OCI gives for an error: the status, a JSON body
// with the code and the message, and an opc-request-id.
func ErrorFault(status int, code, message string) Fault {
	body, _ := json.Marshal(map[string]string{"code": code, "message": message})
	return Fault{Status: status, Body: string(body), Header: http.Header{"Opc-Request-Id": {newRequestID()}}}
}

// Server is the fake Usage API. It is safe for concurrent use.
type Server struct {
	mu        sync.Mutex
	ds        Dataset
	keys      map[string]*rsa.PublicKey
	denied    bool
	pageLimit int
	now       func() time.Time
	bodies    [][]byte
	signers   []string
	costs     [][]byte

	requests fakehttp.Counter[string]
	faults   fakehttp.Faults[string]
}

// NewServer serves ds to requests signed by one of keys. Without keys,
// any well-formed signature is accepted: the fake then checks the
// signature's shape, the headers it covers, the body hash and the date,
// but not the RSA signature.
func NewServer(ds Dataset, keys ...Key) *Server {
	s := &Server{ds: ds, keys: make(map[string]*rsa.PublicKey), now: time.Now}
	for _, k := range keys {
		s.keys[k.ID] = k.PublicKey
	}
	return s
}

// SetDataset replaces the data served from now on.
func (s *Server) SetDataset(ds Dataset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = ds
}

// Dataset returns the data served.
func (s *Server) Dataset() Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ds
}

// SetPageLimit makes every page hold at most n items whatever the
// request's limit, as a service may; 0 lifts the bound.
func (s *Server) SetPageLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageLimit = n
}

// SetClock sets the clock the request dates are checked against.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Deny makes every request, carbon and cost, fail as OCI answers a
// principal that no policy lets read usage reports: 404
// NotAuthorizedOrNotFound.
func (s *Server) Deny() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = true
}

// Inject queues f: the next f.Times requests of op (OpCarbon, OpCost) get f
// instead of the real answer, after the request was counted and before
// its signature is checked.
func (s *Server) Inject(op string, f Fault) { s.faults.Inject(op, f) }

// Requests returns how many requests of op reached the fake, faults and
// refused ones included.
func (s *Server) Requests(op string) int { return s.requests.Get(op) }

// maxBodies is how many request bodies Bodies keeps.
const maxBodies = 100

// Bodies returns the bodies of the latest carbon requests (up to 100),
// oldest first.
func (s *Server) Bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// CostBodies returns the bodies of the latest cost requests (up to 100),
// oldest first.
func (s *Server) CostBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.costs)
}

// Signers returns the key ids of the latest accepted requests (up to
// 100), oldest first.
func (s *Server) Signers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.signers)
}

// apiError is an error answer: OCI's JSON error body.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Opc-Request-Id", newRequestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": e.code, "message": e.message})
}

func invalid(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameter", fmt.Sprintf(format, args...)}
}

// notFound is OCI's answer to a principal that may not read, or to a
// resource that does not exist: the two are deliberately alike.
var notFound = &apiError{http.StatusNotFound, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found."}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := "other"
	switch r.URL.Path {
	case CarbonPath:
		op = OpCarbon
	case CostPath:
		op = OpCost
	}
	s.requests.Inc(op)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		invalid("The request body is too large.").write(w)
		return
	}
	if f, ok := s.faults.Next(op); ok {
		f.Write(w, r)
		return
	}
	s.mu.Lock()
	keys, now, denied, ds, limit := s.keys, s.now(), s.denied, s.ds, s.pageLimit
	s.mu.Unlock()

	keyID, err := checkSignature(r, body, keys, now)
	if err != nil {
		(&apiError{http.StatusUnauthorized, "NotAuthenticated", "The required information to complete authentication was not provided or was incorrect: " + err.Error()}).write(w)
		return
	}
	if op == "other" || r.Method != http.MethodPost {
		(&apiError{http.StatusNotFound, "NotFound", "No operation at " + r.Method + " " + r.URL.Path + "."}).write(w)
		return
	}
	s.mu.Lock()
	if op == OpCost {
		if len(s.costs) == maxBodies {
			s.costs = slices.Delete(s.costs, 0, 1)
		}
		s.costs = append(s.costs, body)
	} else {
		if len(s.bodies) == maxBodies {
			s.bodies = slices.Delete(s.bodies, 0, 1)
			s.signers = slices.Delete(s.signers, 0, 1)
		}
		s.bodies = append(s.bodies, body)
		s.signers = append(s.signers, keyID)
	}
	s.mu.Unlock()
	if denied {
		notFound.write(w)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		invalid("Content-Type must be application/json.").write(w)
		return
	}
	if op == OpCost {
		serveCost(w, r, body, &ds, limit)
		return
	}
	q, e := decode(body, r.URL.Query(), limit)
	if e != nil {
		e.write(w)
		return
	}
	if q.req.TenantID != ds.TenancyID {
		notFound.write(w)
		return
	}
	items := aggregate(&ds, q)
	if q.offset > len(items) {
		invalid("The page token is invalid for this request.").write(w)
		return
	}
	end := min(q.offset+q.size, len(items))
	var page wireAggregation
	page.GroupBy = q.req.GroupBy
	page.Items = items[q.offset:end]
	if page.Items == nil {
		page.Items = []wireItem{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Opc-Request-Id", newRequestID())
	if end < len(items) {
		w.Header().Set("Opc-Next-Page", pageToken(q.hash, end))
	}
	_ = json.NewEncoder(w).Encode(page)
}

// Wire shapes of the Usage API (oci-go-sdk usageapi:
// RequestUsageCarbonEmissionsDetails, UsageCarbonEmissionAggregation,
// UsageCarbonEmissionSummary).
type wireRequest struct {
	TenantID                  string          `json:"tenantId"`
	TimeUsageStarted          string          `json:"timeUsageStarted"`
	TimeUsageEnded            string          `json:"timeUsageEnded"`
	EmissionCalculationMethod string          `json:"emissionCalculationMethod"`
	EmissionType              string          `json:"emissionType"`
	Granularity               string          `json:"granularity"`
	IsAggregateByTime         *bool           `json:"isAggregateByTime"`
	GroupBy                   []string        `json:"groupBy"`
	GroupByTag                json.RawMessage `json:"groupByTag"`
	CompartmentDepth          *int            `json:"compartmentDepth"`
	Filter                    json.RawMessage `json:"filter"`
}

type wireItem struct {
	TimeUsageStarted          string  `json:"timeUsageStarted"`
	TimeUsageEnded            string  `json:"timeUsageEnded"`
	ComputedCarbonEmission    float64 `json:"computedCarbonEmission"`
	EmissionCalculationMethod string  `json:"emissionCalculationMethod"`
	EmissionType              string  `json:"emissionType"`
	TenantID                  *string `json:"tenantId"`
	TenantName                *string `json:"tenantName"`
	CompartmentPath           *string `json:"compartmentPath"`
	CompartmentName           *string `json:"compartmentName"`
	Service                   *string `json:"service"`
	Region                    *string `json:"region"`
}

type wireAggregation struct {
	GroupBy []string   `json:"groupBy"`
	Items   []wireItem `json:"items"`
}

// requestMembers are wireRequest's member names.
var requestMembers = []string{"tenantId", "timeUsageStarted", "timeUsageEnded", "emissionCalculationMethod", "emissionType",
	"granularity", "isAggregateByTime", "groupBy", "groupByTag", "compartmentDepth", "filter"}

// query is a decoded and checked request.
type query struct {
	req        wireRequest
	start, end provider.Month // end exclusive
	depth      int
	paging
}

// paging is where a request's page starts, how long it is, and the
// query its page token must belong to.
type paging struct {
	offset int
	size   int
	hash   string
}

// decode parses and checks a request as the fake reads the API: unknown
// fields, bad enums, dates that are not the midnight UTC starting a month,
// an empty range, spend-based location-based figures and a foreign page
// token are InvalidParameter.
func decode(body []byte, params map[string][]string, pageLimit int) (*query, *apiError) {
	var q query
	// encoding/json matches member names regardless of case; the API
	// does not, so the names are checked exactly first.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, invalid("Invalid request body: %v.", err)
	}
	for name := range members {
		if !slices.Contains(requestMembers, name) {
			return nil, invalid("Unknown member %q in the request body.", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.req); err != nil {
		return nil, invalid("Invalid request body: %v.", err)
	}
	var err1, err2 error
	var start, end time.Time
	start, err1 = time.Parse(time.RFC3339Nano, q.req.TimeUsageStarted)
	end, err2 = time.Parse(time.RFC3339Nano, q.req.TimeUsageEnded)
	switch {
	case q.req.TenantID == "":
		return nil, invalid("tenantId is required.")
	case err1 != nil || err2 != nil:
		return nil, invalid("timeUsageStarted and timeUsageEnded must be RFC 3339 date-times.")
	case !monthStart(start) || !monthStart(end):
		return nil, invalid("timeUsageStarted and timeUsageEnded must be midnight UTC on the first day of a month for MONTHLY granularity.")
	case !start.Before(end):
		return nil, invalid("timeUsageEnded must be after timeUsageStarted.")
	case q.req.Granularity != "MONTHLY":
		return nil, invalid("granularity %q is not supported; the fake serves MONTHLY.", q.req.Granularity)
	}
	q.start, q.end = provider.MonthOf(start), provider.MonthOf(end)
	switch q.req.EmissionCalculationMethod {
	case PowerBased, SpendBased:
	default:
		return nil, invalid("emissionCalculationMethod must be POWER_BASED or SPEND_BASED.")
	}
	switch q.req.EmissionType {
	case MarketBased:
	case LocationBased:
		if q.req.EmissionCalculationMethod == SpendBased {
			return nil, invalid("Spend-based calculations support only MARKET_BASED emissions.")
		}
	default:
		return nil, invalid("emissionType must be LOCATION_BASED or MARKET_BASED.")
	}
	for _, g := range q.req.GroupBy {
		if !slices.Contains(groupable, g) {
			return nil, invalid("groupBy %q is not supported; the fake groups by %s.", g, strings.Join(groupable, ", "))
		}
	}
	if len(q.req.GroupByTag) > 0 && string(q.req.GroupByTag) != "null" || len(q.req.Filter) > 0 && string(q.req.Filter) != "null" {
		return nil, invalid("groupByTag and filter are not supported by the fake.")
	}
	q.depth = 1 << 10
	if q.req.CompartmentDepth != nil {
		if *q.req.CompartmentDepth < 1 || *q.req.CompartmentDepth > 7 {
			return nil, invalid("compartmentDepth must be between 1 and 7.")
		}
		q.depth = *q.req.CompartmentDepth
	}

	var err *apiError
	if q.paging, err = decodePaging(params, body, pageLimit); err != nil {
		return nil, err
	}
	return &q, nil
}

// decodePaging reads a request's limit and page token. A page token
// belongs to its query: the hash of the request body, which the page
// itself is not part of.
func decodePaging(params map[string][]string, body []byte, pageLimit int) (paging, *apiError) {
	pg := paging{size: DefaultPageSize}
	if v := first(params["limit"]); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageSize {
			return pg, invalid("limit must be between 1 and %d.", MaxPageSize)
		}
		pg.size = n
	}
	if pageLimit > 0 {
		pg.size = min(pg.size, pageLimit)
	}
	sum := sha256.Sum256(body)
	pg.hash = hex.EncodeToString(sum[:8])
	if tok := first(params["page"]); tok != "" {
		hash, off, ok := parseToken(tok)
		if !ok || hash != pg.hash {
			return pg, invalid("The page token is invalid for this request.")
		}
		pg.offset = off
	}
	return pg, nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func monthStart(t time.Time) bool {
	return t.Equal(provider.MonthOf(t).Start())
}

// aggregate sums the dataset's rows of the query's months, method and
// emission type by its groupBy dimensions (and by month, unless
// isAggregateByTime), in a stable order.
func aggregate(ds *Dataset, q *query) []wireItem {
	byTime := q.req.IsAggregateByTime != nil && *q.req.IsAggregateByTime
	type key struct {
		month provider.Month
		dims  string
	}
	sums := make(map[key]float64)
	items := make(map[key]wireItem)
	for _, r := range ds.Rows {
		if r.Month < q.start || r.Month >= q.end {
			continue
		}
		v, ok := r.value(q.req.EmissionCalculationMethod, q.req.EmissionType)
		if !ok {
			continue
		}
		path := truncatePath(r.CompartmentPath, q.depth)
		name := path[strings.LastIndex(path, "/")+1:]
		it := wireItem{EmissionCalculationMethod: q.req.EmissionCalculationMethod, EmissionType: q.req.EmissionType}
		var dims []string
		for _, g := range q.req.GroupBy {
			var v string
			switch g {
			case "service":
				v, it.Service = r.Service, &r.Service
			case "region":
				v, it.Region = r.Region, &r.Region
			case "compartmentPath":
				v, it.CompartmentPath = path, &path
			case "compartmentName":
				v, it.CompartmentName = name, &name
			case "tenantId":
				v, it.TenantID = ds.TenancyID, &ds.TenancyID
			case "tenantName":
				v, it.TenantName = ds.TenancyName, &ds.TenancyName
			}
			dims = append(dims, v)
		}
		k := key{month: r.Month, dims: strings.Join(dims, "\x00")}
		if byTime {
			k.month = q.start
			it.TimeUsageStarted, it.TimeUsageEnded = formatTime(q.start.Start()), formatTime(q.end.Start())
		} else {
			it.TimeUsageStarted, it.TimeUsageEnded = formatTime(r.Month.Start()), formatTime(r.Month.End())
		}
		sums[k] += v
		items[k] = it
	}
	keys := slices.SortedFunc(maps.Keys(items), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.dims, b.dims))
	})
	out := make([]wireItem, 0, len(keys))
	for _, k := range keys {
		it := items[k]
		it.ComputedCarbonEmission = round6(sums[k])
		out = append(out, it)
	}
	return out
}

// formatTime writes a time as the API does, to the millisecond.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func pageToken(hash string, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(hash + ":" + strconv.Itoa(offset)))
}

func parseToken(tok string) (hash string, offset int, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", 0, false
	}
	hash, off, ok := strings.Cut(string(b), ":")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return "", 0, false
	}
	return hash, n, true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
