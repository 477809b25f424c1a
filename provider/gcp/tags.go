package gcp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// The tag feed, for allocation by labels.
//
// The billing export carries each line item's resource labels (labels,
// an ARRAY<STRUCT<key, value>>) and its project's (project.labels). GKE
// cost allocation adds a cluster's namespaces and Kubernetes labels to
// labels, as k8s-namespace and k8s-label/<label key>, in the detailed
// usage cost export (gcp_billing_export_resource_v1_…) only; that table
// holds every column of the standard export, so billing_table may name
// it. An allocate_by key is a resource label's key as the export spells
// it ("team", "k8s-namespace", "k8s-label/app"), or a project label's
// prefixed with ProjectLabelPrefix ("project:cost-center"). Neither kind
// of key can contain a colon, so the two never meet.
//
// SQL groups by anything, so the tag feed's query, tagSQL, groups exactly
// as the cost feed's billing query does (project, service description,
// region or multi-region, currency and rate, with the same partition
// window, invoice months and exact sums in micros) and, in addition, by
// allocation key and the line item's value of it: every record carries all
// three labels of the emissions it shares out. Each row is paired with
// every key asked for (a CROSS JOIN with the @tag_keys parameter), so that
// one query reads every key: BigQuery bills the columns a query reads,
// whatever the number of keys, so one query for all of allocate_by costs
// what one for a single key would. Its scan is the billing query's plus
// the labels column (and project.labels only when a key names a project
// label), over the partitions of the months asked for, bounded by
// max_bytes_billed.
//
// The queries carry the job label cloudcarbon_query=tags, and their
// requests are observed as "tags.jobs.query", "tags.jobs.getQueryResults"
// and "tags.jobs.get". The permissions are the billing query's.

// ProjectLabelPrefix prefixes an allocate_by key that names a project
// label (the export's project.labels) rather than a resource label.
const ProjectLabelPrefix = "project:"

// tagSQL reads the net cost of one contiguous run of invoice months by
// series, currency and rate (as billingSQL) and by allocation key and the
// row's value of it. The first %s is the value expression (see
// tagValueSQL), the second the table. MAX picks one value should a
// line item carry a key twice, so that no row's cost counts twice. The
// CAST, a no-op for BigQuery, types the parameter for engines that infer
// parameter types from their use (the emulator's ZetaSQL analysis takes
// a bare parameter in FROM UNNEST for an INT64).
const tagSQL = `-- cloudcarbon:tags
SELECT
  invoice_month,
  billing_account_id,
  project_id,
  service,
  region,
  location,
  currency,
  currency_conversion_rate,
  tag_key,
  tag_value,
  ` + netCostMicrosSQL + `
FROM (
  SELECT
    invoice.month AS invoice_month,
    billing_account_id,
    project.id AS project_id,
    service.description AS service,
    location.region AS region,
    location.location AS location,
    currency,
    currency_conversion_rate,
    cost,
    credits,
    tag_key,
    %s AS tag_value
  FROM %s
  CROSS JOIN UNNEST(CAST(@tag_keys AS ARRAY<STRING>)) AS tag_key
  ` + billingWhereSQL + `
)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`

// The value of a row's resource label and of its project's label named by
// tag_key. A query names only the columns its keys need: BigQuery bills
// every column a query names.
const (
	resourceValueSQL = `(SELECT MAX(l.value) FROM UNNEST(labels) AS l WHERE l.key = tag_key)`
	projectValueSQL  = `(SELECT MAX(l.value) FROM UNNEST(project.labels) AS l WHERE CONCAT('` + ProjectLabelPrefix + `', l.key) = tag_key)`
)

// tagValueSQL is the value expression of tagSQL for keys.
func tagValueSQL(keys []string) string {
	var exprs []string
	if slices.ContainsFunc(keys, func(k string) bool { return !strings.HasPrefix(k, ProjectLabelPrefix) }) {
		exprs = append(exprs, resourceValueSQL)
	}
	if slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, ProjectLabelPrefix) }) {
		exprs = append(exprs, projectValueSQL)
	}
	if len(exprs) == 1 {
		return exprs[0]
	}
	// At most one matches: a resource label's key has no colon.
	return "COALESCE(" + strings.Join(exprs, ", ") + ")"
}

// maxTagValueBytes bounds a value, which becomes a label value. Google
// allows 63 characters in a label value, Kubernetes 63 in its labels'.
const maxTagValueBytes = 256

// tagValue is a line item's value of an allocation key as the tag feed
// reports it: "" where it has no such label (NULL) and where the label's
// value is empty, which Google allows and which names no one; any other
// value as the export spells it, in valid UTF-8 and bounded.
func tagValue(v bigquery.NullString) string {
	if !v.Valid {
		return ""
	}
	return provider.Truncate(v.StringVal, maxTagValueBytes)
}

// checkTagKey says what is wrong with an allocate_by key for GCP, beyond
// provider.CheckAllocation's rules.
func checkTagKey(k string) error {
	if name, ok := strings.CutPrefix(k, ProjectLabelPrefix); ok && (name == "" || strings.Contains(name, ":")) {
		return fmt.Errorf("%s must be followed by the key of a project label", ProjectLabelPrefix)
	}
	return nil
}

// TagReuse is how long the values one tag read returns for the keys it
// was not asked for serve the reads that ask for them. A refresh reads
// its keys one after another, within seconds; the billing export gets
// new rows a few times a day.
const TagReuse = 15 * time.Minute

// keptTags are the records of the last tag read for the keys not asked
// for yet, each served once.
type keptTags struct {
	months []provider.Month // sorted, unique
	at     time.Time
	byKey  map[string][]provider.TagCost
}

var errNoBillingTableTags = errors.New("gcp: allocation reads the labels of the billing export: set billing_table")

// ReadTagCosts returns the net cost in US dollars of each of months (the
// current one to date) by series, as ReadCosts returns it, and by the
// value of key: a resource label's key, or a project label's prefixed
// with ProjectLabelPrefix. Cost without the label, or with an empty
// value, has Value "". A key no line item carries is no error: all its
// records have Value "".
//
// It reads every key of Options.TagKeys in the same query, and the next
// call for one of the others within TagReuse, for the same months, takes
// its records without a request: a refresh that reads every allocate_by
// key runs one query per contiguous run of months, whatever the number
// of keys. It is the tag feed of a source that sets allocate_by; errors
// are classified as ReadCosts', a missing permission naming the roles.
func (p *Provider) ReadTagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	if p.billing == nil {
		return nil, &provider.Error{Reason: provider.ReasonBadRequest, Err: errNoBillingTableTags}
	}
	if err := checkTagKey(key); err != nil {
		return nil, &provider.Error{Reason: provider.ReasonBadRequest, Err: fmt.Errorf("gcp: tag feed: key %q: %w", key, err)}
	}
	ms := uniqueMonths(months)
	if len(ms) == 0 {
		return nil, nil
	}
	ctx = withFeed(ctx, tagFeedKind)
	// One read at a time, so that reads of the keys of one refresh find
	// what the first one read.
	select {
	case p.tagSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, p.failure(ctx, query{kind: kindBilling, table: *p.billing}, ctx.Err())
	}
	defer func() { <-p.tagSlot }()
	if got, ok := p.takeTags(ms, key); ok {
		p.log.DebugContext(ctx, "gcp tag feed served from the previous read", "months", len(ms), "records", len(got))
		return got, nil
	}
	keys := uniqueStrings(append(slices.Clone(p.opts.TagKeys), key))
	sql := fmt.Sprintf(tagSQL, tagValueSQL(keys), p.billing.sql())
	rows, err := p.queryBillingRuns(ctx, ms, sql, []bigquery.QueryParameter{{Name: "tag_keys", Value: keys}})
	if err != nil {
		return nil, err
	}
	byKey, err := p.buildTags(ms, keys, rows)
	if err != nil {
		return nil, err
	}
	got := byKey[key]
	delete(byKey, key)
	p.tags = &keptTags{months: ms, at: time.Now(), byKey: byKey}
	p.log.DebugContext(ctx, "gcp tag feed read", "months", len(ms), "keys", len(keys), "records", len(got))
	return got, nil
}

// takeTags returns, and forgets, the kept records of key when they are
// of months (sorted, unique) and recent. The caller holds tagSlot.
func (p *Provider) takeTags(ms []provider.Month, key string) ([]provider.TagCost, bool) {
	k := p.tags
	if k == nil || !slices.Equal(k.months, ms) {
		return nil, false
	}
	if age := time.Since(k.at); age < 0 || age >= TagReuse {
		p.tags = nil
		return nil, false
	}
	got, ok := k.byKey[key]
	delete(k.byKey, key)
	return got, ok
}

// buildTags turns the tag query's rows into records per key: every key
// of keys has an entry, empty when the months have no cost.
func (p *Provider) buildTags(months []provider.Month, keys []string, rows []billingRow) (map[string][]provider.TagCost, error) {
	b := p.newBuilder(months)
	for i := range rows {
		if k := rows[i].TagKey; !k.Valid || !slices.Contains(keys, k.StringVal) {
			return nil, malformed(kindBilling, *p.billing, fmt.Errorf("a row of key %q, which was not asked for", k.StringVal))
		}
	}
	if err := b.addBilling(rows); err != nil {
		return nil, err
	}
	out := make(map[string][]provider.TagCost, len(keys))
	for _, key := range keys {
		out[key] = []provider.TagCost{}
	}
	for k, r := range b.records {
		if err := b.checkRange(r); err != nil {
			return nil, err
		}
		out[k.tag] = append(out[k.tag], provider.TagCost{Record: *r, Value: k.value})
	}
	for _, recs := range out {
		slices.SortFunc(recs, func(a, b provider.TagCost) int {
			return cmp.Or(compareRecords(a.Record, b.Record), cmp.Compare(a.Value, b.Value))
		})
	}
	return out, nil
}

func uniqueStrings(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// tagFeed is the provider of a source that sets allocate_by and does not
// ask for provisional months; costTagFeed that of one that does both.
// Each implements exactly the feeds its source asks for, so that no
// caller reads what it was not asked to.
type (
	tagFeed     struct{ *Provider }
	costTagFeed struct{ *Provider }
)

var (
	_ provider.TagFeed  = tagFeed{}
	_ provider.TagFeed  = costTagFeed{}
	_ provider.CostFeed = costTagFeed{}
)

// TagCosts implements provider.TagFeed.
func (t tagFeed) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	return t.ReadTagCosts(ctx, months, key)
}

// TagCosts implements provider.TagFeed.
func (t costTagFeed) TagCosts(ctx context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	return t.ReadTagCosts(ctx, months, key)
}

// Costs implements provider.CostFeed.
func (t costTagFeed) Costs(ctx context.Context, months []provider.Month) ([]provider.Record, error) {
	return t.ReadCosts(ctx, months)
}

// withFeeds returns p as the provider of a source that asks for
// provisional months (cost) and allocation (tags), or either, or neither.
func withFeeds(p *Provider, cost, tags bool) provider.Provider {
	switch {
	case cost && tags:
		return costTagFeed{p}
	case cost:
		return costFeed{p}
	case tags:
		return tagFeed{p}
	}
	return p
}
