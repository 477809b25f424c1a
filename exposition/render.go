package exposition

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

const namespace = "cloudcarbon"

// def is a metric family: its name, help and variable labels in the order
// their values are given, and the Desc of the same family for the const
// metrics that OTLP reads.
type def struct {
	name, help string
	labels     []string
	// order lists the label indexes sorted by label name: the order of
	// labels in the text format and of series in a registry's output.
	order []int
	desc  *prometheus.Desc
}

func newDef(name, help string, labels ...string) *def {
	d := &def{name: namespace + "_" + name, help: help, labels: labels}
	d.order = make([]int, len(labels))
	for i := range d.order {
		d.order[i] = i
	}
	slices.SortFunc(d.order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	d.desc = prometheus.NewDesc(d.name, help, labels, nil)
	return d
}

// family is one data quantity: its current and history families and
// whether it carries the scope label.
type family struct {
	quantity provider.Quantity
	current  *def
	history  *def
	scoped   bool
}

func newFamily(qi provider.QuantityInfo) family {
	labels := []string{"provider", "account", "service", "location"}
	if qi.Scoped {
		labels = append(labels, "scope")
	}
	return family{
		quantity: qi.Quantity,
		scoped:   qi.Scoped,
		current:  newDef(qi.Family, qi.Help+" Latest month the provider has published.", labels...),
		history: newDef("history_"+qi.Family, qi.Help+" One series per month of the history window; months_ago 0 is the latest published month.",
			append(slices.Clone(labels), "month", "months_ago")...),
	}
}

// defs are the exposition's families; immutable once built.
type defs struct {
	data []family

	dataMonth, nextMonthDue, lastSuccess, refreshSuccess *def
	refreshDuration, nextRefresh, monthsStored           *def
	denied, accountInfo, waterYearly                     *def
	provisional                                          provisionalDefs
	allocation                                           allocationDefs
}

func newDefs() *defs {
	source := []string{"provider", "source"}
	var data []family
	for _, qi := range provider.Quantities() {
		data = append(data, newFamily(qi))
	}
	return &defs{
		data:        data,
		provisional: newProvisionalDefs(),
		allocation:  newAllocationDefs(),
		waterYearly: newDef("water_yearly_cubic_meters",
			"Water reported by the provider per calendar year only, in cubic metres (AWS: water withdrawals); one series per year served, never a month's figure.",
			"provider", "account", "service", "location", "year"),
		dataMonth: newDef("data_month_timestamp_seconds",
			"Start of the latest month with data, as a Unix timestamp: the month the data families describe.", source...),
		nextMonthDue: newDef("next_month_due_timestamp_seconds",
			"When the provider is expected to publish the month after the latest one held, as a Unix timestamp; data is overdue once this has passed by more than a few days.", source...),
		lastSuccess: newDef("last_refresh_success_timestamp_seconds",
			"When the source was last refreshed successfully, as a Unix timestamp.", source...),
		refreshSuccess: newDef("refresh_success",
			"Whether the latest refresh of the source succeeded (1) or failed (0).", source...),
		refreshDuration: newDef("refresh_duration_seconds",
			"Duration of the latest refresh of the source.", source...),
		nextRefresh: newDef("next_refresh_timestamp_seconds",
			"When the next refresh of the source is planned, as a Unix timestamp.", source...),
		monthsStored: newDef("months_stored",
			"Number of months held for the source, with or without data.", source...),
		denied: newDef("account_access_denied",
			"Accounts the configured credentials may not read, with the provider's reason; always 1. Their data is missing from the data families.",
			"provider", "source", "account", "reason"),
		accountInfo: newDef("account_info",
			"Account names and parents (account group, enterprise, billing account, tenant); always 1.",
			"provider", "account", "name", "parent_type", "parent", "parent_name"),
	}
}

// dataDefs are the families rendered when data changes.
func (ds *defs) dataDefs() []*def {
	var out []*def
	for _, f := range ds.data {
		out = append(out, f.current, f.history)
	}
	p := &ds.provisional
	al := &ds.allocation
	return append(out, ds.denied, ds.accountInfo, ds.waterYearly, p.grams, p.market, p.backtest, p.backtestMonths, p.realized,
		al.grams, al.market, al.provisionalGrams, al.provisionalMarket, al.values, al.kept, al.taggedRatio, al.foldedRatio)
}

// freshnessDefs are the families built per scrape.
func (ds *defs) freshnessDefs() []*def {
	return []*def{ds.dataMonth, ds.nextMonthDue, ds.lastSuccess, ds.refreshSuccess, ds.refreshDuration, ds.nextRefresh, ds.monthsStored,
		ds.provisional.costSuccess, ds.provisional.costLastSuccess, ds.allocation.success, ds.allocation.lastSuccess}
}

// sample is one series: label values in the def's order, and the value.
type sample struct {
	values []string
	value  float64
}

// series is a family with its samples in the order a registry would
// output them.
type series struct {
	def     *def
	samples []sample
}

// collection gathers samples by family. A label value that is not valid
// UTF-8, which a registry would refuse with the whole series, is repaired
// instead: the series stays visible with U+FFFD where the bad bytes were.
type collection struct {
	families map[*def][]sample
	repaired int
}

func (c *collection) add(d *def, v float64, values ...string) {
	for i, s := range values {
		if !utf8.ValidString(s) {
			values[i] = strings.ToValidUTF8(s, "\uFFFD")
			c.repaired++
		}
	}
	if c.families == nil {
		c.families = map[*def][]sample{}
	}
	c.families[d] = append(c.families[d], sample{values: values, value: v})
}

// sorted returns the families that have samples, by name, each with its
// samples sorted as a registry sorts them: by label values, compared as
// strings in the order of the sorted label names.
func (c *collection) sorted() []series {
	out := make([]series, 0, len(c.families))
	for d, samples := range c.families {
		slices.SortFunc(samples, func(a, b sample) int {
			for _, i := range d.order {
				if c := strings.Compare(a.values[i], b.values[i]); c != 0 {
					return c
				}
			}
			return 0
		})
		out = append(out, series{def: d, samples: samples})
	}
	slices.SortFunc(out, func(a, b series) int { return strings.Compare(a.def.name, b.def.name) })
	return out
}

// collectOther adds the small families that come with the data: yearly
// water, account names and denials.
func (ds *defs) collectOther(c *collection, sources map[string]*store.SourceData, names []string) {
	accounts := map[[2]string]provider.Account{}
	denied := map[[4]string]bool{}
	water := map[[5]string]float64{}
	for _, name := range names {
		d := sources[name]
		for _, w := range d.Yearly {
			water[[5]string{w.Provider, w.Account, w.Service, w.Location, strconv.Itoa(w.Year)}] += w.CubicMeters
		}
		for _, acc := range d.Accounts {
			accounts[[2]string{acc.Provider, acc.ID}] = acc
		}
		for _, dn := range d.Denied {
			k := [4]string{dn.Provider, d.Name, dn.Account, dn.Reason}
			if !denied[k] {
				denied[k] = true
				c.add(ds.denied, 1, k[:]...)
			}
		}
	}
	for k, v := range water {
		c.add(ds.waterYearly, v, k[:]...)
	}
	for _, acc := range accounts {
		c.add(ds.accountInfo, 1, acc.Provider, acc.ID, acc.Name, acc.ParentType, acc.ParentID, acc.ParentName)
	}
}

// freshness collects the per-source families that move with every refresh
// attempt. They are few, so they are built per scrape rather than making
// every attempt re-render the data.
func (ds *defs) freshness(sources map[string]*store.SourceData) *collection {
	out := &collection{}
	for _, d := range sources {
		if own, ok := d.LatestMonth(); ok {
			out.add(ds.dataMonth, float64(own.Start().Unix()), d.Provider, d.Name)
		}
		if !d.NextMonthDue.IsZero() {
			out.add(ds.nextMonthDue, float64(d.NextMonthDue.Unix()), d.Provider, d.Name)
		}
		if !d.LastSuccess.IsZero() {
			out.add(ds.lastSuccess, float64(d.LastSuccess.UnixMilli())/1e3, d.Provider, d.Name)
		}
		if !d.LastAttempt.IsZero() {
			out.add(ds.refreshSuccess, b2f(d.LastOK), d.Provider, d.Name)
			out.add(ds.refreshDuration, d.LastDuration.Seconds(), d.Provider, d.Name)
		}
		if !d.NextRefresh.IsZero() {
			out.add(ds.nextRefresh, float64(d.NextRefresh.Unix()), d.Provider, d.Name)
		}
		out.add(ds.monthsStored, float64(len(d.Months)), d.Provider, d.Name)
		ds.provisional.freshness(out, d)
		ds.allocation.freshness(out, d)
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// each calls f with every series of a, label values in the def's order.
func (a *aggregation) each(f func(d *def, values []string, v float64)) {
	for i := range a.data {
		fam := &a.data[i]
		for j := range fam.entries {
			f(fam.def, a.values(fam, &fam.entries[j]), fam.entries[j].value)
		}
	}
	for d, samples := range a.other.families {
		for _, s := range samples {
			f(d, s.values, s.value)
		}
	}
}

// collect sends the series of a as const metrics.
func (a *aggregation) collect(ch chan<- prometheus.Metric) {
	a.each(func(d *def, values []string, v float64) {
		if m, err := prometheus.NewConstMetric(d.desc, prometheus.GaugeValue, v, values...); err == nil {
			ch <- m
		}
	})
}

// collect sends the samples of c as const metrics.
func (c *collection) collect(ch chan<- prometheus.Metric) {
	for d, samples := range c.families {
		for _, s := range samples {
			if m, err := prometheus.NewConstMetric(d.desc, prometheus.GaugeValue, s.value, s.values...); err == nil {
				ch <- m
			}
		}
	}
}
