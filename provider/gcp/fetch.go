package gcp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"
	"google.golang.org/api/iterator"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Query kinds, also the value of the jobs' cloudcarbon_query label so that
// the exporter's BigQuery spend can be told apart in billing reports.
const (
	kindCarbon  = "carbon"
	kindBilling = "billing"
)

// The queries. Each starts with a marker comment naming its kind: gcpfake
// recognises the exporter's queries by it (it does not execute SQL), and
// it makes the exporter's jobs easy to find in the job history.
//
// carbonSQL reads the carbon table's needed columns only, for the
// requested months only. The table holds one row per billing account,
// project, service, location and month, so it is small: the 10 MiB
// per-table minimum is what a query bills in practice. Market-based scope
// 2 is NULL before 2023; a group reports it only when every row has it, so
// that a partial sum can never pass for a total. An empty @billing_account
// selects every billing account of the export.
const carbonSQL = `-- cloudcarbon:carbon
SELECT
  usage_month,
  billing_account_id,
  project.id AS project_id,
  service.description AS service,
  location.region AS region,
  location.location AS location,
  MAX(carbon_model_version) AS carbon_model_version,
  SUM(carbon_footprint_kgCO2e.scope1) AS scope1_kg,
  SUM(carbon_footprint_kgCO2e.scope2.location_based) AS scope2_location_kg,
  IF(COUNTIF(carbon_footprint_kgCO2e.scope2.market_based IS NULL) > 0, NULL,
     SUM(carbon_footprint_kgCO2e.scope2.market_based)) AS scope2_market_kg,
  SUM(carbon_footprint_kgCO2e.scope3) AS scope3_kg
FROM %s
WHERE usage_month IN UNNEST(@months)
  AND (@billing_account = '' OR billing_account_id = @billing_account)
GROUP BY 1, 2, 3, 4, 5, 6`

// billingSQL reads one contiguous run of invoice months. The constant
// _PARTITIONTIME window prunes the (large, ingestion-time partitioned)
// billing export to the partitions that can hold those invoice months, so
// the scan is the needed columns of the run's months plus
// BillingExportLag, whatever the table's history. The per-row bound on
// the same column applies each invoice month's own window, so that a row
// counts the same whether its month is fetched alone or in a run. Net cost is summed in
// integer micros of the billing currency (the pattern of Google's
// documentation; the explicit ROUND makes every engine round half away
// from zero), grouped by conversion rate so that each sum converts to USD
// exactly once.
const billingSQL = `-- cloudcarbon:billing
SELECT
  invoice.month AS invoice_month,
  billing_account_id,
  project.id AS project_id,
  MAX(project.name) AS project_name,
  service.description AS service,
  location.region AS region,
  location.location AS location,
  currency,
  currency_conversion_rate,
  ` + netCostMicrosSQL + `
FROM %s
` + billingWhereSQL + `
GROUP BY 1, 2, 3, 5, 6, 7, 8, 9`

// netCostMicrosSQL and billingWhereSQL are the parts of billingSQL that
// the tag feed's query (tagSQL) shares, so that both count exactly the
// same rows and money. billingWhereSQL is a format for fmt.Sprintf.
const (
	netCostMicrosSQL = `SUM(CAST(ROUND(cost * 1000000) AS INT64))
    + SUM(IFNULL((SELECT SUM(CAST(ROUND(c.amount * 1000000) AS INT64)) FROM UNNEST(credits) AS c), 0))
    AS net_cost_micros`
	billingWhereSQL = `WHERE _PARTITIONTIME >= @partition_start
  AND _PARTITIONTIME < @partition_end
  AND invoice.month IN UNNEST(@invoice_months)
  AND _PARTITIONTIME >= TIMESTAMP(PARSE_DATE('%%Y%%m', invoice.month))
  AND _PARTITIONTIME < TIMESTAMP_ADD(TIMESTAMP(DATE_ADD(PARSE_DATE('%%Y%%m', invoice.month), INTERVAL 1 MONTH)),
                                     INTERVAL @export_lag_hours HOUR)`
)

// microsPerUnit converts net_cost_micros to currency units.
const microsPerUnit = 1e6

// carbonRow is one result row of carbonSQL.
type carbonRow struct {
	UsageMonth       bigquery.NullDate    `bigquery:"usage_month"`
	BillingAccountID bigquery.NullString  `bigquery:"billing_account_id"`
	ProjectID        bigquery.NullString  `bigquery:"project_id"`
	Service          bigquery.NullString  `bigquery:"service"`
	Region           bigquery.NullString  `bigquery:"region"`
	Location         bigquery.NullString  `bigquery:"location"`
	ModelVersion     bigquery.NullInt64   `bigquery:"carbon_model_version"`
	Scope1           bigquery.NullFloat64 `bigquery:"scope1_kg"`
	Scope2Location   bigquery.NullFloat64 `bigquery:"scope2_location_kg"`
	Scope2Market     bigquery.NullFloat64 `bigquery:"scope2_market_kg"`
	Scope3           bigquery.NullFloat64 `bigquery:"scope3_kg"`
}

// billingRow is one result row of billingSQL.
type billingRow struct {
	InvoiceMonth     bigquery.NullString  `bigquery:"invoice_month"`
	BillingAccountID bigquery.NullString  `bigquery:"billing_account_id"`
	ProjectID        bigquery.NullString  `bigquery:"project_id"`
	ProjectName      bigquery.NullString  `bigquery:"project_name"`
	Service          bigquery.NullString  `bigquery:"service"`
	Region           bigquery.NullString  `bigquery:"region"`
	Location         bigquery.NullString  `bigquery:"location"`
	Currency         bigquery.NullString  `bigquery:"currency"`
	ConversionRate   bigquery.NullFloat64 `bigquery:"currency_conversion_rate"`
	NetMicros        bigquery.NullInt64   `bigquery:"net_cost_micros"`
	// TagKey and TagValue are the tag feed's (tagSQL): the allocation key
	// and the row's value of it, NULL where it has none.
	TagKey   bigquery.NullString `bigquery:"tag_key"`
	TagValue bigquery.NullString `bigquery:"tag_value"`
}

// Fetch implements provider.Provider.
//
// It runs one carbon query for all requested months and, with a billing
// table, one billing query per contiguous run of requested months (so the
// partition window never covers months nobody asked for), concurrently.
// Emissions are the point: a failed carbon query fails the fetch, while a
// failed billing query (the large table, the likelier to hit
// max_bytes_billed) leaves the emissions served, cost absent for those
// months rather than zero, and the failure in Result.Partial.
//
// The refresher asks for the months of a partial fetch again at its next
// attempt. Only the billing query failed, so the carbon rows of the
// partial fetch are kept (see partialFetch), and an attempt within
// CarbonReuse that asks for no other month runs the billing query alone:
// a billing export that keeps failing costs no carbon query per retry.
func (p *Provider) Fetch(ctx context.Context, months []provider.Month) (provider.Result, error) {
	ms := uniqueMonths(months)
	if len(ms) == 0 {
		return provider.Result{}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg         sync.WaitGroup
		carbon     []carbonRow
		billing    []billingRow
		cerr, berr error
	)
	kept, reuse := p.keptCarbon(ms)
	if reuse {
		carbon = kept
		p.log.DebugContext(ctx, "gcp running the billing query alone; the carbon rows of the previous fetch, whose billing query failed, still serve",
			"months", len(ms))
	} else {
		wg.Go(func() {
			if carbon, cerr = p.queryCarbon(ctx, ms); cerr != nil {
				cancel()
			}
		})
	}
	if p.billing != nil {
		wg.Go(func() { billing, berr = p.queryBilling(ctx, ms) })
	}
	wg.Wait()
	if cerr != nil {
		return provider.Result{}, firstError(cerr, berr)
	}
	if berr != nil {
		if ctx.Err() != nil {
			return provider.Result{}, berr
		}
		res, err := p.build(ms, carbon, nil)
		if err == nil && !reuse {
			p.keepCarbon(ms, carbon)
		}
		res.Partial = berr
		return res, err
	}
	p.dropCarbon()
	return p.build(ms, carbon, billing)
}

// CarbonReuse is how long the carbon rows of a fetch whose billing query
// failed serve the retries of that fetch. The carbon table changes once a
// month at most, when an export run lands; an hour bounds how late a
// retry can notice one.
const CarbonReuse = time.Hour

// partialFetch is the carbon side of the last fetch whose billing query
// failed: the months it asked for and their rows. It is one fetch's rows,
// so its memory is bounded by what a fetch holds anyway.
type partialFetch struct {
	months []provider.Month // sorted, unique
	carbon []carbonRow
	at     time.Time
}

// keptCarbon returns a copy of the kept carbon rows when they are recent
// and cover every month of ms (sorted, unique).
func (p *Provider) keptCarbon(ms []provider.Month) ([]carbonRow, bool) {
	if p.billing == nil {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.partial
	if k == nil || time.Since(k.at) >= CarbonReuse || time.Since(k.at) < 0 {
		return nil, false
	}
	for _, m := range ms {
		if _, ok := slices.BinarySearch(k.months, m); !ok {
			return nil, false
		}
	}
	// A copy: build sorts its rows in place, and fetches may run
	// concurrently.
	return slices.Clone(k.carbon), true
}

func (p *Provider) keepCarbon(ms []provider.Month, carbon []carbonRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = &partialFetch{months: slices.Clone(ms), carbon: slices.Clone(carbon), at: time.Now()}
}

func (p *Provider) dropCarbon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = nil
}

// firstError returns the error that caused a failure rather than the
// cancellation it caused in the other query.
func firstError(errs ...error) error {
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case provider.ReasonOf(err) == provider.ReasonCanceled:
			canceled = cmp.Or(canceled, err)
		default:
			return err
		}
	}
	return canceled
}

func (p *Provider) queryCarbon(ctx context.Context, months []provider.Month) ([]carbonRow, error) {
	dates := make([]civil.Date, len(months))
	for i, m := range months {
		dates[i] = civil.DateOf(m.Start())
	}
	q := query{kind: kindCarbon, table: p.carbon}
	return runQuery[carbonRow](ctx, p, q, fmt.Sprintf(carbonSQL, p.carbon.sql()), []bigquery.QueryParameter{
		{Name: "months", Value: dates},
		{Name: "billing_account", Value: p.opts.BillingAccount},
	})
}

func (p *Provider) queryBilling(ctx context.Context, months []provider.Month) ([]billingRow, error) {
	return p.queryBillingRuns(ctx, months, fmt.Sprintf(billingSQL, p.billing.sql()), nil)
}

// queryBillingRuns runs sql, a query of the billing export (billingSQL or
// tagSQL), once per contiguous run of months, with the run's partition
// window and invoice months and the parameters in extra.
func (p *Provider) queryBillingRuns(ctx context.Context, months []provider.Month, sql string, extra []bigquery.QueryParameter) ([]billingRow, error) {
	q := query{kind: kindBilling, table: *p.billing}
	var rows []billingRow
	for _, run := range provider.Runs(months) {
		invoiceMonths := make([]string, 0, run[1]-run[0]+1)
		for m := run[0]; m <= run[1]; m++ {
			invoiceMonths = append(invoiceMonths, invoiceMonth(m))
		}
		start, end := billingWindow(run[0], run[1])
		params := append([]bigquery.QueryParameter{
			{Name: "partition_start", Value: start},
			{Name: "partition_end", Value: end},
			{Name: "invoice_months", Value: invoiceMonths},
			{Name: "export_lag_hours", Value: int64(BillingExportLag / time.Hour)},
		}, extra...)
		got, err := runQuery[billingRow](ctx, p, q, sql, params)
		if err != nil {
			return nil, err
		}
		rows = append(rows, got...)
	}
	return rows, nil
}

// uniqueMonths returns months sorted, without repeats, in a new slice.
func uniqueMonths(months []provider.Month) []provider.Month {
	ms := slices.Clone(months)
	slices.Sort(ms)
	return slices.Compact(ms)
}

// billingWindow returns the _PARTITIONTIME range [start, end) that holds
// the billing export rows of invoice months first to last. Partitions are
// days in UTC; invoice months are months in US/Pacific, which begin after
// the UTC month does, so no row of the first month precedes its UTC start.
func billingWindow(first, last provider.Month) (start, end time.Time) {
	return first.Start(), last.End().Add(BillingExportLag)
}

// invoiceMonth formats m as the export's invoice.month ("202401").
func invoiceMonth(m provider.Month) string {
	return fmt.Sprintf("%04d%02d", m.Year(), int(m.Month()))
}

func parseInvoiceMonth(s string) (provider.Month, error) {
	t, err := time.Parse("200601", s)
	if err != nil {
		return 0, fmt.Errorf("invalid invoice month %q: want YYYYMM", s)
	}
	return provider.MonthOf(t), nil
}

// runQuery runs one query and loads every result row into a T. Every
// query carries the bytes limit and the location, and requires a job
// (rather than letting BigQuery run it jobless) so that the job's
// statistics can be read afterwards.
//
// The BigQuery client dereferences fields that a malformed answer can
// lack (a jobs.query answer of "{}", without jobComplete and
// jobReference, makes Query.Read panic; found by FuzzQueryResponse). A
// panic in a query goroutine would take the whole exporter down, so one
// raised while reading a query's answers is a malformed response.
func runQuery[T any](ctx context.Context, p *Provider, q query, sql string, params []bigquery.QueryParameter) (rows []T, err error) {
	defer func() {
		if r := recover(); r != nil {
			rows = nil
			err = &provider.Error{Reason: provider.ReasonMalformed, Err: fmt.Errorf(
				"gcp: %s query on %s: malformed response: the BigQuery client failed on it: %v", q.kind, q.table, r)}
		}
	}()
	bq := p.client.Query(sql)
	bq.Parameters = params
	bq.Location = p.opts.Location
	bq.MaxBytesBilled = p.opts.MaxBytesBilled
	bq.JobCreationMode = bigquery.JobCreationModeRequired
	label := q.kind
	if f := feedOf(ctx); f != nil {
		label = f.label
	}
	bq.Labels = map[string]string{"cloudcarbon_query": label}

	start := time.Now()
	it, err := bq.Read(ctx)
	if err != nil {
		return nil, p.failure(ctx, q, err)
	}
	for {
		var row T
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, p.failure(ctx, q, err)
		}
		rows = append(rows, row)
	}
	p.recordBytes(ctx, q, it, len(rows), time.Since(start))
	return rows, nil
}

// recordBytes reports the bytes a finished query processed. The
// jobs.query answer the client reads rows from does not expose them, so
// they come from the job's statistics (jobs.get). Failing to read them
// loses a self-metric, not data, so it does not fail the fetch.
func (p *Provider) recordBytes(ctx context.Context, q query, it *bigquery.RowIterator, rows int, took time.Duration) {
	job := it.SourceJob()
	if job == nil {
		p.log.WarnContext(ctx, "BigQuery returned no job for a query; its bytes are not counted", "kind", q.kind, "table", q.table.String())
		return
	}
	st, err := job.Status(ctx)
	if err != nil || st.Statistics == nil {
		p.log.WarnContext(ctx, "Cannot read a query job's statistics; its bytes are not counted",
			"kind", q.kind, "table", q.table.String(), "job_id", job.ID(), "err", err)
		return
	}
	bytes := st.Statistics.TotalBytesProcessed
	if qs, ok := st.Statistics.Details.(*bigquery.QueryStatistics); ok && bytes == 0 {
		bytes = qs.TotalBytesProcessed
	}
	if p.opts.ObserveBytes != nil {
		p.opts.ObserveBytes(float64(bytes))
	}
	p.log.DebugContext(ctx, "gcp query done", "kind", q.kind, "table", q.table.String(), "job_id", job.ID(),
		"rows", rows, "bytes_processed", bytes, "duration", took.Round(time.Millisecond))
}

type recordKey struct {
	account, service, location string
	month                      provider.Month
	scope                      provider.Scope
	// tag and value are the tag feed's allocation key and its value ("" for
	// cost without it); "" in Fetch's and the cost feed's records.
	tag, value string
}

type accountSeen struct {
	provider.Account
	month provider.Month
}

// builder turns the query rows of one fetch into its result.
type builder struct {
	p       *Provider
	want    map[provider.Month]bool
	records map[recordKey]*provider.Record
	// noMarket marks records some contributing row lacked a market-based
	// figure for: their market-based value is unknown, not partial.
	noMarket  map[recordKey]bool
	accounts  map[string]accountSeen
	revisions map[provider.Month]int64
}

// build turns query rows into the result.
func (p *Provider) build(months []provider.Month, carbon []carbonRow, billing []billingRow) (provider.Result, error) {
	b := p.newBuilder(months)
	if err := b.addCarbon(carbon); err != nil {
		return provider.Result{}, err
	}
	if err := b.addBilling(billing); err != nil {
		return provider.Result{}, err
	}
	return b.result()
}

// newBuilder returns a builder of the records of months.
func (p *Provider) newBuilder(months []provider.Month) *builder {
	b := &builder{
		p:         p,
		want:      make(map[provider.Month]bool, len(months)),
		records:   make(map[recordKey]*provider.Record),
		noMarket:  make(map[recordKey]bool),
		accounts:  make(map[string]accountSeen),
		revisions: make(map[provider.Month]int64),
	}
	for _, m := range months {
		b.want[m] = true
	}
	return b
}

// record returns the record of k, new if need be.
func (b *builder) record(k recordKey) *provider.Record {
	r := b.records[k]
	if r == nil {
		r = &provider.Record{Provider: Name, Account: k.account, Service: k.service,
			Location: k.location, Scope: k.scope, Month: k.month}
		b.records[k] = r
	}
	return r
}

// seen notes a project. Its parent is the billing account of its latest
// month (the smallest id if several), its name the latest one the
// billing export gave.
func (b *builder) seen(project, name, billingAccount string, m provider.Month) {
	a, ok := b.accounts[project]
	if !ok || m > a.month || (m == a.month && billingAccount != "" && (a.ParentID == "" || billingAccount < a.ParentID)) {
		a.month = m
		a.Provider, a.ID = Name, project
		if billingAccount != "" {
			a.ParentType, a.ParentID = "billing_account", billingAccount
		}
	}
	if name != "" {
		a.Name = name
	}
	b.accounts[project] = a
}

// addCarbon adds the carbon rows of the months asked for: three records
// per row, scopes 1, 2 and 3.
func (b *builder) addCarbon(rows []carbonRow) error {
	slices.SortFunc(rows, compareCarbonRows)
	for i := range rows {
		row := &rows[i]
		if !row.UsageMonth.Valid {
			return malformed(kindCarbon, b.p.carbon, errors.New("row without usage_month"))
		}
		m := provider.NewMonth(row.UsageMonth.Date.Year, row.UsageMonth.Date.Month)
		if !b.want[m] {
			continue
		}
		if row.ModelVersion.Valid && row.ModelVersion.Int64 > b.revisions[m] {
			b.revisions[m] = row.ModelVersion.Int64
		}
		account := accountLabel(row.ProjectID)
		b.seen(account, "", row.BillingAccountID.StringVal, m)
		base := recordKey{account: account, service: serviceLabel(row.Service), location: locationLabel(row.Region, row.Location), month: m}
		if err := b.addScopes(base, row); err != nil {
			return err
		}
	}
	for k := range b.noMarket {
		if r := b.records[k]; r != nil {
			r.MarketBasedGrams = 0
			r.Known &^= provider.EmissionsMarketBased
		}
	}
	return nil
}

// addScopes adds one carbon row's figures to the records of its three
// scopes. Only scope 2 has a market-based figure of its own; scopes 1
// and 3 repeat their location-based one, and none of them has one when
// the row lacks scope 2's.
func (b *builder) addScopes(base recordKey, row *carbonRow) error {
	missing := !row.Scope2Market.Valid
	for _, s := range []struct {
		scope    provider.Scope
		loc, mkt bigquery.NullFloat64
	}{
		{provider.Scope1, row.Scope1, row.Scope1},
		{provider.Scope2, row.Scope2Location, row.Scope2Market},
		{provider.Scope3, row.Scope3, row.Scope3},
	} {
		k := base
		k.scope = s.scope
		if !s.loc.Valid && (missing || !s.mkt.Valid) {
			continue
		}
		// BigQuery's FLOAT64 has NaN and infinities, and its JSON
		// carries them ("NaN", "Infinity"): none is an emission.
		if (s.loc.Valid && !finite(s.loc.Float64)) || (s.mkt.Valid && !finite(s.mkt.Float64)) {
			return malformed(kindCarbon, b.p.carbon, fmt.Errorf(
				"usage month %s, project %q: scope %s figure %v / %v is not a finite number", k.month, k.account, s.scope, s.loc, s.mkt))
		}
		r := b.record(k)
		if s.loc.Valid {
			r.EmissionsGrams += s.loc.Float64 * GramsPerKilogram
			r.Known |= provider.Emissions
		}
		if missing || !s.mkt.Valid {
			b.noMarket[k] = true
			continue
		}
		r.MarketBasedGrams += s.mkt.Float64 * GramsPerKilogram
		r.Known |= provider.EmissionsMarketBased
	}
	return nil
}

// addBilling adds the billing rows of the months asked for, as cost
// records (provider.ScopeNone) in US dollars.
func (b *builder) addBilling(rows []billingRow) error {
	slices.SortFunc(rows, compareBillingRows)
	for i := range rows {
		row := &rows[i]
		m, err := parseInvoiceMonth(row.InvoiceMonth.StringVal)
		if err != nil {
			return malformed(kindBilling, *b.p.billing, err)
		}
		if !b.want[m] || !row.NetMicros.Valid {
			continue
		}
		rate := row.ConversionRate
		if !rate.Valid || !(rate.Float64 > 0) || !finite(rate.Float64) {
			return malformed(kindBilling, *b.p.billing, fmt.Errorf(
				"invoice month %s, project %q: currency_conversion_rate %v is not a positive number", m, row.ProjectID.StringVal, rate))
		}
		account := accountLabel(row.ProjectID)
		b.seen(account, row.ProjectName.StringVal, row.BillingAccountID.StringVal, m)
		r := b.record(recordKey{account: account, service: serviceLabel(row.Service),
			location: locationLabel(row.Region, row.Location), month: m, scope: provider.ScopeNone,
			tag: row.TagKey.StringVal, value: tagValue(row.TagValue)})
		r.CostUSD += float64(row.NetMicros.Int64) / microsPerUnit / rate.Float64
		r.Known |= provider.Cost
	}
	return nil
}

// result returns the records, accounts and model versions, in a stable
// order.
func (b *builder) result() (provider.Result, error) {
	res := provider.Result{Records: make([]provider.Record, 0, len(b.records))}
	for _, r := range b.records {
		if err := b.checkRange(r); err != nil {
			return provider.Result{}, err
		}
		res.Records = append(res.Records, *r)
	}
	slices.SortFunc(res.Records, compareRecords)
	for _, a := range b.accounts {
		res.Accounts = append(res.Accounts, a.Account)
	}
	slices.SortFunc(res.Accounts, func(a, b provider.Account) int { return cmp.Compare(a.ID, b.ID) })
	if len(b.revisions) > 0 {
		res.Revisions = make(map[provider.Month]string, len(b.revisions))
		for m, v := range b.revisions {
			res.Revisions[m] = strconv.FormatInt(v, 10)
		}
	}
	return res, nil
}

// checkRange fails a record whose sums overflowed.
func (b *builder) checkRange(r *provider.Record) error {
	if finite(r.EmissionsGrams) && finite(r.MarketBasedGrams) && finite(r.CostUSD) {
		return nil
	}
	what, table := kindCarbon, b.p.carbon
	if r.Has(provider.Cost) {
		what, table = kindBilling, *b.p.billing
	}
	return malformed(what, table, fmt.Errorf(
		"the figures of month %s, project %q, %s, %s sum beyond range", r.Month, r.Account, r.Service, r.Location))
}

// compareRecords orders records by month and labels.
func compareRecords(a, b provider.Record) int {
	return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account),
		cmp.Compare(a.Service, b.Service), cmp.Compare(a.Location, b.Location), cmp.Compare(a.Scope, b.Scope))
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// compareCarbonRows and compareBillingRows order result rows, so that
// float sums do not depend on the order BigQuery returns rows in.
func compareCarbonRows(a, b carbonRow) int {
	return cmp.Or(
		cmp.Compare(a.UsageMonth.Date.String(), b.UsageMonth.Date.String()),
		cmp.Compare(a.ProjectID.StringVal, b.ProjectID.StringVal),
		cmp.Compare(a.Service.StringVal, b.Service.StringVal),
		cmp.Compare(a.Region.StringVal, b.Region.StringVal),
		cmp.Compare(a.Location.StringVal, b.Location.StringVal),
		cmp.Compare(a.BillingAccountID.StringVal, b.BillingAccountID.StringVal),
	)
}

func compareBillingRows(a, b billingRow) int {
	return cmp.Or(
		cmp.Compare(a.InvoiceMonth.StringVal, b.InvoiceMonth.StringVal),
		cmp.Compare(a.ProjectID.StringVal, b.ProjectID.StringVal),
		cmp.Compare(a.Service.StringVal, b.Service.StringVal),
		cmp.Compare(a.Region.StringVal, b.Region.StringVal),
		cmp.Compare(a.Location.StringVal, b.Location.StringVal),
		cmp.Compare(a.BillingAccountID.StringVal, b.BillingAccountID.StringVal),
		cmp.Compare(a.Currency.StringVal, b.Currency.StringVal),
		cmp.Compare(a.ConversionRate.Float64, b.ConversionRate.Float64),
		cmp.Compare(a.TagKey.StringVal, b.TagKey.StringVal),
		cmp.Compare(a.TagValue.StringVal, b.TagValue.StringVal),
		// NULL and empty tag values are one value; the sum of their
		// groups must not depend on the order of the two.
		cmp.Compare(a.NetMicros.Int64, b.NetMicros.Int64),
	)
}

func malformed(kind string, t tableRef, err error) *provider.Error {
	return &provider.Error{Reason: provider.ReasonMalformed, Err: fmt.Errorf("gcp: %s query on %s: unexpected result: %w", kind, t, err)}
}

// accountLabel is the project id, or the placeholder for rows without a
// project (NULL, or the empty string Google uses for project.number).
func accountLabel(project bigquery.NullString) string {
	if s := strings.TrimSpace(project.StringVal); project.Valid && s != "" {
		return s
	}
	return provider.AccountPlaceholder
}

// serviceLabel keeps Google's service display name ("Compute Engine").
func serviceLabel(s bigquery.NullString) string {
	v := strings.Join(strings.Fields(s.StringVal), " ")
	if !s.Valid || v == "" {
		return Unknown
	}
	return v
}

// locationLabel is the region when the row names one, else the location
// (multi-region, country or "global"), lower-cased.
func locationLabel(region, location bigquery.NullString) string {
	for _, v := range []bigquery.NullString{region, location} {
		if s := strings.ToLower(strings.TrimSpace(v.StringVal)); v.Valid && s != "" {
			return s
		}
	}
	return Unknown
}
