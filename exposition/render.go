package exposition

import (
	"cmp"
	"maps"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

const namespace = "cloudcarbon"

var (
	dataLabels   = []string{"provider", "account", "service", "location", "scope"}
	noScope      = []string{"provider", "account", "service", "location"}
	historyExtra = []string{"month", "months_ago"}
	sourceLabels = []string{"provider", "source"}
)

// family is one data metric family: which quantity it reads and whether it
// carries the scope label.
type family struct {
	quantity provider.Quantity
	current  *prometheus.Desc
	history  *prometheus.Desc
	scoped   bool
}

func newFamily(q provider.Quantity, name, help string, scoped bool) family {
	labels := noScope
	if scoped {
		labels = dataLabels
	}
	return family{
		quantity: q,
		scoped:   scoped,
		current: prometheus.NewDesc(namespace+"_"+name, help+" Latest month the provider has published.",
			labels, nil),
		history: prometheus.NewDesc(namespace+"_history_"+name, help+" One series per month of the history window; months_ago 0 is the latest published month.",
			append(slices.Clone(labels), historyExtra...), nil),
	}
}

// The descriptors are immutable values shared by every snapshot.
var (
	families = []family{
		newFamily(provider.Emissions, "emissions_grams",
			"Greenhouse gas emissions reported by the provider, in grams of CO2e (scope 2 location-based where the provider reports both methods).", true),
		newFamily(provider.EmissionsMarketBased, "emissions_market_based_grams",
			"Market-based greenhouse gas emissions reported by the provider, in grams of CO2e, all scopes.", true),
		newFamily(provider.Energy, "energy_joules",
			"Energy consumption reported by the provider, in joules.", false),
		newFamily(provider.Cost, "billing_cost_usd",
			"Billing cost net of credits for the same month as the emissions, in US dollars.", false),
	}

	dataMonthDesc = prometheus.NewDesc(namespace+"_data_month_timestamp_seconds",
		"Start of the latest month with data, as a Unix timestamp: the month the data families describe.",
		sourceLabels, nil)
	nextMonthDueDesc = prometheus.NewDesc(namespace+"_next_month_due_timestamp_seconds",
		"When the provider is expected to publish the month after the latest one held, as a Unix timestamp; data is overdue once this has passed by more than a few days.",
		sourceLabels, nil)
	lastSuccessDesc = prometheus.NewDesc(namespace+"_last_refresh_success_timestamp_seconds",
		"When the source was last refreshed successfully, as a Unix timestamp.",
		sourceLabels, nil)
	refreshSuccessDesc = prometheus.NewDesc(namespace+"_refresh_success",
		"Whether the latest refresh of the source succeeded (1) or failed (0).",
		sourceLabels, nil)
	refreshDurationDesc = prometheus.NewDesc(namespace+"_refresh_duration_seconds",
		"Duration of the latest refresh of the source.",
		sourceLabels, nil)
	nextRefreshDesc = prometheus.NewDesc(namespace+"_next_refresh_timestamp_seconds",
		"When the next refresh of the source is planned, as a Unix timestamp.",
		sourceLabels, nil)
	monthsStoredDesc = prometheus.NewDesc(namespace+"_months_stored",
		"Number of months held for the source, with or without data.",
		sourceLabels, nil)
	deniedDesc = prometheus.NewDesc(namespace+"_account_access_denied",
		"Accounts the configured credentials may not read, with the provider's reason; always 1. Their data is missing from the data families.",
		[]string{"provider", "source", "account", "reason"}, nil)
	accountInfoDesc = prometheus.NewDesc(namespace+"_account_info",
		"Account names and parents (account group, enterprise, billing account, tenant); always 1.",
		[]string{"provider", "account", "name", "parent_type", "parent", "parent_name"}, nil)
)

func describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.current
		ch <- f.history
	}
	for _, d := range []*prometheus.Desc{dataMonthDesc, nextMonthDueDesc, lastSuccessDesc, refreshSuccessDesc,
		refreshDurationDesc, nextRefreshDesc, monthsStoredDesc, deniedDesc, accountInfoDesc} {
		ch <- d
	}
}

// rendered is the data metric set of one render, built when data changes
// so that a scrape only streams prebuilt values.
type rendered struct {
	metrics []prometheus.Metric
	// generations are those of the sources rendered, by name: the next
	// render is due when they differ from the snapshot's.
	generations map[string]uint64
}

// builder collects const metrics, dropping those a label value makes
// invalid.
type builder struct {
	metrics []prometheus.Metric
	// invalid counts series dropped because a label value was not UTF-8.
	invalid int
}

type seriesKey struct {
	provider, account, service, location string
	scope                                provider.Scope
	month                                provider.Month
	monthsAgo                            int
}

// render builds the data metrics of sources. Records sharing a label set
// are summed, so two sources reporting on disjoint accounts of one provider
// merge cleanly and energy or cost split over scopes folds into one series.
func render(sources map[string]*store.SourceData, history int) *builder {
	out := &builder{}
	// Sources are visited in name order so that sums over several sources
	// add up in the same order, and to the same bits, every time.
	names := slices.Sorted(maps.Keys(sources))

	current := make([]map[seriesKey]float64, len(families))
	hist := make([]map[seriesKey]float64, len(families))
	for i := range families {
		current[i] = map[seriesKey]float64{}
		hist[i] = map[seriesKey]float64{}
	}
	accounts := map[[2]string]provider.Account{}

	// The data families describe the latest month a provider has
	// published, taken over all its sources, so that one lagging source
	// does not mix two months in one series set.
	latestOf := map[string]provider.Month{}
	for _, d := range sources {
		if m, ok := d.LatestMonth(); ok && m > latestOf[d.Provider] {
			latestOf[d.Provider] = m
		}
	}
	for _, name := range names {
		d := sources[name]
		if _, ok := d.LatestMonth(); ok {
			latest := latestOf[d.Provider]
			for m, md := range d.Months {
				ago := int(latest - m)
				if ago < 0 || ago >= history {
					continue
				}
				for i := range md.Records {
					r := &md.Records[i]
					for fi, f := range families {
						if !r.Has(f.quantity) {
							continue
						}
						k := seriesKey{provider: r.Provider, account: r.Account, service: r.Service, location: r.Location}
						if f.scoped {
							k.scope = r.Scope
						}
						v := value(r, f.quantity)
						if ago == 0 {
							current[fi][k] += v
						}
						k.month, k.monthsAgo = m, ago
						hist[fi][k] += v
					}
				}
			}
		}
		for _, a := range d.Accounts {
			accounts[[2]string{a.Provider, a.ID}] = a
		}
		for _, dn := range d.Denied {
			out.add(deniedDesc, prometheus.GaugeValue, 1, dn.Provider, d.Name, dn.Account, dn.Reason)
		}
	}

	// The registry sorts each family's series on every gather. Handing
	// them over in its order, once per render, makes that sort a linear
	// pass, which is a quarter of the scrape time at 100k series.
	for fi, f := range families {
		for _, k := range sortedKeys(current[fi]) {
			out.add(f.current, prometheus.GaugeValue, current[fi][k], f.labelValues(k)...)
		}
		for _, k := range sortedKeys(hist[fi]) {
			lv := append(f.labelValues(k), k.month.String(), strconv.Itoa(k.monthsAgo))
			out.add(f.history, prometheus.GaugeValue, hist[fi][k], lv...)
		}
	}
	for _, a := range accounts {
		out.add(accountInfoDesc, prometheus.GaugeValue, 1, a.Provider, a.ID, a.Name, a.ParentType, a.ParentID, a.ParentName)
	}
	return out
}

// freshness builds the per-source families that move with every refresh
// attempt. They are few, so they are built per scrape rather than making
// every attempt re-render the data.
func freshness(out *builder, sources map[string]*store.SourceData) {
	for _, d := range sources {
		if own, ok := d.LatestMonth(); ok {
			out.add(dataMonthDesc, prometheus.GaugeValue, float64(own.Start().Unix()), d.Provider, d.Name)
		}
		if !d.NextMonthDue.IsZero() {
			out.add(nextMonthDueDesc, prometheus.GaugeValue, float64(d.NextMonthDue.Unix()), d.Provider, d.Name)
		}
		if !d.LastSuccess.IsZero() {
			out.add(lastSuccessDesc, prometheus.GaugeValue, float64(d.LastSuccess.UnixMilli())/1e3, d.Provider, d.Name)
		}
		if !d.LastAttempt.IsZero() {
			out.add(refreshSuccessDesc, prometheus.GaugeValue, b2f(d.LastOK), d.Provider, d.Name)
			out.add(refreshDurationDesc, prometheus.GaugeValue, d.LastDuration.Seconds(), d.Provider, d.Name)
		}
		if !d.NextRefresh.IsZero() {
			out.add(nextRefreshDesc, prometheus.GaugeValue, float64(d.NextRefresh.Unix()), d.Provider, d.Name)
		}
		out.add(monthsStoredDesc, prometheus.GaugeValue, float64(len(d.Months)), d.Provider, d.Name)
	}
}

func (f family) labelValues(k seriesKey) []string {
	if f.scoped {
		return []string{k.provider, k.account, k.service, k.location, string(k.scope)}
	}
	return []string{k.provider, k.account, k.service, k.location}
}

func (r *builder) add(desc *prometheus.Desc, t prometheus.ValueType, v float64, lv ...string) {
	m, err := prometheus.NewConstMetric(desc, t, v, lv...)
	if err != nil {
		r.invalid++
		return
	}
	r.metrics = append(r.metrics, m)
}

func value(r *provider.Record, q provider.Quantity) float64 {
	switch q {
	case provider.Emissions:
		return r.EmissionsGrams
	case provider.EmissionsMarketBased:
		return r.MarketBasedGrams
	case provider.Energy:
		return r.EnergyJoules
	case provider.Cost:
		return r.CostUSD
	}
	return 0
}

// sortedKeys orders series as the registry does: by label values in the
// order of the sorted label names (account, location, month, months_ago,
// provider, scope, service), comparing values as strings.
func sortedKeys(m map[seriesKey]float64) []seriesKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b seriesKey) int {
		return cmp.Or(
			cmp.Compare(a.account, b.account),
			cmp.Compare(a.location, b.location),
			cmp.Compare(a.month, b.month),
			cmp.Compare(strconv.Itoa(a.monthsAgo), strconv.Itoa(b.monthsAgo)),
			cmp.Compare(a.provider, b.provider),
			cmp.Compare(a.scope, b.scope),
			cmp.Compare(a.service, b.service),
		)
	})
	return keys
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
