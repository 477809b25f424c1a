package ibmfake

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The usage reports, which the cost feed of provisional months reads: the
// Usage Reports API's account summary and the Enterprise Usage Reports
// API, both in their wire formats, from the dataset's Costs. They serve
// the billable cost of resources as IBM does: per account and resource
// (service), never per location, and for an enterprise per account only,
// its resources named by catalog id. Their errors are IBM's platform
// errors, {errors: [{code, message}], status_code, trace}.

// Paths of the usage reports. AccountSummaryPath is the route of every
// account summary, the key under which they are counted and faulted.
const (
	AccountSummaryPath  = "/v4/accounts/{account_id}/summary/{billingmonth}"
	EnterpriseUsagePath = "/v1/resource-usage-reports"
)

var (
	summaryRoute = regexp.MustCompile(`^/v4/accounts/([^/]+)/summary/([^/]+)$`)
	billingMonth = regexp.MustCompile(`^20[0-9]{2}-(0[1-9]|1[0-2])$`)
)

// maxReportsLimit is the most reports a page of the Enterprise Usage
// Reports API holds; defaultReportsLimit when the client asks for none.
const (
	maxReportsLimit     = 100
	defaultReportsLimit = 10
)

// catalogID is the global catalog id of a service, by which the
// Enterprise Usage Reports API names resources.
func catalogID(service string) string {
	id := demoID("catalog/" + service)
	return id[:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
}

// UsageErrorFault is the usage reports' error answer with status, in IBM's
// platform error format.
func UsageErrorFault(status int) Fault {
	body, _ := json.Marshal(usageErrorBody(status, usageErrorCode(status), http.StatusText(status)))
	return Fault{Status: status, Body: string(body)}
}

func usageErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "not_authenticated"
	case http.StatusForbidden:
		return "not_authorized"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	}
	return "internal_error"
}

func usageErrorBody(status int, code, msg string) map[string]any {
	return map[string]any{
		"errors":      []any{map[string]any{"code": code, "message": msg}},
		"status_code": status,
		"trace":       fmt.Sprintf("fake-%d", time.Now().UnixNano()),
	}
}

func usageError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, usageErrorBody(status, usageErrorCode(status), msg))
}

// costAccounts returns the accounts the dataset reports usage of.
func (s *Server) costAccounts() map[string]bool {
	out := map[string]bool{}
	for _, c := range s.ds.Costs {
		out[c.AccountID] = true
	}
	for _, r := range s.ds.Rows {
		out[r.AccountID] = true
	}
	for _, e := range s.ds.Entities {
		if e.Type == TypeAccount {
			out[e.ID] = true
		}
	}
	return out
}

// Wire types of the account summary, shaped like IBM's (usagereportsv4).
type wireResource struct {
	ResourceID           string  `json:"resource_id"`
	CatalogID            string  `json:"catalog_id,omitempty"`
	ResourceName         string  `json:"resource_name,omitempty"`
	BillableCost         float64 `json:"billable_cost"`
	BillableRatedCost    float64 `json:"billable_rated_cost"`
	NonBillableCost      float64 `json:"non_billable_cost"`
	NonBillableRatedCost float64 `json:"non_billable_rated_cost"`
	Plans                []any   `json:"plans"`
	Discounts            []any   `json:"discounts,omitempty"`
}

// ratedShare is the share of the pre-discount (rated) cost the billable
// cost is: the fake's accounts have a platform discount.
const ratedShare = 0.95

// serveSummary answers GET /v4/accounts/{account_id}/summary/{billingmonth}.
func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		usageError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	if !s.authorizeWith(r, func(msg string) { usageError(w, http.StatusUnauthorized, msg) }) {
		return
	}
	m := summaryRoute.FindStringSubmatch(r.URL.Path)
	account, month := m[1], m[2]
	if !billingMonth.MatchString(month) {
		usageError(w, http.StatusBadRequest, fmt.Sprintf("Invalid billing month %q: want yyyy-mm.", month))
		return
	}
	if !s.costAccounts()[account] {
		usageError(w, http.StatusForbidden, "You are not authorized to view the usage of account "+account+".")
		return
	}
	pm, _ := provider.ParseMonth(month)
	type sums struct{ billable, nonBillable float64 }
	byService := map[string]*sums{}
	var total sums
	for _, c := range s.ds.Costs {
		if c.AccountID != account || c.Month != pm {
			continue
		}
		t := byService[c.Service]
		if t == nil {
			t = &sums{}
			byService[c.Service] = t
		}
		t.billable += c.BillableUSD
		t.nonBillable += c.NonBillableUSD
		total.billable += c.BillableUSD
		total.nonBillable += c.NonBillableUSD
	}
	resources := []wireResource{}
	for _, svc := range slices.Sorted(maps.Keys(byService)) {
		t := byService[svc]
		resources = append(resources, wireResource{
			ResourceID: catalogID(svc), CatalogID: catalogID(svc), ResourceName: svc,
			BillableCost: t.billable, BillableRatedCost: t.billable / ratedShare,
			NonBillableCost: t.nonBillable, NonBillableRatedCost: t.nonBillable,
			Plans: []any{}, Discounts: []any{},
		})
	}
	support := []any{}
	if len(resources) > 0 {
		// Support is charged apart from resources, and has no footprint.
		support = append(support, map[string]any{"cost": 200.0, "type": "STANDARD", "overage": 0.0})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"account_id":            account,
		"account_resources":     resources,
		"month":                 month,
		"billing_country_code":  "USA",
		"billing_currency_code": "USD",
		"resources":             map[string]any{"billable_cost": total.billable, "non_billable_cost": total.nonBillable},
		"offers":                []any{},
		"support":               support,
		"support_resources":     []any{},
		"subscription":          map[string]any{"overage": 0.0, "subscriptions": []any{}},
	})
}

// Wire types of the Enterprise Usage Reports API (enterpriseusagereportsv1).
type wireReport struct {
	EntityID             string              `json:"entity_id"`
	EntityType           string              `json:"entity_type"`
	EntityCRN            string              `json:"entity_crn"`
	EntityName           string              `json:"entity_name"`
	BillingUnitID        string              `json:"billing_unit_id"`
	BillingUnitCRN       string              `json:"billing_unit_crn"`
	BillingUnitName      string              `json:"billing_unit_name"`
	CountryCode          string              `json:"country_code"`
	CurrencyCode         string              `json:"currency_code"`
	Month                string              `json:"month"`
	BillableCost         float64             `json:"billable_cost"`
	NonBillableCost      float64             `json:"non_billable_cost"`
	BillableRatedCost    float64             `json:"billable_rated_cost"`
	NonBillableRatedCost float64             `json:"non_billable_rated_cost"`
	Resources            []wireResourceUsage `json:"resources"`
}

type wireResourceUsage struct {
	ResourceID           string  `json:"resource_id"`
	BillableCost         float64 `json:"billable_cost"`
	BillableRatedCost    float64 `json:"billable_rated_cost"`
	NonBillableCost      float64 `json:"non_billable_cost"`
	NonBillableRatedCost float64 `json:"non_billable_rated_cost"`
	Plans                []any   `json:"plans"`
}

type wireReports struct {
	Limit   int          `json:"limit"`
	First   *href        `json:"first,omitempty"`
	Next    *href        `json:"next,omitempty"`
	Reports []wireReport `json:"reports"`
}

// serveEnterpriseUsage answers GET /v1/resource-usage-reports.
func (s *Server) serveEnterpriseUsage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		usageError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	if !s.authorizeWith(r, func(msg string) { usageError(w, http.StatusUnauthorized, msg) }) {
		return
	}
	v := r.URL.Query()
	var filter, id string
	for _, f := range []string{"enterprise_id", "account_group_id", "account_id"} {
		if x := v.Get(f); x != "" {
			if filter != "" {
				usageError(w, http.StatusBadRequest, "Use only one of enterprise_id, account_group_id and account_id.")
				return
			}
			filter, id = f, x
		}
	}
	if filter == "" {
		usageError(w, http.StatusBadRequest, "One of enterprise_id, account_group_id or account_id is required.")
		return
	}
	children := v.Get("children") == "true"
	if children && filter == "account_id" {
		usageError(w, http.StatusBadRequest, "children cannot be used with account_id.")
		return
	}
	month := v.Get("month")
	if month == "" {
		month = provider.MonthOf(time.Now()).String()
	}
	if !billingMonth.MatchString(month) {
		usageError(w, http.StatusBadRequest, fmt.Sprintf("Invalid month %q: want yyyy-mm.", month))
		return
	}
	limit, bad := intParam(v, "limit", defaultReportsLimit, 1, maxReportsLimit)
	if bad != "" {
		usageError(w, http.StatusBadRequest, bad)
		return
	}
	start := 0
	if off := v.Get("offset"); off != "" {
		n, ok := decodeOffset(off)
		if !ok {
			usageError(w, http.StatusBadRequest, fmt.Sprintf("Invalid offset %q.", off))
			return
		}
		start = n
	}
	want := map[string]string{"enterprise_id": TypeEnterprise, "account_group_id": TypeAccountGroup, "account_id": TypeAccount}[filter]
	e, ok := s.ents[id]
	if s.ds.EnterpriseID == "" || !ok || e.Type != want {
		usageError(w, http.StatusForbidden, "You are not authorized to view the usage reports of "+id+".")
		return
	}
	s.mu.Lock()
	if s.pageMax > 0 {
		limit = min(limit, s.pageMax)
	}
	s.mu.Unlock()

	pm, _ := provider.ParseMonth(month)
	entities := []Entity{e}
	if children {
		entities = nil
		for _, c := range s.ds.Entities {
			if c.ParentID == id {
				entities = append(entities, c)
			}
		}
		slices.SortStableFunc(entities, func(a, b Entity) int { return cmp.Compare(a.ID, b.ID) })
	}
	page := wireReports{Limit: limit, Reports: []wireReport{}}
	if start < len(entities) {
		for _, c := range entities[start:min(start+limit, len(entities))] {
			page.Reports = append(page.Reports, s.report(c, pm))
		}
	}
	link := func(offset string) *href {
		u := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path}
		q := r.URL.Query()
		q.Del("offset")
		if offset != "" {
			q.Set("offset", offset)
		}
		u.RawQuery = q.Encode()
		return &href{Href: u.String()}
	}
	page.First = link("")
	if start+limit < len(entities) {
		page.Next = link(encodeOffset(start + limit))
	}
	writeJSON(w, http.StatusOK, page)
}

// report is the usage report of entity e in month m: the cost of every
// account at or under it.
func (s *Server) report(e Entity, m provider.Month) wireReport {
	ent := s.ents[s.ds.EnterpriseID]
	unit := demoID("billing-unit/" + s.ds.EnterpriseID)
	rep := wireReport{
		EntityID: e.ID, EntityType: e.Type, EntityName: e.Name,
		EntityCRN:       fmt.Sprintf("crn:v1:bluemix:public:enterprise::a/%s::%s:%s", ent.ID, strings.ReplaceAll(e.Type, "_", "-"), e.ID),
		BillingUnitID:   unit,
		BillingUnitCRN:  fmt.Sprintf("crn:v1:bluemix:public:billing::a/%s::billing-unit:%s", ent.ID, unit),
		BillingUnitName: ent.Name + " billing",
		CountryCode:     "USA", CurrencyCode: "USD", Month: m.String(),
		Resources: []wireResourceUsage{},
	}
	byService := map[string]*wireResourceUsage{}
	for _, c := range s.ds.Costs {
		if c.Month != m || !s.isUnder(c.AccountID, e.ID) {
			continue
		}
		ru := byService[c.Service]
		if ru == nil {
			ru = &wireResourceUsage{ResourceID: catalogID(c.Service), Plans: []any{}}
			byService[c.Service] = ru
		}
		ru.BillableCost += c.BillableUSD
		ru.NonBillableCost += c.NonBillableUSD
		rep.BillableCost += c.BillableUSD
		rep.NonBillableCost += c.NonBillableUSD
	}
	for _, svc := range slices.Sorted(maps.Keys(byService)) {
		ru := byService[svc]
		ru.BillableRatedCost, ru.NonBillableRatedCost = ru.BillableCost/ratedShare, ru.NonBillableCost
		rep.Resources = append(rep.Resources, *ru)
	}
	rep.BillableRatedCost, rep.NonBillableRatedCost = rep.BillableCost/ratedShare, rep.NonBillableCost
	return rep
}

// encodeOffset and decodeOffset make the opaque offset of the Enterprise
// Usage Reports API's next links: clients must send it back as given.
func encodeOffset(n int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("reports:" + strconv.Itoa(n)))
}

func decodeOffset(s string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(b), "reports:"))
	return n, err == nil && strings.HasPrefix(string(b), "reports:") && n >= 0
}

// EnterpriseUsageEmptyPage answers a resource-usage-reports request with a
// page that holds no report but links to the next, as a broken server
// might forever.
func EnterpriseUsageEmptyPage(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	n, _ := decodeOffset(v.Get("offset"))
	v.Set("offset", encodeOffset(n+maxReportsLimit))
	next := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: v.Encode()}
	writeJSON(w, http.StatusOK, wireReports{Limit: maxReportsLimit, Reports: []wireReport{}, Next: &href{Href: next.String()}})
}

// AccountSummaryRequest reports whether r asks for an account summary.
func AccountSummaryRequest(r *http.Request) bool { return summaryRoute.MatchString(r.URL.Path) }
