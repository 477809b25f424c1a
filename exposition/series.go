package exposition

import (
	"slices"
	"strconv"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Series is one series of the data families with the period its value
// describes, for pipelines whose points carry time, such as the
// OpenTelemetry Collector receiver. Names, labels and values are those of
// /metrics.
type Series struct {
	// Name and Help are the family's.
	Name, Help string
	// Labels are the family's label names; Values hold the series' values
	// in the same order.
	Labels, Values []string
	Value          float64
	// Start is the first instant of the period the value describes, in
	// UTC: the month of a monthly family (for the latest-month families,
	// the provider's latest published month), the year of a yearly one;
	// zero for the families that describe no period (account names,
	// denials).
	Start time.Time
}

// EachData calls f with every series of the data families, built from the
// current snapshot as Data builds them.
func (e *Exposition) EachData(f func(Series)) {
	sources := e.sources()
	latest := latestMonths(sources)
	a := e.defs.aggregate(sources, e.history, e.lagOf)
	for i := range a.data {
		fam := &a.data[i]
		for j := range fam.entries {
			en := &fam.entries[j]
			var m provider.Month
			if fam.history {
				m = a.month(fam, en)
			} else {
				m = latest[a.provider(fam, en)]
			}
			f(Series{Name: fam.def.name, Help: fam.def.help, Labels: fam.def.labels, Values: a.values(fam, en),
				Value: en.value, Start: m.Start()})
		}
	}
	for _, fam := range a.other.sorted() {
		year, month := slices.Index(fam.def.labels, "year"), slices.Index(fam.def.labels, "month")
		for _, s := range fam.samples {
			var start time.Time
			if year >= 0 {
				if y, err := strconv.Atoi(s.values[year]); err == nil {
					start = time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC)
				}
			}
			if month >= 0 {
				if m, err := provider.ParseMonth(s.values[month]); err == nil {
					start = m.Start()
				}
			}
			f(Series{Name: fam.def.name, Help: fam.def.help, Labels: fam.def.labels, Values: s.values, Value: s.value, Start: start})
		}
	}
}
