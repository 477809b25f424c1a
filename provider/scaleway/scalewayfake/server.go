package scalewayfake

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// Paths of the API's operations, as the SDK builds them.
const (
	ImpactDataPath   = "/environmental-footprint/v1alpha1/data/query"
	AvailabilityPath = "/environmental-footprint/v1alpha1/reports/availability"
	DownloadPath     = "/environmental-footprint/v1alpha1/reports/download"
)

// Operation names: the keys of Requests, Queries and Inject.
const (
	OpImpactData   = "GetImpactData"
	OpAvailability = "GetImpactReportAvailability"
	OpDownload     = "DownloadImpactReport"
	OpUnknown      = "unknown"
)

// Enums of the API (the SDK's ServiceCategory and ProductCategory).
func serviceCategories() []string {
	return []string{"unknown_service_category", "baremetal", "compute", "storage", "network", "containers", "databases", "ai", "serverless"}
}

func productCategories() []string {
	return []string{"unknown_product_category", "apple_silicon", "block_storage", "dedibox", "elastic_metal", "instances",
		"object_storage", "load_balancer", "kubernetes", "managed_relational_databases", "managed_mongodb", "managed_redis",
		"managed_inference", "generative_apis", "serverless_functions", "serverless_containers", "serverless_jobs"}
}

var (
	uuidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	regionRE = regexp.MustCompile(`^[a-z]{2}-[a-z]{3,7}$`)
	zoneRE   = regexp.MustCompile(`^[a-z]{2}-[a-z]{3,7}-[0-9]{1,2}$`)
)

// Fault replaces the real answer to the next Times requests of an
// operation.
type Fault = fakehttp.Fault

// RateLimited is what Scaleway's gateway answers a client over its rate
// limit: 429 with no body, no Content-Type and no Retry-After, only
// x-envoy-ratelimited.
func RateLimited() Fault {
	return Fault{Status: http.StatusTooManyRequests, Header: http.Header{"X-Envoy-Ratelimited": {"true"}}}
}

// ServerError is a 5xx with Scaleway's JSON error body.
func ServerError(status int) Fault {
	return Fault{Status: status, Body: `{"message":"internal error","type":"internal_error"}`}
}

// Server is the fake API. It is safe for concurrent use.
type Server struct {
	mu            sync.Mutex
	ds            Dataset
	secretKey     string
	denied        bool
	billingDenied bool
	pageMax       int // the most consumption lines a page holds; 0: page_size
	now           func() time.Time
	queries       map[string][]url.Values

	requests fakehttp.Counter[string]
	faults   fakehttp.Faults[string]
}

// NewServer serves ds to clients that present secretKey as X-Auth-Token.
func NewServer(ds Dataset, secretKey string) *Server {
	return &Server{ds: ds, secretKey: secretKey, now: time.Now, queries: make(map[string][]url.Values)}
}

// SetNow sets the clock that gives "today", the API's default end_date.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
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

// Deny makes every authenticated request fail as Scaleway answers a key
// whose principal lacks the permission set: 403 permissions_denied.
func (s *Server) Deny(denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied = denied
}

// DenyBilling makes every billing request fail as Scaleway answers a key
// whose principal lacks BillingReadOnly: 403 permissions_denied. The
// footprint's permission is Deny's.
func (s *Server) DenyBilling(denied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billingDenied = denied
}

// SetPageMax makes consumption pages hold at most n lines, whatever
// page_size the client asks for; 0 restores pages of page_size.
func (s *Server) SetPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageMax = max(n, 0)
}

// Inject queues f for operation op: the next f.Times requests of op get f
// instead of the real answer.
func (s *Server) Inject(op string, f Fault) { s.faults.Inject(op, f) }

// Requests returns how many requests of op reached the fake, faults and
// rejected ones included.
func (s *Server) Requests(op string) int { return s.requests.Get(op) }

// maxQueries is how many queries Queries keeps per operation.
const maxQueries = 100

// Queries returns the query parameters of op's latest requests (up to
// 100), oldest first.
func (s *Server) Queries(op string) []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries[op])
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := OpUnknown
	switch {
	case r.URL.Path == ImpactDataPath && r.Method == http.MethodGet:
		op = OpImpactData
	case r.URL.Path == AvailabilityPath && r.Method == http.MethodGet:
		op = OpAvailability
	case r.URL.Path == DownloadPath && r.Method == http.MethodPost:
		op = OpDownload
	case r.URL.Path == ConsumptionsPath && r.Method == http.MethodGet:
		op = OpConsumptions
	}
	s.requests.Inc(op)
	q := r.URL.Query()
	s.mu.Lock()
	// Bounded, so that a demo running for weeks does not grow.
	if len(s.queries[op]) == maxQueries {
		s.queries[op] = slices.Delete(s.queries[op], 0, 1)
	}
	s.queries[op] = append(s.queries[op], q)
	ds, secretKey, denied, billingDenied, pageMax, now := s.ds, s.secretKey, s.denied, s.billingDenied, s.pageMax, s.now()
	s.mu.Unlock()

	if f, ok := s.faults.Next(op); ok {
		writeFault(w, r, f)
		return
	}
	token := r.Header.Get("X-Auth-Token")
	switch {
	case token == "":
		writeJSON(w, http.StatusUnauthorized, deniedAuthentication("invalid_argument"))
		return
	case subtle.ConstantTimeCompare([]byte(token), []byte(secretKey)) != 1:
		writeJSON(w, http.StatusUnauthorized, deniedAuthentication("not_found"))
		return
	}
	switch op {
	case OpUnknown:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "resource is not found", "resource": "route", "resource_id": r.URL.Path, "type": "not_found"})
		return
	case OpDownload:
		writeJSON(w, http.StatusNotImplemented, map[string]string{"message": "the fake serves no PDF reports"})
		return
	case OpConsumptions:
		s.serveConsumptions(w, q, ds, billingDenied, pageMax, now)
		return
	}
	org := q.Get("organization_id")
	switch {
	case org == "":
		invalid(w, "organization_id", "required", "")
		return
	case !uuidRE.MatchString(org):
		invalid(w, "organization_id", "format", "must be a UUID")
		return
	case denied || org != ds.OrganizationID:
		// Scaleway answers an organization the key may not read as it
		// answers a missing permission.
		writeJSON(w, http.StatusForbidden, permissionsDenied())
		return
	}
	start, end, ok := period(w, q, now)
	if !ok {
		return
	}
	if op == OpAvailability {
		writeJSON(w, http.StatusOK, availability(ds, start, end))
		return
	}
	f, ok := filters(w, q)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, impactData(ds, start, end, f))
}

// period reads start_date (required, not before FirstMonth) and end_date
// (default: today), both RFC 3339, and answers 400 when they are wrong.
func period(w http.ResponseWriter, q url.Values, now time.Time) (start, end time.Time, ok bool) {
	sv := q.Get("start_date")
	if sv == "" {
		invalid(w, "start_date", "required", "")
		return start, end, false
	}
	start, err := time.Parse(time.RFC3339, sv)
	if err != nil {
		invalid(w, "start_date", "format", "must be an RFC 3339 date such as 2025-05-01T00:00:00Z")
		return start, end, false
	}
	if start.Before(FirstMonth.Start()) {
		invalid(w, "start_date", "constraint", "must not be before 2024-10-01")
		return start, end, false
	}
	end = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if ev := q.Get("end_date"); ev != "" {
		if end, err = time.Parse(time.RFC3339, ev); err != nil {
			invalid(w, "end_date", "format", "must be an RFC 3339 date such as 2025-06-01T00:00:00Z")
			return start, end, false
		}
	}
	if !end.After(start) {
		invalid(w, "end_date", "constraint", "must be after start_date")
		return start, end, false
	}
	return start.UTC(), end.UTC(), true
}

type filter struct {
	projects, regions, zones, services, products []string
}

// filters reads the list parameters, each a repeated key
// (regions=a&regions=b), and answers 400 to a value that is not a UUID,
// region, zone or known category.
func filters(w http.ResponseWriter, q url.Values) (filter, bool) {
	f := filter{projects: q["project_ids"], regions: q["regions"], zones: q["zones"],
		services: q["service_categories"], products: q["product_categories"]}
	for _, c := range []struct {
		name  string
		vals  []string
		valid func(string) bool
	}{
		{"project_ids", f.projects, uuidRE.MatchString},
		{"regions", f.regions, regionRE.MatchString},
		{"zones", f.zones, zoneRE.MatchString},
		{"service_categories", f.services, func(v string) bool { return slices.Contains(serviceCategories(), v) }},
		{"product_categories", f.products, func(v string) bool { return slices.Contains(productCategories(), v) }},
	} {
		for _, v := range c.vals {
			if !c.valid(v) {
				invalid(w, c.name, "format", "unknown or malformed value")
				return f, false
			}
		}
	}
	return f, true
}

// keep reports whether SKU s passes the filters. A zone filter leaves out
// the SKUs tied to a region, which are in no zone.
func (f filter) keep(s *SKU) bool {
	in := func(vals []string, v string) bool { return len(vals) == 0 || slices.Contains(vals, v) }
	return in(f.projects, s.Project) && in(f.regions, s.Region) && in(f.zones, s.Zone) &&
		in(f.services, cmp.Or(s.ServiceCategory, "unknown_service_category")) &&
		in(f.products, cmp.Or(s.ProductCategory, "unknown_product_category"))
}

// The API's JSON, in its own types: values are float32 as in Scaleway's
// API definition, which encoding/json writes with float32 precision.
type (
	impact struct {
		KgCO2e  float32 `json:"kg_co2_equivalent"`
		M3Water float32 `json:"m3_water_usage"`
	}
	skuImpact struct {
		SKU             string `json:"sku"`
		Total           impact `json:"total_sku_impact"`
		ServiceCategory string `json:"service_category"`
		ProductCategory string `json:"product_category"`
	}
	zoneImpact struct {
		Zone  string      `json:"zone"`
		Total impact      `json:"total_zone_impact"`
		SKUs  []skuImpact `json:"skus"`
	}
	regionImpact struct {
		Region string       `json:"region"`
		Total  impact       `json:"total_region_impact"`
		Zones  []zoneImpact `json:"zones"`
		SKUs   []skuImpact  `json:"skus"`
	}
	projectImpact struct {
		ProjectID string         `json:"project_id"`
		Total     impact         `json:"total_project_impact"`
		Regions   []regionImpact `json:"regions"`
	}
	impactDataResponse struct {
		StartDate string          `json:"start_date"`
		EndDate   string          `json:"end_date"`
		Total     impact          `json:"total_impact"`
		Projects  []projectImpact `json:"projects"`
	}
	availabilityResponse struct {
		Months []string `json:"month_summary_reports"`
		Years  []string `json:"yearly_summary_reports"`
	}
)

// sum adds float32 values in float64 and rounds the sum to float32, as
// the API's totals are served.
type sum struct{ kg, m3 float64 }

func (s *sum) add(i impact)  { s.kg += float64(i.KgCO2e); s.m3 += float64(i.M3Water) }
func (s sum) impact() impact { return impact{float32(s.kg), float32(s.m3)} }

// impactData nests the period's SKUs project → region → zone → SKU, with
// region-level SKUs in the region's own skus, and totals at every level.
func impactData(ds Dataset, start, end time.Time, f filter) impactDataResponse {
	resp := impactDataResponse{StartDate: start.Format(time.RFC3339), EndDate: end.Format(time.RFC3339), Projects: []projectImpact{}}
	skus := served(ds.SKUs, func(s *SKU) bool {
		return !s.Month.Start().Before(start) && s.Month.Start().Before(end) && f.keep(s)
	})
	var total sum
	for i := 0; i < len(skus); {
		proj := projectImpact{ProjectID: skus[i].Project, Regions: []regionImpact{}}
		var pt sum
		for i < len(skus) && skus[i].Project == proj.ProjectID {
			reg := regionImpact{Region: skus[i].Region, Zones: []zoneImpact{}, SKUs: []skuImpact{}}
			var rt sum
			for i < len(skus) && skus[i].Project == proj.ProjectID && skus[i].Region == reg.Region {
				s := &skus[i]
				si := skuImpact{SKU: s.ID, Total: impact{float32(s.KgCO2e), float32(s.M3Water)},
					ServiceCategory: cmp.Or(s.ServiceCategory, "unknown_service_category"),
					ProductCategory: cmp.Or(s.ProductCategory, "unknown_product_category")}
				rt.add(si.Total)
				if s.Zone == "" {
					reg.SKUs = append(reg.SKUs, si)
				} else {
					if n := len(reg.Zones); n == 0 || reg.Zones[n-1].Zone != s.Zone {
						reg.Zones = append(reg.Zones, zoneImpact{Zone: s.Zone, SKUs: []skuImpact{}})
					}
					z := &reg.Zones[len(reg.Zones)-1]
					z.SKUs = append(z.SKUs, si)
				}
				i++
			}
			for j := range reg.Zones {
				var zt sum
				for _, si := range reg.Zones[j].SKUs {
					zt.add(si.Total)
				}
				reg.Zones[j].Total = zt.impact()
			}
			reg.Total = rt.impact()
			pt.add(reg.Total)
			proj.Regions = append(proj.Regions, reg)
		}
		proj.Total = pt.impact()
		total.add(proj.Total)
		resp.Projects = append(resp.Projects, proj)
	}
	resp.Total = total.impact()
	return resp
}

// availability lists the available months from start's month through
// end (inclusive), and the years whose twelve months are all available.
func availability(ds Dataset, start, end time.Time) availabilityResponse {
	resp := availabilityResponse{Months: []string{}, Years: []string{}}
	from := provider.MonthOf(start)
	if !start.Equal(from.Start()) {
		from++ // a month is listed by its first instant
	}
	avail := slices.Clone(ds.Available)
	slices.Sort(avail)
	avail = slices.Compact(avail)
	years := make(map[int]int)
	for _, m := range avail {
		if m < from || m.Start().After(end) {
			continue
		}
		resp.Months = append(resp.Months, m.Start().Format(time.RFC3339))
		years[m.Year()]++
	}
	for y := FirstMonth.Year(); y <= end.Year(); y++ {
		if years[y] == 12 {
			resp.Years = append(resp.Years, time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339))
		}
	}
	return resp
}

// deniedAuthentication is Scaleway's answer to a missing or unknown key;
// reason says which.
func deniedAuthentication(reason string) map[string]string {
	return map[string]string{"message": "authentication is denied", "method": "api_key", "reason": reason, "type": "denied_authentication"}
}

// permissionsDenied is Scaleway's answer to a key whose principal may not
// read the organization's footprint.
func permissionsDenied() map[string]any {
	return map[string]any{
		"details": []map[string]string{{"action": "read", "resource": "environmental_footprint"}},
		"message": "insufficient permissions", "type": "permissions_denied"}
}

// ErrorFault is Scaleway's error answer with status: its standard error
// bodies for 401 and 403, its gateway's empty 429 (RateLimited), and the
// JSON body of other statuses (ServerError).
func ErrorFault(status int) Fault {
	var body any
	switch status {
	case http.StatusTooManyRequests:
		return RateLimited()
	case http.StatusUnauthorized:
		body = deniedAuthentication("not_found")
	case http.StatusForbidden:
		body = permissionsDenied()
	default:
		return ServerError(status)
	}
	text, _ := json.Marshal(body)
	return Fault{Status: status, Body: string(text)}
}

// invalid answers 400 as Scaleway does for a bad argument.
func invalid(w http.ResponseWriter, arg, reason, help string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"details": []map[string]string{{"argument_name": arg, "reason": reason, "help_message": help}},
		"message": "invalid argument(s)", "type": "invalid_arguments"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeFault is fakehttp.Fault.Write, except that a fault without a body
// gets no Content-Type either, as Scaleway's empty 429 has none.
func writeFault(w http.ResponseWriter, r *http.Request, f Fault) {
	if f.Body != "" || f.Delay > 0 {
		f.Write(w, r)
		return
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header()["Content-Type"] = nil // no sniffed type either
	w.WriteHeader(cmp.Or(f.Status, http.StatusInternalServerError))
	_, _ = io.WriteString(w, "")
}
