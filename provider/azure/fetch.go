package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"golang.org/x/sync/errgroup"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// scopes are the GHG scopes asked for, one request each: the API answers
// the sum of the scopes a request lists, so only single-scope requests
// give the split.
var scopes = [...]struct {
	api   armcarbonoptimization.EmissionScopeEnum
	label provider.Scope
}{
	{armcarbonoptimization.EmissionScopeEnumScope1, provider.Scope1},
	{armcarbonoptimization.EmissionScopeEnumScope2, provider.Scope2},
	{armcarbonoptimization.EmissionScopeEnumScope3, provider.Scope3},
}

// ParentTypeTenant is the parent type of every subscription's _info entry.
const ParentTypeTenant = "tenant"

// subscription is a subscription to report on, with what listing told us.
type subscription struct {
	id, name, tenant string
}

// task is one paged report query: one month, one scope, one batch of at
// most 100 subscriptions.
type task struct {
	month     provider.Month
	scope     int // index into scopes
	batch     []string
	from, to  int // 1-based positions of the batch, for messages
	totalSubs int
}

func (t *task) what(page int) string {
	return fmt.Sprintf("POST carbonEmissionReports (%s, %s, subscriptions %d-%d of %d, page %d)",
		t.month, scopes[t.scope].api, t.from, t.to, t.totalSubs, page)
}

type recordKey struct {
	month                      provider.Month
	account, service, location string
	scope                      provider.Scope
}

// taskResult is what one task read: kgCO2e per record key, and the
// subscriptions the API denied with their reasons.
type taskResult struct {
	kg     map[recordKey]float64
	denied map[string]string
}

// Fetch implements provider.Provider.
//
// Query plan. One ItemDetailsReport with categoryType Resource per month,
// per scope and per batch of up to 100 subscriptions, paged at up to 5000
// items. It is the only report whose items carry subscription, resource
// type and location together (Resource items name all three), so we sum
// resources client-side into (subscription, resource type, location). The
// other categories each carry one dimension (ResourceType, Location,
// Subscription), and splitting by the others with locationList,
// resourceTypeList or one subscription per request would multiply requests
// by the number of locations or subscriptions; the TopItems reports stop at
// 10 items, and the summary reports have no breakdown. ItemDetailsReport
// takes one month per request (start must equal end), and the API sums the
// scopes it is given, so the split needs one request per scope.
//
// Cost per fetch: 1 (available date range) + [subscription list pages, if
// listing] + months × 3 scopes × ⌈subscriptions/100⌉ × pages, where pages
// is ⌈resources in the batch/5000⌉, 1 for most tenants. The first fetch of
// 12 months for up to 100 subscriptions is 1 + 36 = 37 requests; each later
// refresh of the latest month is 1 + 3 = 4.
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	ms := slices.Clone(months)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) == 0 {
		return provider.Result{}, nil
	}
	b := &budget{limit: int64(p.opts.RequestBudget)}
	ctx = withCertRecord(context.WithValue(ctx, budgetKey{}, b))

	first, last, err := p.dateRange(ctx)
	if err != nil {
		return provider.Result{}, err
	}
	// The API serves the last 12 published months; older months in its
	// range (if any) and months outside it are not requested.
	lo := max(first, last-(MaxMonths-1))
	var want []provider.Month
	for _, m := range ms {
		if m >= lo && m <= last {
			want = append(want, m)
		}
	}
	if len(want) < len(ms) {
		p.log.DebugContext(ctx, "azure months outside the available range are not requested",
			"available_from", lo.String(), "available_to", last.String(), "requested", len(ms), "in_range", len(want))
	}

	if len(want) == 0 {
		// No report is due, so nothing new is known about access or
		// accounts: nil fields tell the collector to keep what it has.
		return provider.Result{}, nil
	}
	subs, err := p.subscriptions(ctx, true)
	if err != nil {
		return provider.Result{}, err
	}

	batches := (len(subs) + MaxSubscriptionsPerRequest - 1) / MaxSubscriptionsPerRequest
	if need := b.used.Load() + int64(len(want)*len(scopes)*batches); need > b.limit {
		return provider.Result{}, p.fail(provider.ReasonOther, 0, fmt.Errorf(
			"azure: fetching %d months for %d subscriptions needs at least %d ARM requests (%d months × %d scopes × %d batches of up to %d subscriptions, plus %d already made), more than the request budget of %d; raise the request budget or report on fewer subscriptions",
			len(want), len(subs), need, len(want), len(scopes), batches, MaxSubscriptionsPerRequest, b.used.Load(), b.limit))
	}

	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = s.id
	}
	var tasks []*task
	for _, m := range want {
		for si := range scopes {
			for start := 0; start < len(ids); start += MaxSubscriptionsPerRequest {
				end := min(start+MaxSubscriptionsPerRequest, len(ids))
				tasks = append(tasks, &task{
					month: m, scope: si, batch: ids[start:end],
					from: start + 1, to: end, totalSubs: len(ids),
				})
			}
		}
	}

	results := make([]*taskResult, len(tasks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i, t := range tasks {
		g.Go(func() error {
			r, err := p.runTask(gctx, t)
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return provider.Result{}, err
	}
	res := provider.Result{Accounts: p.accounts(p.withNames(ctx, subs))}

	// Merge in task order, so that sums are the same at every fetch.
	kg := map[recordKey]float64{}
	denied := map[string]string{}
	for _, r := range results {
		for k, v := range r.kg {
			kg[k] += v
		}
		for s, reason := range r.denied {
			if old, ok := denied[s]; !ok || old == "" {
				denied[s] = reason
			}
		}
	}
	res.Records = make([]provider.Record, 0, len(kg))
	for k, v := range kg {
		if !finite(v * GramsPerKilogram) {
			return provider.Result{}, p.fail(provider.ReasonMalformed, 0, malformed("POST carbonEmissionReports", fmt.Errorf(
				"the emissions of subscription %s, %s, %s, %s sum beyond range", k.account, k.service, k.location, k.month)))
		}
		res.Records = append(res.Records, provider.Record{
			Provider:       Name,
			Account:        k.account,
			Service:        k.service,
			Location:       k.location,
			Scope:          k.scope,
			Month:          k.month,
			EmissionsGrams: v * GramsPerKilogram,
			Known:          provider.Emissions,
		})
	}
	slices.SortFunc(res.Records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope))
	})
	p.log.DebugContext(ctx, "azure fetch done", "months", len(want), "subscriptions", len(subs),
		"records", len(res.Records), "requests", b.used.Load())

	res.Denied = p.denials(denied)
	allowed := 0
	for _, s := range subs {
		if _, ok := denied[s.id]; !ok {
			allowed++
		}
	}
	if allowed == 0 {
		// Nothing to report is a permission problem, not an empty
		// month: an error keeps the collector from storing the months
		// as fetched and empty.
		var b strings.Builder
		b.WriteString("azure: Azure denied access to every subscription:")
		for _, d := range res.Denied {
			fmt.Fprintf(&b, " %s (%s);", d.Account, cmp.Or(d.Reason, "no reason given"))
		}
		b.WriteString(" " + statusHint(http.StatusForbidden))
		return res, p.fail(provider.ReasonPermission, 0, errors.New(b.String()))
	}
	return res, nil
}

// denials turns the denied subscriptions into sorted Denials, logging each
// subscription the first time this Provider sees it denied: the metric
// shows the state, the log says why, once.
func (p *Provider) denials(denied map[string]string) []provider.Denial {
	out := []provider.Denial{} // non-nil: "none denied" is news too
	for s, reason := range denied {
		out = append(out, provider.Denial{Provider: Name, Account: s, Reason: reason})
	}
	slices.SortFunc(out, func(a, b provider.Denial) int { return cmp.Compare(a.Account, b.Account) })
	var fresh []provider.Denial
	p.mu.Lock()
	for _, d := range out {
		if !p.logged[d.Account] {
			p.logged[d.Account] = true
			fresh = append(fresh, d)
		}
	}
	p.mu.Unlock()
	for _, d := range fresh {
		p.log.Warn("Azure denied access to a subscription's emissions; reporting the other subscriptions",
			"subscription", d.Account, "reason", cmp.Or(d.Reason, "no reason given"),
			"hint", "grant the identity the Carbon Optimization Reader role on the subscription")
	}
	return out
}

// accounts describes every subscription for the _info metric.
func (p *Provider) accounts(subs []subscription) []provider.Account {
	out := make([]provider.Account, 0, len(subs))
	for _, s := range subs {
		a := provider.Account{Provider: Name, ID: s.id, Name: s.name, ParentID: cmp.Or(s.tenant, p.opts.TenantID)}
		if a.ParentID != "" {
			a.ParentType = ParentTypeTenant
		}
		out = append(out, a)
	}
	return out
}

// call runs one SDK call with the current clients. A 401 that survives
// azcore's own handling (it answers CAE claims challenges itself) is
// retried once with renewed clients; see renew.
func (p *Provider) call(ctx context.Context, what string, fn func(context.Context, *clients) error) error {
	cl := p.current()
	for attempt := 0; ; attempt++ {
		var raw *http.Response
		err := fn(policy.WithCaptureResponse(ctx, &raw), cl)
		if err == nil {
			return nil
		}
		if re, ok := errors.AsType[*azcore.ResponseError](err); ok && re.StatusCode == http.StatusUnauthorized && attempt == 0 && ctx.Err() == nil {
			p.log.DebugContext(ctx, "azure token rejected; renewing the credential", "request", what)
			if cl, err = p.renew(cl); err != nil {
				return p.fail(provider.ReasonAuth, 0, err)
			}
			continue
		}
		return p.classify(ctx, what, err, raw)
	}
}

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

// subscriptions returns the configured subscriptions and, when listing is
// enabled and list is true, those the identity can list, sorted by id.
func (p *Provider) subscriptions(ctx context.Context, list bool) ([]subscription, error) {
	byID := make(map[string]subscription, len(p.subs))
	for _, id := range p.subs {
		byID[id] = subscription{id: id}
	}
	if p.opts.ListSubscriptions && list {
		listed, err := p.listSubscriptions(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range listed {
			byID[s.id] = s
		}
		if len(byID) == 0 {
			return nil, p.fail(provider.ReasonPermission, 0, errors.New(
				"azure: the identity can list no subscriptions; grant it Reader or Carbon Optimization Reader on the subscriptions to report, or configure their ids"))
		}
	}
	out := make([]subscription, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b subscription) int { return cmp.Compare(a.id, b.id) })
	return out, nil
}

// Names of configured subscriptions. Listing (ListSubscriptions) names
// every subscription it finds; subscriptions configured by id get their
// names from the same listing, filtered to them: one request per 100
// subscriptions the identity can read, against one per subscription for
// GET /subscriptions/{id}. Names rarely change, so a listing is kept for
// namesTTL; one the identity may not make is not tried again before
// namesRetry, so that a reader-less identity costs no request per refresh.
const (
	namesTTL   = 24 * time.Hour
	namesRetry = time.Hour
)

// subscriptionNames is what the last names listing found.
type subscriptionNames struct {
	byID   map[string]subscription
	next   time.Time // when to list again
	warned bool      // a failed listing was logged
}

// withNames fills in the names (and tenants) of subs that lack them, from
// the kept listing or a new one. A failure leaves them without names and
// does not fail the fetch: names are for the _info metric only.
func (p *Provider) withNames(ctx context.Context, subs []subscription) []subscription {
	if p.opts.ListSubscriptions || !slices.ContainsFunc(subs, func(s subscription) bool { return s.name == "" }) {
		// Listing already named every subscription it could.
		return subs
	}
	names := p.subscriptionNames(ctx)
	for i, s := range subs {
		if n, ok := names[s.id]; ok && s.name == "" {
			subs[i].name = n.name
			subs[i].tenant = cmp.Or(s.tenant, n.tenant)
		}
	}
	return subs
}

func (p *Provider) subscriptionNames(ctx context.Context) map[string]subscription {
	p.mu.Lock()
	if time.Now().Before(p.names.next) {
		defer p.mu.Unlock()
		return p.names.byID
	}
	p.mu.Unlock()

	listed, err := p.listSubscriptions(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return p.names.byID // the fetch ended: try again at the next
		}
		p.names.next = time.Now().Add(namesRetry)
		if !p.names.warned {
			p.names.warned = true
			p.log.Warn("Cannot list subscriptions for their names; the account info metric shows subscription ids only",
				"err", err, "hint", "grant the identity Reader (Microsoft.Resources/subscriptions/read) on the subscriptions to see their names")
		}
		return p.names.byID // older names, if any, are still good
	}
	byID := make(map[string]subscription, len(listed))
	for _, s := range listed {
		byID[s.id] = s
	}
	p.names = subscriptionNames{byID: byID, next: time.Now().Add(namesTTL), warned: p.names.warned}
	return byID
}

// listSubscriptions pages through GET /subscriptions. The pager would
// follow any nextLink, bearer token included; we stop at a link that
// leaves the configured ARM host.
func (p *Provider) listSubscriptions(ctx context.Context) ([]subscription, error) {
	const what = "GET /subscriptions"
	armHost := ""
	if u, err := url.Parse(p.cloud.Services[cloud.ResourceManager].Endpoint); err == nil {
		armHost = u.Host
	}
	var out []subscription
	err := p.call(ctx, what, func(ctx context.Context, cl *clients) error {
		out = out[:0]
		pager := cl.subs.NewListPager(nil)
		for n := 0; pager.More(); n++ {
			if n >= maxPages {
				return fmt.Errorf("more than %d pages", maxPages)
			}
			page, err := pager.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, s := range page.Value {
				if sub, ok := listedSubscription(s); ok {
					out = append(out, sub)
				}
			}
			if page.NextLink != nil && *page.NextLink != "" {
				u, err := url.Parse(*page.NextLink)
				if err != nil || !strings.EqualFold(u.Host, armHost) {
					return fmt.Errorf("nextLink leaves the resource manager endpoint %s", armHost)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.log.DebugContext(ctx, "azure listed subscriptions", "count", len(out))
	return out, nil
}

// listedSubscription reads one listed subscription. Deleted subscriptions
// have no data to report; disabled ones keep their history, so they stay.
func listedSubscription(s *armsubscriptions.Subscription) (subscription, bool) {
	if s == nil {
		return subscription{}, false
	}
	id := ""
	if s.SubscriptionID != nil {
		id = *s.SubscriptionID
	} else if s.ID != nil {
		id = strings.TrimPrefix(strings.ToLower(*s.ID), "/subscriptions/")
	}
	id = strings.ToLower(strings.TrimSpace(id))
	if id == "" || (s.State != nil && *s.State == armsubscriptions.SubscriptionStateDeleted) {
		return subscription{}, false
	}
	sub := subscription{id: id}
	if s.DisplayName != nil {
		sub.name = strings.TrimSpace(*s.DisplayName)
	}
	if s.TenantID != nil {
		sub.tenant = strings.ToLower(strings.TrimSpace(*s.TenantID))
	}
	return sub, true
}

// runTask runs one paged report query, following skipToken until the API
// stops sending one. The token goes back in the next request's body; the
// API has no nextLink. A token seen twice is an error, not a loop.
func (p *Provider) runTask(ctx context.Context, t *task) (*taskResult, error) {
	filter := &armcarbonoptimization.ItemDetailsQueryFilter{
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
	res := &taskResult{kg: map[recordKey]float64{}, denied: map[string]string{}}
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
// expected. The SDK decodes an item whose dataType it does not know into
// the base *CarbonEmissionData, which carries no dimensions: such items,
// and known types of other categories, make the response malformed rather
// than silently dropping emissions.
//
// Items missing a dimension are kept under a placeholder rather than
// failing the fetch or dropping their emissions: the subscription and
// resource type are recovered from resourceId when possible, else the
// subscription becomes provider.AccountPlaceholder and the resource type or
// location Unknown.
func (p *Provider) addItem(res *taskResult, t *task, what string, item armcarbonoptimization.CarbonEmissionDataClassification) error {
	it, ok := item.(*armcarbonoptimization.ResourceCarbonEmissionItemDetailData)
	if !ok || it == nil {
		dataType := ""
		if item != nil {
			if d := item.GetCarbonEmissionData(); d != nil && d.DataType != nil {
				dataType = string(*d.DataType)
			}
		}
		switch {
		case item == nil:
			return p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("null item in value")))
		case dataType == "":
			return p.fail(provider.ReasonMalformed, 0, malformed(what, errors.New("item without dataType in value")))
		}
		return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("item of dataType %q in value, want %q for categoryType Resource",
			p.oneLine(dataType), armcarbonoptimization.ResponseDataTypeEnumResourceItemDetailsData)))
	}
	if it.LatestMonthEmissions == nil {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf("item %q without latestMonthEmissions", deref(it.ResourceID))))
	}
	account, service := subscriptionAndType(deref(it.SubscriptionID), deref(it.ResourceType), deref(it.ResourceID))
	k := recordKey{
		month:    t.month,
		scope:    scopes[t.scope].label,
		account:  account,
		service:  service,
		location: LocationName(deref(it.Location)),
	}
	// JSON has no NaN or infinity, but a huge figure overflows once
	// summed or converted to grams, and must never reach a metric.
	sum := res.kg[k] + *it.LatestMonthEmissions
	if !finite(sum * GramsPerKilogram) {
		return p.fail(provider.ReasonMalformed, 0, malformed(what, fmt.Errorf(
			"item %q: latestMonthEmissions %g, or its sum, is out of range", deref(it.ResourceID), *it.LatestMonthEmissions)))
	}
	res.kg[k] = sum
	return nil
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
