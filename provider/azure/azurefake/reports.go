package azurefake

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Query is the body of POST carbonEmissionReports, as the API defines it
// for version 2025-04-01.
type Query struct {
	ReportType           string     `json:"reportType"`
	SubscriptionList     []string   `json:"subscriptionList"`
	CarbonScopeList      []string   `json:"carbonScopeList"`
	DateRange            *DateRange `json:"dateRange"`
	LocationList         []string   `json:"locationList,omitempty"`
	ResourceGroupURLList []string   `json:"resourceGroupUrlList,omitempty"`
	ResourceTypeList     []string   `json:"resourceTypeList,omitempty"`
	CategoryType         string     `json:"categoryType,omitempty"`
	OrderBy              string     `json:"orderBy,omitempty"`
	SortDirection        string     `json:"sortDirection,omitempty"`
	PageSize             *int       `json:"pageSize,omitempty"`
	SkipToken            string     `json:"skipToken,omitempty"`
	TopItems             *int       `json:"topItems,omitempty"`
}

// DateRange is a query's month range, "yyyy-MM-dd" first days of months.
type DateRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// query is a validated Query.
type query struct {
	Query
	start, end provider.Month
	subs       []string // as sent
	scopes     map[provider.Scope]bool
	locations  map[string]bool
	types      map[string]bool
	groups     map[string]bool
	pageSize   int
	offset     int
}

var (
	guidPattern  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	categories   = []string{"Subscription", "ResourceGroup", "Location", "Resource", "ResourceType"}
	orderColumns = []string{"ItemName", "LatestMonthEmissions", "PreviousMonthEmissions", "MonthOverMonthEmissionsChangeRatio", "MonthlyEmissionsChangeValue", "ResourceGroup"}
)

func (s *Server) parseQuery(body []byte) (*query, string) {
	var q query
	dec := json.NewDecoder(bytes.NewReader(body))
	// ARM rejects members a version does not define; so does the fake,
	// which catches preview-era field names.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.Query); err != nil {
		return nil, fmt.Sprintf("The request content was invalid and could not be deserialized: %v", err)
	}
	switch q.ReportType {
	case "ItemDetailsReport", "OverallSummaryReport", "MonthlySummaryReport":
	case "TopItemsSummaryReport", "TopItemsMonthlySummaryReport":
		return nil, fmt.Sprintf("reportType %s is not implemented by this fake.", q.ReportType)
	default:
		return nil, fmt.Sprintf("Invalid reportType '%s'.", q.ReportType)
	}
	for _, check := range []func(*query) string{checkSubscriptions, checkScopes, s.checkDateRange} {
		if msg := check(&q); msg != "" {
			return nil, msg
		}
	}
	q.locations = lowerSet(q.LocationList)
	q.types = lowerSet(q.ResourceTypeList)
	q.groups = lowerSet(q.ResourceGroupURLList)
	if q.ReportType != "ItemDetailsReport" {
		if q.CategoryType != "" || q.OrderBy != "" || q.SortDirection != "" || q.PageSize != nil || q.SkipToken != "" || q.TopItems != nil {
			return nil, fmt.Sprintf("%s takes no categoryType, orderBy, sortDirection, pageSize, skipToken or topItems.", q.ReportType)
		}
		return &q, ""
	}
	if msg := s.checkItemDetails(&q); msg != "" {
		return nil, msg
	}
	return &q, ""
}

// checkSubscriptions checks subscriptionList: at most 100 lower-case
// GUIDs, each once.
func checkSubscriptions(q *query) string {
	if len(q.SubscriptionList) == 0 {
		return "subscriptionList is required and must not be empty."
	}
	if len(q.SubscriptionList) > maxSubsPerQuery {
		return fmt.Sprintf("subscriptionList has %d items; the maximum is %d.", len(q.SubscriptionList), maxSubsPerQuery)
	}
	seen := map[string]bool{}
	for _, id := range q.SubscriptionList {
		if !guidPattern.MatchString(id) {
			return fmt.Sprintf("Subscription id '%s' is invalid: subscription ids must be lower-case GUIDs.", id)
		}
		if seen[id] {
			return fmt.Sprintf("Duplicate subscription id '%s' in subscriptionList.", id)
		}
		seen[id] = true
	}
	q.subs = q.SubscriptionList
	return ""
}

// checkScopes checks carbonScopeList: Scope1, Scope2 and Scope3, each at
// most once.
func checkScopes(q *query) string {
	if len(q.CarbonScopeList) == 0 {
		return "carbonScopeList is required and must not be empty."
	}
	q.scopes = map[provider.Scope]bool{}
	for _, sc := range q.CarbonScopeList {
		var ps provider.Scope
		switch sc {
		case "Scope1":
			ps = provider.Scope1
		case "Scope2":
			ps = provider.Scope2
		case "Scope3":
			ps = provider.Scope3
		default:
			return fmt.Sprintf("Invalid carbon scope '%s': want Scope1, Scope2 or Scope3.", sc)
		}
		if q.scopes[ps] {
			return fmt.Sprintf("Duplicate carbon scope '%s'.", sc)
		}
		q.scopes[ps] = true
	}
	return ""
}

// checkDateRange checks dateRange: first days of months within the
// months the API serves.
func (s *Server) checkDateRange(q *query) string {
	if q.DateRange == nil || q.DateRange.Start == "" || q.DateRange.End == "" {
		return "dateRange with start and end is required."
	}
	var msg string
	if q.start, msg = parseFirstOfMonth("start", q.DateRange.Start); msg != "" {
		return msg
	}
	if q.end, msg = parseFirstOfMonth("end", q.DateRange.End); msg != "" {
		return msg
	}
	lo := max(s.first, s.last-(monthsServed-1))
	switch {
	case q.end < q.start:
		return "dateRange end must not be before start."
	case q.start < lo || q.end > s.last:
		return fmt.Sprintf("dateRange %s to %s is outside the available range %s to %s.",
			q.DateRange.Start, q.DateRange.End, lo.Start().Format(time.DateOnly), s.last.Start().Format(time.DateOnly))
	}
	return ""
}

// checkItemDetails checks what an ItemDetailsReport takes besides the
// common fields: one month, a category, an order, a page size and the
// skipToken of an earlier page of the same query.
func (s *Server) checkItemDetails(q *query) string {
	if q.start != q.end {
		return "ItemDetailsReport supports one month at a time: dateRange start and end must be equal."
	}
	if !slices.Contains(categories, q.CategoryType) {
		return fmt.Sprintf("Invalid categoryType '%s'.", q.CategoryType)
	}
	if !slices.Contains(orderColumns, q.OrderBy) {
		return fmt.Sprintf("Invalid orderBy '%s'.", q.OrderBy)
	}
	if q.OrderBy == "ResourceGroup" && q.CategoryType != "Resource" {
		return "orderBy ResourceGroup is only supported for categoryType Resource."
	}
	if q.SortDirection != "Asc" && q.SortDirection != "Desc" {
		return fmt.Sprintf("Invalid sortDirection '%s': want Asc or Desc.", q.SortDirection)
	}
	if q.PageSize == nil || *q.PageSize < 1 || *q.PageSize > maxPageSize {
		return fmt.Sprintf("pageSize is required and must be between 1 and %d.", maxPageSize)
	}
	if q.TopItems != nil {
		return "ItemDetailsReport takes no topItems."
	}
	q.pageSize = *q.PageSize
	if q.SkipToken != "" {
		off, ok := s.parseSkipToken(q.SkipToken, q)
		if !ok {
			return "The skipToken is invalid or does not belong to this query."
		}
		q.offset = off
	}
	return ""
}

func parseFirstOfMonth(what, v string) (provider.Month, string) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil || t.Day() != 1 {
		return 0, fmt.Sprintf("dateRange %s '%s' is invalid: only the first day of a month (yyyy-MM-01) is accepted.", what, v)
	}
	return provider.MonthOf(t), ""
}

func lowerSet(vals []string) map[string]bool {
	if len(vals) == 0 {
		return nil
	}
	set := map[string]bool{}
	for _, v := range vals {
		set[strings.ToLower(strings.TrimSpace(v))] = true
	}
	return set
}

// queryHash binds a skipToken to the query that produced it.
func (s *Server) queryHash(q *query) string {
	c := q.Query
	c.SkipToken = ""
	b, _ := json.Marshal(c)
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:12])
}

func (s *Server) skipToken(q *query, offset int) string {
	b, _ := json.Marshal(map[string]any{"o": offset, "h": s.queryHash(q)})
	return base64.StdEncoding.EncodeToString(b)
}

func (s *Server) parseSkipToken(tok string, q *query) (int, bool) {
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	var v struct {
		O int    `json:"o"`
		H string `json:"h"`
	}
	if json.Unmarshal(b, &v) != nil || v.O < 0 || !hmac.Equal([]byte(v.H), []byte(s.queryHash(q))) {
		return 0, false
	}
	return v.O, true
}

// wireItem is one element of value; fields are omitted per dataType.
type wireItem struct {
	DataType               string   `json:"dataType"`
	ItemName               string   `json:"itemName,omitempty"`
	CategoryType           string   `json:"categoryType,omitempty"`
	Date                   string   `json:"date,omitempty"`
	LatestMonthEmissions   float64  `json:"latestMonthEmissions"`
	PreviousMonthEmissions float64  `json:"previousMonthEmissions"`
	ChangeRatio            *float64 `json:"monthOverMonthEmissionsChangeRatio,omitempty"`
	ChangeValue            *float64 `json:"monthlyEmissionsChangeValue,omitempty"`
	CarbonIntensity        *float64 `json:"carbonIntensity,omitempty"`
	SubscriptionID         string   `json:"subscriptionId,omitempty"`
	ResourceGroup          string   `json:"resourceGroup,omitempty"`
	ResourceGroupURL       string   `json:"resourceGroupUrl,omitempty"`
	ResourceID             string   `json:"resourceId,omitempty"`
	ResourceType           string   `json:"resourceType,omitempty"`
	Location               string   `json:"location,omitempty"`

	sortRG string
}

type accessDecision struct {
	SubscriptionID string `json:"subscriptionId"`
	Decision       string `json:"decision"`
	DenialReason   string `json:"denialReason,omitempty"`
}

type wireResult struct {
	Value                          []*wireItem      `json:"value"`
	SkipToken                      string           `json:"skipToken,omitempty"`
	SubscriptionAccessDecisionList []accessDecision `json:"subscriptionAccessDecisionList"`
}

// defaultDenialReason is the reason given for subscriptions the dataset
// does not know: the caller has no role on them there.
const defaultDenialReason = "The client does not have authorization to read carbon emissions of this subscription; the Carbon Optimization Reader role is required."

func (s *Server) serveReports(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if !checkAPIVersion(w, r, CarbonAPIVersion) || !s.authorize(w, r) {
		return
	}
	q, msg := s.parseQuery(body)
	if q == nil {
		armError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}

	allowed := map[string]bool{}
	res := wireResult{Value: []*wireItem{}}
	for _, id := range q.subs {
		sub, ok := s.subs[id]
		switch {
		case !ok:
			res.SubscriptionAccessDecisionList = append(res.SubscriptionAccessDecisionList, accessDecision{id, "Denied", defaultDenialReason})
		case sub.Denied:
			res.SubscriptionAccessDecisionList = append(res.SubscriptionAccessDecisionList, accessDecision{id, "Denied", sub.DenialReason})
		default:
			allowed[id] = true
			res.SubscriptionAccessDecisionList = append(res.SubscriptionAccessDecisionList, accessDecision{SubscriptionID: id, Decision: "Allowed"})
		}
	}

	switch q.ReportType {
	case "OverallSummaryReport":
		cur := s.sum(q, allowed, q.start, q.end)
		prev := s.sum(q, allowed, q.start-1, q.end-1)
		res.Value = append(res.Value, withChange(&wireItem{DataType: "OverallSummaryData", LatestMonthEmissions: cur, PreviousMonthEmissions: prev}))
	case "MonthlySummaryReport":
		for m := q.start; m <= q.end; m++ {
			cur := s.sum(q, allowed, m, m)
			zero := 0.0
			res.Value = append(res.Value, withChange(&wireItem{
				DataType: "MonthlySummaryData", Date: m.Start().Format(time.DateOnly),
				LatestMonthEmissions: cur, PreviousMonthEmissions: s.sum(q, allowed, m-1, m-1), CarbonIntensity: &zero,
			}))
		}
	default:
		items := s.details(q, allowed)
		size := q.pageSize
		s.mu.Lock()
		if s.pageMax > 0 {
			size = min(size, s.pageMax)
		}
		s.mu.Unlock()
		if q.offset < len(items) {
			res.Value = items[q.offset:min(q.offset+size, len(items))]
		}
		if q.offset+size < len(items) {
			res.SkipToken = s.skipToken(q, q.offset+size)
		}
	}
	writeJSON(w, http.StatusOK, res)
}

// match reports whether it is selected by q's filters.
func (q *query) match(it *Item, allowed map[string]bool) bool {
	if !allowed[it.SubscriptionID] {
		return false
	}
	if q.locations != nil && !q.locations[strings.ToLower(it.Location)] {
		return false
	}
	if q.types != nil && !q.types[strings.ToLower(it.ResourceType)] {
		return false
	}
	rgURL := strings.ToLower("/subscriptions/" + it.SubscriptionID + "/resourcegroups/" + it.ResourceGroup)
	return q.groups == nil || q.groups[rgURL]
}

// value returns the item's emissions summed over q's scopes.
func (q *query) value(it *Item) float64 {
	var v float64
	for _, sc := range []provider.Scope{provider.Scope1, provider.Scope2, provider.Scope3} {
		if q.scopes[sc] {
			v += it.Emissions(sc)
		}
	}
	return v
}

func (s *Server) sum(q *query, allowed map[string]bool, from, to provider.Month) float64 {
	var v float64
	for i := range s.ds.Items {
		it := &s.ds.Items[i]
		if it.Month >= from && it.Month <= to && q.match(it, allowed) {
			v += q.value(it)
		}
	}
	return v
}

// details builds an ItemDetailsReport: the month's items grouped by
// category, each with the same group's previous month, sorted as asked
// with the group key breaking ties, so that pages never overlap.
func (s *Server) details(q *query, allowed map[string]bool) []*wireItem {
	type group struct {
		key  string
		item *wireItem
	}
	groups := map[string]*group{}
	var order []*group
	add := func(it *Item, prev bool) {
		var key string
		var w wireItem
		switch q.CategoryType {
		case "Resource":
			key = strings.ToLower(it.ResourceID())
			w = wireItem{DataType: "ResourceItemDetailsData", ItemName: it.Name, SubscriptionID: it.SubscriptionID,
				ResourceGroup: it.ResourceGroup, ResourceID: it.ResourceID(), ResourceType: it.ResourceType, Location: it.Location,
				sortRG: strings.ToLower(it.ResourceGroup)}
		case "ResourceGroup":
			key = strings.ToLower("/subscriptions/" + it.SubscriptionID + "/resourcegroups/" + it.ResourceGroup)
			w = wireItem{DataType: "ResourceGroupItemDetailsData", ItemName: it.ResourceGroup, SubscriptionID: it.SubscriptionID, ResourceGroupURL: key}
		case "Subscription":
			key = it.SubscriptionID
			w = wireItem{DataType: "ItemDetailsData", ItemName: it.SubscriptionID}
		case "Location":
			key = strings.ToLower(it.Location)
			w = wireItem{DataType: "ItemDetailsData", ItemName: it.Location}
		case "ResourceType":
			key = strings.ToLower(it.ResourceType)
			w = wireItem{DataType: "ItemDetailsData", ItemName: it.ResourceType}
		}
		g := groups[key]
		if g == nil {
			if prev {
				// Groups that existed only last month are not listed.
				return
			}
			w.CategoryType = q.CategoryType
			g = &group{key: key, item: &w}
			groups[key] = g
			order = append(order, g)
		}
		if prev {
			g.item.PreviousMonthEmissions += q.value(it)
		} else {
			g.item.LatestMonthEmissions += q.value(it)
		}
	}
	for i := range s.ds.Items {
		if it := &s.ds.Items[i]; it.Month == q.start && q.match(it, allowed) {
			add(it, false)
		}
	}
	for i := range s.ds.Items {
		if it := &s.ds.Items[i]; it.Month == q.start-1 && q.match(it, allowed) {
			add(it, true)
		}
	}
	out := make([]*wireItem, len(order))
	keys := make(map[*wireItem]string, len(order))
	for i, g := range order {
		out[i] = withChange(g.item)
		keys[g.item] = g.key
	}
	slices.SortFunc(out, func(a, b *wireItem) int {
		var c int
		switch q.OrderBy {
		case "ItemName":
			c = strings.Compare(strings.ToLower(a.ItemName), strings.ToLower(b.ItemName))
		case "LatestMonthEmissions":
			c = cmp.Compare(a.LatestMonthEmissions, b.LatestMonthEmissions)
		case "PreviousMonthEmissions":
			c = cmp.Compare(a.PreviousMonthEmissions, b.PreviousMonthEmissions)
		case "MonthOverMonthEmissionsChangeRatio":
			c = cmp.Compare(deref(a.ChangeRatio), deref(b.ChangeRatio))
		case "MonthlyEmissionsChangeValue":
			c = cmp.Compare(deref(a.ChangeValue), deref(b.ChangeValue))
		case "ResourceGroup":
			c = strings.Compare(a.sortRG, b.sortRG)
		}
		if q.SortDirection == "Desc" {
			c = -c
		}
		return cmp.Or(c, strings.Compare(keys[a], keys[b]))
	})
	return out
}

func deref(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}

// withChange fills the change fields from the two figures; the ratio is
// absent when there was nothing last month.
func withChange(w *wireItem) *wireItem {
	change := w.LatestMonthEmissions - w.PreviousMonthEmissions
	w.ChangeValue = &change
	if w.PreviousMonthEmissions != 0 {
		ratio := change / w.PreviousMonthEmissions
		w.ChangeRatio = &ratio
	}
	return w
}
