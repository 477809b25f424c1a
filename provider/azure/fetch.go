package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"
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

// taskResult is what one task read: kgCO2e per record key, the negative
// figures apart (see addItem), and the subscriptions the API denied with
// their reasons.
type taskResult struct {
	kg, negative map[recordKey]float64
	denied       map[string]string
}

func newTaskResult() *taskResult {
	return &taskResult{kg: map[recordKey]float64{}, negative: map[recordKey]float64{}, denied: map[string]string{}}
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
	if len(months) == 0 {
		return provider.Result{}, nil
	}
	rb := &requestBudget{limit: int64(p.opts.RequestBudget)}
	ctx = withCertRecord(context.WithValue(ctx, requestBudgetKey{}, rb))
	want, err := p.available(ctx, months)
	if err != nil || len(want) == 0 {
		// No report is due, so nothing new is known about access or
		// accounts: nil fields tell the collector to keep what it has.
		return provider.Result{}, err
	}
	subs, err := p.subscriptions(ctx, true)
	if err != nil {
		return provider.Result{}, err
	}
	tasks, err := p.plan(rb, want, subs)
	if err != nil {
		return provider.Result{}, err
	}
	results, err := p.runTasks(ctx, tasks)
	if err != nil {
		return provider.Result{}, err
	}
	records, denied, err := p.merge(results)
	if err != nil {
		return provider.Result{}, err
	}
	p.log.DebugContext(ctx, "azure fetch done", "months", len(want), "subscriptions", len(subs),
		"records", len(records), "requests", rb.used.Load())
	res := provider.Result{Records: records, Accounts: p.accounts(p.withNames(ctx, subs)), Denied: p.denials(denied)}
	return res, p.allDenied(subs, res.Denied)
}

// available returns the months of months, sorted and unique, that the
// API serves: the last 12 published months of its available date range.
// Older months in its range (if any) and months outside it are not
// requested.
func (p *Provider) available(ctx context.Context, months []provider.Month) ([]provider.Month, error) {
	first, last, err := p.dateRange(ctx)
	if err != nil {
		return nil, err
	}
	ms := slices.Compact(slices.Sorted(slices.Values(months)))
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
	return want, nil
}

// plan returns the report queries for months and subs, or an error when
// they need more requests than rb has left.
func (p *Provider) plan(rb *requestBudget, months []provider.Month, subs []subscription) ([]*task, error) {
	batches := (len(subs) + MaxSubscriptionsPerRequest - 1) / MaxSubscriptionsPerRequest
	if need := rb.used.Load() + int64(len(months)*len(scopes)*batches); need > rb.limit {
		return nil, p.fail(provider.ReasonOther, 0, fmt.Errorf(
			"azure: fetching %d months for %d subscriptions needs at least %d ARM requests (%d months × %d scopes × %d batches of up to %d subscriptions, plus %d already made), more than the request budget of %d; raise the request budget or report on fewer subscriptions",
			len(months), len(subs), need, len(months), len(scopes), batches, MaxSubscriptionsPerRequest, rb.used.Load(), rb.limit))
	}
	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = s.id
	}
	var tasks []*task
	for _, m := range months {
		for si := range scopes {
			for start := 0; start < len(ids); start += MaxSubscriptionsPerRequest {
				end := min(start+MaxSubscriptionsPerRequest, len(ids))
				tasks = append(tasks, &task{month: m, scope: si, batch: ids[start:end], from: start + 1, to: end, totalSubs: len(ids)})
			}
		}
	}
	return tasks, nil
}

// runTasks runs the report queries, at most Concurrency at once, the
// first one alone: when the API throttles or fails, that one request
// learns it and the source-wide pause (Retry-After) holds the others
// back, instead of a burst in which each earns its own 429 and spends its
// retries, or reads its own oversized answer.
func (p *Provider) runTasks(ctx context.Context, tasks []*task) ([]*taskResult, error) {
	results := make([]*taskResult, len(tasks))
	var err error
	if results[0], err = p.runTask(ctx, tasks[0]); err != nil {
		return nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i, t := range tasks[1:] {
		g.Go(func() error {
			r, err := p.runTask(gctx, t)
			results[i+1] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// merge turns the tasks' sums into records and their denials into one
// map. It merges in task order, so that sums are the same at every fetch.
// Negative sums become records of their own, which the refresher leaves
// out and counts as values that are not measurements.
func (p *Provider) merge(results []*taskResult) ([]provider.Record, map[string]string, error) {
	kg, negative := map[recordKey]float64{}, map[recordKey]float64{}
	denied := map[string]string{}
	for _, r := range results {
		for k, v := range r.kg {
			kg[k] += v
		}
		for k, v := range r.negative {
			negative[k] += v
		}
		for s, reason := range r.denied {
			if old, ok := denied[s]; !ok || old == "" {
				denied[s] = reason
			}
		}
	}
	records := make([]provider.Record, 0, len(kg)+len(negative))
	for _, sums := range []map[recordKey]float64{kg, negative} {
		for k, v := range sums {
			if !finite(v * GramsPerKilogram) {
				return nil, nil, p.fail(provider.ReasonMalformed, 0, malformed("POST carbonEmissionReports", fmt.Errorf(
					"the emissions of subscription %s, %s, %s, %s sum beyond range", k.account, k.service, k.location, k.month)))
			}
			records = append(records, provider.Record{Provider: Name, Account: k.account, Service: k.service, Location: k.location,
				Scope: k.scope, Month: k.month, EmissionsGrams: v * GramsPerKilogram, Known: provider.Emissions})
		}
	}
	slices.SortFunc(records, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.EmissionsGrams, b.EmissionsGrams))
	})
	return records, denied, nil
}

// allDenied fails a fetch in which Azure denied every subscription: nothing
// to report is a permission problem, not an empty month, and the error
// keeps the collector from storing the months as fetched and empty.
func (p *Provider) allDenied(subs []subscription, denied []provider.Denial) error {
	ids := make(map[string]bool, len(denied))
	for _, d := range denied {
		ids[d.Account] = true
	}
	for _, s := range subs {
		if !ids[s.id] {
			return nil
		}
	}
	var b strings.Builder
	b.WriteString("azure: Azure denied access to every subscription:")
	for _, d := range denied {
		fmt.Fprintf(&b, " %s (%s);", d.Account, cmp.Or(d.Reason, "no reason given"))
	}
	b.WriteString(" " + statusHint(http.StatusForbidden))
	return p.fail(provider.ReasonPermission, 0, errors.New(b.String()))
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
