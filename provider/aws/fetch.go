package aws

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// ParentTypeOrganization is the parent type of accounts listed by
// Organizations: their parent is the organization, named after its
// management account, since organizations have no names of their own.
const ParentTypeOrganization = "organization"

// The emissions types every carbon query asks for, by their index in
// carbonTypes: the five that make up the scopes, and the two totals, which
// cost nothing more in the same query and let the scopes be checked
// against them.
const (
	iScope1 = iota
	iScope2LBM
	iScope2MBM
	iScope3LBM
	iScope3MBM
	iTotalLBM
	iTotalMBM
	nTypes
)

func carbonTypes() []string {
	return []string{
		iScope1: emissionsScope1, iScope2LBM: emissionsScope2LBM, iScope2MBM: emissionsScope2MBM,
		iScope3LBM: emissionsScope3LBM, iScope3MBM: emissionsScope3MBM,
		iTotalLBM: emissionsTotalLBM, iTotalMBM: emissionsTotalMBM,
	}
}

// groupBy is every dimension: the records' account, location and service.
func groupBy() []string {
	return []string{dimensionUsageAccountID, dimensionRegion, dimensionService}
}

// Fetch implements provider.Provider.
//
// Request plan, the fewest requests that give every figure:
//   - Carbon: one GetEstimatedCarbonEmissions query per contiguous run of
//     requested months (provider.Runs), MONTHLY, grouped by
//     USAGE_ACCOUNT_ID, REGION and SERVICE at once, for all seven
//     emissions types; pages of up to 5000 results. Grouping by every
//     dimension in one query is the only way to get the account × region ×
//     service breakdown (queries per dimension would not join), and one
//     range per run never downloads a month that was not asked for.
//   - Water: one GetEstimatedWaterAllocation query, YEARLY_CALENDAR (the
//     only granularity AWS serves), same grouping, over the WaterYears
//     calendar years that end with the latest published month's. The
//     years do not depend on the requested months, because
//     Result.YearlyWater replaces what the exporter holds: every fetch
//     must return them all.
//   - Names, with Organizations enabled: ListAccounts, one request per 20
//     accounts (its page limit).
//   - Credentials: none for static keys; an STS call about once an hour
//     for an assumed role or web identity, cached by the SDK.
//
// A refresh of the usual one or two recent months is therefore two
// requests, plus one per 20 accounts for names, until an organization has
// more than 2500 account/region/service combinations a month. The three
// queries run concurrently; pages follow NextToken one after another, as
// the API has no other way to reach them.
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	latest := publication().LatestPublished(p.opts.Now())
	oldest := latest.Add(-(MaxMonths - 1))
	want := make(map[provider.Month]bool, len(months))
	for _, m := range months {
		if m >= oldest {
			want[m] = true
		}
	}
	runs := provider.Runs(slices.Collect(maps.Keys(want)))
	if len(runs) == 0 {
		p.log.Debug("No requested month is within what AWS serves", "oldest", oldest.String())
		return provider.Result{}, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		water    []provider.YearlyWater
		waterErr error
		listing  *orgListing
		orgErr   error
	)
	wg.Go(func() { water, waterErr = p.water(ctx, latest) })
	if p.org != nil {
		wg.Go(func() { listing, orgErr = p.organization(ctx) })
	}
	data, err := p.carbon(ctx, runs, want)
	if err != nil {
		cancel()
		wg.Wait()
		return provider.Result{}, err
	}
	wg.Wait()

	res := provider.Result{Records: data.sorted(), Revisions: data.revisions()}
	if data.mismatches > 0 {
		p.log.Warn("AWS's scope figures do not add up to its totals; the emissions families' sums will differ from AWS's totals",
			"results", data.mismatches)
	}
	var partial []error
	switch {
	case waterErr == nil:
		res.YearlyWater = water
		p.permitted(opWater)
	case denied(waterErr):
		// Water is optional: carbon flows, the last water figures stay.
		p.deniedOnce(opWater, "AWS denies water data; serving carbon emissions only", waterErr)
	default:
		partial = append(partial, waterErr)
	}
	if p.org != nil {
		switch {
		case orgErr == nil:
			p.permitted(opListAccounts)
			p.mu.Lock()
			p.names = listing
			p.mu.Unlock()
		case denied(orgErr):
			p.deniedOnce(opListAccounts, "AWS denies Organizations ListAccounts; accounts are reported without names", orgErr)
		default:
			partial = append(partial, orgErr)
			p.mu.Lock()
			listing = p.names
			p.mu.Unlock()
		}
	}
	res.Accounts = accounts(data.accounts, listing)
	if len(partial) > 0 {
		res.Partial = errors.Join(partial...)
	}
	return res, nil
}

// pages runs page for each NextToken until the API gives none, charging
// every page's results to the refresh's budget (httpx.Page), which ends
// a run of empty pages that link to more; it also stops a server that
// repeats a token.
func (p *Provider) pages(ctx context.Context, op string, page func(token *string) (next *string, results int, err error)) error {
	var token *string
	seen := make(map[string]bool)
	for n := 1; n <= maxPages; n++ {
		next, results, err := page(token)
		if err != nil {
			return err
		}
		if err := httpx.Page(ctx, results); err != nil {
			return p.classify(ctx, op, err)
		}
		if next == nil || *next == "" {
			return nil
		}
		if seen[*next] {
			return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: NextToken repeats an earlier one", op))
		}
		seen[*next] = true
		token = next
		p.log.Debug("Fetching the next page", "operation", op, "page", n+1)
	}
	return p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: more than %d pages", op, maxPages))
}

type recordKey struct {
	account, service, location string
	month                      provider.Month
	scope                      provider.Scope
}

// carbonData accumulates the carbon query's results.
type carbonData struct {
	records  map[recordKey]*provider.Record
	versions map[provider.Month]map[string]bool
	accounts map[string]bool
	// mismatches counts results whose scopes do not sum to their totals.
	mismatches int
}

func (p *Provider) carbon(ctx context.Context, runs [][2]provider.Month, want map[provider.Month]bool) (*carbonData, error) {
	d := &carbonData{
		records:  make(map[recordKey]*provider.Record),
		versions: make(map[provider.Month]map[string]bool),
		accounts: make(map[string]bool),
	}
	for _, run := range runs {
		in := &getEstimatedCarbonEmissionsInput{
			TimePeriod:     &timePeriod{Start: aws.Time(run[0].Start()), End: aws.Time(run[1].End())},
			GroupBy:        groupBy(),
			EmissionsTypes: carbonTypes(),
			Granularity:    granularityMonthly,
			MaxResults:     aws.Int32(int32(p.opts.PageSize)),
		}
		err := p.pages(ctx, opCarbon, func(token *string) (*string, int, error) {
			in.NextToken = token
			out, err := p.api.GetEstimatedCarbonEmissions(ctx, in)
			if err != nil {
				return nil, 0, p.classify(ctx, opCarbon, err)
			}
			for i := range out.Results {
				if err := d.add(&out.Results[i], want); err != nil {
					return nil, 0, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: %w", opCarbon, err))
				}
			}
			return out.NextToken, len(out.Results), nil
		})
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

// add turns one result into its scope 1, 2 and 3 records. Scope 1 has one
// figure, reported as both location- and market-based, so that each
// family holds all three scopes and sums to AWS's total of its method.
func (d *carbonData) add(r *estimatedCarbonEmissions, want map[provider.Month]bool) error {
	if r.TimePeriod == nil || r.TimePeriod.Start == nil {
		return errors.New("a result has no time period")
	}
	m := provider.MonthOf(*r.TimePeriod.Start)
	if !r.TimePeriod.Start.Equal(m.Start()) {
		return fmt.Errorf("a monthly result starts at %s, not at the start of a month", r.TimePeriod.Start.UTC().Format(time.RFC3339))
	}
	if !want[m] {
		return nil
	}
	var vals [nTypes]float64
	var have [nTypes]bool
	for i, t := range carbonTypes() {
		q, ok := r.EmissionsValues[t]
		if !ok || q.Value == nil {
			continue
		}
		if q.Unit != unitMTCO2e {
			return fmt.Errorf("%s is in %q; only %s is understood", t, q.Unit, unitMTCO2e)
		}
		vals[i], have[i] = *q.Value, true
	}
	if have[iTotalLBM] && have[iScope1] && have[iScope2LBM] && have[iScope3LBM] &&
		!addsUp(vals[iTotalLBM], vals[iScope1]+vals[iScope2LBM]+vals[iScope3LBM]) ||
		have[iTotalMBM] && have[iScope1] && have[iScope2MBM] && have[iScope3MBM] &&
			!addsUp(vals[iTotalMBM], vals[iScope1]+vals[iScope2MBM]+vals[iScope3MBM]) {
		d.mismatches++
	}

	account := cmp.Or(r.DimensionsValues[dimensionUsageAccountID], provider.AccountPlaceholder)
	base := recordKey{
		account:  account,
		service:  cmp.Or(r.DimensionsValues[dimensionService], Unknown),
		location: cmp.Or(r.DimensionsValues[dimensionRegion], Unknown),
		month:    m,
	}
	d.accounts[account] = true
	if v := aws.ToString(r.ModelVersion); v != "" {
		if d.versions[m] == nil {
			d.versions[m] = make(map[string]bool)
		}
		d.versions[m][v] = true
	}
	for _, s := range []struct {
		scope    provider.Scope
		lbm, mbm int
	}{{provider.Scope1, iScope1, iScope1}, {provider.Scope2, iScope2LBM, iScope2MBM}, {provider.Scope3, iScope3LBM, iScope3MBM}} {
		if !have[s.lbm] && !have[s.mbm] {
			continue
		}
		k := base
		k.scope = s.scope
		rec := d.records[k]
		if rec == nil {
			rec = &provider.Record{Provider: Name, Account: k.account, Service: k.service, Location: k.location, Scope: k.scope, Month: m}
			d.records[k] = rec
		}
		if have[s.lbm] {
			rec.EmissionsGrams += vals[s.lbm] * GramsPerMetricTon
			rec.Known |= provider.Emissions
		}
		if have[s.mbm] {
			rec.MarketBasedGrams += vals[s.mbm] * GramsPerMetricTon
			rec.Known |= provider.EmissionsMarketBased
		}
	}
	return nil
}

// addsUp compares a total with the sum of its parts, allowing for the
// rounding of figures given to the gram.
func addsUp(total, sum float64) bool {
	return math.Abs(total-sum) <= 1e-6+1e-9*math.Abs(total)
}

func (d *carbonData) sorted() []provider.Record {
	out := make([]provider.Record, 0, len(d.records))
	for _, r := range d.records {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b provider.Record) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

// revisions names each month's ModelVersion. AWS shows every month under
// its latest model only; should a month come back under several, all of
// them name it, so that any change is still seen.
func (d *carbonData) revisions() map[provider.Month]string {
	if len(d.versions) == 0 {
		return nil
	}
	out := make(map[provider.Month]string, len(d.versions))
	for m, vs := range d.versions {
		out[m] = strings.Join(slices.Sorted(maps.Keys(vs)), ",")
	}
	return out
}

// water fetches the WaterYears calendar years ending with the latest
// published month's.
func (p *Provider) water(ctx context.Context, latest provider.Month) ([]provider.YearlyWater, error) {
	w := waterData{first: latest.Year() - (WaterYears - 1), last: latest.Year(), sums: make(map[waterKey]float64)}
	// A year is included when its first instant lies in the period, so
	// the period starts on a 1 January and ends after the latest month.
	in := &getEstimatedWaterAllocationInput{
		TimePeriod:      &timePeriod{Start: aws.Time(provider.NewMonth(w.first, time.January).Start()), End: aws.Time(latest.End())},
		GroupBy:         groupBy(),
		AllocationTypes: []string{waterWithdrawals},
		Granularity:     granularityYearlyCalendar,
		MaxResults:      aws.Int32(int32(p.opts.PageSize)),
	}
	err := p.pages(ctx, opWater, func(token *string) (*string, int, error) {
		in.NextToken = token
		out, err := p.api.GetEstimatedWaterAllocation(ctx, in)
		if err != nil {
			return nil, 0, p.classify(ctx, opWater, err)
		}
		for i := range out.Results {
			if err := w.add(&out.Results[i]); err != nil {
				return nil, 0, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: %w", opWater, err))
			}
		}
		return out.NextToken, len(out.Results), nil
	})
	if err != nil {
		return nil, err
	}
	return w.sorted(), nil
}

type waterKey struct {
	account, service, location string
	year                       int
}

// waterData accumulates the water query's results of the years first to
// last.
type waterData struct {
	first, last int
	sums        map[waterKey]float64
}

func (w *waterData) add(r *estimatedWaterAllocation) error {
	if r.TimePeriod == nil || r.TimePeriod.Start == nil {
		return errors.New("a result has no time period")
	}
	start := r.TimePeriod.Start.UTC()
	if !start.Equal(provider.NewMonth(start.Year(), time.January).Start()) {
		return fmt.Errorf("a yearly result starts at %s, not on 1 January", start.Format(time.RFC3339))
	}
	if start.Year() < w.first || start.Year() > w.last {
		return nil
	}
	q, ok := r.AllocationValues[waterWithdrawals]
	if !ok || q.Value == nil {
		return nil
	}
	if q.Unit != unitCubicMeters {
		return fmt.Errorf("%s is in %q; only %s is understood", waterWithdrawals, q.Unit, unitCubicMeters)
	}
	w.sums[waterKey{
		account:  cmp.Or(r.DimensionsValues[dimensionUsageAccountID], provider.AccountPlaceholder),
		service:  cmp.Or(r.DimensionsValues[dimensionService], Unknown),
		location: cmp.Or(r.DimensionsValues[dimensionRegion], Unknown),
		year:     start.Year(),
	}] += *q.Value
	return nil
}

// sorted returns the sums, not nil even when empty: the fetch learned
// that there is no water.
func (w *waterData) sorted() []provider.YearlyWater {
	out := make([]provider.YearlyWater, 0, len(w.sums))
	for k, v := range w.sums {
		out = append(out, provider.YearlyWater{Provider: Name, Account: k.account, Service: k.service,
			Location: k.location, Year: k.year, CubicMeters: v})
	}
	slices.SortFunc(out, func(a, b provider.YearlyWater) int {
		return cmp.Or(cmp.Compare(a.Year, b.Year), cmp.Compare(a.Account, b.Account),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location))
	})
	return out
}

// orgListing is what ListAccounts tells: the organization, its management
// account and every account's name.
type orgListing struct {
	orgID, managementID string
	names               map[string]string // by account id
}

func (p *Provider) organization(ctx context.Context) (*orgListing, error) {
	l := &orgListing{names: make(map[string]string)}
	pager := organizations.NewListAccountsPaginator(p.org, &organizations.ListAccountsInput{})
	for n := 0; pager.HasMorePages(); n++ {
		if n == maxPages {
			return nil, p.fail(provider.ReasonMalformed, 0, fmt.Errorf("aws: %s: malformed response: more than %d pages", opListAccounts, maxPages))
		}
		out, err := pager.NextPage(ctx)
		if err != nil {
			return nil, p.classify(ctx, opListAccounts, err)
		}
		if err := httpx.Page(ctx, len(out.Accounts)); err != nil {
			return nil, p.classify(ctx, opListAccounts, err)
		}
		for _, a := range out.Accounts {
			id := aws.ToString(a.Id)
			if id == "" {
				continue
			}
			l.names[id] = aws.ToString(a.Name)
			if l.orgID == "" {
				l.orgID, l.managementID = parseAccountARN(aws.ToString(a.Arn))
			}
		}
	}
	return l, nil
}

// parseAccountARN reads the organization and its management account from
// an account's ARN, arn:PARTITION:organizations::MANAGEMENT:account/ORG/ID,
// which saves a DescribeOrganization call.
func parseAccountARN(arn string) (orgID, managementID string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "organizations" {
		return "", ""
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 3 || res[0] != "account" {
		return "", ""
	}
	return res[1], parts[4]
}

// accounts describes every account of the fetched records, and every
// account of the organization when it was listed.
func accounts(seen map[string]bool, l *orgListing) []provider.Account {
	byID := make(map[string]provider.Account, len(seen))
	for id := range seen {
		byID[id] = provider.Account{Provider: Name, ID: id}
	}
	if l != nil {
		for id, name := range l.names {
			a := provider.Account{Provider: Name, ID: id, Name: name}
			if l.orgID != "" {
				a.ParentType, a.ParentID, a.ParentName = ParentTypeOrganization, l.orgID, l.names[l.managementID]
			}
			byID[id] = a
		}
	}
	return slices.SortedFunc(maps.Values(byID), func(a, b provider.Account) int { return cmp.Compare(a.ID, b.ID) })
}

// deniedOnce logs an optional call's denial the first time only, until
// the call is permitted again.
func (p *Provider) deniedOnce(op, msg string, err error) {
	p.mu.Lock()
	first := !p.deniedLogged[op]
	p.deniedLogged[op] = true
	p.mu.Unlock()
	if first {
		p.log.Warn(msg, "permission", iamAction(op), "err", err)
	}
}

func (p *Provider) permitted(op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.deniedLogged, op)
}
