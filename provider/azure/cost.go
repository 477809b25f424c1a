package azure

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/costmanagement/armcostmanagement/v2"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// CostPermission is the role that reads a subscription's cost (Reader
// and the other roles above it do too). The carbon data needs Carbon
// Optimization Reader; the two are granted apart.
const CostPermission = "Cost Management Reader"

// Columns of a Cost Management query's answer. An aggregated column is
// named by the column it sums (its alias is accepted too); Currency is
// the billing currency of Cost; a grouping by a tag key answers the
// TagKey and TagValue columns.
const (
	colCost     = "Cost"
	colCostUSD  = "CostUSD"
	colType     = "ResourceType"
	colLocation = "ResourceLocation"
	colCurrency = "Currency"
	colTagKey   = "TagKey"
	colTagValue = "TagValue"

	aliasCost    = "totalCost"
	aliasCostUSD = "totalCostUSD"
)

var _ provider.CostFeed = (*Provider)(nil)

// costTask is one paged cost query: one subscription, one month, and
// the tag key whose values it groups by ("" for Costs, TagCosts' key).
type costTask struct {
	month provider.Month
	sub   string
	tag   string
}

// what names the task's request in errors. A tag key is a key name,
// which the configuration may quote (it is no secret).
func (t *costTask) what(page int) string {
	if t.tag != "" {
		return fmt.Sprintf("POST Microsoft.CostManagement/query (subscription %s, %s, tag %q, page %d)", t.sub, t.month, t.tag, page)
	}
	return fmt.Sprintf("POST Microsoft.CostManagement/query (subscription %s, %s, page %d)", t.sub, t.month, page)
}

// costKey is what cost is summed by: the location for Costs, the tag's
// value for TagCosts (whose location is always "").
type costKey struct {
	month                             provider.Month
	account, service, location, value string
}

// Costs implements provider.CostFeed: the ActualCost of each month, the
// month in progress to date, per subscription, resource type and region,
// in US dollars, labelled as Fetch labels emissions (the subscription id,
// the ARM resource type in lower case, the ARM region name, which
// CostLocationName makes of Cost Management's spelling), so that a month's
// emissions per dollar match key for key.
//
// Query plan. One Cost Management query (Query - Usage, API version
// 2022-10-01) per subscription and month, at subscription scope: type
// ActualCost, a custom time period from the month's first instant to its
// last second (Cost Management cuts a period that runs into the future at
// today), no date granularity, the sums of Cost and CostUSD, grouped by
// ResourceType and ResourceLocation. A query takes two groupings at most,
// so the subscription is the scope rather than a third grouping; and a
// calendar month is asked for as a time period rather than through the
// Monthly granularity, whose rows follow billing months, which are not
// calendar months for pay-as-you-go subscriptions. More rows than a page
// holds come in further pages, each the same query posted to the
// answer's nextLink. Months that have not begun are not asked for.
//
// Cost per call: [subscription list pages, if listing] + subscriptions ×
// months × pages, within the request budget. Cost Management throttles
// queries per scope and per tenant; its 429s carry their delays in
// x-ms-ratelimit-microsoft.costmanagement-*-retry-after headers, which the
// retry policy honours as it honours Retry-After.
func (p *Provider) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	sums, err := p.readCosts(ctx, months, "")
	if err != nil || sums == nil {
		return nil, err
	}
	records := make([]provider.Record, 0, len(sums))
	for k, v := range sums {
		records = append(records, provider.Record{Provider: Name, Account: k.account, Service: k.service, Location: k.location,
			Scope: provider.ScopeNone, Month: k.month, CostUSD: v, Known: provider.Cost})
	}
	slices.SortFunc(records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Location, b.Location))
	})
	return records, nil
}

// readCosts runs the query plan of Costs, or of TagCosts when tag is
// set: one paged query per subscription and month begun, within the
// request budget (checked before the first query, when the need is
// known), the first query alone and the others Concurrency at a time.
// It returns the sums of every query by costKey; nil when no month has
// begun.
func (p *Provider) readCosts(ctx context.Context, months []provider.Month, tag string) (map[costKey]float64, error) {
	now := time.Now()
	var ms []provider.Month
	for _, m := range slices.Compact(slices.Sorted(slices.Values(months))) {
		if !m.Start().After(now) {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return nil, nil
	}
	rb := &requestBudget{limit: int64(p.opts.RequestBudget)}
	ctx = withCertRecord(context.WithValue(ctx, requestBudgetKey{}, rb))
	subs, err := p.subscriptions(ctx, true)
	if err != nil {
		return nil, err
	}
	if need := rb.used.Load() + int64(len(subs)*len(ms)); need > rb.limit {
		return nil, p.fail(provider.ReasonOther, 0, fmt.Errorf(
			"azure: reading the cost of %d months for %d subscriptions needs at least %d ARM requests (one Cost Management query per subscription and month, plus %d already made), more than the request budget of %d; raise the request budget or report on fewer subscriptions",
			len(ms), len(subs), need, rb.used.Load(), rb.limit))
	}
	var tasks []*costTask
	for _, s := range subs {
		for _, m := range ms {
			tasks = append(tasks, &costTask{month: m, sub: s.id, tag: tag})
		}
	}
	results, err := firstThenConcurrent(ctx, tasks, p.opts.Concurrency, p.runCostTask)
	if err != nil {
		return nil, err
	}
	sums := map[costKey]float64{}
	for _, r := range results {
		for k, v := range r {
			sums[k] += v
		}
	}
	for k, v := range sums {
		if !finite(v) {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed("POST Microsoft.CostManagement/query", fmt.Errorf(
				"the cost of subscription %s, %s, %s, %s sums beyond range", k.account, k.service, cmp.Or(k.location, "tag value "+strconv.Quote(p.oneLine(k.value))), k.month)))
		}
	}
	p.log.DebugContext(ctx, "azure costs done", "months", len(ms), "subscriptions", len(subs), "tag", tag,
		"sums", len(sums), "requests", rb.used.Load())
	return sums, nil
}

// firstThenConcurrent runs fn for every task, the first one alone and the
// others at most limit at once, and returns their results in task order:
// when the API throttles or fails, the first request learns it and the
// source-wide pause holds the others back (see runTasks).
func firstThenConcurrent[T, R any](ctx context.Context, tasks []T, limit int, fn func(context.Context, T) (R, error)) ([]R, error) {
	results := make([]R, len(tasks))
	if len(tasks) == 0 {
		return results, nil
	}
	var err error
	if results[0], err = fn(ctx, tasks[0]); err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, t := range tasks[1:] {
		g.Go(func() error {
			r, err := fn(gctx, t)
			results[i+1] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// costQuery is the query of one month: grouped by resource type and
// location, or, for tag key tag, by resource type and the tag (Cost
// Management takes two groupings at most, and the resource type is the
// one the emissions vary most with).
func costQuery(m provider.Month, tag string) armcostmanagement.QueryDefinition {
	second := &armcostmanagement.QueryGrouping{Type: to.Ptr(armcostmanagement.QueryColumnTypeDimension), Name: to.Ptr(colLocation)}
	if tag != "" {
		second = &armcostmanagement.QueryGrouping{Type: to.Ptr(armcostmanagement.QueryColumnTypeTagKey), Name: to.Ptr(tag)}
	}
	return armcostmanagement.QueryDefinition{
		Type:      to.Ptr(armcostmanagement.ExportTypeActualCost),
		Timeframe: to.Ptr(armcostmanagement.TimeframeTypeCustom),
		TimePeriod: &armcostmanagement.QueryTimePeriod{
			From: to.Ptr(m.Start()),
			To:   to.Ptr(m.End().Add(-time.Second)),
		},
		Dataset: &armcostmanagement.QueryDataset{
			// None (which the SDK's enum lacks) asks for no date
			// breakdown: one sum per group over the period.
			Granularity: to.Ptr(armcostmanagement.GranularityType("None")),
			Aggregation: map[string]*armcostmanagement.QueryAggregation{
				aliasCost:    {Name: to.Ptr(colCost), Function: to.Ptr(armcostmanagement.FunctionTypeSum)},
				aliasCostUSD: {Name: to.Ptr(colCostUSD), Function: to.Ptr(armcostmanagement.FunctionTypeSum)},
			},
			Grouping: []*armcostmanagement.QueryGrouping{
				{Type: to.Ptr(armcostmanagement.QueryColumnTypeDimension), Name: to.Ptr(colType)},
				second,
			},
		},
	}
}

// runCostTask runs one paged cost query, following nextLink until the
// answer has none. A nextLink seen twice is an error, not a loop; one
// that leaves the query would carry the bearer token elsewhere and is
// refused; pages that keep coming empty, or too many rows, end at the
// refresh's budget (httpx.Page).
func (p *Provider) runCostTask(ctx context.Context, t *costTask) (map[costKey]float64, error) {
	def := costQuery(t.month, t.tag)
	scope := "subscriptions/" + t.sub
	sums := map[costKey]float64{}
	seen := map[string]bool{}
	var link *url.URL
	for page := 1; ; page++ {
		what := t.what(page)
		if err := ctx.Err(); err != nil {
			return nil, p.classifyCost(ctx, what, err, nil)
		}
		if page > maxPages {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("more than %d pages", maxPages)))
		}
		var resp armcostmanagement.QueryClientUsageResponse
		err := p.callFor(ctx, costStatusHint, what, func(ctx context.Context, cl *clients) error {
			var err error
			resp, err = cl.cost.Usage(withNextLink(ctx, link), scope, def, nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		props := resp.Properties
		if props == nil {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("no properties")))
		}
		next := strings.TrimSpace(deref(props.NextLink))
		// A last page that holds nothing is a month without cost, not
		// a page in a run of empty ones.
		if len(props.Rows) > 0 || next != "" {
			if err := httpx.Page(ctx, len(props.Rows)); err != nil {
				return nil, p.classifyCost(ctx, what, err, nil)
			}
		}
		if err := p.addCostPage(sums, t, what, props); err != nil {
			return nil, err
		}
		p.log.DebugContext(ctx, "azure cost page", "month", t.month.String(), "subscription", t.sub, "tag", t.tag,
			"page", page, "rows", len(props.Rows), "more", next != "")
		if next == "" {
			return sums, nil
		}
		if seen[next] {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("nextLink repeats an earlier page's")))
		}
		seen[next] = true
		if link, err = p.costNextLink(next, t.sub); err != nil {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
		}
	}
}

// costNextLink checks that a nextLink is the same query at the configured
// resource manager endpoint, over https, and returns it.
func (p *Provider) costNextLink(next, sub string) (*url.URL, error) {
	arm, err := url.Parse(p.cloud.Services[cloud.ResourceManager].Endpoint)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(next)
	want := strings.ToLower(strings.TrimRight(arm.Path, "/") + "/subscriptions/" + sub + "/providers/Microsoft.CostManagement/query")
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, arm.Host) || strings.ToLower(strings.TrimRight(u.Path, "/")) != want {
		return nil, fmt.Errorf("nextLink leaves the Cost Management query of subscription %s at the resource manager endpoint %s", sub, arm.Host)
	}
	return u, nil
}

// costColumns are the positions of the columns a cost query's answer is
// read from; -1 for a column it lacks.
type costColumns struct {
	usd, local, currency, typ, location, tagKey, tagValue int
}

// columns finds the columns of props that t's rows are read from: an
// aggregated column by the column it sums or by its alias, the others
// by name, all without case.
func (p *Provider) columns(t *costTask, what string, props *armcostmanagement.QueryProperties) (costColumns, error) {
	col := map[string]int{}
	for i, c := range props.Columns {
		if c != nil && c.Name != nil {
			col[strings.ToLower(*c.Name)] = i
		}
	}
	index := func(names ...string) int {
		for _, n := range names {
			if i, ok := col[strings.ToLower(n)]; ok {
				return i
			}
		}
		return -1
	}
	c := costColumns{usd: index(colCostUSD, aliasCostUSD), local: index(colCost, aliasCost), currency: index(colCurrency),
		typ: index(colType), location: index(colLocation), tagKey: index(colTagKey), tagValue: index(colTagValue)}
	switch {
	case t.tag == "" && (c.typ < 0 || c.location < 0):
		return c, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("no %s or %s column", colType, colLocation)))
	case t.tag != "" && (c.typ < 0 || c.tagKey < 0 || c.tagValue < 0):
		return c, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("no %s, %s or %s column", colType, colTagKey, colTagValue)))
	case c.usd < 0 && (c.local < 0 || c.currency < 0):
		return c, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("no %s column, nor %s with its %s", colCostUSD, colCost, colCurrency)))
	}
	return c, nil
}

// addCostPage folds one page of a cost query into sums.
func (p *Provider) addCostPage(sums map[costKey]float64, t *costTask, what string, props *armcostmanagement.QueryProperties) error {
	if len(props.Rows) == 0 {
		return nil
	}
	cols, err := p.columns(t, what, props)
	if err != nil {
		return err
	}
	for i, row := range props.Rows {
		if len(row) != len(props.Columns) {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("row %d has %d values for %d columns", i+1, len(row), len(props.Columns))))
		}
		v, err := p.rowCost(cols, row, i)
		if err != nil {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
		}
		k, err := p.rowKey(t, cols, row, i)
		if err != nil {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, err))
		}
		sum := sums[k] + v
		if !finite(sum) {
			return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("row %d: the cost sums beyond range", i+1)))
		}
		sums[k] = sum
	}
	return nil
}

// rowCost is the US dollars of row i: its CostUSD, or its Cost when the
// answer has no CostUSD and the row is billed in dollars.
func (p *Provider) rowCost(cols costColumns, row []any, i int) (float64, error) {
	at := cols.usd
	if at < 0 {
		if c, ok := row[cols.currency].(string); !ok || !strings.EqualFold(strings.TrimSpace(c), "USD") {
			return 0, fmt.Errorf("row %d: cost in %s and no %s column", i+1, p.oneLine(fmt.Sprint(row[cols.currency])), colCostUSD)
		}
		at = cols.local
	}
	v, ok := row[at].(float64)
	if !ok || !finite(v) {
		text, _ := json.Marshal(row[at])
		return 0, fmt.Errorf("row %d: cost %s is not a number", i+1, p.oneLine(string(text)))
	}
	return v, nil
}

// rowKey is what row i of t's answer is summed by.
func (p *Provider) rowKey(t *costTask, cols costColumns, row []any, i int) (costKey, error) {
	typName, ok := optString(row[cols.typ])
	if !ok {
		return costKey{}, fmt.Errorf("row %d: %s is not a string", i+1, colType)
	}
	k := costKey{month: t.month, account: t.sub, service: costService(typName)}
	if t.tag != "" {
		v, err := p.tagValue(t.tag, row[cols.tagKey], row[cols.tagValue])
		if err != nil {
			return costKey{}, fmt.Errorf("row %d: %w", i+1, err)
		}
		k.value = v
		return k, nil
	}
	location, ok := optString(row[cols.location])
	if !ok {
		return costKey{}, fmt.Errorf("row %d: %s is not a string", i+1, colLocation)
	}
	k.location = provider.Truncate(CostLocationName(location), maxMessageBytes)
	return k, nil
}

// optString reads a string value, null as "".
func optString(v any) (string, bool) {
	if v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

// costService is the service label of a Cost Management resource type:
// the ARM resource type in lower case, as the carbon data's; charges that
// belong to no resource (Marketplace, support plans, reservations bought)
// come without one and are Unknown.
func costService(typ string) string {
	return cmp.Or(provider.Truncate(strings.ToLower(strings.TrimSpace(typ)), maxMessageBytes), Unknown)
}

// billingGeos are the geography codes that begin Cost Management's
// spelling of a region ("US East", "EU West", "AU Central 2"): the word
// the region's ARM name has for the geography, and whether the ARM name
// puts the direction before it (eastus, westeurope, southeastasia,
// centralindia) or after (japaneast, uksouth, australiacentral2).
var billingGeos = map[string]struct {
	arm      string
	dirFirst bool
}{
	"US": {"us", true}, "EU": {"europe", true}, "AP": {"asia", true}, "IN": {"india", true},
	"JA": {"japan", false}, "AU": {"australia", false}, "BR": {"brazil", false}, "CA": {"canada", false},
	"KR": {"korea", false}, "FR": {"france", false}, "DE": {"germany", false}, "CH": {"switzerland", false},
	"NO": {"norway", false}, "SE": {"sweden", false}, "ZA": {"southafrica", false}, "AE": {"uae", false},
	"QA": {"qatar", false}, "PL": {"poland", false}, "IT": {"italy", false}, "IL": {"israel", false},
	"MX": {"mexico", false}, "ES": {"spain", false}, "NZ": {"newzealand", false}, "UK": {"uk", false},
	"CN": {"china", false}, "TW": {"taiwan", false}, "MY": {"malaysia", false}, "ID": {"indonesia", false},
	"AT": {"austria", false}, "BE": {"belgium", false}, "CL": {"chile", false}, "DK": {"denmark", false},
}

// CostLocationName is the location label of a Cost Management
// ResourceLocation: the ARM region name, as the carbon data's
// (LocationName). Cost Management spells most regions by billing
// geography first ("US East", "EU West", "AP Southeast", "US West Central",
// "AU Central 2", "US Gov Virginia"), which becomes the ARM name (eastus,
// westeurope, southeastasia, westcentralus, australiacentral2,
// usgovvirginia); ARM names and display names ("eastus", "East US") are
// taken as LocationName takes them. What names no region ("Unknown",
// "Unassigned", "Global", none) keeps its own label, which no emissions
// share.
func CostLocationName(s string) string {
	words := strings.Fields(s)
	if len(words) < 2 {
		return LocationName(s)
	}
	geo, ok := billingGeos[strings.ToUpper(words[0])]
	if !ok {
		return LocationName(s)
	}
	rest, num := words[1:], ""
	if n := rest[len(rest)-1]; strings.Trim(n, "0123456789") == "" {
		rest, num = rest[:len(rest)-1], n
	}
	dir := strings.ToLower(strings.Join(rest, ""))
	if geo.dirFirst && !(len(rest) > 0 && (strings.EqualFold(rest[0], "gov") || strings.EqualFold(rest[0], "dod"))) {
		return dir + geo.arm + num
	}
	return geo.arm + dir + num
}

// costStatusHint is statusHint for Cost Management's answers.
func costStatusHint(code int) string {
	switch code {
	case http.StatusForbidden:
		return "reading cost for provisional months or allocate_by needs the " + CostPermission +
			" role (or Reader) on each subscription, or on a management group above them; the published emissions do not need it"
	case http.StatusNotFound:
		return "the subscription does not exist at this resource manager endpoint, or Cost Management is not available in its cloud"
	case http.StatusUnprocessableEntity:
		return "Cost Management does not serve this subscription's offer type (it serves Enterprise Agreement, Microsoft Customer Agreement and pay-as-you-go subscriptions); turn provisional off and remove allocate_by for this entry"
	case http.StatusTooManyRequests:
		return "Cost Management throttled the queries: it limits queries per subscription and per tenant"
	}
	return statusHint(code)
}

// nextLinkKey carries the nextLink of a cost query's next page in the
// request context, from runCostTask to nextLinkPolicy.
type nextLinkKey struct{}

func withNextLink(ctx context.Context, u *url.URL) context.Context {
	if u == nil {
		return ctx
	}
	return context.WithValue(ctx, nextLinkKey{}, u)
}

// nextLinkPolicy sends a cost query to the nextLink its context carries:
// Cost Management pages by posting the same query to the URL the answer
// names, which the generated client, built for the first page, has no
// parameter for. It is a per-call policy, so retries go to the link too.
// runCostTask has checked the link; the policy checks again that it stays
// on the host the SDK built the request for, the host the token is for.
type nextLinkPolicy struct{}

func (nextLinkPolicy) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	u, ok := raw.Context().Value(nextLinkKey{}).(*url.URL)
	if !ok {
		return req.Next()
	}
	if !strings.EqualFold(u.Host, raw.URL.Host) {
		return nil, fmt.Errorf("nextLink host %s is not the resource manager endpoint's", u.Host)
	}
	next := *u
	raw.URL, raw.Host = &next, next.Host
	return req.Next()
}

// costRetryAfterPolicy gives a throttled Cost Management answer the
// Retry-After its own headers ask for: Cost Management states the wait of
// each limit it enforces (queries per scope, per tenant, ...) in
// x-ms-ratelimit-microsoft.costmanagement-*-retry-after headers, in
// seconds, which azcore's retry policy does not read. The longest of them
// becomes Retry-After, unless that asks longer already. It is a per-retry
// policy, below the retry policy, which then waits as the server asked,
// or gives up at once when that is past the longest retry delay.
type costRetryAfterPolicy struct{}

func (costRetryAfterPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	if d := costManagementRetryAfter(resp.Header); d > 0 {
		if cur, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); !ok || cur < d {
			resp.Header.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
		}
	}
	return resp, nil
}

// costManagementRetryAfter returns the longest wait Cost Management's
// x-ms-ratelimit-microsoft.costmanagement-*-retry-after headers ask for,
// bounded by httpx.MaxRetryAfter; 0 without them.
func costManagementRetryAfter(h http.Header) time.Duration {
	var longest time.Duration
	for name, vs := range h {
		n := strings.ToLower(name)
		if !strings.HasPrefix(n, "x-ms-ratelimit-microsoft.costmanagement-") || !strings.HasSuffix(n, "-retry-after") {
			continue
		}
		for _, v := range vs {
			if s, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && s > 0 && !math.IsInf(s, 0) {
				longest = max(longest, time.Duration(min(s, httpx.MaxRetryAfter.Seconds())*float64(time.Second)))
			}
		}
	}
	return longest
}
