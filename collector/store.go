// Package collector turns provider records into metrics. A refresher per
// configured source calls the provider in the background and swaps a
// finished snapshot into the Store; the Prometheus collector and the OTLP
// bridge only ever read the current snapshot, so a scrape never waits on a
// cloud API.
package collector

import (
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// MonthData is what one fetch returned for one month of one source.
type MonthData struct {
	Records   []provider.Record `json:"records"`
	FetchedAt time.Time         `json:"fetched_at"`
	// Revision is the provider's model or data version of the month, if
	// it names one.
	Revision string `json:"revision,omitempty"`
}

// SourceData is everything known about one source. Values are immutable
// once stored: updates build a new SourceData.
type SourceData struct {
	Name     string                        `json:"name"`
	Provider string                        `json:"provider"`
	Identity string                        `json:"identity"`
	Months   map[provider.Month]*MonthData `json:"months"`
	Accounts []provider.Account            `json:"accounts,omitempty"`
	Denied   []provider.Denial             `json:"denied,omitempty"`

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
}

// LatestMonth returns the newest month that has emissions. Cost alone does
// not make a month published: a billing export holds a month's cost days
// before the carbon export holds its emissions.
func (d *SourceData) LatestMonth() (provider.Month, bool) {
	var latest provider.Month
	found := false
	for m, md := range d.Months {
		if md.hasEmissions() && (!found || m > latest) {
			latest, found = m, true
		}
	}
	return latest, found
}

func (md *MonthData) hasEmissions() bool {
	for i := range md.Records {
		if md.Records[i].Has(provider.Emissions) {
			return true
		}
	}
	return false
}

func (d *SourceData) clone() *SourceData {
	c := *d
	c.Months = maps.Clone(d.Months)
	if c.Months == nil {
		c.Months = map[provider.Month]*MonthData{}
	}
	return &c
}

// Snapshot is an immutable view of every source together with the metrics
// rendered from it.
type Snapshot struct {
	Sources map[string]*SourceData
	metrics *renderedMetrics
}

// Ready reports whether every source has data or has finished a refresh.
func (s *Snapshot) Ready() bool {
	for _, d := range s.Sources {
		if !d.Attempted {
			return false
		}
	}
	return true
}

// Store holds the current snapshot. Writers are serialised; readers load
// the snapshot pointer without locking.
type Store struct {
	history int
	state   *StateFile
	metrics *Metrics
	logger  *slog.Logger

	mu      sync.Mutex
	sources map[string]*SourceData
	snap    atomic.Pointer[Snapshot]
}

// NewStore returns an empty store that keeps history months of data per
// source and persists to state (nil: no persistence).
func NewStore(history int, state *StateFile, metrics *Metrics, logger *slog.Logger) *Store {
	s := &Store{history: history, state: state, metrics: metrics, logger: logger, sources: map[string]*SourceData{}}
	s.snap.Store(&Snapshot{Sources: map[string]*SourceData{}, metrics: render(nil, history)})
	return s
}

// Snapshot returns the current snapshot.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// Configure sets the sources the store serves. Data of sources that stay
// (same name and identity) is kept; data of others is dropped; new sources
// start empty, or from seed when it holds their data.
func (s *Store) Configure(sources []Source, seed map[string]*SourceData) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*SourceData, len(sources))
	for _, src := range sources {
		if old, ok := s.sources[src.Name]; ok && old.Identity == src.Identity {
			next[src.Name] = old
			continue
		}
		if d, ok := seed[src.Name]; ok && d.Identity == src.Identity && d.Provider == src.Provider.Name() {
			d = d.clone()
			d.Attempted = true
			next[src.Name] = d
			continue
		}
		next[src.Name] = &SourceData{
			Name: src.Name, Provider: src.Provider.Name(), Identity: src.Identity,
			Months: map[provider.Month]*MonthData{},
		}
	}
	s.sources = next
	s.publish()
}

// Update applies f to a copy of the named source's data and publishes the
// result. It persists the state when persist is true.
func (s *Store) Update(name string, persist bool, f func(d *SourceData)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.sources[name]
	if !ok {
		// The source was removed by a reload while it was refreshing.
		return
	}
	d := old.clone()
	f(d)
	next := maps.Clone(s.sources)
	next[name] = d
	s.sources = next
	s.publish()
	if persist && s.state != nil {
		if err := s.state.Save(next); err != nil {
			s.metrics.stateErrors.WithLabelValues("write").Inc()
			s.logger.Error("Cannot write state file; data is still served from memory", "path", s.state.Path(), "err", err)
		}
	}
}

// Get returns the named source's current data.
func (s *Store) Get(name string) (*SourceData, bool) {
	d, ok := s.Snapshot().Sources[name]
	return d, ok
}

// Flush writes the state file.
func (s *Store) Flush() error {
	if s.state == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Save(s.sources)
}

// publish renders the metrics of the current sources and swaps the
// snapshot. Called with mu held.
func (s *Store) publish() {
	rm := render(s.sources, s.history)
	if rm.invalid > 0 {
		s.logger.Warn("Dropped series whose label values are not valid UTF-8", "count", rm.invalid)
	}
	s.snap.Store(&Snapshot{Sources: s.sources, metrics: rm})
}
