package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// dateRange returns the first and last month the API has data for.
func (p *Provider) dateRange(ctx context.Context) (first, last provider.Month, err error) {
	const what = "POST queryCarbonEmissionDataAvailableDateRange"
	var resp armcarbonoptimization.CarbonServiceClientQueryCarbonEmissionDataAvailableDateRangeResponse
	err = p.call(ctx, what, func(ctx context.Context, cl *clients) error {
		var err error
		resp, err = cl.carbon.QueryCarbonEmissionDataAvailableDateRange(ctx, nil)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if resp.StartDate == nil || resp.EndDate == nil {
		return 0, 0, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("startDate or endDate missing")))
	}
	if first, err = parseAPIDate(*resp.StartDate); err == nil {
		last, err = parseAPIDate(*resp.EndDate)
	}
	if err != nil {
		return 0, 0, p.fail(provider.ReasonMalformed, 0, malformed(what, err))
	}
	if last < first {
		return 0, 0, p.fail(provider.ReasonMalformed, 0, malformed(what,
			fmt.Errorf("endDate %s before startDate %s", *resp.EndDate, *resp.StartDate)))
	}
	p.log.DebugContext(ctx, "azure available date range", "start", first.String(), "end", last.String())
	return first, last, nil
}

// parseAPIDate reads the month of a "yyyy-MM-dd" date; a time part, should
// the API add one, is ignored.
func parseAPIDate(s string) (provider.Month, error) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && (s[10] == 'T' || s[10] == ' ') {
		s = s[:10]
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("date %q: want yyyy-MM-dd", s)
	}
	return provider.MonthOf(t), nil
}

// filter is the first page's query of t.
func (p *Provider) filter(t *task) *armcarbonoptimization.ItemDetailsQueryFilter {
	return &armcarbonoptimization.ItemDetailsQueryFilter{
		ReportType:       to.Ptr(armcarbonoptimization.ReportTypeEnumItemDetailsReport),
		SubscriptionList: to.SliceOfPtrs(t.batch...),
		CarbonScopeList:  []*armcarbonoptimization.EmissionScopeEnum{to.Ptr(scopes[t.scope].api)},
		DateRange:        &armcarbonoptimization.DateRange{Start: to.Ptr(t.month.Start()), End: to.Ptr(t.month.Start())},
		CategoryType:     to.Ptr(armcarbonoptimization.CategoryTypeEnumResource),
		// ItemName is a key that does not change between pages, unlike
		// the emission figures.
		OrderBy:       to.Ptr(armcarbonoptimization.OrderByColumnEnumItemName),
		SortDirection: to.Ptr(armcarbonoptimization.SortDirectionEnumAsc),
		PageSize:      to.Ptr(int32(p.opts.PageSize)),
	}
}

// runTask runs one paged report query, following skipToken until the API
// stops sending one. The token goes back in the next request's body; the
// API has no nextLink. A token seen twice is an error, not a loop; pages
// that keep coming empty, or too many items, end at the refresh's budget
// (httpx.Page).
func (p *Provider) runTask(ctx context.Context, t *task) (*taskResult, error) {
	filter := p.filter(t)
	res := newTaskResult()
	seen := map[string]bool{}
	for page := 1; ; page++ {
		what := t.what(page)
		if err := ctx.Err(); err != nil {
			// Another task failed (or the caller gave up): send nothing.
			return nil, p.classify(ctx, what, err, nil)
		}
		if page > maxPages {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("more than %d pages", maxPages)))
		}
		var resp armcarbonoptimization.CarbonServiceClientQueryCarbonEmissionReportsResponse
		err := p.call(ctx, what, func(ctx context.Context, cl *clients) error {
			var err error
			resp, err = cl.carbon.QueryCarbonEmissionReports(ctx, filter, nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := httpx.Page(ctx, len(resp.Value)); err != nil {
			return nil, p.classify(ctx, what, err, nil)
		}
		if err := p.addPage(res, t, what, resp.CarbonEmissionDataListResult); err != nil {
			return nil, err
		}
		more := resp.SkipToken != nil && *resp.SkipToken != ""
		p.log.DebugContext(ctx, "azure report page", "month", t.month.String(), "scope", string(scopes[t.scope].api),
			"subscriptions", fmt.Sprintf("%d-%d", t.from, t.to), "page", page, "items", len(resp.Value), "more", more)
		if !more {
			return res, nil
		}
		if seen[*resp.SkipToken] {
			return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("skipToken repeats an earlier page's")))
		}
		seen[*resp.SkipToken] = true
		filter.SkipToken = to.Ptr(*resp.SkipToken)
	}
}

// addPage folds one page of a report into res: its items and its access
// decisions.
func (p *Provider) addPage(res *taskResult, t *task, what string, page armcarbonoptimization.CarbonEmissionDataListResult) error {
	if page.Value == nil {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("no value array")))
	}
	for _, item := range page.Value {
		if err := p.addItem(res, t, what, item); err != nil {
			return err
		}
	}
	for _, d := range page.SubscriptionAccessDecisionList {
		if d == nil || d.SubscriptionID == nil || d.Decision == nil || *d.Decision != armcarbonoptimization.AccessDecisionEnumDenied {
			continue
		}
		id := strings.ToLower(strings.TrimSpace(*d.SubscriptionID))
		if res.denied[id] == "" && d.DenialReason != nil {
			res.denied[id] = p.oneLine(*d.DenialReason)
		} else if _, ok := res.denied[id]; !ok {
			res.denied[id] = ""
		}
	}
	return nil
}

// addItem folds one report item into res. Only Resource items are
// expected (see resourceItem).
//
// Items missing a dimension are kept under a placeholder rather than
// failing the fetch or dropping their emissions: the subscription and
// resource type are recovered from resourceId when possible, else the
// subscription becomes provider.AccountPlaceholder and the resource type or
// location Unknown.
//
// A negative figure is not a measurement. Summed into the other resources
// of its record it would lower their figure unseen, so it is summed apart
// and reported in a record of its own, which the refresher leaves out and
// counts (provider.Record.Sanitize).
func (p *Provider) addItem(res *taskResult, t *task, what string, item armcarbonoptimization.CarbonEmissionDataClassification) error {
	it, err := p.resourceItem(what, item)
	if err != nil {
		return err
	}
	account, service := subscriptionAndType(deref(it.SubscriptionID), deref(it.ResourceType), deref(it.ResourceID))
	k := recordKey{
		month:    t.month,
		scope:    scopes[t.scope].label,
		account:  account,
		service:  service,
		location: LocationName(deref(it.Location)),
	}
	sums := res.kg
	if *it.LatestMonthEmissions < 0 {
		sums = res.negative
	}
	// JSON has no NaN or infinity, but a huge figure overflows once
	// summed or converted to grams, and must never reach a metric.
	sum := sums[k] + *it.LatestMonthEmissions
	if !finite(sum * GramsPerKilogram) {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf(
			"item %q: latestMonthEmissions %g, or its sum, is out of range", deref(it.ResourceID), *it.LatestMonthEmissions)))
	}
	sums[k] = sum
	return nil
}

// resourceItem returns item as a Resource item with emissions. The SDK
// decodes an item whose dataType it does not know into the base
// *CarbonEmissionData, which carries no dimensions: such items, and known
// types of other categories, make the response malformed rather than
// silently dropping emissions.
func (p *Provider) resourceItem(what string, item armcarbonoptimization.CarbonEmissionDataClassification) (*armcarbonoptimization.ResourceCarbonEmissionItemDetailData, error) {
	it, ok := item.(*armcarbonoptimization.ResourceCarbonEmissionItemDetailData)
	switch {
	case item == nil || ok && it == nil:
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("null item in value")))
	case ok && it.LatestMonthEmissions == nil:
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("item %q without latestMonthEmissions", deref(it.ResourceID))))
	case ok:
		return it, nil
	}
	dataType := ""
	if d := item.GetCarbonEmissionData(); d != nil && d.DataType != nil {
		dataType = string(*d.DataType)
	}
	if dataType == "" {
		return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("item without dataType in value")))
	}
	return nil, p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("item of dataType %q in value, want %q for categoryType Resource",
		p.oneLine(dataType), armcarbonoptimization.ResponseDataTypeEnumResourceItemDetailsData)))
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// subscriptionAndType returns the record's account and service labels:
// the item's lower-cased subscription id and resource type, each recovered
// from the resource id when the item lacks it.
func subscriptionAndType(sub, typ, resourceID string) (account, service string) {
	account = strings.ToLower(strings.TrimSpace(sub))
	service = strings.ToLower(strings.TrimSpace(typ))
	if account == "" || service == "" {
		idSub, idType := parseResourceID(resourceID)
		account = cmp.Or(account, idSub, provider.AccountPlaceholder)
		service = cmp.Or(service, idType, Unknown)
	}
	return account, service
}

// parseResourceID extracts the subscription and the resource type from an
// ARM resource id, lower-cased:
//
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{child type}/{child name}...]
//
// gives {sub} and {ns}/{type}[/{child type}...]. For extension resources,
// which nest a second providers segment, the last one names the type.
func parseResourceID(id string) (sub, typ string) {
	parts := strings.Split(strings.Trim(strings.ToLower(strings.TrimSpace(id)), "/"), "/")
	if len(parts) >= 2 && parts[0] == "subscriptions" {
		sub = parts[1]
	}
	at := -1
	for i, s := range parts {
		if s == "providers" {
			at = i
		}
	}
	if at < 0 || at+2 >= len(parts) {
		return sub, ""
	}
	types := []string{parts[at+1]}
	for i := at + 2; i < len(parts); i += 2 {
		types = append(types, parts[i])
	}
	return sub, strings.Join(types, "/")
}

// LocationName normalises a location to its ARM name. The API reports
// Azure region display names in lower case ("east us"); ARM names are the
// display names lower-cased with the spaces removed:
//
//	"east us"          → "eastus"
//	"West US 2"        → "westus2"
//	"usgov virginia"   → "usgovvirginia"
//	"eastus"           → "eastus" (already an ARM name)
//	""                 → "unknown"
//
// This holds for every Azure region, sovereign clouds included, so no table
// of exceptions is needed; labels therefore match those of other Azure
// tools (Cost Management exports, Azure Monitor).
func LocationName(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	if s == "" {
		return Unknown
	}
	return s
}
