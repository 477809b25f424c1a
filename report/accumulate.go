package report

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// sum accumulates the figures of a row, or of a provider's figures in a
// period, column by column.
type sum struct {
	v, fill []float64
	has     []bool
	// lacking is set on a MergeComplete column when a record with
	// location-based emissions does not carry it; fill sums those
	// records' location-based emissions, what a fallback would add.
	lacking []bool
	shares  map[string]*share
	// revisions are the model versions of the months summed.
	revisions                         []string
	restated, superseded, provisional bool
}

// share is one provider's part of a sum.
type share struct {
	// months has bit i set when month i of the period has data.
	months  uint16
	yearly  bool
	sources []string
}

func newSum(n int) *sum {
	return &sum{v: make([]float64, n), fill: make([]float64, n), has: make([]bool, n), lacking: make([]bool, n), shares: map[string]*share{}}
}

// from notes that source name of provider prov adds to the sum, in month
// bit of the period (0 for a calendar-year figure).
func (s *sum) from(prov, name string, bit uint16, yearly bool) {
	sh := s.shares[prov]
	if sh == nil {
		sh = &share{}
		s.shares[prov] = sh
	}
	sh.months |= bit
	sh.yearly = sh.yearly || yearly
	sh.sources = addOnce(sh.sources, name)
}

// add adds a record's figures, water to the columns of its measure only.
func (s *sum) add(cols []column, r *provider.Record, water string) {
	for i := range cols {
		c := &cols[i]
		switch {
		case c.yearly || c.Water != "" && c.Water != water:
		case r.Has(c.q.Quantity):
			s.v[i] += *c.q.Value(r)
			s.has[i] = true
		case c.q.Merge == provider.MergeComplete && r.Has(provider.Emissions):
			s.lacking[i] = true
			s.fill[i] += r.EmissionsGrams
		}
	}
}

// value returns column i's figure in base units, the part of it filled
// from location-based emissions, and whether there is one.
func (s *sum) value(cols []column, i int, fallback bool) (v, filled float64, ok bool) {
	if cols[i].q.Merge == provider.MergeComplete && s.lacking[i] {
		if !fallback {
			return 0, 0, false
		}
		return s.v[i] + s.fill[i], s.fill[i], true
	}
	return s.v[i], 0, s.has[i]
}

func (b *builder) rowSum(k rowKey) *sum {
	s := b.rowSums[k]
	if s == nil {
		s = newSum(len(b.cols))
		b.rowSums[k] = s
	}
	return s
}

// provSum returns the sum of prov's figures in period p that go into the
// totals.
func (b *builder) provSum(p int, prov string) *sum {
	k := provKey{p, prov}
	s := b.provSums[k]
	if s == nil {
		s = newSum(len(b.cols))
		b.provSums[k] = s
	}
	return s
}

// accumulate sums every figure of the range into its row and its
// provider's total.
func (b *builder) accumulate() error {
	for _, name := range b.names {
		d := b.in.Sources[name]
		for _, a := range d.Accounts {
			if k := [2]string{a.Provider, a.ID}; b.accountNames[k] == "" {
				b.accountNames[k] = a.Name
			}
		}
		for _, m := range slices.Sorted(maps.Keys(b.views[name])) {
			if err := b.addMonth(d, m, b.views[name][m]); err != nil {
				return err
			}
		}
		b.addYearly(d)
		for _, rec := range b.provisional(name) {
			b.addRecord(d, &rec, view{}, true)
		}
	}
	return nil
}

// addMonth adds one month of source d as it stood.
func (b *builder) addMonth(d *store.SourceData, m provider.Month, v view) error {
	p := b.cal.index(m)
	if p < b.from || p > b.to {
		return nil
	}
	if v.superseded && (b.dims[dAccount] >= 0 || b.dims[dService] >= 0 || b.dims[dLocation] >= 0) {
		return fmt.Errorf("as_of: %s of source %s was restated after %s, and the ledger keeps superseded figures per provider and scope only: "+
			"leave account, service and location out of by", m, d.Name, b.at.UTC().Format(time.RFC3339))
	}
	if v.md.Len() == 0 && !v.md.FetchedAt.IsZero() {
		if b.emptyMonths[d.Name] == nil {
			b.emptyMonths[d.Name] = map[int]bool{}
		}
		b.emptyMonths[d.Name][p] = true
	}
	for r := range v.md.All() {
		b.addRecord(d, &r, v, false)
	}
	return nil
}

// addRecord adds one record of source d, from month view v or an
// estimate, to its row and, unless it is an estimate left out, to its
// provider's total.
func (b *builder) addRecord(d *store.SourceData, r *provider.Record, v view, provisional bool) {
	if r.Known == 0 {
		return
	}
	p := b.cal.index(r.Month)
	if p < b.from || p > b.to {
		return
	}
	scope := string(r.Scope)
	if scope == "" {
		scope = ScopeNone
	}
	bit := uint16(1) << (r.Month - b.cal.first(p))
	sums := [2]*sum{b.rowSum(b.key(p, provisional, [5]string{r.Provider, r.Account, r.Service, r.Location, scope}))}
	if !provisional || b.o.IncludeProvisional {
		sums[1] = b.provSum(p, r.Provider)
	}
	for _, s := range sums {
		if s == nil {
			continue
		}
		s.add(b.cols, r, b.water(r.Provider))
		s.from(r.Provider, d.Name, bit, false)
		s.restated = s.restated || v.restated
		s.superseded = s.superseded || v.superseded
		s.provisional = s.provisional || provisional
		if v.md != nil && v.md.Revision != "" {
			s.revisions = addOnce(s.revisions, v.md.Revision)
		}
	}
}

// addYearly adds d's water reported per calendar year to the year rows
// of calendar-year reports.
func (b *builder) addYearly(d *store.SourceData) {
	if !b.yearlyFits {
		return
	}
	col := slices.IndexFunc(b.cols, func(c column) bool { return c.yearly && c.Water == b.water(d.Provider) })
	for _, w := range d.Yearly {
		if w.Year < b.from || w.Year > b.to || col < 0 {
			continue
		}
		for _, s := range []*sum{b.rowSum(b.key(w.Year, false, [5]string{w.Provider, w.Account, w.Service, w.Location, ScopeNone})), b.provSum(w.Year, w.Provider)} {
			s.v[col] += w.CubicMeters
			s.has[col] = true
			s.from(w.Provider, d.Name, 0, true)
		}
	}
}
