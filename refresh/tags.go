package refresh

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// tagMonths returns the months whose tag weights are due at now, and when
// the next one will be: the latest published month, whose emissions the
// allocation families split, and with provisional months the months after
// it, whose estimates they split too. A month is due when any key's
// weights are.
func (r *refresher) tagMonths(now time.Time, d *store.SourceData) (due []provider.Month, next time.Time) {
	if len(r.src.Allocation.By) == 0 {
		return nil, time.Time{}
	}
	if _, ok := r.src.Provider.(provider.TagFeed); !ok {
		return nil, time.Time{}
	}
	latest, ok := d.LatestMonth()
	if !ok {
		return nil, time.Time{}
	}
	last := latest
	if r.src.Provisional {
		last = provider.MonthOf(now)
	}
	return r.dueMonths(now, latest, last, latest, r.tagRetryAt, func(m provider.Month) (time.Time, bool) {
		var oldest time.Time
		for i, key := range r.src.Allocation.By {
			tm := d.Allocations.Month(key, m)
			if tm == nil {
				return time.Time{}, false
			}
			if i == 0 || tm.FetchedAt.Before(oldest) {
				oldest = tm.FetchedAt
			}
		}
		return oldest, true
	})
}

// readTags reads the weights of every allocation key's values for months
// and stores them. A failure keeps the weights held (and the allocations
// made of them), is counted like a failed refresh and retried after the
// same backoff, and never touches the published data.
func (r *refresher) readTags(ctx context.Context, months []provider.Month, start time.Time) {
	feed := r.src.Provider.(provider.TagFeed)
	by := r.src.Allocation.By
	read := make(map[string][]provider.TagCost, len(by))
	for _, key := range by {
		var rows []provider.TagCost
		var err error
		if !r.within(ctx, func(ctx context.Context) { rows, err = feed.TagCosts(ctx, months, key) }) {
			return
		}
		if err != nil {
			r.tagFailed(err, key, start)
			return
		}
		rows = r.keepTags(rows, months)
		if len(rows) > 0 && !slices.ContainsFunc(rows, func(t provider.TagCost) bool { return t.Value != "" }) {
			r.logger.Warn("No cost carries the allocation key: every figure is allocated to its untagged value. "+
				"Check the key's spelling (case included) and that the provider exposes it in its cost data "+
				"(AWS: activated as a cost allocation tag; GCP: a label of the billing export; Azure and OCI: a tag of the resources)",
				"key", key, "months", len(months))
		}
		read[key] = rows
	}
	r.tagFailures, r.tagRetryAt = 0, time.Time{}
	r.store.Update(r.src.Name, store.Data, func(d *store.SourceData) {
		latest, _ := d.LatestMonth()
		d.Allocations = d.Allocations.Store(read, months, latest, r.src.Allocation, start)
	})
	r.logger.Info("Refreshed allocation tags", "keys", len(by), "months", len(months),
		"duration", r.opts.now().Sub(start).Round(time.Millisecond))
}

// keepTags keeps the tag weights of months that are the source's own and
// measurements, as the refresher keeps records.
func (r *refresher) keepTags(rows []provider.TagCost, months []provider.Month) []provider.TagCost {
	out := rows[:0]
	for _, t := range rows {
		if t.Provider != r.src.Provider.Name() || !slices.Contains(months, t.Month) {
			continue
		}
		if t.Sanitize(); t.Known&(provider.Cost|provider.Emissions) == 0 {
			continue
		}
		out = append(out, t)
	}
	// In one order whatever the provider's (some read concurrently), so
	// that the shares summed from them are the same to the bit.
	slices.SortStableFunc(out, func(a, b provider.TagCost) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.Account, b.Account), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Location, b.Location), cmp.Compare(a.Value, b.Value), cmp.Compare(a.Scope, b.Scope))
	})
	return slices.Clip(out)
}

// tagFailed counts a failed read of key's weights and plans the retry.
func (r *refresher) tagFailed(err error, key string, start time.Time) {
	r.tagFailures++
	reason := provider.ReasonOf(err)
	r.metrics.refreshErrors.WithLabelValues(r.src.Provider.Name(), r.src.Name, string(reason)).Inc()
	end := r.opts.now()
	r.tagRetryAt = end.Add(r.opts.backoff(r.tagFailures, provider.RetryAfterOf(err)))
	r.logger.Warn("Allocation tag refresh failed; the published data is unaffected, allocations keep the last tags read",
		"key", key, "reason", reason, "err", err, "consecutive_failures", r.tagFailures, "next_attempt", r.tagRetryAt.Format(time.RFC3339))
	r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
		d.Allocations = d.Allocations.Attempted(start)
	})
}
