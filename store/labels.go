package store

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Labels are what identifies the series a record adds to: every label of
// the data families but the month.
type Labels struct {
	Provider, Account, Service, Location string
	Scope                                provider.Scope
}

// LabelTable numbers the label sets of a source's records, so that a
// month holds a number per record rather than five strings, and equal
// label values share one string whichever response they came from. It
// only grows: a number, once given, names the same label set for the
// table's life, so that months encoded at different times share one table
// and readers never lock. CompactLabels starts a new table when many of
// the sets are no longer used.
type LabelTable struct {
	// mu serialises writers; readers load sets.
	mu sync.Mutex
	// index and strs are built on the first Intern, so that a table
	// loaded from the state file costs them only once a refresh adds to
	// it.
	index map[Labels]uint32
	strs  map[string]string
	sets  atomic.Pointer[[]Labels]
}

// NewLabelTable returns an empty table.
func NewLabelTable() *LabelTable { return newLabelTable(nil) }

func newLabelTable(sets []Labels) *LabelTable {
	t := &LabelTable{}
	t.sets.Store(&sets)
	return t
}

// Sets returns the label sets numbered so far, indexed by number. The
// slice is shared: callers must not modify it.
func (t *LabelTable) Sets() []Labels {
	if t == nil {
		return nil
	}
	return *t.sets.Load()
}

// Len returns how many label sets the table numbers.
func (t *LabelTable) Len() int { return len(t.Sets()) }

// Intern returns the number of l, numbering it if it is new.
func (t *LabelTable) Intern(l *Labels) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.index == nil {
		t.buildIndex()
	}
	if id, ok := t.index[*l]; ok {
		return id
	}
	own := Labels{
		Provider: t.str(l.Provider), Account: t.str(l.Account), Service: t.str(l.Service), Location: t.str(l.Location),
		Scope: provider.Scope(t.str(string(l.Scope))),
	}
	// Appending may write into the array that earlier snapshots of sets
	// share, but only beyond their length, where no reader of them looks.
	sets := append(*t.sets.Load(), own)
	id := uint32(len(sets) - 1)
	t.index[own] = id
	t.sets.Store(&sets)
	return id
}

// buildIndex indexes the sets a table was created with.
func (t *LabelTable) buildIndex() {
	sets := *t.sets.Load()
	t.index = make(map[Labels]uint32, len(sets))
	t.strs = map[string]string{}
	for i, l := range sets {
		t.index[l] = uint32(i)
		for _, s := range []string{l.Provider, l.Account, l.Service, l.Location, string(l.Scope)} {
			t.strs[s] = s
		}
	}
}

// str returns the table's copy of s, so that equal values share one
// string and the provider's response they came from can be freed.
func (t *LabelTable) str(s string) string {
	if own, ok := t.strs[s]; ok {
		return own
	}
	// A copy: s may share its bytes with a whole response.
	own := strings.Clone(s)
	t.strs[own] = own
	return own
}
