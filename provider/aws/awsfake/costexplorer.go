package awsfake

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Cost Explorer speaks awsJson1.1: POST / with the operation in
// X-Amz-Target, signed for the service "ce".
const (
	// CostExplorerTarget prefixes the X-Amz-Target of Cost Explorer's
	// operations.
	CostExplorerTarget = "AWSInsightsIndexService."
	// OpCostAndUsage is GetCostAndUsage, the key of Requests, Bodies and
	// Inject.
	OpCostAndUsage = "GetCostAndUsage"
	// ActionCostAndUsage is the IAM action GetCostAndUsage needs, for
	// Deny.
	ActionCostAndUsage = "ce:GetCostAndUsage"

	costExplorerSigningName = "ce"
	costContentType         = "application/x-amz-json-1.1"
	// defaultCostPageSize is how many groups a page holds: Cost Explorer
	// documents no figure, and pages by groups across the periods.
	defaultCostPageSize = 1000
	// maxGroupKey is the longest key of a GroupDefinition and of a filter
	// the model allows.
	maxGroupKey = 1024
	// costHistoryMonths is how far back Cost Explorer serves monthly data:
	// the 13 months before the current one (without the multi-year
	// opt-in, which the fake does not model).
	costHistoryMonths = 13
)

// Cost Explorer's values the fake understands.
var (
	costMetrics    = []string{"AmortizedCost", "UnblendedCost"}
	costDimensions = []string{"LINKED_ACCOUNT", "REGION", "SERVICE", "RECORD_TYPE"}
)

// IsCostAndUsage reports whether r is a GetCostAndUsage request, for
// tests that select Cost Explorer's requests.
func IsCostAndUsage(r *http.Request) bool {
	return r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == CostExplorerTarget+OpCostAndUsage
}

// CostFault is Cost Explorer's answer with status, in awsJson1.1's
// shape: the error code in the body's __type and in X-Amzn-ErrorType.
// Cost Explorer throttles with LimitExceededException.
func CostFault(status int) Fault {
	code, msg := "", http.StatusText(status)
	switch status {
	case http.StatusUnauthorized:
		code, msg = "UnrecognizedClientException", "The security token included in the request is invalid."
	case http.StatusForbidden:
		code, msg = "AccessDeniedException", costDeniedMessage()
	case http.StatusTooManyRequests:
		code, msg = "LimitExceededException", "You have exceeded the rate limit for this operation."
	case http.StatusInternalServerError:
		code, msg = "InternalFailure", "An internal error occurred."
	}
	body, _ := json.Marshal(map[string]string{"__type": code, "Message": msg})
	h := http.Header{"Content-Type": {costContentType}}
	if code != "" {
		h.Set("X-Amzn-Errortype", code)
	}
	return Fault{Status: status, Header: h, Body: string(body)}
}

func costDeniedMessage() string {
	return "User: arn:aws:iam::" + DemoManagementAccount + ":user/cloudcarbon is not authorized to perform: " + ActionCostAndUsage +
		" on resource: arn:aws:ce:us-east-1:" + DemoManagementAccount + ":/GetCostAndUsage because no identity-based policy allows the " +
		ActionCostAndUsage + " action"
}

// CostEmptyPage answers a GetCostAndUsage request with a page that holds
// no group but a NextPageToken, a new one every time, as a broken service
// might forever.
func CostEmptyPage(w http.ResponseWriter, r *http.Request) {
	var in struct{ NextPageToken string }
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	_ = json.Unmarshal(body, &in)
	n, _ := strconv.Atoi(in.NextPageToken)
	w.Header().Set("Content-Type", costContentType)
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(wireCostPage{ResultsByTime: []wireResultByTime{}, GroupDefinitions: []wireGroupDefinition{},
		DimensionValueAttributes: []any{}, NextPageToken: strconv.Itoa(n + 1)})
}

// Wire shapes of GetCostAndUsage (the costexplorer module's types).
type wireCostRequest struct {
	TimePeriod     *wireDateInterval     `json:"TimePeriod"`
	Granularity    string                `json:"Granularity"`
	Metrics        []string              `json:"Metrics"`
	GroupBy        []wireGroupDefinition `json:"GroupBy"`
	Filter         *wireExpression       `json:"Filter"`
	BillingViewArn *string               `json:"BillingViewArn"`
	NextPageToken  *string               `json:"NextPageToken"`
}

type wireDateInterval struct {
	Start string `json:"Start"`
	End   string `json:"End"`
}

type wireGroupDefinition struct {
	Type string `json:"Type"`
	Key  string `json:"Key"`
}

type wireExpression struct {
	And            []wireExpression     `json:"And"`
	Or             []wireExpression     `json:"Or"`
	Not            *wireExpression      `json:"Not"`
	Dimensions     *wireDimensionValues `json:"Dimensions"`
	Tags           *wireDimensionValues `json:"Tags"`
	CostCategories json.RawMessage      `json:"CostCategories"`
}

// wireDimensionValues is DimensionValues, and TagValues, which has the
// same members.
type wireDimensionValues struct {
	Key          string   `json:"Key"`
	Values       []string `json:"Values"`
	MatchOptions []string `json:"MatchOptions"`
}

type wireMetricValue struct {
	Amount string `json:"Amount"`
	Unit   string `json:"Unit"`
}

type wireGroup struct {
	Keys    []string                   `json:"Keys"`
	Metrics map[string]wireMetricValue `json:"Metrics"`
}

type wireResultByTime struct {
	TimePeriod wireDateInterval           `json:"TimePeriod"`
	Total      map[string]wireMetricValue `json:"Total"`
	Groups     []wireGroup                `json:"Groups"`
	Estimated  bool                       `json:"Estimated"`
}

type wireCostPage struct {
	GroupDefinitions         []wireGroupDefinition `json:"GroupDefinitions"`
	ResultsByTime            []wireResultByTime    `json:"ResultsByTime"`
	DimensionValueAttributes []any                 `json:"DimensionValueAttributes"`
	NextPageToken            string                `json:"NextPageToken,omitempty"`
}

const costDate = "2006-01-02"

// serveCostAndUsage is Cost Explorer's GetCostAndUsage.
func (s *Server) serveCostAndUsage(w http.ResponseWriter, r *http.Request, body []byte) {
	if e := s.verify(r, body, costExplorerSigningName); e != nil {
		costError(w, e)
		return
	}
	s.mu.Lock()
	_, denied := s.denied[ActionCostAndUsage]
	ds := s.ds
	limit := s.pageLimit
	s.mu.Unlock()
	if denied {
		// Cost Explorer, an awsJson service, answers a denial with 400.
		costError(w, &apiError{http.StatusBadRequest, "AccessDeniedException", costDeniedMessage()})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, costContentType) {
		costError(w, validation("Content-Type must be %s.", costContentType))
		return
	}
	out, e := costAndUsage(&ds, body, limit)
	if e != nil {
		costError(w, e)
		return
	}
	w.Header().Set("Content-Type", costContentType)
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(out)
}

// costError answers as awsJson1.1 services do: the code in the body's
// __type (and in X-Amzn-ErrorType), the message in Message.
func costError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", costContentType)
	w.Header().Set("X-Amzn-Errortype", e.code)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "Message": e.message})
}

// costQuery is a decoded and checked GetCostAndUsage request.
type costQuery struct {
	req        wireCostRequest
	start, end provider.Month // end exclusive
	offset     int
	size       int
	hash       string
}

// decodeCost parses and checks a request as the fake reads Cost
// Explorer: unknown members, a missing or inverted period, a period
// outside the 13 months before the current one and the current one to
// date, more than two groupings, dimensions and metrics the fake does not
// serve and a foreign page token are ValidationExceptions.
func decodeCost(body []byte, today time.Time, limit int) (*costQuery, *apiError) {
	var q costQuery
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, validation("Invalid request body: %v", err)
	}
	for k := range raw {
		if !slices.Contains([]string{"TimePeriod", "Granularity", "Metrics", "GroupBy", "Filter", "BillingViewArn", "NextPageToken"}, k) {
			return nil, validation("Unknown member %q.", k)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q.req); err != nil {
		return nil, validation("Invalid request body: %v", err)
	}
	if q.req.TimePeriod == nil || len(q.req.Metrics) == 0 || q.req.Granularity == "" {
		return nil, validation("TimePeriod, Granularity and Metrics are required.")
	}
	start, err1 := time.Parse(costDate, q.req.TimePeriod.Start)
	end, err2 := time.Parse(costDate, q.req.TimePeriod.End)
	current := provider.MonthOf(today)
	switch {
	case err1 != nil || err2 != nil:
		return nil, validation("TimePeriod Start and End must be dates such as 2017-01-01.")
	case !start.Before(end):
		return nil, validation("Start date (and hour) should be before end date (and hour)")
	case start.After(today):
		return nil, validation("Start date must be equal to or no later than the current date to avoid a validation error.")
	case end.After(current.End()):
		return nil, validation("end date past the beginning of next month")
	case start.Before(current.Add(-costHistoryMonths).Start()):
		return nil, validation("Start date is too old: Cost Explorer serves the last %d months and the current one.", costHistoryMonths)
	case !start.Equal(provider.MonthOf(start).Start()) || !end.Equal(provider.MonthOf(end).Start()):
		return nil, validation("The fake serves whole months: Start and End must be first days of months.")
	case q.req.Granularity != "MONTHLY":
		return nil, validation("The fake serves Granularity MONTHLY only, not %q.", q.req.Granularity)
	case q.req.BillingViewArn != nil:
		return nil, validation("The fake serves the primary billing view only.")
	}
	q.start, q.end = provider.MonthOf(start), provider.MonthOf(end)
	for _, m := range q.req.Metrics {
		if !slices.Contains(costMetrics, m) {
			return nil, validation("The fake serves the metrics %s, not %q.", strings.Join(costMetrics, " and "), m)
		}
	}
	if len(q.req.GroupBy) > 2 {
		return nil, validation("You can only group by up to two different groups.")
	}
	for _, g := range q.req.GroupBy {
		switch {
		case g.Type == "TAG" && (g.Key == "" || len(g.Key) > maxGroupKey):
			return nil, validation("A TAG group's key must be 1 to %d characters.", maxGroupKey)
		case g.Type != "TAG" && (g.Type != "DIMENSION" || !slices.Contains(costDimensions, g.Key)):
			return nil, validation("The fake groups by tags and by the dimensions %s, not %s %q.", strings.Join(costDimensions, ", "), g.Type, g.Key)
		}
	}
	if q.req.Filter != nil {
		if e := q.req.Filter.check(); e != nil {
			return nil, e
		}
	}
	q.size = defaultCostPageSize
	if limit > 0 {
		q.size = min(q.size, limit)
	}
	paging := q.req
	paging.NextPageToken = nil
	key, _ := json.Marshal(paging)
	sum := sha256.Sum256(key)
	q.hash = hex.EncodeToString(sum[:8])
	if q.req.NextPageToken != nil {
		off, ok := parseToken(*q.req.NextPageToken, q.hash)
		if !ok {
			return nil, &apiError{http.StatusBadRequest, "InvalidNextTokenException", "The pagination token is invalid."}
		}
		q.offset = off
	}
	return &q, nil
}

// check refuses an expression Cost Explorer would: each expression is
// exactly one of And, Or, Not, Dimensions and Tags (the fake serves no
// cost categories), And and Or have at least two operands.
func (e *wireExpression) check() *apiError {
	n := 0
	for _, set := range []bool{e.And != nil, e.Or != nil, e.Not != nil, e.Dimensions != nil, e.Tags != nil, len(e.CostCategories) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return validation("Expression must have exactly one root element.")
	case len(e.CostCategories) > 0:
		return validation("The fake filters by dimensions and tags only.")
	case e.And != nil && len(e.And) < 2, e.Or != nil && len(e.Or) < 2:
		return validation("And and Or take at least two expressions.")
	case e.Not != nil:
		return e.Not.check()
	case e.Dimensions != nil:
		if !slices.Contains(costDimensions, e.Dimensions.Key) || len(e.Dimensions.Values) == 0 {
			return validation("The fake filters by the dimensions %s with at least one value.", strings.Join(costDimensions, ", "))
		}
		return e.Dimensions.checkOptions("Dimensions")
	case e.Tags != nil:
		// The fake filters on values; a filter on the key's absence
		// (MatchOptions ABSENT) it does not serve.
		if e.Tags.Key == "" || len(e.Tags.Key) > maxGroupKey || len(e.Tags.Values) == 0 {
			return validation("The fake filters by a tag key of 1 to %d characters with at least one value.", maxGroupKey)
		}
		return e.Tags.checkOptions("Tags")
	}
	for _, sub := range append(e.And, e.Or...) {
		if err := sub.check(); err != nil {
			return err
		}
	}
	return nil
}

func (d *wireDimensionValues) checkOptions(what string) *apiError {
	for _, o := range d.MatchOptions {
		if o != "EQUALS" && o != "CASE_SENSITIVE" {
			return validation("MatchOptions for %s must be EQUALS or CASE_SENSITIVE, not %q.", what, o)
		}
	}
	return nil
}

// match evaluates the expression on a cost row.
func (e *wireExpression) match(c *CostRow) bool {
	switch {
	case e.Not != nil:
		return !e.Not.match(c)
	case e.And != nil:
		for i := range e.And {
			if !e.And[i].match(c) {
				return false
			}
		}
		return true
	case e.Or != nil:
		for i := range e.Or {
			if e.Or[i].match(c) {
				return true
			}
		}
		return false
	case e.Tags != nil:
		return slices.Contains(e.Tags.Values, c.Tags[e.Tags.Key])
	}
	return slices.Contains(e.Dimensions.Values, costDimension(c, e.Dimensions.Key))
}

// groupKey is a row's key in group g: a dimension's value, or a tag's
// key and value as Cost Explorer spells them, "key$value", and "key$"
// for cost without the tag.
func groupKey(c *CostRow, g wireGroupDefinition) string {
	if g.Type == "TAG" {
		return g.Key + "$" + c.Tags[g.Key]
	}
	return costDimension(c, g.Key)
}

func costDimension(c *CostRow, key string) string {
	switch key {
	case "LINKED_ACCOUNT":
		return c.Account
	case "REGION":
		return c.Region
	case "SERVICE":
		return c.Service
	case "RECORD_TYPE":
		return c.RecordType
	}
	return ""
}

// formatAmount writes a metric's amount as Cost Explorer does, a decimal
// string, exactly.
func formatAmount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func costAndUsage(ds *Dataset, body []byte, limit int) (any, *apiError) {
	today := ds.today()
	q, e := decodeCost(body, today, limit)
	if e != nil {
		return nil, e
	}
	type key struct {
		month provider.Month
		keys  string
	}
	type sums struct {
		keys                 []string
		amortized, unblended float64
	}
	groups := make(map[key]*sums)
	totals := make(map[provider.Month]*sums)
	for i := range ds.Costs {
		c := &ds.Costs[i]
		if c.Month < q.start || c.Month >= q.end || q.req.Filter != nil && !q.req.Filter.match(c) {
			continue
		}
		var ks []string
		for _, g := range q.req.GroupBy {
			ks = append(ks, groupKey(c, g))
		}
		k := key{c.Month, strings.Join(ks, "\x00")}
		g := groups[k]
		if g == nil {
			g = &sums{keys: ks}
			groups[k] = g
		}
		g.amortized += c.Amortized
		g.unblended += c.Unblended
		t := totals[c.Month]
		if t == nil {
			t = &sums{}
			totals[c.Month] = t
		}
		t.amortized += c.Amortized
		t.unblended += c.Unblended
	}
	metrics := func(s *sums) map[string]wireMetricValue {
		out := make(map[string]wireMetricValue, len(q.req.Metrics))
		for _, m := range q.req.Metrics {
			v := s.amortized
			if m == "UnblendedCost" {
				v = s.unblended
			}
			out[m] = wireMetricValue{Amount: formatAmount(v), Unit: "USD"}
		}
		return out
	}
	page := wireCostPage{GroupDefinitions: q.req.GroupBy, DimensionValueAttributes: []any{}}
	if page.GroupDefinitions == nil {
		page.GroupDefinitions = []wireGroupDefinition{}
	}
	if len(q.req.GroupBy) == 0 {
		// One total per month, on a single page.
		for m := q.start; m < q.end; m++ {
			t := totals[m]
			if t == nil {
				t = &sums{}
			}
			page.ResultsByTime = append(page.ResultsByTime, wireResultByTime{TimePeriod: costPeriod(m), Total: metrics(t),
				Groups: []wireGroup{}, Estimated: m >= provider.MonthOf(today)})
		}
		return page, nil
	}
	all := slices.SortedFunc(maps.Keys(groups), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.month, b.month), cmp.Compare(a.keys, b.keys))
	})
	if q.offset > len(all) {
		return nil, &apiError{http.StatusBadRequest, "InvalidNextTokenException", "The pagination token is invalid."}
	}
	end := min(q.offset+q.size, len(all))
	// Every period of the request appears on every page, with the groups
	// of the page.
	byMonth := make(map[provider.Month][]wireGroup)
	for _, k := range all[q.offset:end] {
		g := groups[k]
		byMonth[k.month] = append(byMonth[k.month], wireGroup{Keys: g.keys, Metrics: metrics(g)})
	}
	for m := q.start; m < q.end; m++ {
		gs := byMonth[m]
		if gs == nil {
			gs = []wireGroup{}
		}
		page.ResultsByTime = append(page.ResultsByTime, wireResultByTime{TimePeriod: costPeriod(m), Total: map[string]wireMetricValue{},
			Groups: gs, Estimated: m >= provider.MonthOf(today)})
	}
	if end < len(all) {
		page.NextPageToken = token(end, q.hash)
	}
	return page, nil
}

func costPeriod(m provider.Month) wireDateInterval {
	return wireDateInterval{Start: m.Start().Format(costDate), End: m.End().Format(costDate)}
}

// String names a cost row, for test failures.
func (c CostRow) String() string {
	return fmt.Sprintf("%s %s/%s/%s/%s: %v (unblended %v)", c.Month, c.Account, c.Region, c.Service, c.RecordType, c.Amortized, c.Unblended)
}
