package azurefake

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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

// Cost Management's Query operation (Microsoft.CostManagement/query) as
// the fake serves it, at subscription scope, in API version 2022-10-01
// (the version armcostmanagement/v2 sends):
//
//	POST /subscriptions/{id}/providers/Microsoft.CostManagement/query?api-version=2022-10-01
//
// The body is a QueryDefinition; the fake implements what a monthly cost
// breakdown needs (a custom time period of whole months, no date
// granularity, sums of the cost columns, up to two groupings by dimension
// or by one tag key) and answers 400 to the rest, as it answers 400 to
// what the API rejects. The answer's columns are the aggregated columns,
// named by the column they sum (not their alias), then the groupings, a
// tag key's as two columns, TagKey and TagValue (see tagColumns), then
// Currency; rows are paged by nextLink, a URL of the same operation with
// a $skiptoken, to which the client posts the same body again.
const (
	CostAPIVersion = "2022-10-01"
	// costPageRows is how many rows a page holds unless SetCostPageMax
	// says fewer.
	costPageRows = 1000
	// maxCostMonths is the longest custom time period the API takes
	// without a date granularity.
	maxCostMonths = 12
)

var costQueryPath = regexp.MustCompile(`^/subscriptions/([^/]+)/providers/microsoft\.costmanagement/query$`)

// costColumns are the columns the fake sums, with what each holds.
var costColumns = []string{"Cost", "CostUSD", "PreTaxCost", "PreTaxCostUSD"}

// costDimensions are the dimensions the fake groups by.
var costDimensions = []string{"ResourceType", "ResourceLocation", "ResourceGroupName", "ResourceId", "SubscriptionId"}

// CostQuery is the body of a Cost Management query, as version 2022-10-01
// defines it.
type CostQuery struct {
	Type       string          `json:"type"`
	Timeframe  string          `json:"timeframe"`
	TimePeriod *CostTimePeriod `json:"timePeriod,omitempty"`
	Dataset    *CostDataset    `json:"dataset"`
}

// CostTimePeriod is a custom time period, RFC 3339 date-times.
type CostTimePeriod struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// CostDataset is what a query sums and groups.
type CostDataset struct {
	Granularity   string                     `json:"granularity,omitempty"`
	Aggregation   map[string]CostAggregation `json:"aggregation,omitempty"`
	Grouping      []CostGrouping             `json:"grouping,omitempty"`
	Filter        json.RawMessage            `json:"filter,omitempty"`
	Configuration json.RawMessage            `json:"configuration,omitempty"`
}

// CostAggregation sums one column.
type CostAggregation struct {
	Name     string `json:"name"`
	Function string `json:"function"`
}

// CostGrouping groups by one column.
type CostGrouping struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// IsCostQuery reports whether r asks Cost Management for cost, the
// operation of the cost feed.
func IsCostQuery(r *http.Request) bool { return operation(r) == OpCostQuery }

// CostQueries returns the Cost Management query bodies that decoded, in
// arrival order.
func (s *Server) CostQueries() []CostQuery {
	var out []CostQuery
	for _, b := range s.Bodies(OpCostQuery) {
		var q CostQuery
		if json.Unmarshal([]byte(b), &q) == nil {
			out = append(out, q)
		}
	}
	return out
}

// SetCostPageMax makes cost query pages hold at most n rows; 0 restores
// the API's pages.
func (s *Server) SetCostPageMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.costPageMax = max(n, 0)
}

// costQuery is a validated CostQuery.
type costQuery struct {
	CostQuery
	sub        string // lower case
	from, to   provider.Month
	aggregates []string // source columns, by alias order
	groups     []costGroup
	offset     int
}

// costGroup is one grouping of a query: a dimension, or the key of a tag
// (tag set, dim empty).
type costGroup struct {
	dim, tag string
}

func (s *Server) serveCostQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested resource does not support http method '"+r.Method+"'.")
		return
	}
	if !checkAPIVersion(w, r, CostAPIVersion) || !s.authorize(w, r) {
		return
	}
	sub := costQueryPath.FindStringSubmatch(strings.ToLower(strings.TrimRight(r.URL.Path, "/")))[1]
	known := false
	for _, sb := range s.ds.Subscriptions {
		known = known || strings.EqualFold(sb.ID, sub)
	}
	switch {
	case !known:
		armError(w, http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found.", sub))
		return
	case !s.ds.costAllowed(sub):
		armError(w, http.StatusForbidden, "AuthorizationFailed", costDeniedMessage(sub))
		return
	}
	q, msg := parseCostQuery(body)
	if q == nil {
		armError(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	q.sub = sub
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		off, ok := s.parseCostToken(tok, q)
		if !ok {
			armError(w, http.StatusBadRequest, "BadRequest", "Invalid skiptoken: it is malformed or does not belong to this query.")
			return
		}
		q.offset = off
	}
	rows := s.costRows(q)
	size := costPageRows
	s.mu.Lock()
	if s.costPageMax > 0 {
		size = min(size, s.costPageMax)
	}
	s.mu.Unlock()
	page := rows[min(q.offset, len(rows)):min(q.offset+size, len(rows))]
	var next *string
	if q.offset+size < len(rows) {
		link := costNextLink(r, s.costToken(q, q.offset+size))
		next = &link
	}
	writeJSON(w, http.StatusOK, costResult(q, page, next))
}

// costDeniedMessage is ARM's answer to an identity without a Cost
// Management role on the subscription.
func costDeniedMessage(sub string) string {
	return "The client does not have authorization to perform action 'Microsoft.CostManagement/query/read' over scope '/subscriptions/" +
		sub + "' or the scope is invalid. If access was recently granted, please refresh your credentials."
}

// costNextLink is the URL of the next page: the same operation with
// $skiptoken.
func costNextLink(r *http.Request, token string) string {
	q := url.Values{}
	q.Set("api-version", CostAPIVersion)
	q.Set("$skiptoken", token)
	return baseURL(r) + r.URL.Path + "?" + q.Encode()
}

// costResult is the answer to q with rows and, when more follow, next.
func costResult(q *costQuery, rows [][]any, next *string) map[string]any {
	columns := []map[string]string{}
	for _, a := range q.aggregates {
		columns = append(columns, map[string]string{"name": a, "type": "Number"})
	}
	for _, g := range q.groups {
		if g.tag != "" {
			columns = append(columns, map[string]string{"name": "TagKey", "type": "String"}, map[string]string{"name": "TagValue", "type": "String"})
			continue
		}
		columns = append(columns, map[string]string{"name": g.dim, "type": "String"})
	}
	columns = append(columns, map[string]string{"name": "Currency", "type": "String"})
	id := fmt.Sprintf("%x", sha256.Sum256([]byte(q.sub+q.Timeframe)))[:32]
	guid := id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
	return map[string]any{
		"id":       "subscriptions/" + q.sub + "/providers/Microsoft.CostManagement/query/" + guid,
		"name":     guid,
		"type":     "Microsoft.CostManagement/query",
		"location": nil,
		"sku":      nil,
		"eTag":     nil,
		"properties": map[string]any{
			"nextLink": next,
			"columns":  columns,
			"rows":     rows,
		},
	}
}

// parseCostQuery validates a query body as the API does, for the parts
// the fake implements.
func parseCostQuery(body []byte) (*costQuery, string) {
	var q costQuery
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.CostQuery); err != nil {
		return nil, fmt.Sprintf("Invalid query definition: the request content could not be deserialized: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "Invalid query definition: trailing data after the JSON object."
	}
	switch q.Type {
	case "ActualCost", "AmortizedCost", "Usage":
	default:
		return nil, fmt.Sprintf("Invalid query type '%s': want ActualCost, AmortizedCost or Usage.", q.Type)
	}
	switch q.Timeframe {
	case "Custom":
	case "MonthToDate", "BillingMonthToDate", "TheLastMonth", "TheLastBillingMonth", "WeekToDate":
		return nil, fmt.Sprintf("Timeframe %s is not implemented by this fake; use Custom with a timePeriod.", q.Timeframe)
	default:
		return nil, fmt.Sprintf("Invalid timeframe '%s'.", q.Timeframe)
	}
	if msg := q.checkPeriod(); msg != "" {
		return nil, msg
	}
	if msg := q.checkDataset(); msg != "" {
		return nil, msg
	}
	return &q, ""
}

// checkPeriod reads the custom time period: whole months, from the first
// instant of one to the last day of one, at most 12 months.
func (q *costQuery) checkPeriod() string {
	if q.TimePeriod == nil || q.TimePeriod.From == "" || q.TimePeriod.To == "" {
		return "A timePeriod with from and to is required for timeframe Custom."
	}
	from, err1 := time.Parse(time.RFC3339, q.TimePeriod.From)
	to, err2 := time.Parse(time.RFC3339, q.TimePeriod.To)
	if err1 != nil || err2 != nil {
		return "timePeriod from and to must be RFC 3339 date-times."
	}
	from, to = from.UTC(), to.UTC()
	q.from, q.to = provider.MonthOf(from), provider.MonthOf(to)
	switch {
	case to.Before(from):
		return "timePeriod to must not be before from."
	case !from.Equal(q.from.Start()):
		return "This fake holds monthly figures only: timePeriod from must be the first instant of a month (yyyy-MM-01T00:00:00Z)."
	case to.AddDate(0, 0, 1).Month() == to.Month():
		return "This fake holds monthly figures only: timePeriod to must fall on the last day of a month."
	case int(q.to-q.from) >= maxCostMonths:
		return fmt.Sprintf("timePeriod spans more than %d months, the most a query without a date granularity covers.", maxCostMonths)
	}
	return ""
}

// checkDataset reads the dataset: no date granularity, one or two sums of
// cost columns, up to two groupings by dimension, no filter.
func (q *costQuery) checkDataset() string {
	ds := q.Dataset
	switch {
	case ds == nil:
		return "dataset is required."
	case ds.Granularity != "" && ds.Granularity != "None":
		return fmt.Sprintf("Granularity %s is not implemented by this fake, which holds monthly figures; omit it or send None.", ds.Granularity)
	case len(ds.Aggregation) == 0:
		return "dataset.aggregation is required by this fake: it serves sums only."
	case len(ds.Aggregation) > 2:
		return "Query can have up to 2 aggregation clauses."
	case len(ds.Grouping) > 2:
		return "Query can have up to 2 group by clauses."
	case len(ds.Filter) > 0 && string(ds.Filter) != "null":
		return "dataset.filter is not implemented by this fake."
	}
	for _, alias := range slices.Sorted(maps.Keys(ds.Aggregation)) {
		a := ds.Aggregation[alias]
		col := canonical(costColumns, a.Name)
		switch {
		case a.Function != "Sum":
			return fmt.Sprintf("Invalid aggregation function '%s' for '%s': want Sum.", a.Function, alias)
		case col == "":
			return fmt.Sprintf("Invalid aggregation column '%s': want one of %s.", a.Name, strings.Join(costColumns, ", "))
		case slices.Contains(q.aggregates, col):
			return fmt.Sprintf("Column '%s' is aggregated twice.", col)
		}
		q.aggregates = append(q.aggregates, col)
	}
	for _, g := range ds.Grouping {
		if msg := q.addGroup(g); msg != "" {
			return msg
		}
	}
	return ""
}

// addGroup reads one grouping: a dimension the fake knows, or one tag
// key (a second would repeat the TagKey and TagValue columns).
func (q *costQuery) addGroup(g CostGrouping) string {
	switch g.Type {
	case "TagKey":
		switch {
		case g.Name == "":
			return "Invalid dataset grouping: a TagKey grouping needs the name of a tag."
		case slices.ContainsFunc(q.groups, func(c costGroup) bool { return c.tag != "" }):
			return "This fake groups by one tag key at most."
		}
		q.groups = append(q.groups, costGroup{tag: g.Name})
		return ""
	case "Dimension":
	default:
		return fmt.Sprintf("Invalid grouping type '%s': want Dimension or TagKey.", g.Type)
	}
	dim := canonical(costDimensions, g.Name)
	switch {
	case dim == "":
		return fmt.Sprintf("Invalid grouping dimension '%s': this fake groups by %s.", g.Name, strings.Join(costDimensions, ", "))
	case slices.Contains(q.groups, costGroup{dim: dim}):
		return fmt.Sprintf("Dimension '%s' is grouped twice.", dim)
	}
	q.groups = append(q.groups, costGroup{dim: dim})
	return ""
}

// canonical returns the spelling of name in names, compared without
// case; "" when it is not one of them.
func canonical(names []string, name string) string {
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

// costRows sums the subscription's costs of q's months by q's groups,
// sorted by the groups' values, so that pages never overlap.
func (s *Server) costRows(q *costQuery) [][]any {
	currency := "USD"
	for _, sb := range s.ds.Subscriptions {
		if strings.EqualFold(sb.ID, q.sub) && sb.Currency != "" {
			currency = sb.Currency
		}
	}
	type group struct {
		values []any
		usd    float64
	}
	groups := map[string]*group{}
	for _, c := range s.ds.Costs {
		if !strings.EqualFold(c.SubscriptionID, q.sub) || c.Month < q.from || c.Month > q.to {
			continue
		}
		values := q.groupValues(c)
		k := groupKey(values)
		if groups[k] == nil {
			groups[k] = &group{values: values}
		}
		groups[k].usd += c.USD
	}
	keys := slices.Sorted(maps.Keys(groups))
	rows := make([][]any, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		var row []any
		for _, a := range q.aggregates {
			v := g.usd
			if (a == "Cost" || a == "PreTaxCost") && currency == "EUR" {
				v *= eurPerUSD
			}
			row = append(row, v)
		}
		row = append(row, g.values...)
		rows = append(rows, append(row, currency))
	}
	return rows
}

// groupValues are the values of c in q's grouping columns.
func (q *costQuery) groupValues(c Cost) []any {
	var values []any
	for _, g := range q.groups {
		switch g.dim {
		case "":
			name, value, ok := tagOf(c.Tags, g.tag)
			if !ok {
				values = append(values, nil, nil)
				continue
			}
			values = append(values, name, value)
		case "ResourceType":
			values = append(values, c.ResourceType)
		case "ResourceLocation":
			values = append(values, c.ResourceLocation)
		case "ResourceGroupName":
			values = append(values, strings.ToLower(c.ResourceGroup))
		case "ResourceId":
			values = append(values, strings.ToLower(c.ResourceID))
		case "SubscriptionId":
			values = append(values, strings.ToLower(c.SubscriptionID))
		}
	}
	return values
}

// groupKey is a map key of group values that tells null from "", and
// sorts by the values.
func groupKey(values []any) string {
	var b strings.Builder
	for _, v := range values {
		if s, ok := v.(string); ok {
			b.WriteString("\x01" + s)
		}
		b.WriteByte(0)
	}
	return b.String()
}

// costHash binds a $skiptoken to the query and scope that produced it.
func (s *Server) costHash(q *costQuery) string {
	b, _ := json.Marshal(q.CostQuery)
	mac := hmac.New(sha256.New, s.signKey)
	mac.Write([]byte(q.sub + "\x00"))
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:12])
}

func (s *Server) costToken(q *costQuery, offset int) string {
	return strconv.Itoa(offset) + "." + s.costHash(q)
}

func (s *Server) parseCostToken(tok string, q *costQuery) (int, bool) {
	o, h, ok := strings.Cut(tok, ".")
	n, err := strconv.Atoi(o)
	if !ok || err != nil || n < 0 || !hmac.Equal([]byte(h), []byte(s.costHash(q))) {
		return 0, false
	}
	return n, true
}

// CostEmptyPage answers a cost query with a page that holds no row but
// links to another, a new one each time, as a broken server might
// forever.
func CostEmptyPage(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("$skiptoken"), "empty-"))
	next := costNextLink(r, "empty-"+strconv.Itoa(n+1))
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "subscriptions/empty/providers/Microsoft.CostManagement/query/empty", "name": "empty",
		"type": "Microsoft.CostManagement/query",
		"properties": map[string]any{
			"nextLink": next,
			"columns": []map[string]string{{"name": "Cost", "type": "Number"}, {"name": "CostUSD", "type": "Number"},
				{"name": "ResourceType", "type": "String"}, {"name": "ResourceLocation", "type": "String"}, {"name": "Currency", "type": "String"}},
			"rows": []any{},
		},
	})
}

// CostErrorFault is the answer with status to a Cost Management query, in
// ARM's error shape, with the codes and messages Cost Management and ARM
// send: its throttling carries Cost Management's own
// x-ms-ratelimit-microsoft.costmanagement-* headers (seconds to wait per
// limit: queries per scope, per tenant) besides Retry-After.
func CostErrorFault(status int) Fault {
	var h http.Header
	code, msg := "", http.StatusText(status)
	switch status {
	case http.StatusUnauthorized:
		code, msg = "InvalidAuthenticationToken", "The access token is invalid."
	case http.StatusForbidden:
		code, msg = "AuthorizationFailed", costDeniedMessage("00000000-0000-0000-0000-000000000000")
	case http.StatusTooManyRequests:
		code, msg = "429", "Too many requests. Please retry."
		h = http.Header{
			"X-Ms-Ratelimit-Microsoft.costmanagement-Qpu-Retry-After":    {"1"},
			"X-Ms-Ratelimit-Microsoft.costmanagement-Entity-Retry-After": {"1"},
			"X-Ms-Ratelimit-Microsoft.costmanagement-Tenant-Retry-After": {"1"},
		}
	case http.StatusInternalServerError:
		code, msg = "InternalServerError", "An unexpected error occurred while processing the query."
	default:
		code = cmp.Or(strings.ReplaceAll(http.StatusText(status), " ", ""), strconv.Itoa(status))
	}
	body, _ := json.Marshal(armErrorBody(code, msg))
	return Fault{Status: status, Body: string(body), Header: h}
}
