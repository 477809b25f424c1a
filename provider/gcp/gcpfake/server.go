package gcpfake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// BasePath is the REST prefix of the fake, as of BigQuery: point the
// client's endpoint at server URL + BasePath.
const BasePath = "/bigquery/v2/"

// Query kinds the fake recognises: the carbon query, the billing query
// (Fetch's and the cost feed's) and the tag feed's query of the billing
// export.
const (
	KindCarbon  = "carbon"
	KindBilling = "billing"
	KindTags    = "tags"
)

// Endpoint names, as the gcp provider's request observer reports them.
const (
	EndpointQuery        = "jobs.query"
	EndpointQueryResults = "jobs.getQueryResults"
	EndpointJobsGet      = "jobs.get"
	EndpointJobsInsert   = "jobs.insert"
)

const defaultPageSize = 500

// Bytes the fake pretends each scanned row of the needed columns holds,
// and BigQuery's minimum bill per referenced table.
const (
	carbonRowBytes  = 160
	billingRowBytes = 140
	// labelsBytes are the bytes of one row's labels column, and of its
	// project.labels, which the tag query reads besides the billing
	// query's columns.
	labelsBytes    = 60
	minBytesBilled = 10 << 20
)

// Fault replaces the real answer to the next Times matching requests.
type Fault struct {
	// Endpoint is one of the Endpoint constants; empty matches all.
	Endpoint string
	// Kind limits the fault to one query kind; empty matches all.
	Kind string
	// Status defaults to 500.
	Status int
	// Header is added to the answer; Content-Type defaults to
	// application/json.
	Header http.Header
	// Body is sent verbatim, so it can be truncated or invalid JSON. Use
	// ErrorBody for BigQuery's error format.
	Body string
	// Times counts the requests answered so; 0 means 1.
	Times int
}

// Truncated is a 200 answer to endpoint (and query kind, empty for all)
// whose body stops short: its Content-Length promises more bytes than
// body holds, so the server closes the connection after body and the
// client's read ends in "unexpected EOF", as when a proxy or a load
// balancer drops a connection mid-answer. It differs from a complete
// body of invalid JSON, which reads in full.
func Truncated(endpoint, kind, body string) Fault {
	return Fault{Endpoint: endpoint, Kind: kind, Status: http.StatusOK, Body: body, Header: http.Header{
		"Content-Length": {strconv.Itoa(len(body) + 512)},
	}}
}

// faultKey is what a queued Fault matches; empty fields match all.
type faultKey struct{ endpoint, kind string }

// queue queues f on fs, answering with contentType unless f.Header names
// a Content-Type, or always if force is set.
func (f Fault) queue(fs *fakehttp.Faults[faultKey], contentType string, force bool) {
	h := f.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if force || h.Get("Content-Type") == "" {
		h.Set("Content-Type", contentType)
	}
	fs.Inject(faultKey{f.Endpoint, f.Kind}, fakehttp.Fault{Status: f.Status, Header: h, Body: f.Body, Times: f.Times})
}

func statusName(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

// QueryInfo describes one query the fake accepted.
type QueryInfo struct {
	Kind           string
	JobID          string
	Location       string
	MaxBytesBilled int64
	// Months are the carbon query's months or the billing query's
	// invoice months.
	Months []provider.Month
	// BillingAccount is the carbon query's billing account filter.
	BillingAccount string
	// PartitionStart and PartitionEnd are the billing query's window.
	PartitionStart, PartitionEnd time.Time
	Labels                       map[string]string
	// TagKeys are the tag query's allocation keys, and TagColumns the
	// label columns its SQL reads ("labels", "project.labels").
	TagKeys, TagColumns []string
}

// Server is the fake BigQuery REST API. It is safe for concurrent use.
type Server struct {
	ds Dataset

	mu         sync.Mutex
	pageSize   int
	incomplete int
	seq        int
	jobs       map[string]*job
	queries    []QueryInfo
	requests   fakehttp.Counter[string]
	faults     fakehttp.Faults[faultKey]
	account    *ServiceAccount
}

type field struct{ name, typ string }

type job struct {
	info          QueryInfo
	project       string
	fields        []field
	rows          [][]any // nil cells are NULL
	bytes, billed int64
	pollsLeft     int
	created       time.Time
}

// NewServer serves ds.
func NewServer(ds Dataset) *Server {
	return &Server{
		ds:       ds,
		pageSize: defaultPageSize,
		jobs:     make(map[string]*job),
	}
}

// SetDataset replaces the dataset for the queries that follow, as a
// restatement or a new month's export does.
func (s *Server) SetDataset(ds Dataset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ds = ds
}

// SetPageSize sets how many rows each answer carries at most, whatever
// the client asks for, as BigQuery bounds its pages; n <= 0 restores the
// default of 500.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
	if n <= 0 {
		s.pageSize = defaultPageSize
	}
}

// Restate makes the fake serve every month under the next carbon model
// version, as the export does once Google re-exports its months under a
// new model.
func (s *Server) Restate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := s.ds
	ds.Carbon = slices.Clone(ds.Carbon)
	for i := range ds.Carbon {
		ds.Carbon[i].ModelVersion++
	}
	s.ds = ds
}

// SetIncompletePolls makes every new job report jobComplete:false to
// jobs.query and to the first n-1 polls of jobs.getQueryResults, as a
// long-running BigQuery job does.
func (s *Server) SetIncompletePolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incomplete = max(n, 0)
}

// Inject queues f: the next f.Times requests it matches get f instead of
// the real answer. Faults are matched in the order they were queued.
func (s *Server) Inject(f Fault) {
	f.queue(&s.faults, "application/json; charset=UTF-8", false)
}

// Requests returns how many requests reached an endpoint (an Endpoint
// constant), faults included.
func (s *Server) Requests(endpoint string) int {
	return s.requests.Get(endpoint)
}

// Queries returns how many queries of a kind the fake accepted (answered
// with a job, not with a fault or an error).
func (s *Server) Queries(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queries {
		if q.Kind == kind {
			n++
		}
	}
	return n
}

// QueryLog returns the queries accepted so far, oldest first.
func (s *Server) QueryLog() []QueryInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

var (
	queriesRoute = regexp.MustCompile(`/projects/([^/]+)/queries$`)
	resultsRoute = regexp.MustCompile(`/projects/([^/]+)/queries/([^/]+)$`)
	jobsRoute    = regexp.MustCompile(`/projects/([^/]+)/jobs$`)
	jobRoute     = regexp.MustCompile(`/projects/([^/]+)/jobs/([^/]+)$`)
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if r.Method == http.MethodPost && path == TokenPath {
		s.serveToken(w, r)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	var m []string
	switch {
	case r.Method == http.MethodPost && queriesRoute.MatchString(path):
		s.serveQuery(w, r, queriesRoute.FindStringSubmatch(path)[1])
	case r.Method == http.MethodGet && resultsRoute.MatchString(path):
		m = resultsRoute.FindStringSubmatch(path)
		s.serveResults(w, r, m[1], m[2])
	case r.Method == http.MethodGet && jobRoute.MatchString(path):
		m = jobRoute.FindStringSubmatch(path)
		s.serveJob(w, r, m[1], m[2])
	case r.Method == http.MethodPost && jobsRoute.MatchString(path):
		s.requests.Inc(EndpointJobsInsert)
		if !s.fault(w, r, EndpointJobsInsert, "") {
			writeError(w, http.StatusBadRequest, "invalid", "gcpfake: jobs.insert is not supported; the exporter's queries run through jobs.query")
		}
	default:
		writeError(w, http.StatusNotFound, "notFound", "Not found: URL "+path)
	}
}

// fault answers with the first queued fault matching the request, if any.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, endpoint, kind string) bool {
	f, ok := s.faults.NextFunc(func(k faultKey) bool {
		return (k.endpoint == "" || k.endpoint == endpoint) && (k.kind == "" || k.kind == kind)
	})
	if ok {
		f.Write(w, r)
	}
	return ok
}

// Wire format of a jobs.query request: the fields the fake reads.
type queryRequest struct {
	Query              string            `json:"query"`
	UseLegacySQL       *bool             `json:"useLegacySql"`
	Location           string            `json:"location"`
	MaximumBytesBilled int64             `json:"maximumBytesBilled,string"`
	RequestID          string            `json:"requestId"`
	Labels             map[string]string `json:"labels"`
	QueryParameters    []queryParameter  `json:"queryParameters"`
}

type queryParameter struct {
	Name           string     `json:"name"`
	ParameterType  paramType  `json:"parameterType"`
	ParameterValue paramValue `json:"parameterValue"`
}

type paramType struct {
	Type      string     `json:"type"`
	ArrayType *paramType `json:"arrayType"`
}

type paramValue struct {
	Value       *string      `json:"value"`
	ArrayValues []paramValue `json:"arrayValues"`
}

var tableInSQL = regexp.MustCompile("(?i)\\bFROM\\s+`([^`]+)`")

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, project string) {
	s.requests.Inc(EndpointQuery)
	var req queryRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid JSON payload received. "+err.Error())
		return
	}
	kind := kindOfQuery(req.Query)
	if s.fault(w, r, EndpointQuery, kind) {
		return
	}
	s.mu.Lock()
	ds := s.ds
	s.mu.Unlock()
	if kind == "" {
		writeError(w, http.StatusBadRequest, "invalidQuery", "gcpfake: not one of the exporter's queries")
		return
	}
	if req.UseLegacySQL == nil || *req.UseLegacySQL {
		writeError(w, http.StatusBadRequest, "invalidQuery", "gcpfake: the exporter's queries are GoogleSQL; useLegacySql must be false")
		return
	}
	want := ds.CarbonTable
	if kind != KindCarbon {
		want = ds.BillingTable
	}
	tm := tableInSQL.FindStringSubmatch(req.Query)
	if tm == nil || want == "" || tm[1] != want {
		name := ""
		if tm != nil {
			name = tm[1]
		}
		writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Table %s was not found in location %s",
			bqTableName(name), cmp.Or(req.Location, ds.Location, "US")))
		return
	}
	if req.Location != "" && ds.Location != "" && !strings.EqualFold(req.Location, ds.Location) {
		dataset := want[:strings.LastIndex(want, ".")]
		writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Dataset %s was not found in location %s", bqTableName(dataset), req.Location))
		return
	}

	params := map[string]queryParameter{}
	for _, p := range req.QueryParameters {
		params[p.Name] = p
	}
	j := &job{project: project, created: time.Now(), info: QueryInfo{
		Kind: kind, Location: cmp.Or(req.Location, ds.Location), MaxBytesBilled: req.MaximumBytesBilled, Labels: req.Labels,
	}}
	var msg string
	switch kind {
	case KindCarbon:
		msg = carbonJob(ds, j, params)
	case KindBilling:
		msg = billingJob(ds, j, params)
	default:
		msg = tagsJob(ds, j, params, req.Query)
	}
	if msg != "" {
		writeError(w, http.StatusBadRequest, "invalidQuery", msg)
		return
	}
	j.billed = max(minBytesBilled, (j.bytes+(1<<20)-1)&^((1<<20)-1))
	if req.MaximumBytesBilled > 0 && j.billed > req.MaximumBytesBilled {
		writeError(w, http.StatusBadRequest, "bytesBilledLimitExceeded", fmt.Sprintf(
			"Query exceeded limit for bytes billed: %d. %d or higher required.", req.MaximumBytesBilled, j.billed))
		return
	}

	s.mu.Lock()
	s.seq++
	j.info.JobID = jobID(kind, s.seq)
	j.pollsLeft = s.incomplete
	s.jobs[j.info.JobID] = j
	s.queries = append(s.queries, j.info)
	pageSize := s.pageSize
	s.mu.Unlock()

	if j.pollsLeft > 0 {
		writeJSON(w, map[string]any{
			"kind":         "bigquery#queryResponse",
			"jobReference": j.ref(),
			"jobComplete":  false,
		})
		return
	}
	resp := j.page(0, pageSize)
	resp["kind"] = "bigquery#queryResponse"
	writeJSON(w, resp)
}

// bqTableName writes "p.d.t" as BigQuery's messages do: "p:d.t".
func bqTableName(s string) string {
	if i := strings.Index(s, "."); i >= 0 {
		return s[:i] + ":" + s[i+1:]
	}
	return s
}

func (s *Server) lookup(w http.ResponseWriter, project, id string) *job {
	s.mu.Lock()
	j := s.jobs[id]
	s.mu.Unlock()
	if j == nil || j.project != project {
		writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Job %s:%s", project, id))
		return nil
	}
	return j
}

func (s *Server) kindOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[id]; j != nil {
		return j.info.Kind
	}
	return ""
}

func (s *Server) serveResults(w http.ResponseWriter, r *http.Request, project, id string) {
	s.requests.Inc(EndpointQueryResults)
	if s.fault(w, r, EndpointQueryResults, s.kindOf(id)) {
		return
	}
	j := s.lookup(w, project, id)
	if j == nil {
		return
	}
	s.mu.Lock()
	pageSize := s.pageSize
	incomplete := j.pollsLeft > 1
	if j.pollsLeft > 0 {
		j.pollsLeft--
	}
	s.mu.Unlock()
	if incomplete {
		writeJSON(w, map[string]any{"kind": "bigquery#getQueryResultsResponse", "jobReference": j.ref(), "jobComplete": false})
		return
	}

	q := r.URL.Query()
	start := 0
	if tok := q.Get("pageToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "row-"))
		if err != nil || !strings.HasPrefix(tok, "row-") || n < 0 || n > len(j.rows) {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid page token "+tok)
			return
		}
		start = n
	} else if si := q.Get("startIndex"); si != "" {
		n, err := strconv.Atoi(si)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid startIndex "+si)
			return
		}
		start = min(n, len(j.rows))
	}
	size := pageSize
	if mr := q.Get("maxResults"); mr != "" {
		n, err := strconv.Atoi(mr)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid maxResults "+mr)
			return
		}
		size = min(n, pageSize)
	}
	resp := j.page(start, size)
	resp["kind"] = "bigquery#getQueryResultsResponse"
	writeJSON(w, resp)
}

func (s *Server) serveJob(w http.ResponseWriter, r *http.Request, project, id string) {
	s.requests.Inc(EndpointJobsGet)
	if s.fault(w, r, EndpointJobsGet, s.kindOf(id)) {
		return
	}
	j := s.lookup(w, project, id)
	if j == nil {
		return
	}
	s.mu.Lock()
	state := "DONE"
	if j.pollsLeft > 0 {
		state = "RUNNING"
	}
	s.mu.Unlock()
	ms := strconv.FormatInt(j.created.UnixMilli(), 10)
	writeJSON(w, map[string]any{
		"kind":         "bigquery#job",
		"id":           j.project + ":" + j.info.Location + "." + j.info.JobID,
		"jobReference": j.ref(),
		"configuration": map[string]any{
			"jobType": "QUERY",
			"query":   map[string]any{"useLegacySql": false},
			"labels":  j.info.Labels,
		},
		"status": map[string]any{"state": state},
		"statistics": map[string]any{
			"creationTime":        ms,
			"startTime":           ms,
			"endTime":             ms,
			"totalBytesProcessed": strconv.FormatInt(j.bytes, 10),
			"query": map[string]any{
				"totalBytesProcessed": strconv.FormatInt(j.bytes, 10),
				"totalBytesBilled":    strconv.FormatInt(j.billed, 10),
				"cacheHit":            false,
				"statementType":       "SELECT",
			},
		},
	})
}

func (j *job) ref() map[string]any {
	return map[string]any{"projectId": j.project, "jobId": j.info.JobID, "location": j.info.Location}
}

// page renders rows [start, start+size) in BigQuery's JSON row format.
func (j *job) page(start, size int) map[string]any {
	end := min(start+size, len(j.rows))
	fields := make([]any, len(j.fields))
	for i, f := range j.fields {
		fields[i] = map[string]any{"name": f.name, "type": f.typ, "mode": "NULLABLE"}
	}
	resp := map[string]any{
		"jobReference":        j.ref(),
		"schema":              map[string]any{"fields": fields},
		"totalRows":           strconv.Itoa(len(j.rows)),
		"totalBytesProcessed": strconv.FormatInt(j.bytes, 10),
		"jobComplete":         true,
		"cacheHit":            false,
	}
	if end > start {
		rows := make([]any, 0, end-start)
		for _, row := range j.rows[start:end] {
			rows = append(rows, EncodeRow(row))
		}
		resp["rows"] = rows
	}
	if end < len(j.rows) {
		resp["pageToken"] = "row-" + strconv.Itoa(end)
	}
	return resp
}

// Record is a STRUCT value for EncodeRow; a []any is a REPEATED value.
type Record []any

// EncodeRow renders one row in BigQuery's JSON format: {"f":[{"v":...}]}.
// Scalars are strings (numbers formatted as BigQuery does), nil is NULL, a
// Record is {"v":{"f":[...]}} and a []any is {"v":[{"v":...}]}.
func EncodeRow(cells []any) map[string]any {
	f := make([]any, len(cells))
	for i, c := range cells {
		f[i] = map[string]any{"v": encodeValue(c)}
	}
	return map[string]any{"f": f}
}

func encodeValue(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case Record:
		return EncodeRow(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = map[string]any{"v": encodeValue(e)}
		}
		return out
	}
	return fmt.Sprint(v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(ErrorBody(code, reason, message)))
}

// carbonJob computes the carbon query's answer. It returns a message for
// a query whose parameters do not fit.
func carbonJob(ds Dataset, j *job, params map[string]queryParameter) string {
	months, msg := monthsParam(params, "months", "DATE", func(v string) (provider.Month, error) {
		t, err := time.Parse("2006-01-02", v)
		if err != nil || t.Day() != 1 {
			return 0, fmt.Errorf("want the first day of a month, got %q", v)
		}
		return provider.MonthOf(t), nil
	})
	if msg != "" {
		return msg
	}
	account, ok := params["billing_account"]
	if !ok || account.ParameterType.Type != "STRING" || account.ParameterValue.Value == nil {
		return "gcpfake: query parameter @billing_account: want a STRING"
	}
	j.info.Months, j.info.BillingAccount = months, *account.ParameterValue.Value
	want := map[provider.Month]bool{}
	for _, m := range months {
		want[m] = true
	}
	type key struct {
		month                                       provider.Month
		billing, project, service, region, location string
	}
	type agg struct {
		version          int64
		s1, s2l, s2m, s3 float64
		marketMissing    bool
	}
	groups := map[key]*agg{}
	for _, r := range ds.Carbon {
		if !want[r.Month] || (j.info.BillingAccount != "" && r.BillingAccountID != j.info.BillingAccount) {
			continue
		}
		k := key{r.Month, r.BillingAccountID, r.ProjectID, r.Service, r.Region, r.Location}
		a := groups[k]
		if a == nil {
			a = &agg{}
			groups[k] = a
		}
		a.version = max(a.version, r.ModelVersion)
		a.s1 += r.Scope1
		a.s2l += r.Scope2Location
		a.s3 += r.Scope3
		if r.Scope2Market == nil {
			a.marketMissing = true
		} else {
			a.s2m += *r.Scope2Market
		}
	}
	j.bytes = int64(len(ds.Carbon)) * carbonRowBytes
	j.fields = []field{
		{"usage_month", "DATE"}, {"billing_account_id", "STRING"}, {"project_id", "STRING"},
		{"service", "STRING"}, {"region", "STRING"}, {"location", "STRING"},
		{"carbon_model_version", "INTEGER"}, {"scope1_kg", "FLOAT"}, {"scope2_location_kg", "FLOAT"},
		{"scope2_market_kg", "FLOAT"}, {"scope3_kg", "FLOAT"},
	}
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.project, b.project), cmp.Compare(a.service, b.service),
			cmp.Compare(a.region, b.region), cmp.Compare(a.location, b.location), cmp.Compare(a.billing, b.billing))
	})
	for _, k := range keys {
		a := groups[k]
		var market any
		if !a.marketMissing {
			market = a.s2m
		}
		j.rows = append(j.rows, []any{
			k.month.Start().Format("2006-01-02"), null(k.billing), null(k.project), null(k.service), null(k.region), null(k.location),
			a.version, a.s1, a.s2l, market, a.s3,
		})
	}
	return ""
}

// kindOfQuery returns the kind of one of the exporter's queries by its
// marker comment, "" for another query.
func kindOfQuery(sql string) string {
	for _, kind := range []string{KindCarbon, KindBilling, KindTags} {
		if strings.Contains(sql, "-- cloudcarbon:"+kind+"\n") {
			return kind
		}
	}
	return ""
}

// billingScan is what the billing query and the tag query read of the
// billing export: the invoice months, partition window and export lag of
// their parameters.
type billingScan struct {
	months     []provider.Month
	want       map[provider.Month]bool
	start, end time.Time
	lag        time.Duration
}

func parseBillingScan(params map[string]queryParameter) (billingScan, string) {
	months, msg := monthsParam(params, "invoice_months", "STRING", func(v string) (provider.Month, error) {
		t, err := time.Parse("200601", v)
		if err != nil {
			return 0, fmt.Errorf("want YYYYMM, got %q", v)
		}
		return provider.MonthOf(t), nil
	})
	if msg != "" {
		return billingScan{}, msg
	}
	sc := billingScan{months: months, want: map[provider.Month]bool{}}
	for _, m := range months {
		sc.want[m] = true
	}
	if sc.start, msg = timestampParam(params, "partition_start"); msg != "" {
		return billingScan{}, msg
	}
	if sc.end, msg = timestampParam(params, "partition_end"); msg != "" {
		return billingScan{}, msg
	}
	lag, ok := params["export_lag_hours"]
	if !ok || lag.ParameterType.Type != "INT64" || lag.ParameterValue.Value == nil {
		return billingScan{}, "gcpfake: query parameter @export_lag_hours: want an INT64"
	}
	lagHours, err := strconv.ParseInt(*lag.ParameterValue.Value, 10, 64)
	if err != nil {
		return billingScan{}, "gcpfake: query parameter @export_lag_hours: " + err.Error()
	}
	sc.lag = time.Duration(lagHours) * time.Hour
	return sc, ""
}

// rows calls f with each row the query counts, and returns how many rows
// its partition window scans.
func (sc billingScan) rows(ds Dataset, f func(r BillingRow)) int {
	scanned := 0
	for _, r := range ds.Billing {
		if !inWindow(r.ExportTime, sc.start, sc.end) {
			continue
		}
		scanned++
		// Each invoice month's own window, within the run's.
		if sc.want[r.InvoiceMonth] && inWindow(r.ExportTime, r.InvoiceMonth.Start(), r.InvoiceMonth.End().Add(sc.lag)) {
			f(r)
		}
	}
	return scanned
}

// billingKey is the grouping of the billing query, and with a tag key and
// value that of the tag query.
type billingKey struct {
	month                                                 provider.Month
	billing, project, service, region, location, currency string
	rate                                                  float64
	tagKey, tagValue                                      string
	// tagSet says that the row has the label: its value is not NULL.
	tagSet bool
}

func keyOf(r BillingRow) billingKey {
	return billingKey{month: r.InvoiceMonth, billing: r.BillingAccountID, project: r.ProjectID, service: r.Service,
		region: r.Region, location: r.Location, currency: r.Currency, rate: r.ConversionRate}
}

func compareKeys(a, b billingKey) int {
	return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.project, b.project), cmp.Compare(a.service, b.service),
		cmp.Compare(a.region, b.region), cmp.Compare(a.location, b.location), cmp.Compare(a.billing, b.billing),
		cmp.Compare(a.currency, b.currency), cmp.Compare(a.rate, b.rate), cmp.Compare(a.tagKey, b.tagKey),
		cmp.Compare(a.tagValue, b.tagValue), cmp.Compare(b2i(a.tagSet), b2i(b.tagSet)))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func invoiceMonthOf(m provider.Month) string {
	return fmt.Sprintf("%04d%02d", m.Year(), int(m.Month()))
}

// billingJob computes the billing query's answer.
func billingJob(ds Dataset, j *job, params map[string]queryParameter) string {
	sc, msg := parseBillingScan(params)
	if msg != "" {
		return msg
	}
	j.info.Months, j.info.PartitionStart, j.info.PartitionEnd = sc.months, sc.start, sc.end
	type agg struct {
		micros int64
		name   string
	}
	groups := map[billingKey]*agg{}
	scanned := sc.rows(ds, func(r BillingRow) {
		k := keyOf(r)
		a := groups[k]
		if a == nil {
			a = &agg{}
			groups[k] = a
		}
		a.micros += r.netMicros()
		a.name = max(a.name, r.ProjectName)
	})
	j.bytes = int64(scanned) * billingRowBytes
	j.fields = []field{
		{"invoice_month", "STRING"}, {"billing_account_id", "STRING"}, {"project_id", "STRING"}, {"project_name", "STRING"},
		{"service", "STRING"}, {"region", "STRING"}, {"location", "STRING"}, {"currency", "STRING"},
		{"currency_conversion_rate", "FLOAT"}, {"net_cost_micros", "INTEGER"},
	}
	for _, k := range slices.SortedFunc(maps.Keys(groups), compareKeys) {
		a := groups[k]
		j.rows = append(j.rows, []any{
			invoiceMonthOf(k.month), null(k.billing), null(k.project), null(a.name),
			null(k.service), null(k.region), null(k.location), null(k.currency), k.rate, a.micros,
		})
	}
	return ""
}

// tagsJob computes the tag query's answer: the billing query's groups
// (without the project name) by each of @tag_keys and the row's value of
// it, NULL where the row has no such label. As BigQuery would, it reads
// only the label columns the SQL names: a key whose column the SQL does
// not read has no value.
func tagsJob(ds Dataset, j *job, params map[string]queryParameter, sql string) string {
	sc, msg := parseBillingScan(params)
	if msg != "" {
		return msg
	}
	keys, msg := stringsParam(params, "tag_keys")
	if msg != "" {
		return msg
	}
	if !strings.Contains(sql, "CROSS JOIN UNNEST(CAST(@tag_keys AS ARRAY<STRING>)) AS tag_key") {
		return "gcpfake: the tag query pairs no row with @tag_keys"
	}
	reads := map[string]bool{"labels": strings.Contains(sql, "UNNEST(labels)"), "project.labels": strings.Contains(sql, "UNNEST(project.labels)")}
	j.info.Months, j.info.PartitionStart, j.info.PartitionEnd, j.info.TagKeys = sc.months, sc.start, sc.end, keys
	for _, c := range []string{"labels", "project.labels"} {
		if reads[c] {
			j.info.TagColumns = append(j.info.TagColumns, c)
		}
	}
	groups := map[billingKey]int64{}
	scanned := sc.rows(ds, func(r BillingRow) {
		for _, key := range keys {
			k := keyOf(r)
			k.tagKey = key
			column := "labels"
			if strings.HasPrefix(key, ProjectLabelPrefix) {
				column = "project.labels"
			}
			if v, ok := r.label(key); ok && reads[column] {
				k.tagValue, k.tagSet = v, true
			}
			groups[k] += r.netMicros()
		}
	})
	j.bytes = int64(scanned) * (billingRowBytes + int64(len(j.info.TagColumns))*labelsBytes)
	j.fields = []field{
		{"invoice_month", "STRING"}, {"billing_account_id", "STRING"}, {"project_id", "STRING"},
		{"service", "STRING"}, {"region", "STRING"}, {"location", "STRING"}, {"currency", "STRING"},
		{"currency_conversion_rate", "FLOAT"}, {"tag_key", "STRING"}, {"tag_value", "STRING"}, {"net_cost_micros", "INTEGER"},
	}
	for _, k := range slices.SortedFunc(maps.Keys(groups), compareKeys) {
		var value any
		if k.tagSet {
			value = k.tagValue
		}
		j.rows = append(j.rows, []any{
			invoiceMonthOf(k.month), null(k.billing), null(k.project), null(k.service), null(k.region), null(k.location),
			null(k.currency), k.rate, k.tagKey, value, groups[k],
		})
	}
	return ""
}

// null maps the dataset's empty strings to NULL.
func null(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func monthsParam(params map[string]queryParameter, name, elem string, parse func(string) (provider.Month, error)) ([]provider.Month, string) {
	p, ok := params[name]
	if !ok {
		return nil, "gcpfake: query parameter @" + name + " is missing"
	}
	if p.ParameterType.Type != "ARRAY" || p.ParameterType.ArrayType == nil || p.ParameterType.ArrayType.Type != elem {
		return nil, fmt.Sprintf("gcpfake: query parameter @%s: want ARRAY<%s>", name, elem)
	}
	var out []provider.Month
	for _, v := range p.ParameterValue.ArrayValues {
		if v.Value == nil {
			return nil, fmt.Sprintf("gcpfake: query parameter @%s: NULL element", name)
		}
		m, err := parse(*v.Value)
		if err != nil {
			return nil, fmt.Sprintf("gcpfake: query parameter @%s: %v", name, err)
		}
		out = append(out, m)
	}
	return out, ""
}

func stringsParam(params map[string]queryParameter, name string) ([]string, string) {
	p, ok := params[name]
	if !ok || p.ParameterType.Type != "ARRAY" || p.ParameterType.ArrayType == nil || p.ParameterType.ArrayType.Type != "STRING" {
		return nil, fmt.Sprintf("gcpfake: query parameter @%s: want ARRAY<STRING>", name)
	}
	var out []string
	for _, v := range p.ParameterValue.ArrayValues {
		if v.Value == nil {
			return nil, fmt.Sprintf("gcpfake: query parameter @%s: NULL element", name)
		}
		out = append(out, *v.Value)
	}
	return out, ""
}

func timestampParam(params map[string]queryParameter, name string) (time.Time, string) {
	p, ok := params[name]
	if !ok || p.ParameterType.Type != "TIMESTAMP" || p.ParameterValue.Value == nil {
		return time.Time{}, "gcpfake: query parameter @" + name + ": want a TIMESTAMP"
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, *p.ParameterValue.Value); err == nil {
			return t.UTC(), ""
		}
	}
	return time.Time{}, fmt.Sprintf("gcpfake: query parameter @%s: invalid timestamp %q", name, *p.ParameterValue.Value)
}
