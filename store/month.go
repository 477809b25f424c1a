package store

import (
	"encoding/json"
	"iter"
	"math/bits"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// quantityBits is how many quantities a record may carry: the bits of
// provider.Quantity from 0 to quantityBits-1, one value column each.
const quantityBits = 5

// MonthData is what one fetch returned for one month of one source. The
// records are held by column: the number of each record's label set in a
// LabelTable, the quantities it carries, and one column of values per
// quantity that a record of the month carries. That is about a sixth of
// the size of the records themselves, which matters for the months kept
// only for reports. A MonthData is immutable once stored; a MonthBuilder
// or NewMonthData makes one.
type MonthData struct {
	FetchedAt time.Time
	// Revision is the provider's model or data version of the month, if
	// it names one.
	Revision string
	// FirstSeen is when the month was first stored published (see
	// SourceData.Replace); zero for months stored before it was kept.
	FirstSeen time.Time

	month   provider.Month
	labels  *LabelTable
	ids     []uint32
	known   []provider.Quantity
	values  [quantityBits][]float64
	carried provider.Quantity
}

// NewMonthData returns the records of one month, encoded against a label
// table of their own; the month is the first record's.
func NewMonthData(records []provider.Record) *MonthData {
	var m provider.Month
	if len(records) > 0 {
		m = records[0].Month
	}
	b := NewMonthBuilder(nil, m, len(records))
	for i := range records {
		b.Add(&records[i])
	}
	return b.Done()
}

// Len returns the number of records.
func (md *MonthData) Len() int { return len(md.ids) }

// Month returns the month the records describe.
func (md *MonthData) Month() provider.Month { return md.month }

// Carries returns the quantities that at least one record carries.
func (md *MonthData) Carries() provider.Quantity { return md.carried }

// Labels returns the table that numbers the records' label sets.
func (md *MonthData) Labels() *LabelTable { return md.labels }

// LabelIDs returns the number of each record's label set in Labels. The
// slice is shared: callers must not modify it.
func (md *MonthData) LabelIDs() []uint32 { return md.ids }

// Known returns the quantities each record carries. The slice is shared:
// callers must not modify it.
func (md *MonthData) Known() []provider.Quantity { return md.known }

// Column returns the values of quantity q, one per record (zero where a
// record does not carry q), or nil when no record carries it. The slice is
// shared: callers must not modify it.
func (md *MonthData) Column(q provider.Quantity) []float64 {
	if i := bits.TrailingZeros8(uint8(q)); i < quantityBits {
		return md.values[i]
	}
	return nil
}

// All yields every record, in the order they were added.
func (md *MonthData) All() iter.Seq[provider.Record] {
	return func(yield func(provider.Record) bool) {
		sets, fields := md.labels.Sets(), valueFields()
		for i := range md.ids {
			if !yield(md.record(sets, &fields, i)) {
				return
			}
		}
	}
}

// Records returns a copy of every record; nil when there is none.
func (md *MonthData) Records() []provider.Record {
	if md.Len() == 0 {
		return nil
	}
	out := make([]provider.Record, 0, md.Len())
	return slices.AppendSeq(out, md.All())
}

// Record returns record i.
func (md *MonthData) Record(i int) provider.Record {
	fields := valueFields()
	return md.record(md.labels.Sets(), &fields, i)
}

func (md *MonthData) record(sets []Labels, fields *[quantityBits]func(*provider.Record) *float64, i int) provider.Record {
	l := &sets[md.ids[i]]
	r := provider.Record{
		Provider: l.Provider, Account: l.Account, Service: l.Service, Location: l.Location, Scope: l.Scope,
		Month: md.month, Known: md.known[i],
	}
	for q, col := range md.values {
		if col != nil && r.Known&(1<<q) != 0 {
			*fields[q](&r) = col[i]
		}
	}
	return r
}

// valueFields returns, for each quantity bit, the record field that holds
// its value.
func valueFields() [quantityBits]func(*provider.Record) *float64 {
	var out [quantityBits]func(*provider.Record) *float64
	for _, qi := range provider.Quantities() {
		out[bits.TrailingZeros8(uint8(qi.Quantity))] = qi.Value
	}
	return out
}

// MonthBuilder encodes the records of one month as they come.
type MonthBuilder struct {
	md     MonthData
	fields [quantityBits]func(*provider.Record) *float64
}

// NewMonthBuilder returns a builder of month m whose label sets go into
// t (a table of its own when t is nil), sized for n records.
func NewMonthBuilder(t *LabelTable, m provider.Month, n int) *MonthBuilder {
	if t == nil {
		t = NewLabelTable()
	}
	b := &MonthBuilder{fields: valueFields()}
	b.md.month, b.md.labels = m, t
	b.md.ids = make([]uint32, 0, n)
	b.md.known = make([]provider.Quantity, 0, n)
	return b
}

// Month returns the month being built.
func (b *MonthBuilder) Month() provider.Month { return b.md.month }

// Len returns the number of records added.
func (b *MonthBuilder) Len() int { return len(b.md.ids) }

// Carries returns the quantities that at least one record added carries.
func (b *MonthBuilder) Carries() provider.Quantity { return b.md.carried }

// Add appends a record; its month is taken to be the builder's.
func (b *MonthBuilder) Add(r *provider.Record) {
	l := Labels{Provider: r.Provider, Account: r.Account, Service: r.Service, Location: r.Location, Scope: r.Scope}
	b.add(b.md.labels.Intern(&l), r.Known, r)
}

// add appends a record whose label set is number id.
func (b *MonthBuilder) add(id uint32, known provider.Quantity, r *provider.Record) {
	md := &b.md
	n := len(md.ids)
	md.ids = append(md.ids, id)
	md.known = append(md.known, known)
	md.carried |= known
	for q := range quantityBits {
		col := md.values[q]
		switch {
		case known&(1<<q) == 0 && col == nil:
			continue
		case col == nil:
			// The first record to carry q: those before carry zero.
			col = make([]float64, n, cap(md.ids))
		}
		v := 0.0
		if known&(1<<q) != 0 {
			v = *b.fields[q](r)
		}
		md.values[q] = append(col, v)
	}
}

// Done returns the month built. The builder must not be used afterwards.
func (b *MonthBuilder) Done() *MonthData {
	md := b.md
	md.ids, md.known = fit(md.ids), fit(md.known)
	for q := range md.values {
		md.values[q] = fit(md.values[q])
	}
	return &md
}

// fit returns s without the spare capacity of appending, when that is
// worth a copy.
func fit[S ~[]E, E any](s S) S {
	if cap(s)-len(s) > len(s)/8 {
		return slices.Clone(s)
	}
	return s
}

// legacyMonth is a month as the state file's JSON versions hold it, and
// as MonthData marshals to JSON.
type legacyMonth struct {
	Records   []provider.Record `json:"records"`
	FetchedAt time.Time         `json:"fetched_at"`
	Revision  string            `json:"revision,omitempty"`
	FirstSeen time.Time         `json:"first_seen,omitzero"`
}

// MarshalJSON writes the month as versions 1 and 2 of the state file did:
// every record in full.
func (md *MonthData) MarshalJSON() ([]byte, error) {
	return json.Marshal(legacyMonth{Records: md.Records(), FetchedAt: md.FetchedAt, Revision: md.Revision, FirstSeen: md.FirstSeen})
}

// UnmarshalJSON reads a month of versions 1 and 2 of the state file, into
// a label table of its own.
func (md *MonthData) UnmarshalJSON(b []byte) error {
	var l legacyMonth
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*md = *NewMonthData(l.Records)
	md.FetchedAt, md.Revision, md.FirstSeen = l.FetchedAt, l.Revision, l.FirstSeen
	return nil
}
