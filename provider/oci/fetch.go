package oci

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/oracle/oci-go-sdk/v65/common"
	"github.com/oracle/oci-go-sdk/v65/usageapi"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// The SDK's names of the operations the provider calls, as errors and
// logs name them: the carbon query, the cost query of the cost feed, and
// the same grouped by a tag too, of the tag feed.
const (
	opCarbon = "RequestUsageCarbonEmissions"
	opCost   = "RequestSummarizedUsages"
	opTags   = "RequestSummarizedUsages by tag"
)

// groupBy is what every query breaks the tenancy's emissions down by: the
// records' service, location and account.
//
// The account is the compartment's path (compartmentPath), not its name
// (compartmentName): OCI lets two compartments under different parents
// share a name ("dev" under both "prod" and "research"), and grouping by
// name would add their emissions together under one label. A path is
// unique in its tenancy and stays readable ("acme/prod/web"), which a
// compartment OCID, the other unique choice, is not; the compartment's
// name is its path's last element, given in the info metric.
func groupBy() []string { return []string{"service", "region", "compartmentPath"} }

// emissionTypes are the queries of each run of months: power-based
// calculations give both location-based and market-based figures, one
// emission type per request; spend-based ones give market-based figures
// only (Oracle's Emissions Management documentation).
func (p *Provider) emissionTypes() []usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeEnum {
	if p.opts.Method == MethodSpendBased {
		return []usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeEnum{usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeMarketBased}
	}
	return []usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeEnum{
		usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeLocationBased,
		usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeMarketBased,
	}
}

func (p *Provider) method() usageapi.RequestUsageCarbonEmissionsDetailsEmissionCalculationMethodEnum {
	if p.opts.Method == MethodSpendBased {
		return usageapi.RequestUsageCarbonEmissionsDetailsEmissionCalculationMethodSpendBased
	}
	return usageapi.RequestUsageCarbonEmissionsDetailsEmissionCalculationMethodPowerBased
}

// Fetch implements provider.Provider.
//
// Request plan: one RequestUsageCarbonEmissions query per contiguous run
// of requested months (provider.Runs; runs longer than a year are split)
// and emission type, MONTHLY, grouped by service, region and
// compartmentPath at once, from midnight UTC on the run's first day to
// midnight UTC on the day after it (timeUsageEnded is exclusive); pages
// follow opc-next-page. Power-based, a refresh of the usual one or two
// recent months is therefore two requests, spend-based one, plus one per
// further page. The queries run one after another: the Usage API limits
// requests per tenancy, so a second query at once would only earn its
// own 429, and a refresh holds one answer in memory at a time (the SDK
// reads answers whole).
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	runs := split(provider.Runs(months), maxMonthsPerQuery)
	if len(runs) == 0 {
		return provider.Result{}, nil
	}
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		want[m] = true
	}
	api, tenancy, err := p.client(ctx)
	if err != nil {
		return provider.Result{}, err
	}
	d := &carbonData{records: make(map[recordKey]*provider.Record), accounts: make(map[string]string)}
	for _, run := range runs {
		for _, typ := range p.emissionTypes() {
			if err := p.query(ctx, api, tenancy, run, typ, want, d); err != nil {
				return provider.Result{}, err
			}
		}
	}
	return provider.Result{Records: d.sorted(), Accounts: d.accountList(tenancy)}, nil
}

// split cuts runs of months into runs of at most n months.
func split(runs [][2]provider.Month, n int) [][2]provider.Month {
	var out [][2]provider.Month
	for _, r := range runs {
		for first := r[0]; first <= r[1]; first += provider.Month(n) {
			out = append(out, [2]provider.Month{first, min(first+provider.Month(n-1), r[1])})
		}
	}
	return out
}

// query runs one query, every page of it, into d.
func (p *Provider) query(ctx context.Context, api *usageapi.UsageapiClient, tenancy string, run [2]provider.Month,
	typ usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeEnum, want map[provider.Month]bool, d *carbonData) error {
	req := usageapi.RequestUsageCarbonEmissionsRequest{
		RequestUsageCarbonEmissionsDetails: usageapi.RequestUsageCarbonEmissionsDetails{
			TenantId:                  common.String(tenancy),
			TimeUsageStarted:          &common.SDKTime{Time: run[0].Start()},
			TimeUsageEnded:            &common.SDKTime{Time: run[1].End()},
			EmissionCalculationMethod: p.method(),
			EmissionType:              typ,
			Granularity:               usageapi.RequestUsageCarbonEmissionsDetailsGranularityMonthly,
			IsAggregateByTime:         common.Bool(false),
			GroupBy:                   groupBy(),
			CompartmentDepth:          common.Int(p.opts.CompartmentDepth),
		},
	}
	if p.opts.PageSize > 0 {
		req.Limit = common.Int(p.opts.PageSize)
	}
	return p.pages(ctx, opCarbon, []any{"emission_type", string(typ)}, func(md common.RequestMetadata, page *string) (int, *string, error) {
		req.RequestMetadata, req.Page = md, page
		resp, err := api.RequestUsageCarbonEmissions(sdkContext(ctx), req)
		if err != nil {
			return 0, nil, p.classify(ctx, opCarbon, err, resp.RawResponse)
		}
		for i := range resp.Items {
			if err := d.add(&resp.Items[i], typ, p.method(), want); err != nil {
				return 0, nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("oci: %s: malformed response: %w", opCarbon, err))
			}
		}
		return len(resp.Items), resp.OpcNextPage, nil
	})
}

// pages reads every page of a Usage API call of operation op: get asks
// for one page (page is nil for the first), takes its items and returns
// how many there were and the next page's token. Each page is charged to
// the refresh's budget, which ends a run of empty pages that link to
// more; a token seen before, or more than maxPages pages, is a malformed
// answer. debug adds to the log line of each next page.
func (p *Provider) pages(ctx context.Context, op string, debug []any,
	get func(md common.RequestMetadata, page *string) (items int, next *string, err error)) error {
	seen := make(map[string]bool)
	var page *string
	for n := 1; ; n++ {
		policy := p.retryPolicy(ctx)
		items, next, err := get(common.RequestMetadata{RetryPolicy: &policy}, page)
		if err != nil {
			return err
		}
		if err := httpx.Page(ctx, items); err != nil {
			return p.classify(ctx, op, err, nil)
		}
		if next == nil || *next == "" {
			return nil
		}
		switch {
		case seen[*next]:
			return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("oci: %s: malformed response: opc-next-page repeats an earlier page", op))
		case n == maxPages:
			return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("oci: %s: malformed response: more than %d pages", op, maxPages))
		}
		seen[*next] = true
		page = next
		p.log.Debug("Fetching the next page", append([]any{"operation", op, "page", n + 1}, debug...)...)
	}
}

// retryPolicy is the SDK's default retry policy made to end with ctx: the
// SDK decides which answers are worth another attempt
// (common.DefaultShouldRetryOperation) and how long to wait (its
// exponential backoff with jitter), and this policy also stops when ctx
// is done, when the attempts run out, when the wait would pass ctx's
// deadline and when the server asks for a longer wait than MaxBackoff;
// it honours a shorter Retry-After. The SDK sleeps between attempts
// without looking at ctx, so the wait happens here, in NextDuration,
// which then asks the SDK for none.
func (p *Provider) retryPolicy(ctx context.Context) common.RetryPolicy {
	sdk := common.DefaultRetryPolicyWithoutEventualConsistency()
	var wait time.Duration // set by should, used by next: the SDK calls them in turn
	should := func(r common.OCIOperationResponse) bool {
		if ctx.Err() != nil || r.AttemptNumber >= uint(p.opts.MaxAttempts) || !common.DefaultShouldRetryOperation(r) || final(ctx, r.Error) {
			return false
		}
		d := sdk.NextDuration(r)
		if p.opts.Backoff != nil {
			d = p.opts.Backoff(r.AttemptNumber)
		}
		d = min(d, p.opts.MaxBackoff)
		if ra, ok := retryAfter(r.Response); ok {
			if ra > p.opts.MaxBackoff {
				return false
			}
			d = max(d, ra)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return false
		}
		wait = d
		return true
	}
	next := func(common.OCIOperationResponse) time.Duration {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return 0
	}
	return common.NewRetryPolicyWithOptions(
		common.ReplaceWithValuesFromRetryPolicy(sdk),
		common.WithMaximumNumberAttempts(uint(p.opts.MaxAttempts)),
		common.WithShouldRetryOperation(should),
		common.WithNextDuration(next),
	)
}

// final reports whether err is one of the failures httpx marks final (a
// body cut short or too large, an untrusted certificate, a Retry-After
// past the deadline), which another attempt does not mend, or the
// refresh is over its budget, whatever the SDK made of the read that
// passed it.
func final(ctx context.Context, err error) bool {
	_, classified := errors.AsType[provider.Classified](err)
	return classified || httpx.IsCertificateError(err) || httpx.Overrun(ctx) != nil
}

// retryAfter returns the Retry-After of an answer.
func retryAfter(r common.OCIResponse) (time.Duration, bool) {
	if r == nil {
		return 0, false
	}
	resp := r.HTTPResponse()
	if resp == nil {
		return 0, false
	}
	return httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}

type recordKey struct {
	account, service, location string
	month                      provider.Month
}

// keyOf is the key of an item of month m, emissions or cost alike: its
// compartment path (the placeholder for the tenancy's own items), service
// and lowercase region, Unknown for those it does not name.
func keyOf(m provider.Month, compartmentPath, service, region *string) recordKey {
	return recordKey{
		account:  cmp.Or(strings.TrimSpace(deref(compartmentPath)), provider.AccountPlaceholder),
		service:  cmp.Or(strings.TrimSpace(deref(service)), Unknown),
		location: strings.ToLower(cmp.Or(strings.TrimSpace(deref(region)), Unknown)),
		month:    m,
	}
}

// carbonData accumulates the queries' items.
type carbonData struct {
	records map[recordKey]*provider.Record
	// accounts maps each compartment path to the tenancy's name, when
	// an item named it.
	accounts map[string]string
}

// add files one item under its record: location-based items as the
// record's emissions, market-based ones as its market-based emissions.
// OCI does not split its figures by GHG scope.
func (d *carbonData) add(it *usageapi.UsageCarbonEmissionSummary, typ usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeEnum,
	method usageapi.RequestUsageCarbonEmissionsDetailsEmissionCalculationMethodEnum, want map[provider.Month]bool) error {
	if it.TimeUsageStarted == nil {
		return errors.New("an item has no timeUsageStarted")
	}
	m := provider.MonthOf(it.TimeUsageStarted.Time)
	if it.TimeUsageEnded != nil && provider.MonthOf(it.TimeUsageEnded.Add(-time.Nanosecond)) != m {
		return fmt.Errorf("a monthly item spans %s to %s", it.TimeUsageStarted.UTC().Format(time.RFC3339), it.TimeUsageEnded.UTC().Format(time.RFC3339))
	}
	if it.ComputedCarbonEmission == nil {
		return errors.New("an item has no computedCarbonEmission")
	}
	v := *it.ComputedCarbonEmission
	// An item of another type or method than asked for would be counted
	// twice, or in the wrong family.
	if it.EmissionType != "" && !strings.EqualFold(string(it.EmissionType), string(typ)) {
		return fmt.Errorf("an item of emission type %q answers a query for %s", provider.Truncate(string(it.EmissionType), 64), typ)
	}
	if it.EmissionCalculationMethod != nil && *it.EmissionCalculationMethod != "" && !strings.EqualFold(*it.EmissionCalculationMethod, string(method)) {
		return fmt.Errorf("an item of calculation method %q answers a query for %s", provider.Truncate(*it.EmissionCalculationMethod, 64), method)
	}
	if !want[m] {
		return nil
	}
	k := keyOf(m, it.CompartmentPath, it.Service, it.Region)
	if name, ok := d.accounts[k.account]; !ok || name == "" {
		d.accounts[k.account] = deref(it.TenantName)
	}
	rec := d.records[k]
	if rec == nil {
		rec = &provider.Record{Provider: Name, Account: k.account, Service: k.service, Location: k.location,
			Scope: provider.ScopeUnspecified, Month: m}
		d.records[k] = rec
	}
	if typ == usageapi.RequestUsageCarbonEmissionsDetailsEmissionTypeLocationBased {
		rec.EmissionsGrams += v * GramsPerMetricTon
		rec.Known |= provider.Emissions
	} else {
		rec.MarketBasedGrams += v * GramsPerMetricTon
		rec.Known |= provider.EmissionsMarketBased
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (d *carbonData) sorted() []provider.Record {
	out := make([]provider.Record, 0, len(d.records))
	for _, r := range d.records {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location))
	})
	return out
}

// accountList describes every compartment of the fetched records: its
// name is its path's last element, its parent the tenancy.
func (d *carbonData) accountList(tenancy string) []provider.Account {
	out := make([]provider.Account, 0, len(d.accounts))
	for _, path := range slices.Sorted(maps.Keys(d.accounts)) {
		a := provider.Account{Provider: Name, ID: path, ParentType: ParentTypeTenancy, ParentID: tenancy, ParentName: d.accounts[path]}
		if path != provider.AccountPlaceholder {
			a.Name = path[strings.LastIndex(path, "/")+1:]
		}
		out = append(out, a)
	}
	return out
}
