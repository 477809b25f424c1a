// Package store holds the data known about each configured source and
// publishes it as immutable snapshots. Refreshers write through Update;
// the exposition and the OTLP push read Snapshot without locking, so a
// reader never waits on a writer. Data changes persist to a state file so
// that a restart serves data at once.
package store

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// SourceData is everything known about one source. Values are immutable
// once stored: updates build a new SourceData.
type SourceData struct {
	Name     string                        `json:"name"`
	Provider string                        `json:"provider"`
	Identity string                        `json:"identity"`
	Months   map[provider.Month]*MonthData `json:"months"`
	Accounts []provider.Account            `json:"accounts,omitempty"`
	Denied   []provider.Denial             `json:"denied,omitempty"`
	// Yearly holds water reported per calendar year only (AWS).
	Yearly []provider.YearlyWater `json:"yearly,omitempty"`
	// Refetching is set while the stored months are fetched again after
	// the provider restated one, so that the restatement counts once.
	Refetching bool `json:"refetching,omitempty"`
	// Ledger holds the figures of published months the provider
	// replaced; nil until the first restatement. Shared between
	// snapshots: Replace copies it before appending.
	Ledger *Ledger `json:"ledger,omitempty"`
	// Costs holds what the source's cost feed read (provider.CostFeed),
	// for provisional months: the cost of recent published months, whose
	// emissions per dollar make the estimates and their backtest, and of
	// the months not published yet, the current one to date. A month of
	// cost never counts as published.
	Costs map[provider.Month]*MonthData `json:"costs,omitempty"`
	// CostAttempt, CostSuccess and CostOK are the cost feed's freshness.
	CostAttempt time.Time `json:"cost_attempt,omitzero"`
	CostSuccess time.Time `json:"cost_success,omitzero"`
	CostOK      bool      `json:"cost_ok,omitempty"`
	// Realized are the errors of the estimates served for months the
	// provider has since published, oldest first, the last RealizedKept.
	Realized []Realized `json:"realized,omitempty"`
	// Allocations holds what the source's tag feed read, for the
	// allocation of its emissions by the keys of allocate_by; nil when
	// the source allocates by none.
	Allocations *Allocations `json:"allocations,omitempty"`

	LastSuccess  time.Time     `json:"last_success,omitzero"`
	LastAttempt  time.Time     `json:"last_attempt,omitzero"`
	LastOK       bool          `json:"last_ok"`
	LastDuration time.Duration `json:"last_duration"`
	// NextMonthDue is when the provider is expected to publish the month
	// after the latest one held: alerts compare it with the time.
	NextMonthDue time.Time `json:"next_month_due,omitzero"`
	// NextRefresh is when the refresher plans to run next; zero until it
	// has planned.
	NextRefresh time.Time `json:"-"`
	// Attempted is set once a refresh finished in this process or data
	// was loaded from the state file; /-/ready waits for it.
	Attempted bool `json:"-"`
	// Stalled is set while the source's refresh waits on answers that do
	// not move; /-/ready does not wait for it.
	Stalled bool `json:"-"`
	// Generation counts changes of the data (months, accounts, denials);
	// the exposition re-renders only when it moves. The store draws it
	// from one counter for all sources, so a source replaced by a reload
	// never repeats the generation of the data it replaces.
	Generation uint64 `json:"-"`

	// labels numbers the label sets of the records of the months that
	// the source's refreshes store; shared by every snapshot of the
	// source. Months may use tables of their own (see CompactLabels).
	labels *LabelTable
}

// Labels returns the table that months of d are encoded against; nil for
// a SourceData that no store or state file made, whose months then use
// tables of their own.
func (d *SourceData) Labels() *LabelTable { return d.labels }

// Published reports whether md, one of d's months, counts as published
// (provider.Published): it carries emissions, energy or water, or cost
// when the source reports nothing but cost. A billing export holds a
// month's cost days before the carbon export holds its emissions, so cost
// does not publish a month of a source that reports more.
func (d *SourceData) Published(md *MonthData) bool {
	if md == nil {
		return false
	}
	known := md.Carries()
	if known&^provider.Cost != 0 || known == 0 {
		return known != 0
	}
	var reports provider.Quantity
	for _, o := range d.Months {
		if reports |= o.Carries(); reports&^provider.Cost != 0 {
			break
		}
	}
	return provider.Published(known, reports)
}

// LatestMonth returns the newest published month.
func (d *SourceData) LatestMonth() (provider.Month, bool) {
	var latest provider.Month
	found := false
	for m, md := range d.Months {
		if (!found || m > latest) && d.Published(md) {
			latest, found = m, true
		}
	}
	return latest, found
}

// clone copies d deeply enough for an update: the month map is new, the
// months themselves are immutable and shared.
func (d *SourceData) clone() *SourceData {
	c := *d
	c.Months = maps.Clone(d.Months)
	if c.Months == nil {
		c.Months = map[provider.Month]*MonthData{}
	}
	if d.Costs != nil {
		c.Costs = maps.Clone(d.Costs)
	}
	c.Allocations = d.Allocations.clone()
	return &c
}

// RealizedKept is how many realized errors a source keeps.
const RealizedKept = 6

// Realized is the estimate served for a month against what the provider
// then published for it, per method: [0] location-based, [1]
// market-based, each where Known says both sides have one.
type Realized struct {
	Month     provider.Month    `json:"m"`
	Estimated [2]float64        `json:"e"`
	Published [2]float64        `json:"p"`
	Known     provider.Quantity `json:"k"`
}

// AddRealized appends r, keeping the last RealizedKept; a month already
// held is replaced.
func (d *SourceData) AddRealized(r Realized) {
	out := make([]Realized, 0, RealizedKept)
	for _, old := range d.Realized {
		if old.Month != r.Month {
			out = append(out, old)
		}
	}
	out = append(out, r)
	if n := len(out); n > RealizedKept {
		out = out[n-RealizedKept:]
	}
	d.Realized = out
}

// Snapshot is an immutable view of every source.
type Snapshot struct {
	Sources map[string]*SourceData
}

// Ready reports whether every source has data, has finished a refresh,
// or is stalled on answers that do not move.
func (s *Snapshot) Ready() bool {
	for _, d := range s.Sources {
		if !d.Attempted && !d.Stalled {
			return false
		}
	}
	return true
}

// Key is a configured source as the store sees it.
type Key struct {
	Name     string
	Provider string
	// Identity names what the source's data depends on; persisted data
	// is reused only when it matches.
	Identity string
}

// Change says what an update touched, and so what follows it.
type Change int

const (
	// Schedule marks an update of freshness and plan fields only: it is
	// not persisted and does not call OnData.
	Schedule Change = iota
	// Data marks an update of months, accounts, denials or revisions: it
	// moves the source's Generation, is persisted and calls OnData.
	Data
)

// Options configure a Store.
type Options struct {
	// State is where data persists; nil: no persistence.
	State *StateFile
	// Registerer receives the store's own self-metric; nil: not
	// registered.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// OnData is called after a Data update or Configure, outside the
	// store's lock, so that it may read the store.
	OnData func()
}

// Store holds the current snapshot. Writers are serialised; readers load
// the snapshot pointer without locking.
type Store struct {
	state       *StateFile
	stateErrors *prometheus.CounterVec
	logger      *slog.Logger
	onData      func()

	mu         sync.Mutex
	sources    map[string]*SourceData
	generation uint64
	// seq numbers the maps handed to the state file, so that a save
	// that lost the race for saveMu never overwrites a newer one.
	seq  uint64
	snap atomic.Pointer[Snapshot]

	// saveMu serialises writes of the state file, which happen outside
	// mu so that a slow disk never holds up refreshers or readers.
	saveMu sync.Mutex
	saved  uint64
}

// New returns an empty store.
func New(o Options) *Store {
	s := &Store{
		state:  o.State,
		logger: o.Logger,
		onData: o.OnData,
		stateErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudcarbon", Name: "state_file_errors_total",
			Help: "State file operations that failed: a load of a corrupt or foreign file (ignored), or a write.",
		}, []string{"operation"}),
		sources: map[string]*SourceData{},
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.stateErrors)
	}
	s.stateErrors.WithLabelValues("load")
	s.stateErrors.WithLabelValues("write")
	s.snap.Store(&Snapshot{Sources: s.sources})
	return s
}

// Snapshot returns the current snapshot.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// Get returns the named source's current data.
func (s *Store) Get(name string) (*SourceData, bool) {
	d, ok := s.Snapshot().Sources[name]
	return d, ok
}

// Configure sets the sources the store serves. Data of sources that stay
// (same name and identity) is kept; data of others is dropped; new sources
// start empty, or from seed when it holds their data.
func (s *Store) Configure(keys []Key, seed map[string]*SourceData) {
	s.mu.Lock()
	next := make(map[string]*SourceData, len(keys))
	for _, k := range keys {
		if old, ok := s.sources[k.Name]; ok && old.Identity == k.Identity {
			next[k.Name] = old
			continue
		}
		s.generation++
		if d, ok := seed[k.Name]; ok && d.Identity == k.Identity && d.Provider == k.Provider {
			d = d.clone()
			d.Attempted = true
			d.Generation = s.generation
			next[k.Name] = d
			continue
		}
		next[k.Name] = &SourceData{
			Name: k.Name, Provider: k.Provider, Identity: k.Identity,
			Months:     map[provider.Month]*MonthData{},
			Generation: s.generation,
			labels:     NewLabelTable(),
		}
	}
	s.sources = next
	s.snap.Store(&Snapshot{Sources: next})
	s.mu.Unlock()
	if s.onData != nil {
		s.onData()
	}
}

// Replan forgets when each source planned to refresh next, so that its
// refresher plans again, except for sources whose latest refresh failed:
// those keep the retry time their backoff (or the provider's Retry-After)
// set. All sources change in one snapshot.
func (s *Store) Replan() {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*SourceData, len(s.sources))
	for name, d := range s.sources {
		if d.NextRefresh.IsZero() || (!d.LastOK && !d.LastAttempt.IsZero()) {
			next[name] = d
			continue
		}
		c := *d
		c.NextRefresh = time.Time{}
		next[name] = &c
	}
	s.sources = next
	s.snap.Store(&Snapshot{Sources: next})
}

// Update applies f to a copy of the named source's data and publishes the
// result. A Data change is also persisted and reported to OnData.
func (s *Store) Update(name string, c Change, f func(d *SourceData)) {
	s.mu.Lock()
	old, ok := s.sources[name]
	if !ok {
		// The source was removed by a reload while it was refreshing.
		s.mu.Unlock()
		return
	}
	d := old.clone()
	f(d)
	if c == Data {
		s.generation++
		d.Generation = s.generation
	} else {
		d.Generation = old.Generation
	}
	next := maps.Clone(s.sources)
	next[name] = d
	s.sources = next
	s.snap.Store(&Snapshot{Sources: next})
	var seq uint64
	if c == Data {
		s.seq++
		seq = s.seq
	}
	s.mu.Unlock()
	if c != Data {
		return
	}
	if s.onData != nil {
		s.onData()
	}
	if err := s.save(next, seq); err != nil {
		s.stateErrors.WithLabelValues("write").Inc()
		s.logger.Error("Cannot write state file; data is still served from memory", "path", s.state.Path(), "err", err)
	}
}

// Flush writes the state file.
func (s *Store) Flush() error {
	if s.state == nil {
		return nil
	}
	s.mu.Lock()
	data := s.sources
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	return s.save(data, seq)
}

// save writes data, numbered seq, unless a newer map was written already:
// that one holds everything data holds. The maps are never modified after
// publication, so reading data without mu is safe.
func (s *Store) save(data map[string]*SourceData, seq uint64) error {
	if s.state == nil {
		return nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if seq <= s.saved {
		return nil
	}
	if err := s.state.Save(data); err != nil {
		return err
	}
	s.saved = seq
	return nil
}

// LoadState reads the state file for a start-up seed. An unusable file is
// logged, counted and ignored: the exporter starts empty rather than not
// at all.
func (s *Store) LoadState() map[string]*SourceData {
	if s.state == nil {
		return nil
	}
	if n, err := s.state.RemoveStale(); err != nil {
		s.logger.Warn("Cannot remove temporary files left by an interrupted state save", "err", err)
	} else if n > 0 {
		s.logger.Info("Removed temporary files left by an interrupted state save", "count", n)
	}
	data, err := s.state.Load()
	if err != nil {
		s.stateErrors.WithLabelValues("load").Inc()
		s.logger.Error("Ignoring state file; starting without persisted data", "err", err)
		return nil
	}
	if data != nil {
		s.logger.Info("Loaded state file", "path", s.state.Path(), "sources", len(data))
	}
	return data
}

// RecordsByMonth returns a copy of the records of months, by month: for
// readers that take a month's records as a slice.
func RecordsByMonth(months map[provider.Month]*MonthData) map[provider.Month][]provider.Record {
	out := make(map[provider.Month][]provider.Record, len(months))
	for m, md := range months {
		out[m] = md.Records()
	}
	return out
}

// CostInputs returns copies of what provisional estimates are made of:
// the published months from the first month whose cost is held on (an
// earlier month has no cost, so no emissions per dollar, and copying the
// months kept for reports would cost a transient copy of the whole
// history), and the cost.
func (d *SourceData) CostInputs() (published, costs map[provider.Month][]provider.Record) {
	if len(d.Costs) == 0 {
		return nil, nil
	}
	first := slices.Min(slices.Collect(maps.Keys(d.Costs)))
	published = make(map[provider.Month][]provider.Record)
	for m, md := range d.Months {
		if m >= first {
			published[m] = md.Records()
		}
	}
	return published, RecordsByMonth(d.Costs)
}
