// Package refresh decides when to call each configured source, calls it
// on a goroutine of its own and writes the result into the store. Closed
// months are fetched once; open ones are polled fast while their
// publication is due and rarely otherwise; failures back off and honour
// Retry-After while the store keeps serving the last good data.
package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Polling starts publishLead before a month's expected publication, in
// case it lands early, and stays fast until publishGrace after it, in case
// it lands late.
const (
	publishLead  = 3 * 24 * time.Hour
	publishGrace = 7 * 24 * time.Hour
)

// Source is one configured provider client.
type Source struct {
	// Name identifies the source in self-metrics and in the state file.
	Name string
	// Identity names what the source's data depends on (provider, endpoint,
	// account scope), never a secret. Persisted data is reused only when
	// it matches, so a config that points a name elsewhere starts clean.
	Identity string
	Provider provider.Provider
}

// Options tune the refreshers.
type Options struct {
	// Interval is the polling interval while a month is due.
	Interval time.Duration
	// IdleInterval is the polling interval for open months otherwise.
	IdleInterval time.Duration
	// Jitter spreads refreshes by up to this fraction of the interval.
	Jitter float64
	// Timeout bounds one refresh of one source.
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff after
	// failed refreshes.
	BackoffMin, BackoffMax time.Duration
	// MaxConcurrency bounds how many sources of one provider refresh at
	// the same time.
	MaxConcurrency int
	// History is the number of months exposed, the latest included.
	History int
	// Retention is the number of months kept for reports, at least
	// History; zero means History. Months older than the history window
	// are fetched only when nothing in the window is due, so that they
	// never delay the data a scrape shows.
	Retention int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) retention() int { return max(o.Retention, o.History) }

// replanNeeded reports whether refreshes planned under old would be
// planned differently under o: the intervals, jitter and windows decide
// when a month is due. Backoff settings apply to the next failure only.
func (o *Options) replanNeeded(old *Options) bool {
	return o.Interval != old.Interval || o.IdleInterval != old.IdleInterval || o.Jitter != old.Jitter ||
		o.History != old.History || o.retention() != old.retention()
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// window returns the months a source keeps: the History months ending
// with the last closed month, plus one more because the latest published
// month is the last closed one only after publication.
func window(now time.Time, history int) (first, last provider.Month) {
	last = provider.MonthOf(now) - 1
	return last - provider.Month(history), last
}

// plan returns the months of d that need fetching at now and, when there
// are none, when the next one will. Closed months fetched after they became
// final are never fetched again; open ones are polled at Interval while
// their publication is due and no data has come, at IdleInterval otherwise.
func plan(now time.Time, s provider.Schedule, d *store.SourceData, o *Options) (fetch []provider.Month, next time.Time) {
	first, last := window(now, o.History)
	kept, _ := window(now, o.retention())
	consider := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	var older []provider.Month
	for m := kept; m <= last; m++ {
		pub := s.PublishedAt(m)
		var due time.Time
		md := d.Months[m]
		switch {
		case md == nil:
			due = pub.Add(-publishLead)
		case !md.FetchedAt.Before(s.FinalAt(m)):
			continue
		default:
			poll := o.IdleInterval
			if !md.HasEmissions() && now.Before(pub.Add(publishGrace)) {
				poll = o.Interval
			}
			due = md.FetchedAt.Add(poll)
			if f := s.FinalAt(m); due.After(f) {
				due = f
			}
		}
		switch {
		case due.After(now):
			consider(due)
		case m < first:
			older = append(older, m)
		default:
			fetch = append(fetch, m)
		}
	}
	if len(older) > 0 {
		consider(now) // the older months follow at once
	}
	if len(fetch) == 0 {
		fetch = older
	}
	// The month in progress is the next to be published.
	consider(s.PublishedAt(last + 1).Add(-publishLead))
	return fetch, next
}

func (o *Options) backoff(failures int, retryAfter time.Duration) time.Duration {
	b := o.BackoffMin
	for i := 1; i < failures && b < o.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, o.BackoffMax)
	b = o.jitter(b)
	return max(b, retryAfter)
}

// jitter returns d moved by a random fraction of at most ±Jitter.
func (o *Options) jitter(d time.Duration) time.Duration {
	if o.Jitter <= 0 {
		return d
	}
	f := 1 + o.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// spread moves a planned time by a random amount of at most
// ±Jitter×Interval, never before now, so that exporters started together
// do not call an API in step.
func (o *Options) spread(t, now time.Time) time.Time {
	if o.Jitter > 0 {
		t = t.Add(time.Duration(o.Jitter * (2*rand.Float64() - 1) * float64(o.Interval)))
	}
	if t.Before(now) {
		return now
	}
	return t
}

// refresher drives one source. One goroutine runs it, so refreshes of a
// source never overlap.
type refresher struct {
	src      Source
	store    *store.Store
	metrics  *Metrics
	opts     *Options
	sem      chan struct{}
	logger   *slog.Logger
	failures int
}

func (r *refresher) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := r.nextWait()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// nextWait returns how long to sleep before the next refresh.
func (r *refresher) nextWait() time.Duration {
	d, ok := r.store.Get(r.src.Name)
	if !ok {
		return 0
	}
	now := r.opts.now()
	if d.NextRefresh.IsZero() {
		// Fresh start, possibly from persisted data: refresh only what is
		// due, so that a restart re-queries nothing that is still fresh.
		fetch, next := plan(now, r.src.Provider.Schedule(), d, r.opts)
		if len(fetch) > 0 {
			return 0
		}
		next = r.opts.spread(next, now)
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
			d.NextRefresh, d.Attempted = next, true
			r.stampDue(d)
		})
		return next.Sub(now)
	}
	return max(d.NextRefresh.Sub(now), 0)
}

// refresh fetches the months that are due and stores the result, or keeps
// the previous data when the provider fails.
func (r *refresher) refresh(ctx context.Context) {
	start := r.opts.now()
	d, ok := r.store.Get(r.src.Name)
	if !ok {
		return
	}
	sched := r.src.Provider.Schedule()
	fetch, _ := plan(start, sched, d, r.opts)
	if len(fetch) == 0 {
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
			_, next := plan(start, sched, d, r.opts)
			d.NextRefresh = r.opts.spread(next, start)
			d.Attempted = true
			r.stampDue(d)
		})
		return
	}

	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	fctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	res, err := r.src.Provider.Fetch(fctx, fetch)
	cancel()
	if err == nil {
		err = nonFinite(res)
	}
	<-r.sem
	end := r.opts.now()
	if ctx.Err() != nil {
		// Shutting down or reloading: neither a success nor a failure.
		return
	}
	prov := r.src.Provider.Name()
	r.metrics.refreshes.WithLabelValues(prov, r.src.Name).Inc()

	// failed counts a failure and returns when to try again.
	failed := func(err error, msg string) time.Time {
		r.failures++
		reason := provider.ReasonOf(err)
		r.metrics.refreshErrors.WithLabelValues(prov, r.src.Name, string(reason)).Inc()
		next := end.Add(r.opts.backoff(r.failures, provider.RetryAfterOf(err)))
		r.logger.Warn(msg, "reason", reason, "err", err, "consecutive_failures", r.failures, "next_attempt", next.Format(time.RFC3339))
		return next
	}
	if err != nil {
		msg := "Refresh failed; serving the last good data"
		if !hasData(d) {
			msg = "Refresh failed; no data yet"
		}
		next := failed(err, msg)
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
			d.LastAttempt, d.LastOK, d.LastDuration, d.Attempted = start, false, end.Sub(start), true
			d.NextRefresh = next
			r.stampDue(d)
		})
		return
	}
	// A partial fetch is stored, keeping the last good values of what
	// failed, and asked for again at the next attempt.
	var retryAt time.Time
	if res.Partial != nil {
		retryAt = failed(res.Partial, "Refresh partly failed; serving what it fetched and the last good data for the rest")
	} else {
		r.failures = 0
	}

	byMonth := make(map[provider.Month][]provider.Record, len(fetch))
	wanted := make(map[provider.Month]bool, len(fetch))
	for _, m := range fetch {
		wanted[m] = true
	}
	dropped := 0
	for _, rec := range res.Records {
		if !wanted[rec.Month] || rec.Provider != prov {
			dropped++
			continue
		}
		if rec.Account == "" {
			rec.Account = provider.AccountPlaceholder
		}
		byMonth[rec.Month] = append(byMonth[rec.Month], rec)
	}
	if dropped > 0 {
		r.logger.Debug("Ignored records outside the requested months", "count", dropped)
	}
	r.store.Update(r.src.Name, store.Data, func(d *store.SourceData) {
		restated := false
		for _, m := range fetch {
			rev := res.Revisions[m]
			if old := d.Months[m]; old != nil && old.Revision != "" && rev != "" && old.Revision != rev {
				restated = true
				r.logger.Info("Provider restated a month", "month", m.String(), "old_revision", old.Revision, "new_revision", rev)
			}
			if res.Partial != nil {
				md := &store.MonthData{Records: byMonth[m], Revision: rev} // FetchedAt zero: due again
				if old := d.Months[m]; old != nil {
					md.Records = keepMissing(old.Records, md.Records)
				}
				d.Months[m] = md
				continue
			}
			d.Months[m] = &store.MonthData{Records: byMonth[m], FetchedAt: start, Revision: rev}
		}
		switch {
		case restated && !d.Refetching:
			// A new model version applies to every month the provider
			// serves: fetch the other stored months again, once, and count
			// the restatement once for the source.
			r.metrics.restatements.WithLabelValues(prov, r.src.Name).Inc()
			d.Refetching = refetch(d, wanted) > 0
			r.logger.Info("Provider restated its data; fetching the other stored months again", "months", len(d.Months)-len(fetch))
		case d.Refetching && res.Partial == nil && !anyRefetchDue(d):
			d.Refetching = false
		}
		if res.YearlyWater != nil {
			d.Yearly = res.YearlyWater
		}
		if res.Denied == nil {
			res.Denied = d.Denied // nothing new is known
		}
		if regained := regainedAccess(d.Denied, res.Denied); len(regained) > 0 {
			// Closed months were stored without these accounts; forget
			// when they were fetched so that the next refresh asks again.
			refetch(d, wanted)
			r.logger.Info("Access to accounts was granted; fetching stored months again", "accounts", regained)
		}
		d.Denied = res.Denied
		first, _ := window(start, r.opts.retention())
		for m := range d.Months {
			if m < first {
				delete(d.Months, m)
			}
		}
		if res.Accounts != nil {
			d.Accounts = mergeAccounts(d, res.Accounts)
		}
		d.LastAttempt, d.LastDuration, d.Attempted = start, end.Sub(start), true
		if res.Partial != nil {
			d.LastOK, d.NextRefresh = false, retryAt
		} else {
			d.LastSuccess, d.LastOK = start, true
			// Months still due (the older ones kept for reports) are the
			// rest of this refresh's work: no jitter before them.
			if more, next := plan(end, sched, d, r.opts); len(more) > 0 {
				d.NextRefresh = end
			} else {
				d.NextRefresh = r.opts.spread(next, end)
			}
		}
		r.stampDue(d)
	})
	r.logger.Info("Refreshed", "months", len(fetch), "records", len(res.Records)-dropped,
		"duration", end.Sub(start).Round(time.Millisecond))
}

// nonFinite refuses a result holding NaN or an infinity: a provider's
// value that overflowed on conversion would otherwise be served, summed
// into every total, and stop the state file from being written (JSON has
// no infinities), for every source.
func nonFinite(res provider.Result) error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	for i := range res.Records {
		r := &res.Records[i]
		if bad(r.EmissionsGrams) || bad(r.MarketBasedGrams) || bad(r.EnergyJoules) || bad(r.CostUSD) || bad(r.WaterCubicMeters) {
			return &provider.Error{Reason: provider.ReasonMalformed,
				Err: fmt.Errorf("the provider's answer holds a value that is not a finite number (%s, %s, %s)", r.Account, r.Service, r.Month)}
		}
	}
	for _, w := range res.YearlyWater {
		if bad(w.CubicMeters) {
			return &provider.Error{Reason: provider.ReasonMalformed,
				Err: fmt.Errorf("the provider's answer holds yearly water that is not a finite number (%s, %d)", w.Account, w.Year)}
		}
	}
	return nil
}

// mergeAccounts returns the accounts a fetch named, plus those named
// before that still have records in a stored month: a provider that names
// only the accounts of the months it was asked for must not take the
// names of older months' accounts away.
func mergeAccounts(d *store.SourceData, fresh []provider.Account) []provider.Account {
	named := make(map[string]bool, len(fresh))
	for _, a := range fresh {
		named[a.Provider+"\x00"+a.ID] = true
	}
	held := map[string]bool{}
	for _, md := range d.Months {
		for i := range md.Records {
			held[md.Records[i].Provider+"\x00"+md.Records[i].Account] = true
		}
	}
	out := slices.Clone(fresh)
	for _, a := range d.Accounts {
		if k := a.Provider + "\x00" + a.ID; !named[k] && held[k] {
			out = append(out, a)
		}
	}
	return out
}

// refetch makes every stored month but those just fetched due again by
// forgetting when it was fetched, keeping its records until then. It
// returns how many it made due.
func refetch(d *store.SourceData, fetched map[provider.Month]bool) int {
	n := 0
	for m, md := range d.Months {
		if !fetched[m] {
			d.Months[m] = &store.MonthData{Records: md.Records, Revision: md.Revision}
			n++
		}
	}
	return n
}

// anyRefetchDue reports whether a month made due by refetch has not been
// fetched again yet.
func anyRefetchDue(d *store.SourceData) bool {
	for _, md := range d.Months {
		if md.FetchedAt.IsZero() {
			return true
		}
	}
	return false
}

// keepMissing returns fresh plus the old records that carry none of the
// quantities fresh has: the last good values of what a partial fetch
// could not get (GCP: cost when the billing query failed).
func keepMissing(old, fresh []provider.Record) []provider.Record {
	var have provider.Quantity
	for i := range fresh {
		have |= fresh[i].Known
	}
	out := fresh
	for _, r := range old {
		if r.Known&have == 0 {
			out = append(out, r)
		}
	}
	return out
}

// stampDue records when the month after the latest one held is due.
func (r *refresher) stampDue(d *store.SourceData) {
	if latest, ok := d.LatestMonth(); ok {
		d.NextMonthDue = r.src.Provider.Schedule().PublishedAt(latest + 1)
	}
}

// Manager runs one refresher per source and restarts them on reload.
type Manager struct {
	store   *store.Store
	metrics *Metrics
	logger  *slog.Logger

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	sources []Source
	// opts are those of the last Apply, once planned is set.
	opts    Options
	planned bool
}

// NewManager returns a manager that publishes into st.
func NewManager(st *store.Store, metrics *Metrics, logger *slog.Logger) *Manager {
	return &Manager{store: st, metrics: metrics, logger: logger}
}

// Apply stops the running refreshers and starts one per source with opts.
// Data of sources that keep their name and identity is kept, and seed
// (data loaded from the state file) fills in the others.
func (m *Manager) Apply(ctx context.Context, sources []Source, opts Options, seed map[string]*store.SourceData) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
	keep := make(map[[2]string]bool, len(sources))
	for _, src := range sources {
		keep[[2]string{src.Provider.Name(), src.Name}] = true
	}
	gone := map[[2]string]bool{}
	for _, old := range m.sources {
		if k := [2]string{old.Provider.Name(), old.Name}; !keep[k] {
			gone[k] = true
		}
	}
	m.metrics.forgetSources(gone)
	CloseSources(m.sources)
	keys := make([]store.Key, 0, len(sources))
	for _, src := range sources {
		keys = append(keys, store.Key{Name: src.Name, Provider: src.Provider.Name(), Identity: src.Identity})
	}
	m.store.Configure(keys, seed)
	if m.planned && opts.replanNeeded(&m.opts) {
		// Refreshes planned under the old settings would otherwise keep
		// their times until they run, a day at the idle interval.
		m.store.Replan()
	}
	m.sources, m.opts, m.planned = sources, opts, true

	ctx, m.cancel = context.WithCancel(ctx)
	sems := map[string]chan struct{}{}
	for _, src := range sources {
		prov := src.Provider.Name()
		if sems[prov] == nil {
			sems[prov] = make(chan struct{}, max(opts.MaxConcurrency, 1))
		}
		m.metrics.initSource(prov, src.Name)
		r := &refresher{
			src: src, store: m.store, metrics: m.metrics, opts: &opts, sem: sems[prov],
			logger: m.logger.With("provider", prov, "source_name", src.Name),
		}
		m.wg.Go(func() { r.run(ctx) })
	}
}

// Stop stops every refresher, waits for them and releases the sources.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
	CloseSources(m.sources)
	m.sources = nil
}

// CloseSources releases what provider clients hold (a BigQuery client
// keeps connections and credentials). A client that fails to let go has
// nothing left to serve, so its error changes nothing.
func CloseSources(sources []Source) {
	for _, s := range sources {
		_ = s.Provider.Close()
	}
}

func (m *Manager) stopLocked() {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.wg.Wait()
}

// hasData reports whether d holds any record, that is whether a failed
// refresh leaves something to serve.
func hasData(d *store.SourceData) bool {
	for _, md := range d.Months {
		if len(md.Records) > 0 {
			return true
		}
	}
	return false
}

// regainedAccess returns the accounts denied before and not any more.
func regainedAccess(before, now []provider.Denial) []string {
	still := make(map[string]bool, len(now))
	for _, d := range now {
		still[d.Account] = true
	}
	var out []string
	for _, d := range before {
		if !still[d.Account] {
			out = append(out, d.Account)
		}
	}
	return out
}
