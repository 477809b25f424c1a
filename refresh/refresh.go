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
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Polling starts PublishLead before a month's expected publication, in
// case it lands early, and stays fast until publishGrace after it, in case
// it lands late. A month is fetched from then on, so a cold start stores
// the months of the retention window whose lead has begun.
const (
	PublishLead  = 3 * 24 * time.Hour
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
	// Provisional asks for estimates of the months the provider has not
	// published: the refresher reads the source's cost too, through its
	// Provider's provider.CostFeed.
	Provisional bool
	// Allocation are the tag keys by which the source's emissions are
	// allocated (allocate_by): the refresher reads their weights
	// through its Provider's provider.TagFeed.
	Allocation provider.Allocation
}

// NewSource returns the source of a configured entry, named name, read
// through p: with provisional months and allocation as the entry asks.
func NewSource(name string, cfg provider.SourceConfig, p provider.Provider) Source {
	src := Source{Name: name, Identity: cfg.Identity(), Provider: p}
	if ps, ok := cfg.(provider.ProvisionalSource); ok {
		src.Provisional = ps.WantsProvisional()
	}
	if as, ok := cfg.(provider.AllocatingSource); ok {
		src.Allocation = as.Allocation()
	}
	return src
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
	// Limits bound what one refresh of one source reads; zero limits
	// take httpx.DefaultLimits.
	Limits httpx.Limits
	// StallAfter is how long a refresh's answers may not move before it
	// gives its concurrency slot up and stops holding readiness back;
	// zero means DefaultStallAfter.
	StallAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) retention() int { return max(o.Retention, o.History) }

// DefaultStallAfter is long enough for an API to start answering a
// request, and short enough that a source behind a hung endpoint stalls
// no other source noticeably; a slow but moving answer never counts.
const DefaultStallAfter = 3 * time.Second

func (o *Options) stallAfter() time.Duration {
	if o.StallAfter > 0 {
		return o.StallAfter
	}
	return DefaultStallAfter
}

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
			due = pub.Add(-PublishLead)
		case !md.FetchedAt.Before(s.FinalAt(m)):
			continue
		default:
			poll := o.IdleInterval
			if !d.Published(md) && now.Before(pub.Add(publishGrace)) {
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
		// At most a history window's worth at a time, the newest first:
		// a refresh of the older months then holds no more of the
		// provider's answer than the refresh of the window did.
		fetch = older[max(len(older)-(o.History+1), 0):]
	}
	// The month in progress is the next to be published.
	consider(s.PublishedAt(last + 1).Add(-PublishLead))
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
	// stalled is set while the running fetch has given its slot up.
	stalled atomic.Bool
	// costFailures and costRetryAt are the cost feed's backoff.
	costFailures int
	costRetryAt  time.Time
	// tagFailures and tagRetryAt are the tag feed's backoff.
	tagFailures int
	tagRetryAt  time.Time
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
		fetch, _ := plan(now, r.src.Provider.Schedule(), d, r.opts)
		if costs, _ := r.costPlan(now, d); len(fetch)+len(costs) > 0 {
			return 0
		}
		next := r.opts.spread(r.nextRefresh(now, r.src.Provider.Schedule(), d), now)
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
		if costs, _ := r.costPlan(start, d); len(costs) > 0 {
			r.refreshCosts(ctx, start)
		}
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
			d.NextRefresh = r.opts.spread(r.nextRefresh(start, sched, d), start)
			d.Attempted = true
			r.stampDue(d)
		})
		return
	}
	res, ok, err := r.fetch(ctx, fetch)
	if !ok {
		return // shutting down or reloading: neither a success nor a failure
	}
	end := r.opts.now()
	r.metrics.refreshes.WithLabelValues(r.src.Provider.Name(), r.src.Name).Inc()
	if err != nil {
		msg := "Refresh failed; serving the last good data"
		if !hasData(d) {
			msg = "Refresh failed; no data yet"
		}
		next := r.failed(err, msg, end)
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
		retryAt = r.failed(res.Partial, "Refresh partly failed; serving what it fetched and the last good data for the rest", end)
	} else {
		r.failures = 0
	}
	byMonth, kept := r.sort(d.Labels(), res.Records, fetch)
	res.Records = nil // encoded: let the provider's answer go
	r.store.Update(r.src.Name, store.Data, func(d *store.SourceData) {
		r.apply(d, res, byMonth, fetch, start)
		d.LastAttempt, d.LastDuration, d.Attempted = start, end.Sub(start), true
		if res.Partial != nil {
			d.LastOK, d.NextRefresh = false, retryAt
		} else {
			d.LastSuccess, d.LastOK = start, true
			// Months still due (the older ones kept for reports) are the
			// rest of this refresh's work: no jitter before them.
			more, _ := plan(end, sched, d, r.opts)
			costs, _ := r.costPlan(end, d)
			if len(more)+len(costs) > 0 {
				d.NextRefresh = end
			} else {
				d.NextRefresh = r.opts.spread(r.nextRefresh(end, sched, d), end)
			}
		}
		r.stampDue(d)
	})
	r.logger.Info("Refreshed", "months", len(fetch), "records", kept, "duration", end.Sub(start).Round(time.Millisecond))
	// The cost of provisional months follows the months it is estimated
	// from, at once.
	if d, ok := r.store.Get(r.src.Name); ok && res.Partial == nil {
		if costs, _ := r.costPlan(end, d); len(costs) > 0 {
			if more, _ := plan(end, sched, d, r.opts); len(more) == 0 {
				r.refreshCosts(ctx, end)
				r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) {
					d.NextRefresh = r.opts.spread(r.nextRefresh(end, sched, d), end)
				})
			}
		}
	}
}

// fetch calls the provider for months within one of the provider's
// concurrency slots, the refresh's deadline and its budget. ok is false
// when ctx ended: the exporter is shutting down or reloading.
//
// A fetch whose answers stop moving for StallAfter gives its slot to the
// provider's other sources and stops holding readiness back; it goes on
// until its deadline. One hung endpoint thus stalls nothing but its own
// source: the slot bounds the load on a provider, and a source that waits
// on nothing is no load.
func (r *refresher) fetch(ctx context.Context, months []provider.Month) (res provider.Result, ok bool, err error) {
	ok = r.within(ctx, func(ctx context.Context) { res, err = r.src.Provider.Fetch(ctx, months) })
	return res, ok, err
}

// within runs f in one of the provider's concurrency slots, under the
// refresh's deadline and a budget of its own. ok is false when ctx ended:
// the exporter is shutting down or reloading.
func (r *refresher) within(ctx context.Context, f func(ctx context.Context)) (ok bool) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	var release sync.Once
	free := func() { release.Do(func() { <-r.sem }) }
	defer free()
	budget := httpx.NewBudget(r.opts.Limits)
	fctx, cancel := context.WithTimeout(httpx.WithBudget(ctx, budget), r.opts.Timeout)
	defer cancel()
	watched := make(chan struct{})
	defer close(watched)
	go r.watch(budget, watched, free)
	f(fctx)
	if r.stalled.Load() {
		r.stalled.Store(false)
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) { d.Stalled = false })
	}
	return ctx.Err() == nil
}

// watch gives the fetch's slot up, and marks the source stalled, once
// the budget's answers have not moved for StallAfter; it returns when
// done is closed.
func (r *refresher) watch(budget *httpx.Budget, done <-chan struct{}, free func()) {
	after := r.opts.stallAfter()
	tick := time.NewTicker(after / 4)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if budget.Idle() < after {
			continue
		}
		free()
		r.stalled.Store(true)
		r.store.Update(r.src.Name, store.Schedule, func(d *store.SourceData) { d.Stalled = true })
		r.logger.Warn("Source stalled: no answer moved; its concurrency slot goes to the provider's other sources until the refresh ends",
			"idle", budget.Idle().Round(time.Second), "deadline", r.opts.Timeout)
		return
	}
}

// failed counts a failure and returns when to try again.
func (r *refresher) failed(err error, msg string, end time.Time) time.Time {
	r.failures++
	reason := provider.ReasonOf(err)
	r.metrics.refreshErrors.WithLabelValues(r.src.Provider.Name(), r.src.Name, string(reason)).Inc()
	next := end.Add(r.opts.backoff(r.failures, provider.RetryAfterOf(err)))
	r.logger.Warn(msg, "reason", reason, "err", err, "consecutive_failures", r.failures, "next_attempt", next.Format(time.RFC3339))
	return next
}

// sort files the records of the months asked for by month, after the one
// policy for what is not data: records outside the months asked for are
// ignored; records of another provider, and values that are not a
// measurement (provider.Record.Sanitize), are left out, counted and
// logged. The records are encoded as they are filed, their label sets
// into t, so that the provider's answer can go as soon as sort returns.
// It returns how many records it kept.
func (r *refresher) sort(t *store.LabelTable, records []provider.Record, fetch []provider.Month) (map[provider.Month]*store.MonthBuilder, int) {
	prov := r.src.Provider.Name()
	// Counted first, so that each month's columns are allocated once.
	counts := make(map[provider.Month]int, len(fetch))
	for _, m := range fetch {
		counts[m] = 0
	}
	for i := range records {
		if n, ok := counts[records[i].Month]; ok {
			counts[records[i].Month] = n + 1
		}
	}
	byMonth := make(map[provider.Month]*store.MonthBuilder, len(fetch))
	for m, n := range counts {
		byMonth[m] = store.NewMonthBuilder(t, m, n)
	}
	var outside, foreign, notFinite, negative, kept int
	var example string
	for i := range records {
		rec := &records[i]
		b := byMonth[rec.Month]
		if b == nil {
			outside++
			continue
		}
		if rec.Provider != prov {
			foreign++
			continue
		}
		if rec.Account == "" {
			rec.Account = provider.AccountPlaceholder
		}
		if nf, neg := rec.Sanitize(); nf|neg != 0 {
			if nf != 0 {
				notFinite++
			}
			if neg != 0 {
				negative++
			}
			if example == "" {
				example = fmt.Sprintf("%s %s %s %s", rec.Month, rec.Account, rec.Service, rec.Location)
			}
			if rec.Known == 0 {
				continue
			}
		}
		b.Add(rec)
		kept++
	}
	if outside > 0 {
		r.logger.Debug("Ignored records outside the requested months", "count", outside)
	}
	for _, c := range []struct {
		reason string
		n      int
	}{{"wrong_provider", foreign}, {"not_finite", notFinite}, {"negative", negative}} {
		if c.n > 0 {
			r.metrics.rejected.WithLabelValues(prov, r.src.Name, c.reason).Add(float64(c.n))
		}
	}
	if foreign > 0 {
		r.logger.Warn("Left out records the source attributes to another provider", "count", foreign)
	}
	if notFinite+negative > 0 {
		r.logger.Warn("Left out values that are not measurements (not a finite number, or negative)",
			"not_finite", notFinite, "negative", negative, "example", provider.Truncate(example, 256))
	}
	return byMonth, kept
}

// apply writes a successful fetch into d: the months fetched, revisions
// and the restatement they reveal, yearly water, denials, accounts, and
// the months that fell out of the retention window.
func (r *refresher) apply(d *store.SourceData, res provider.Result, byMonth map[provider.Month]*store.MonthBuilder, fetch []provider.Month, start time.Time) {
	wanted := make(map[provider.Month]bool, len(fetch))
	restated := false
	built := make(map[provider.Month]*store.MonthData, len(fetch))
	for _, m := range fetch {
		wanted[m] = true
		rev := res.Revisions[m]
		if old := d.Months[m]; old != nil && old.Revision != "" && rev != "" && old.Revision != rev {
			restated = true
			r.logger.Info("Provider restated a month", "month", m.String(), "old_revision", old.Revision, "new_revision", rev)
		}
		b := byMonth[m]
		if res.Partial != nil {
			if old := d.Months[m]; old != nil {
				keepMissing(old, b)
			}
			md := b.Done()
			md.Revision = rev // FetchedAt zero: due again
			built[m] = md
			continue
		}
		md := b.Done()
		md.FetchedAt, md.Revision = start, rev
		built[m] = md
	}
	realize(d, built)
	for _, m := range fetch {
		d.Replace(m, built[m], start)
	}
	switch {
	case restated && !d.Refetching:
		// A new model version applies to every month the provider
		// serves: fetch the other stored months again, once, and count
		// the restatement once for the source.
		r.metrics.restatements.WithLabelValues(r.src.Provider.Name(), r.src.Name).Inc()
		d.Refetching = refetch(d, wanted) > 0
		r.logger.Info("Provider restated its data; fetching the other stored months again", "months", len(d.Months)-len(fetch))
	case d.Refetching && res.Partial == nil && !anyRefetchDue(d):
		d.Refetching = false
	}
	if res.YearlyWater != nil {
		d.Yearly = res.YearlyWater
	}
	denied := res.Denied
	if denied == nil {
		denied = d.Denied // nothing new is known
	}
	if regained := regainedAccess(d.Denied, denied); len(regained) > 0 {
		// Closed months were stored without these accounts; forget
		// when they were fetched so that the next refresh asks again.
		refetch(d, wanted)
		r.logger.Info("Access to accounts was granted; fetching stored months again", "accounts", regained)
	}
	d.Denied = denied
	first, _ := window(start, r.opts.retention())
	for m := range d.Months {
		if m < first {
			delete(d.Months, m)
		}
	}
	d.CompactLabels()
	if res.Accounts != nil {
		d.Accounts = mergeAccounts(d, res.Accounts)
	}
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
	for _, l := range usedLabels(d) {
		held[l.Provider+"\x00"+l.Account] = true
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
			due := *md
			due.FetchedAt = time.Time{}
			d.Months[m] = &due
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

// keepMissing adds to fresh the old records that carry none of the
// quantities fresh has: the last good values of what a partial fetch
// could not get (GCP: cost when the billing query failed).
func keepMissing(old *store.MonthData, fresh *store.MonthBuilder) {
	have := fresh.Carries()
	for r := range old.All() {
		if r.Known&have == 0 {
			fresh.Add(&r)
		}
	}
}

// usedLabels returns the label sets that records of d's months use, each
// once: a month's records number far fewer sets than they are.
func usedLabels(d *store.SourceData) []store.Labels {
	used := map[*store.LabelTable][]bool{}
	var out []store.Labels
	for _, md := range d.Months {
		sets := md.Labels().Sets()
		seen := used[md.Labels()]
		if seen == nil {
			seen = make([]bool, len(sets))
			used[md.Labels()] = seen
		}
		for _, id := range md.LabelIDs() {
			if !seen[id] {
				seen[id] = true
				out = append(out, sets[id])
			}
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
		if md.Len() > 0 {
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
