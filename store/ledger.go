package store

import (
	"cmp"
	"iter"
	"math"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// LedgerLimit bounds the restatements kept per source. A new model
// version restates every stored month at once (38 with the default
// retention), so this keeps the last few model changes and every change
// of figures between them, at about a kilobyte each.
const LedgerLimit = 240

// Causes of a restatement.
const (
	// CauseModelVersion: the provider served the month under another
	// model or data version than the one stored.
	CauseModelVersion = "model_version"
	// CauseFigures: the provider changed the month's figures under the
	// same version (or a provider that names none), as it may until the
	// month is final.
	CauseFigures = "figures"
)

// Restatement records a published month whose figures the provider
// replaced: what was superseded, so that a report filed before can be
// reconciled with the figures held now, and reproduced.
type Restatement struct {
	Month provider.Month `json:"month"`
	// At is when the refresh that replaced the figures started.
	At    time.Time `json:"at"`
	Cause string    `json:"cause"`
	// OldRevision and NewRevision are the month's model or data versions
	// before and after; empty when the provider names none.
	OldRevision string `json:"old_revision,omitempty"`
	NewRevision string `json:"new_revision,omitempty"`
	// Superseded are the replaced records summed per scope and per set of
	// quantities carried (Summarize): enough to rebuild any report by
	// provider and scope exactly, market-based completeness and fallback
	// included, at a fraction of the records' size.
	Superseded []provider.Record `json:"superseded"`
	// OldFetchedAt and OldFirstSeen are those of the replaced month.
	OldFetchedAt time.Time `json:"old_fetched_at,omitzero"`
	OldFirstSeen time.Time `json:"old_first_seen,omitzero"`
}

// Ledger is a source's restatements, oldest first, bounded by
// LedgerLimit.
type Ledger struct {
	Entries []Restatement `json:"entries"`
	// Dropped counts the oldest entries let go to stay within the limit;
	// DroppedThrough is when the newest of them was recorded: a report as
	// of an earlier time may lack the figures they superseded.
	Dropped        int       `json:"dropped,omitempty"`
	DroppedThrough time.Time `json:"dropped_through,omitzero"`
}

// Summarize sums records per scope and per set of quantities carried,
// with account, service and location left empty. The sets are kept
// apart because a report merges market-based figures only over records
// that all carry one (provider.MergeComplete): summed together, records
// with and without one would read as a whole. The result is sorted.
func Summarize(records []provider.Record) []provider.Record {
	return summarize(slices.Values(records))
}

// Summary returns Summarize of the month's records.
func (md *MonthData) Summary() []provider.Record { return summarize(md.All()) }

func summarize(records iter.Seq[provider.Record]) []provider.Record {
	type key struct {
		scope provider.Scope
		known provider.Quantity
	}
	sums := map[key]*provider.Record{}
	var out []*provider.Record
	for r := range records {
		k := key{r.Scope, r.Known}
		s := sums[k]
		if s == nil {
			s = &provider.Record{Provider: r.Provider, Scope: r.Scope, Month: r.Month, Known: r.Known}
			sums[k] = s
			out = append(out, s)
		}
		for _, qi := range provider.Quantities() {
			if r.Has(qi.Quantity) {
				*qi.Value(s) += *qi.Value(&r)
			}
		}
	}
	slices.SortFunc(out, func(a, b *provider.Record) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Known, b.Known))
	})
	res := make([]provider.Record, len(out))
	for i, s := range out {
		res[i] = *s
	}
	return res
}

// sameFigures reports whether two summaries hold the same figures, to a
// relative 1e-9: a provider that returns its rows in another order gives
// sums that differ in the last bits, which is no restatement.
func sameFigures(a, b []provider.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Scope != b[i].Scope || a[i].Known != b[i].Known {
			return false
		}
		for _, qi := range provider.Quantities() {
			x, y := *qi.Value(&a[i]), *qi.Value(&b[i])
			if math.Abs(x-y) > 1e-9*max(math.Abs(x), math.Abs(y)) {
				return false
			}
		}
	}
	return true
}

// Replace stores md as month m of d, fetched by the refresh that started
// at at. When the month held published figures that md changes (another
// revision, or other sums per scope and quantity), the superseded
// figures go to the ledger first. The time the month was first published
// carries over, so that a report as of an earlier date knows which months
// it held then.
func (d *SourceData) Replace(m provider.Month, md *MonthData, at time.Time) {
	old := d.Months[m]
	wasPublished := old != nil && d.Published(old)
	d.Months[m] = md
	switch {
	case wasPublished:
		md.FirstSeen = old.FirstSeen
		if md.FirstSeen.IsZero() {
			// Stored by a build that did not keep it: the last fetch is
			// the earliest time known to have held the month.
			md.FirstSeen = cmp.Or(old.FetchedAt, at)
		}
	case d.Published(md):
		md.FirstSeen = at
	}
	if !wasPublished {
		return
	}
	before, after := old.Summary(), md.Summary()
	cause := CauseModelVersion
	switch {
	case old.Revision != "" && md.Revision != "" && old.Revision != md.Revision:
	case !sameFigures(before, after):
		cause = CauseFigures
	default:
		return
	}
	d.record(Restatement{
		Month: m, At: at, Cause: cause, OldRevision: old.Revision, NewRevision: md.Revision,
		Superseded: before, OldFetchedAt: old.FetchedAt, OldFirstSeen: old.FirstSeen,
	})
}

// record appends e to a new copy of the ledger, which earlier snapshots
// share, dropping the oldest entries beyond LedgerLimit.
func (d *SourceData) record(e Restatement) {
	l := &Ledger{}
	if d.Ledger != nil {
		*l = *d.Ledger
	}
	l.Entries = append(slices.Clip(l.Entries), e)
	if n := len(l.Entries) - LedgerLimit; n > 0 {
		l.Dropped += n
		l.DroppedThrough = l.Entries[n-1].At
		l.Entries = slices.Clone(l.Entries[n:])
	}
	d.Ledger = l
}

// MonthAt returns month m as it stood at t: the month held, when it was
// published by t and not replaced since; the figures of the first
// restatement after t, summarized, when it was replaced since (superseded
// is then set); nil when the month was not published by t. A month
// without a first-seen time (stored by an earlier build) counts from its
// last fetch, or always when it is due to be fetched again.
func (d *SourceData) MonthAt(m provider.Month, t time.Time) (md *MonthData, superseded bool) {
	if d.Ledger != nil {
		for i := range d.Ledger.Entries {
			e := &d.Ledger.Entries[i]
			if e.Month != m || !e.At.After(t) {
				continue
			}
			if seen(e.OldFirstSeen, e.OldFetchedAt, t) {
				md := NewMonthData(e.Superseded)
				md.FetchedAt, md.Revision, md.FirstSeen = e.OldFetchedAt, e.OldRevision, e.OldFirstSeen
				return md, true
			}
			return nil, false
		}
	}
	md = d.Months[m]
	if md == nil || !seen(md.FirstSeen, md.FetchedAt, t) {
		return nil, false
	}
	return md, false
}

// seen reports whether a month first seen at first, last fetched at
// fetched, was held at t.
func seen(first, fetched, t time.Time) bool {
	switch {
	case !first.IsZero():
		return !first.After(t)
	case !fetched.IsZero():
		return !fetched.After(t)
	}
	return true
}
