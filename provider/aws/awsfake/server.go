package awsfake

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Paths of the Sustainability API's operations (restJson1).
const (
	CarbonPath           = "/v1/estimated-carbon-emissions"
	CarbonDimensionsPath = "/v1/estimated-carbon-emissions-dimension-values"
	WaterPath            = "/v1/estimated-water-allocation"
	WaterDimensionsPath  = "/v1/estimated-water-allocation-dimension-values"
)

// Operation names: the keys of Requests, Bodies and Inject.
const (
	OpCarbon                    = "GetEstimatedCarbonEmissions"
	OpCarbonDimensions          = "GetEstimatedCarbonEmissionsDimensionValues"
	OpWater                     = "GetEstimatedWaterAllocation"
	OpWaterDimensions           = "GetEstimatedWaterAllocationDimensionValues"
	OpListAccounts              = "ListAccounts"
	OpAssumeRole                = "AssumeRole"
	OpAssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"
)

// IAM actions that Deny takes.
const (
	ActionCarbon       = "sustainability:GetEstimatedCarbonEmissions"
	ActionWater        = "sustainability:GetEstimatedWaterAllocation"
	ActionListAccounts = "organizations:ListAccounts"
)

// Wire names of the API's enums.
const (
	dimAccount = "USAGE_ACCOUNT_ID"
	dimRegion  = "REGION"
	dimService = "SERVICE"

	typeTotalLBM = "TOTAL_LBM_CARBON_EMISSIONS"
	typeTotalMBM = "TOTAL_MBM_CARBON_EMISSIONS"
	typeScope1   = "TOTAL_SCOPE_1_CARBON_EMISSIONS"
	typeScope2L  = "TOTAL_SCOPE_2_LBM_CARBON_EMISSIONS"
	typeScope2M  = "TOTAL_SCOPE_2_MBM_CARBON_EMISSIONS"
	typeScope3L  = "TOTAL_SCOPE_3_LBM_CARBON_EMISSIONS"
	typeScope3M  = "TOTAL_SCOPE_3_MBM_CARBON_EMISSIONS"
	typeWater    = "TOTAL_WATER_WITHDRAWALS"

	unitCarbon = "MTCO2e"
	unitWater  = "m3"

	granularityMonthly = "MONTHLY"
	granularityYearly  = "YEARLY_CALENDAR"

	defaultMaxResults = 1000
	maxMaxResults     = 5000
	maxListAccounts   = 20

	organizationsTarget = "AWSOrganizationsV20161128."
	// DefaultRegion is the SigV4 signing region the fake expects of the
	// Sustainability API unless SetRegion says otherwise: the aws
	// partition's.
	DefaultRegion = "us-east-1"
)

// Fault replaces the real answer to the next Times requests of an
// operation.
type Fault = fakehttp.Fault

// Server is the fake AWS. It is safe for concurrent use.
type Server struct {
	mu        sync.Mutex
	ds        Dataset
	keys      map[string]Credentials // by access key id
	roles     map[string]string      // role ARN -> required external id
	webTokens map[string]string      // web identity token -> role ARN
	denied    map[string]string      // IAM action -> error code
	region    string
	pageLimit int
	bodies    map[string][][]byte

	requests fakehttp.Counter[string]
	faults   fakehttp.Faults[string]
}

// NewServer serves ds to clients that sign with one of keys (or with keys
// its STS issues).
func NewServer(ds Dataset, keys ...Credentials) *Server {
	s := &Server{
		ds:        ds,
		keys:      make(map[string]Credentials),
		roles:     make(map[string]string),
		webTokens: make(map[string]string),
		denied:    make(map[string]string),
		region:    DefaultRegion,
		bodies:    make(map[string][][]byte),
	}
	for _, k := range keys {
		s.keys[k.AccessKeyID] = k
	}
	return s
}

// SetDataset replaces the data served from now on, for restatements: a
// dataset with other model versions and figures.
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

// SetRegion sets the SigV4 signing region the fake expects (us-gov-west-1
// for GovCloud, cn-northwest-1 for China).
func (s *Server) SetRegion(region string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.region = region
}

// SetPageLimit makes every page hold at most n results whatever
// MaxResults asks, as a service may; 0 lifts the limit.
func (s *Server) SetPageLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageLimit = n
}

// AllowRole lets any known identity assume roleARN, presenting externalID
// when it is not "".
func (s *Server) AllowRole(roleARN, externalID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleARN] = externalID
}

// AllowWebIdentity lets the holder of token assume roleARN with
// AssumeRoleWithWebIdentity.
func (s *Server) AllowWebIdentity(token, roleARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webTokens[token] = roleARN
}

// Deny makes every identity's requests for action fail as AWS answers a
// missing permission. For organizations:ListAccounts, code may instead be
// AWSOrganizationsNotInUseException; "" means AccessDeniedException.
func (s *Server) Deny(action, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[action] = cmp.Or(code, "AccessDeniedException")
}

// Allow undoes Deny.
func (s *Server) Allow(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.denied, action)
}

// Inject queues f for operation op (OpCarbon, ...): the next f.Times
// requests of op get f instead of the real answer.
func (s *Server) Inject(op string, f Fault) {
	s.faults.Inject(op, f)
}

// ErrorFault is the answer AWS gives for error code with message: the
// status, the code in X-Amzn-ErrorType and the message in the body, as
// restJson1 services send them.
func ErrorFault(status int, code, message string) Fault {
	body, _ := json.Marshal(map[string]string{"message": message})
	return Fault{Status: status, Header: http.Header{"X-Amzn-Errortype": {code}}, Body: string(body)}
}

// Requests returns how many requests of op reached the fake, faults and
// rejected ones included.
func (s *Server) Requests(op string) int { return s.requests.Get(op) }

// maxBodies is how many request bodies Bodies keeps per operation.
const maxBodies = 100

// Bodies returns the bodies of op's latest requests (up to 100), oldest
// first.
func (s *Server) Bodies(op string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies[op])
}

// apiError is an error answer before its encoding by protocol.
type apiError struct {
	status        int
	code, message string
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		restError(w, &apiError{http.StatusBadRequest, "ValidationException", "Request body too large."})
		return
	}
	op, form := operation(r, body)
	s.requests.Inc(op)
	s.mu.Lock()
	// Bounded, so that a demo running for weeks does not grow.
	if len(s.bodies[op]) == maxBodies {
		s.bodies[op] = slices.Delete(s.bodies[op], 0, 1)
	}
	s.bodies[op] = append(s.bodies[op], body)
	s.mu.Unlock()
	if f, ok := s.faults.Next(op); ok {
		f.Write(w, r)
		return
	}
	switch op {
	case OpCarbon, OpCarbonDimensions, OpWater, OpWaterDimensions:
		s.serveSustainability(w, r, op, body)
	case OpListAccounts:
		s.serveListAccounts(w, r, body)
	case OpCostAndUsage:
		s.serveCostAndUsage(w, r, body)
	case OpAssumeRole, OpAssumeRoleWithWebIdentity:
		s.serveSTS(w, r, op, form, body)
	default:
		restError(w, &apiError{http.StatusNotFound, "UnknownOperationException", "No operation at " + r.Method + " " + r.URL.Path + "."})
	}
}

// operation names what r asks for: by path (restJson1), by X-Amz-Target
// (awsJson) or by the form's Action (awsQuery).
func operation(r *http.Request, body []byte) (string, url.Values) {
	if r.Method != http.MethodPost {
		return "other", nil
	}
	switch r.URL.Path {
	case CarbonPath:
		return OpCarbon, nil
	case CarbonDimensionsPath:
		return OpCarbonDimensions, nil
	case WaterPath:
		return OpWater, nil
	case WaterDimensionsPath:
		return OpWaterDimensions, nil
	case "/":
	default:
		return "other", nil
	}
	if t, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), organizationsTarget); ok {
		return t, nil
	}
	if t, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), CostExplorerTarget); ok {
		return t, nil
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err == nil && form.Get("Action") != "" {
			return form.Get("Action"), form
		}
	}
	return "other", nil
}

func (s *Server) serveSustainability(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	if e := s.verify(r, body, "sustainability"); e != nil {
		restError(w, e)
		return
	}
	s.mu.Lock()
	code, denied := s.denied["sustainability:"+op]
	ds := s.ds
	limit := s.pageLimit
	s.mu.Unlock()
	if denied {
		restError(w, accessDenied(code, op))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		restError(w, &apiError{http.StatusBadRequest, "ValidationException", "Content-Type must be application/json."})
		return
	}
	var (
		out any
		e   *apiError
	)
	switch op {
	case OpCarbon:
		out, e = carbon(&ds, body, limit)
	case OpWater:
		out, e = water(&ds, body, limit)
	case OpCarbonDimensions:
		out, e = dimensionValues(&ds, body, limit, false)
	case OpWaterDimensions:
		out, e = dimensionValues(&ds, body, limit, true)
	}
	if e != nil {
		restError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(out)
}

// accessDenied is AWS's answer to an identity that lacks the permission
// of operation op.
func accessDenied(code, op string) *apiError {
	return &apiError{http.StatusForbidden, code, "User: arn:aws:iam::" + DemoManagementAccount +
		":user/cloudcarbon is not authorized to perform: sustainability:" + op +
		" because no identity-based policy allows the sustainability:" + op + " action"}
}

// restError answers as restJson1 services do: the code in X-Amzn-ErrorType,
// the message in the body.
func restError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", e.code)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": e.message})
}

func validation(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...)}
}

// Wire shapes of the Sustainability API, as the Smithy model has them.
type wirePeriod struct {
	Start string `json:"Start"`
	End   string `json:"End"`
}

type wireRequest struct {
	TimePeriod               *wirePeriod `json:"TimePeriod"`
	GroupBy                  []string    `json:"GroupBy"`
	Dimensions               []string    `json:"Dimensions"`
	FilterBy                 *wireFilter `json:"FilterBy"`
	EmissionsTypes           []string    `json:"EmissionsTypes"`
	AllocationTypes          []string    `json:"AllocationTypes"`
	Granularity              string      `json:"Granularity"`
	GranularityConfiguration *struct {
		FiscalYearStartMonth int `json:"FiscalYearStartMonth"`
	} `json:"GranularityConfiguration"`
	MaxResults *int    `json:"MaxResults"`
	NextToken  *string `json:"NextToken"`
}

type wireFilter struct {
	Dimensions map[string][]string `json:"Dimensions"`
}

type wireValue struct {
	Unit  string  `json:"Unit"`
	Value float64 `json:"Value"`
}

type wireResult struct {
	DimensionsValues map[string]string    `json:"DimensionsValues"`
	EmissionsValues  map[string]wireValue `json:"EmissionsValues,omitempty"`
	AllocationValues map[string]wireValue `json:"AllocationValues,omitempty"`
	ModelVersion     string               `json:"ModelVersion"`
	TimePeriod       wirePeriod           `json:"TimePeriod"`
}

type wirePage[T any] struct {
	Results   []T    `json:"Results"`
	NextToken string `json:"NextToken,omitempty"`
}

type wireDimensionEntry struct {
	Dimension string `json:"Dimension"`
	Value     string `json:"Value"`
}

// query is a decoded and checked request.
type query struct {
	req        wireRequest
	start, end time.Time
	groupBy    []string
	offset     int
	size       int
	hash       string
}

// decode parses and checks a request as the service would: unknown fields,
// bad enums, a missing or inverted period and a bad token are
// ValidationExceptions.
func decode(body []byte, groupKey string, limit int) (*query, *apiError) {
	var q query
	if err := exactMembers(body, "TimePeriod", "GroupBy", "Dimensions", "FilterBy", "EmissionsTypes", "AllocationTypes",
		"Granularity", "GranularityConfiguration", "MaxResults", "NextToken"); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.req); err != nil {
		return nil, validation("Invalid request body: %v", err)
	}
	if q.req.TimePeriod == nil {
		return nil, validation("TimePeriod is required.")
	}
	var err1, err2 error
	q.start, err1 = time.Parse(time.RFC3339Nano, q.req.TimePeriod.Start)
	q.end, err2 = time.Parse(time.RFC3339Nano, q.req.TimePeriod.End)
	if err1 != nil || err2 != nil {
		return nil, validation("TimePeriod Start and End must be ISO-8601 date-times.")
	}
	if !q.start.Before(q.end) {
		return nil, validation("TimePeriod Start must be before End.")
	}
	q.groupBy = q.req.GroupBy
	if groupKey == "Dimensions" {
		q.groupBy = q.req.Dimensions
		if len(q.groupBy) == 0 {
			return nil, validation("Dimensions is required.")
		}
	}
	for _, d := range q.groupBy {
		if d != dimAccount && d != dimRegion && d != dimService {
			return nil, validation("Invalid dimension %q.", d)
		}
	}
	if q.req.FilterBy != nil {
		for d := range q.req.FilterBy.Dimensions {
			if d != dimAccount && d != dimRegion && d != dimService {
				return nil, validation("Invalid filter dimension %q.", d)
			}
		}
	}
	q.size = defaultMaxResults
	if q.req.MaxResults != nil {
		q.size = *q.req.MaxResults
		if q.size < 1 || q.size > maxMaxResults {
			return nil, validation("MaxResults must be between 1 and %d.", maxMaxResults)
		}
	}
	if limit > 0 {
		q.size = min(q.size, limit)
	}
	// The token is tied to the query, paging aside, as AWS's are.
	paging := q.req
	paging.MaxResults, paging.NextToken = nil, nil
	key, _ := json.Marshal(paging)
	sum := sha256.Sum256(key)
	q.hash = hex.EncodeToString(sum[:8])
	if q.req.NextToken != nil {
		off, ok := parseToken(*q.req.NextToken, q.hash)
		if !ok {
			return nil, validation("Invalid NextToken.")
		}
		q.offset = off
	}
	return &q, nil
}

// exactMembers refuses members the model does not name, spelled exactly:
// Go's JSON decoding matches names regardless of case, the service does
// not.
func exactMembers(body []byte, members ...string) *apiError {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return validation("Invalid request body: %v", err)
	}
	for k, v := range raw {
		if !slices.Contains(members, k) {
			return validation("Unknown member %q.", k)
		}
		if k == "TimePeriod" {
			if err := exactMembers(v, "Start", "End"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (q *query) in(t time.Time) bool { return !t.Before(q.start) && t.Before(q.end) }

func (q *query) keep(account, region, service string) bool {
	if q.req.FilterBy == nil {
		return true
	}
	for d, vs := range q.req.FilterBy.Dimensions {
		v := map[string]string{dimAccount: account, dimRegion: region, dimService: service}[d]
		if !slices.Contains(vs, v) {
			return false
		}
	}
	return true
}

func (q *query) dims(account, region, service string) map[string]string {
	m := make(map[string]string, len(q.groupBy))
	for _, d := range q.groupBy {
		m[d] = map[string]string{dimAccount: account, dimRegion: region, dimService: service}[d]
	}
	return m
}

func token(offset int, hash string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%s", offset, hash))
}

func parseToken(tok, hash string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	var off int
	var h string
	if n, err := fmt.Sscanf(strings.Replace(string(b), ":", " ", 1), "%d %s", &off, &h); n != 2 || err != nil || h != hash || off < 0 {
		return 0, false
	}
	return off, true
}

// page cuts the sorted results at the query's offset and size.
func page[T any](q *query, all []T) (wirePage[T], *apiError) {
	if q.offset > len(all) {
		return wirePage[T]{}, validation("Invalid NextToken.")
	}
	p := wirePage[T]{Results: all[q.offset:min(q.offset+q.size, len(all))]}
	if p.Results == nil {
		p.Results = []T{}
	}
	if q.offset+q.size < len(all) {
		p.NextToken = token(q.offset+q.size, q.hash)
	}
	return p, nil
}

func period(start, end time.Time) wirePeriod {
	return wirePeriod{Start: start.UTC().Format(time.RFC3339), End: end.UTC().Format(time.RFC3339)}
}

var carbonTypes = []string{typeTotalLBM, typeTotalMBM, typeScope1, typeScope2L, typeScope2M, typeScope3L, typeScope3M}

func carbon(ds *Dataset, body []byte, limit int) (any, *apiError) {
	q, e := decode(body, "GroupBy", limit)
	if e != nil {
		return nil, e
	}
	if g := cmp.Or(q.req.Granularity, granularityMonthly); g != granularityMonthly {
		return nil, validation("The fake serves Granularity MONTHLY only, not %q.", g)
	}
	if q.req.AllocationTypes != nil || q.req.Dimensions != nil {
		return nil, validation("AllocationTypes and Dimensions are not members of this operation.")
	}
	types := q.req.EmissionsTypes
	if len(types) == 0 {
		types = []string{typeTotalLBM, typeTotalMBM}
	}
	for _, t := range types {
		if !slices.Contains(carbonTypes, t) {
			return nil, validation("Invalid EmissionsType %q.", t)
		}
	}
	type key struct {
		month                    provider.Month
		account, region, service string
	}
	sums := make(map[key]*Row)
	for _, r := range ds.Rows {
		if !q.in(r.Month.Start()) || !q.keep(r.Account, r.Region, r.Service) {
			continue
		}
		d := q.dims(r.Account, r.Region, r.Service)
		k := key{r.Month, d[dimAccount], d[dimRegion], d[dimService]}
		sum, ok := sums[k]
		if !ok {
			sum = &Row{}
			sums[k] = sum
		}
		sum.Scope1 += r.Scope1
		sum.Scope2LBM += r.Scope2LBM
		sum.Scope2MBM += r.Scope2MBM
		sum.Scope3LBM += r.Scope3LBM
		sum.Scope3MBM += r.Scope3MBM
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.account, b.account),
			cmp.Compare(a.region, b.region), cmp.Compare(a.service, b.service))
	})
	all := make([]wireResult, 0, len(keys))
	for _, k := range keys {
		r := sums[k]
		values := map[string]float64{
			typeTotalLBM: r.Scope1 + r.Scope2LBM + r.Scope3LBM,
			typeTotalMBM: r.Scope1 + r.Scope2MBM + r.Scope3MBM,
			typeScope1:   r.Scope1,
			typeScope2L:  r.Scope2LBM,
			typeScope2M:  r.Scope2MBM,
			typeScope3L:  r.Scope3LBM,
			typeScope3M:  r.Scope3MBM,
		}
		ev := make(map[string]wireValue, len(types))
		for _, t := range types {
			ev[t] = wireValue{Unit: unitCarbon, Value: values[t]}
		}
		all = append(all, wireResult{
			DimensionsValues: q.dims(k.account, k.region, k.service),
			EmissionsValues:  ev,
			ModelVersion:     ds.modelVersion(k.month),
			TimePeriod:       period(k.month.Start(), k.month.End()),
		})
	}
	return page(q, all)
}

func water(ds *Dataset, body []byte, limit int) (any, *apiError) {
	q, e := decode(body, "GroupBy", limit)
	if e != nil {
		return nil, e
	}
	if g := cmp.Or(q.req.Granularity, granularityYearly); g != granularityYearly {
		return nil, validation("Only YEARLY_CALENDAR time granularity is supported for water allocation, not %q.", g)
	}
	if q.req.EmissionsTypes != nil || q.req.Dimensions != nil || q.req.GranularityConfiguration != nil {
		return nil, validation("EmissionsTypes, Dimensions and GranularityConfiguration are not members of this operation.")
	}
	for _, t := range q.req.AllocationTypes {
		if t != typeWater {
			return nil, validation("Invalid AllocationType %q.", t)
		}
	}
	type key struct {
		year                     int
		account, region, service string
	}
	sums := make(map[key]float64)
	for _, w := range ds.Water {
		// A year is included when its first instant lies in the period.
		if !q.in(time.Date(w.Year, time.January, 1, 0, 0, 0, 0, time.UTC)) || !q.keep(w.Account, w.Region, w.Service) {
			continue
		}
		d := q.dims(w.Account, w.Region, w.Service)
		sums[key{w.Year, d[dimAccount], d[dimRegion], d[dimService]}] += w.Withdrawals
	}
	keys := slices.SortedFunc(maps.Keys(sums), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.year, b.year), cmp.Compare(a.account, b.account),
			cmp.Compare(a.region, b.region), cmp.Compare(a.service, b.service))
	})
	version := cmp.Or(ds.WaterModelVersion, DefaultWaterModelVersion)
	all := make([]wireResult, 0, len(keys))
	for _, k := range keys {
		all = append(all, wireResult{
			DimensionsValues: q.dims(k.account, k.region, k.service),
			AllocationValues: map[string]wireValue{typeWater: {Unit: unitWater, Value: sums[k]}},
			ModelVersion:     version,
			TimePeriod: period(time.Date(k.year, time.January, 1, 0, 0, 0, 0, time.UTC),
				time.Date(k.year+1, time.January, 1, 0, 0, 0, 0, time.UTC)),
		})
	}
	return page(q, all)
}

func dimensionValues(ds *Dataset, body []byte, limit int, isWater bool) (any, *apiError) {
	q, e := decode(body, "Dimensions", limit)
	if e != nil {
		return nil, e
	}
	if q.req.GroupBy != nil || q.req.EmissionsTypes != nil || q.req.AllocationTypes != nil || q.req.Granularity != "" || q.req.FilterBy != nil {
		return nil, validation("Only TimePeriod, Dimensions, MaxResults and NextToken are members of this operation.")
	}
	seen := make(map[wireDimensionEntry]bool)
	add := func(account, region, service string) {
		for d, v := range q.dims(account, region, service) {
			seen[wireDimensionEntry{d, v}] = true
		}
	}
	if isWater {
		for _, w := range ds.Water {
			if q.in(time.Date(w.Year, time.January, 1, 0, 0, 0, 0, time.UTC)) {
				add(w.Account, w.Region, w.Service)
			}
		}
	} else {
		for _, r := range ds.Rows {
			if q.in(r.Month.Start()) {
				add(r.Account, r.Region, r.Service)
			}
		}
	}
	all := slices.SortedFunc(maps.Keys(seen), func(a, b wireDimensionEntry) int {
		return cmp.Or(cmp.Compare(slices.Index(q.groupBy, a.Dimension), slices.Index(q.groupBy, b.Dimension)), cmp.Compare(a.Value, b.Value))
	})
	return page(q, all)
}

// serveListAccounts is Organizations' ListAccounts (awsJson1.1).
func (s *Server) serveListAccounts(w http.ResponseWriter, r *http.Request, body []byte) {
	if e := s.verify(r, body, "organizations"); e != nil {
		jsonError(w, e)
		return
	}
	s.mu.Lock()
	code, denied := s.denied[ActionListAccounts]
	ds := s.ds
	s.mu.Unlock()
	switch {
	case denied && code == "AWSOrganizationsNotInUseException", !denied && ds.OrganizationID == "":
		jsonError(w, &apiError{http.StatusBadRequest, "AWSOrganizationsNotInUseException", "Your account is not a member of an organization."})
		return
	case denied:
		jsonError(w, &apiError{http.StatusBadRequest, code, "You don't have permissions to access this resource."})
		return
	}
	var in struct {
		MaxResults *int    `json:"MaxResults"`
		NextToken  *string `json:"NextToken"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		jsonError(w, &apiError{http.StatusBadRequest, "InvalidInputException", "Invalid request body."})
		return
	}
	size := maxListAccounts
	if in.MaxResults != nil {
		if size = *in.MaxResults; size < 1 || size > maxListAccounts {
			jsonError(w, &apiError{http.StatusBadRequest, "InvalidInputException", "MaxResults must be between 1 and 20."})
			return
		}
	}
	accounts := slices.SortedFunc(slices.Values(ds.Accounts), func(a, b Account) int { return cmp.Compare(a.ID, b.ID) })
	off := 0
	if in.NextToken != nil {
		var ok bool
		if off, ok = parseToken(*in.NextToken, "accounts"); !ok || off > len(accounts) {
			jsonError(w, &apiError{http.StatusBadRequest, "InvalidInputException", "The NextToken is not valid."})
			return
		}
	}
	type wireAccount struct {
		Arn             string  `json:"Arn"`
		Email           string  `json:"Email"`
		ID              string  `json:"Id"`
		JoinedMethod    string  `json:"JoinedMethod"`
		JoinedTimestamp float64 `json:"JoinedTimestamp"`
		Name            string  `json:"Name"`
		State           string  `json:"State"`
		Status          string  `json:"Status"`
	}
	out := struct {
		Accounts  []wireAccount `json:"Accounts"`
		NextToken string        `json:"NextToken,omitempty"`
	}{Accounts: []wireAccount{}}
	for _, a := range accounts[off:min(off+size, len(accounts))] {
		method := "CREATED"
		if a.ID == ds.ManagementAccount {
			method = "INVITED"
		}
		out.Accounts = append(out.Accounts, wireAccount{
			Arn:   "arn:aws:organizations::" + ds.ManagementAccount + ":account/" + ds.OrganizationID + "/" + a.ID,
			Email: a.Email, ID: a.ID, JoinedMethod: method, JoinedTimestamp: 1.6e9, Name: a.Name,
			State: "ACTIVE", Status: "ACTIVE",
		})
	}
	if off+size < len(accounts) {
		out.NextToken = token(off+size, "accounts")
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(out)
}

// jsonError answers as awsJson services do: the code in the body's __type.
func jsonError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "Message": e.message})
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
