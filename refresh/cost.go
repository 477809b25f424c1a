package refresh

import (
	"context"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provisional"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// costWindow returns the months whose cost a provisional source keeps:
// from the published months the backtest estimates, and the intensities
// they are estimated from, to the month in progress.
func costWindow(now time.Time, sched provider.Schedule, latest provider.Month) (first, last provider.Month) {
	return latest - provider.Month(provisional.BacktestMonths-1+provisional.Lag(sched)), provider.MonthOf(now)
}

// costPlan returns the months whose cost or tag weights are due at now,
// and when the next will be (zero: none).
func (r *refresher) costPlan(now time.Time, d *store.SourceData) (due []provider.Month, next time.Time) {
	costs, costNext := r.costMonths(now, d)
	tags, tagNext := r.tagMonths(now, d)
	due = slices.Compact(slices.Sorted(slices.Values(append(costs, tags...))))
	if next = costNext; next.IsZero() || (!tagNext.IsZero() && tagNext.Before(next)) {
		next = tagNext
	}
	return due, next
}

// costMonths returns the months whose cost is due at now, and when the
// next one will be.
func (r *refresher) costMonths(now time.Time, d *store.SourceData) (due []provider.Month, next time.Time) {
	if !r.src.Provisional {
		return nil, time.Time{}
	}
	if _, ok := r.src.Provider.(provider.CostFeed); !ok {
		return nil, time.Time{}
	}
	latest, ok := d.LatestMonth()
	if !ok {
		return nil, time.Time{}
	}
	first, last := costWindow(now, r.src.Provider.Schedule(), latest)
	return r.dueMonths(now, first, last, latest, r.costRetryAt, func(m provider.Month) (time.Time, bool) {
		if md := d.Costs[m]; md != nil {
			return md.FetchedAt, true
		}
		return time.Time{}, false
	})
}

// dueMonths returns the months from first to last that are due at now,
// and when the next one will be. A month never read is due at once; the
// figures of a month that is over are final once read after its end
// (latest, the latest published month, counts as over); those of a month
// in progress change every day and are read again every Interval.
// fetched says when a month was last read.
func (r *refresher) dueMonths(now time.Time, first, last, latest provider.Month, retryAt time.Time,
	fetched func(provider.Month) (time.Time, bool)) (due []provider.Month, next time.Time) {
	for m := first; m <= last; m++ {
		at, read := fetched(m)
		switch {
		case !read:
			at = now
		case at.Before(m.End()):
			was := at
			at = was.Add(r.opts.Interval)
			if m <= latest || m.End().Before(at) {
				at = later(m.End(), was) // the month is over: read it once more
			}
		default:
			continue
		}
		at = later(at, retryAt)
		if !at.After(now) {
			due = append(due, m)
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}

// nextRefresh is when the refresher is due next: for a month of emissions
// or of cost, whichever comes first.
func (r *refresher) nextRefresh(now time.Time, sched provider.Schedule, d *store.SourceData) time.Time {
	_, next := plan(now, sched, d, r.opts)
	if _, costNext := r.costPlan(now, d); !costNext.IsZero() && costNext.Before(next) {
		next = costNext
	}
	return next
}

// refreshCosts reads the cost and the tag weights that are due at start
// and stores them.
func (r *refresher) refreshCosts(ctx context.Context, start time.Time) {
	d, ok := r.store.Get(r.src.Name)
	if !ok {
		return
	}
	costs, _ := r.costMonths(start, d)
	tags, _ := r.tagMonths(start, d)
	if len(costs) > 0 {
		r.readCosts(ctx, costs, start)
	}
	if len(tags) > 0 {
		r.readTags(ctx, tags, start)
	}
}

// readCosts reads the cost of months and stores it. A failure keeps the
// cost held (and the estimates made of it), is counted like a failed
// refresh and retried after the same backoff, and never touches the
// published data.
func (r *refresher) readCosts(ctx context.Context, months []provider.Month, start time.Time) {
	feed := r.src.Provider.(provider.CostFeed)
	var recs []provider.Record
	var err error
	if !r.within(ctx, func(ctx context.Context) { recs, err = feed.Costs(ctx, months) }) {
		return
	}
	end := r.opts.now()
	if err != nil {
		r.costFailures++
		reason := provider.ReasonOf(err)
		r.metrics.refreshErrors.WithLabelValues(r.src.Provider.Name(), r.src.Name, string(reason)).Inc()
		r.costRetryAt = end.Add(r.opts.backoff(r.costFailures, provider.RetryAfterOf(err)))
		r.logger.Warn("Cost refresh failed; the published data is unaffected, provisional months keep the last cost read",
			"reason", reason, "err", err, "consecutive_failures", r.costFailures, "next_attempt", r.costRetryAt.Format(time.RFC3339))
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) { d.CostAttempt, d.CostOK = start, false })
		return
	}
	r.costFailures, r.costRetryAt = 0, time.Time{}
	byMonth, kept := r.sort(nil, onlyCost(recs), months)
	r.store.Update(r.src.Name, store.Data, func(d *store.SourceData) {
		if d.Costs == nil {
			d.Costs = map[provider.Month]*store.MonthData{}
		}
		for _, m := range months {
			md := byMonth[m].Done()
			md.FetchedAt = start
			d.Costs[m] = md
		}
		if latest, ok := d.LatestMonth(); ok {
			first, _ := costWindow(start, r.src.Provider.Schedule(), latest)
			for m := range d.Costs {
				if m < first {
					delete(d.Costs, m)
				}
			}
		}
		d.CostAttempt, d.CostSuccess, d.CostOK = start, start, true
	})
	r.logger.Info("Refreshed cost", "months", len(months), "records", kept, "duration", end.Sub(start).Round(time.Millisecond))
}

// onlyCost keeps the cost of records, which a cost feed returns alone.
func onlyCost(recs []provider.Record) []provider.Record {
	out := recs[:0]
	for _, rec := range recs {
		if rec.Has(provider.Cost) {
			rec.Known = provider.Cost
			rec.Scope = provider.ScopeNone
			out = append(out, rec)
		}
	}
	return out
}

// realize records, for each month of byMonth the provider publishes now
// and that was estimated before, the estimate served against the figures
// published. d is the data before the months are stored.
func realize(d *store.SourceData, byMonth map[provider.Month]*store.MonthData) {
	if len(d.Costs) == 0 {
		return
	}
	var estimates []provisional.Estimate
	done := false
	for m, md := range byMonth {
		if d.Published(d.Months[m]) || d.Costs[m] == nil {
			continue
		}
		published, known := provisional.PublishedTotals(md.Records())
		if known&(provider.Emissions|provider.EmissionsMarketBased) == 0 {
			continue
		}
		if !done {
			published, costs := d.CostInputs()
			estimates, done = provisional.Estimates(published, costs), true
		}
		est, estKnown := provisional.Totals(provisional.Of(estimates, m))
		if estKnown == 0 {
			continue
		}
		d.AddRealized(store.Realized{Month: m, Estimated: est, Published: published, Known: estKnown & known})
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
