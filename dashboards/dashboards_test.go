package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "write the generated dashboards to dashboards/*.json")

// ---------------------------------------------------------------------------
// Generation: the dashboards as code. The committed JSON is the product;
// TestGenerated keeps it equal to what these builders produce.

// generated lists the dashboards by file name.
var generated = []struct {
	file  string
	build func() *dashboard.DashboardBuilder
}{
	{"cloudcarbon-overview.json", overview},
	{"cloudcarbon-exporter-health.json", health},
}

const (
	// Units, as Grafana unit ids.
	unitTonnes    = "masst" // fixed "t": Grafana's gram unit scales to Mg, not t
	unitGrams     = "massg" // g, kg, then Mg
	unitWh        = "watth" // Wh, kWh, MWh, GWh: energy is converted from joules
	unitUSD       = "currencyUSD"
	unitMonth     = "time:YYYY-MM"
	unitFromNow   = "dateTimeFromNow"
	unitPercent   = "percentunit"
	unitIntensity = "suffix:gCO2e/USD" // Grafana adds the space
	unitWater     = "suffix:m³"

	// targetFilter narrows every query to the exporters picked in the job
	// and instance variables (All by default).
	targetFilter = `job=~"$job",instance=~"$instance"`
	// dataFilter applies the overview's variables to a data family.
	dataFilter = targetFilter + `,provider=~"$provider",account=~"$account",service=~"$service",location=~"$location"`
	// sourceFilter applies the health dashboard's variables.
	sourceFilter = targetFilter + `,provider=~"$provider",source=~"$source"`
	// last12 selects the last 12 months of a history family.
	last12 = `months_ago=~"[0-9]|1[01]"`

	// The data labels of the families, which identify a series whoever
	// scraped it: see dedup.
	dataLabels  = "provider, account, service, location"
	scopeLabels = dataLabels + ", scope"
	monthLabels = ", month, months_ago"
	// provisionalLabels are the labels of a provisional estimate besides
	// the scope labels.
	provisionalLabels = ", month, basis, months_ahead"
	// allocationLabels are the labels of an allocated series besides the
	// scope labels.
	allocationLabels = ", month, key, value"
	// thisMonth is the month of the dashboard's end, as the month label
	// spells it.
	thisMonth     = "${__to:date:YYYY-MM}"
	sourceLabels  = "provider, source"
	requestLabels = sourceLabels + ", endpoint, code"
	errorLabels   = sourceLabels + ", reason"
)

// dedup keeps one of the copies of each series of expr, by the family's
// data labels, before anything sums or counts them: the same series
// scraped by two jobs, by both Prometheus servers of an HA pair behind one
// query layer, by an old and a new shard during a reshard, or also pushed
// over OTLP, would otherwise count twice. labels must be all the family's
// labels but the target ones (job, instance and what the scrape adds), or
// max would merge distinct series.
func dedup(labels, expr string) string {
	return "max by (" + labels + ") (" + expr + ")"
}

func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

// instant is an instant query: the data families hold one value per series
// that changes once a month, so most panels show the latest scrape.
func instant(ref, legend, expr string) *prometheus.DataqueryBuilder {
	q := prometheus.NewDataqueryBuilder().Datasource(datasource()).RefId(ref).
		EditorMode(prometheus.QueryEditorModeCode).Expr(expr).Instant()
	if legend != "" {
		q.LegendFormat(legend)
	}
	return q
}

// tabular is an instant query returned as a table, one column per label.
func tabular(ref, expr string) *prometheus.DataqueryBuilder {
	return instant(ref, "", expr).Format(prometheus.PromQueryFormatTable)
}

// ranged is a range query, for the exporter's own metrics only: history
// comes from the history families, never from Prometheus retention.
func ranged(ref, legend, expr string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource()).RefId(ref).
		EditorMode(prometheus.QueryEditorModeCode).Expr(expr).LegendFormat(legend).Range()
}

func sel(metric, filter string, extra ...string) string {
	return metric + "{" + strings.Join(append([]string{filter}, extra...), ",") + "}"
}

func datasourceVar() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")
}

// labelVar is a multi-value variable over the values of a label, "All"
// meaning ".*" so that new values need no dashboard change.
func labelVar(name, label, selector string) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, %s)", selector, name)
	return dashboard.NewQueryVariableBuilder(name).Label(label).Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).Definition(q).
		Multi(true).IncludeAll(true).AllValue(".*").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc)
}

// jobVar and instanceVar select the exporters: the scrape job (the examples
// name it cloudcarbon) and, for series pushed over OTLP, the exporter's
// service.name (cloudcarbon_exporter). Both labels always have a value,
// so "All" is ".+", as dashboard-linter wants.
func jobVar() *dashboard.QueryVariableBuilder {
	return labelVar("job", "Job", "cloudcarbon_build_info").AllValue(".+")
}

func instanceVar() *dashboard.QueryVariableBuilder {
	return labelVar("instance", "Instance", `cloudcarbon_build_info{job=~"$job"}`).AllValue(".+")
}

func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }

func reduceLast() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

func thresholds(steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

func step(value *float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: value, Color: color}
}

// neutral colours values that are neither good nor bad.
func neutral() *dashboard.ThresholdsConfigBuilder { return thresholds(step(nil, "blue")) }

// badAbove colours values at or above limit red.
func badAbove(limit float64) *dashboard.ThresholdsConfigBuilder {
	return thresholds(step(nil, "green"), step(cog.ToPtr(limit), "red"))
}

func valueMap(options map[string]dashboard.ValueMappingResult) []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: options}}}
}

func mapped(text, color string, index int32) dashboard.ValueMappingResult {
	return dashboard.ValueMappingResult{Text: cog.ToPtr(text), Color: cog.ToPtr(color), Index: cog.ToPtr(index)}
}

// okFailed maps a 0/1 gauge to words.
func okFailed() []dashboard.ValueMapping {
	return valueMap(map[string]dashboard.ValueMappingResult{
		"0": mapped("failed", "red", 0),
		"1": mapped("ok", "green", 1),
	})
}

func statPanel(title, description, unit string, w, h uint32) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Datasource(datasource()).
		Unit(unit).Span(w).Height(h).ReduceOptions(reduceLast()).
		GraphMode(common.BigValueGraphModeNone).ColorMode(common.BigValueColorModeValue).
		TextMode(common.BigValueTextModeAuto).Orientation(common.VizOrientationAuto).Thresholds(neutral())
}

func barGauge(title, description, unit string, w, h uint32) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().Title(title).Description(description).Datasource(datasource()).
		Unit(unit).Span(w).Height(h).ReduceOptions(reduceLast()).
		Orientation(common.VizOrientationHorizontal).DisplayMode(common.BarGaugeDisplayModeBasic).
		ValueMode(common.BarGaugeValueModeText).NamePlacement(common.BarGaugeNamePlacementLeft).
		ShowUnfilled(true).Thresholds(neutral())
}

func tablePanel(title, description, unit string, w, h uint32) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(description).Datasource(datasource()).
		Unit(unit).Span(w).Height(h).Thresholds(neutral()).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}))
}

func timeSeries(title, description, unit string, w, h uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(description).Datasource(datasource()).
		Unit(unit).Span(w).Height(h).Thresholds(neutral()).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom))
}

// monthlyBars draws one stacked bar per month and provider from an instant
// table query returning provider, month and Value.
func monthlyBars(title, description, unit string, w, h uint32, expr string) *barchart.PanelBuilder {
	return barchart.NewPanelBuilder().Title(title).Description(description).Datasource(datasource()).
		Unit(unit).Span(w).Height(h).Thresholds(neutral()).
		WithTarget(tabular("A", expr)).
		WithTransformation(dashboard.DataTransformerConfig{Id: "groupingToMatrix", Options: map[string]any{
			"columnField": "provider", "rowField": "month", "valueField": "Value", "emptyValue": "null",
		}}).
		WithTransformation(dashboard.DataTransformerConfig{Id: "sortBy", Options: map[string]any{
			"fields": map[string]any{}, "sort": []any{map[string]any{"field": `month\provider`}},
		}}).
		WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"renameByName": map[string]any{`month\provider`: "month"},
		}}).
		XField("month").Stacking(common.StackingModeNormal).ShowValue(common.VisibilityModeNever).
		FillOpacity(80).XTickLabelRotation(0).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderNone))
}

// organize hides the time column and the columns in hide, orders and
// renames the others.
func organize(order []string, rename map[string]string, hide ...string) dashboard.DataTransformerConfig {
	exclude := map[string]any{"Time": true}
	for _, name := range hide {
		exclude[name] = true
	}
	index := map[string]any{}
	for i, name := range order {
		index[name] = i
	}
	renames := map[string]any{}
	for k, v := range rename {
		renames[k] = v
	}
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
		"excludeByName": exclude,
		"indexByName":   index,
		"renameByName":  renames,
	}}
}

func sortDesc(field string) []cog.Builder[common.TableSortByFieldState] {
	return []cog.Builder[common.TableSortByFieldState]{
		common.NewTableSortByFieldStateBuilder().DisplayName(field).Desc(true),
	}
}

func unitOverride(unit string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "unit", Value: unit}}
}

func link() *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder("Cloud carbon").Type(dashboard.DashboardLinkTypeDashboards).
		Tags([]string{"cloudcarbon"}).AsDropdown(false).IncludeVars(true).KeepTime(true).Icon("external link").Tooltip("")
}

// withNames adds the account name (cloudcarbon_account_info) to a vector
// aggregated by provider and account, keeping accounts without a name.
func withNames(v string) string {
	return fmt.Sprintf(`%s * on (provider, account) group_left (name) max by (provider, account, name) (cloudcarbon_account_info{`+targetFilter+`,provider=~"$provider",account=~"$account"}) or on (provider, account) %s`, v, v)
}

func overview() *dashboard.DashboardBuilder {
	emissions := dedup(scopeLabels, sel("cloudcarbon_emissions_grams", dataFilter))
	market := dedup(scopeLabels, sel("cloudcarbon_emissions_market_based_grams", dataFilter))
	energy := dedup(dataLabels, sel("cloudcarbon_energy_joules", dataFilter))
	cost := dedup(dataLabels, sel("cloudcarbon_billing_cost_usd", dataFilter))
	history := func(ago string) string {
		return dedup(scopeLabels+monthLabels, sel("cloudcarbon_history_emissions_grams", dataFilter, `months_ago="`+ago+`"`))
	}
	// change compares the latest month with the one ago months before,
	// per provider and, over the providers that have both months, in total.
	change := func(ago string) (total, perProvider string) {
		now, then := "sum by (provider) ("+history("0")+")", "sum by (provider) ("+history(ago)+")"
		total = fmt.Sprintf("sum(%s and %s) / sum(%s and %s) - 1", now, then, then, now)
		perProvider = fmt.Sprintf("%s / %s - 1", now, then)
		return total, perProvider
	}
	momTotal, momProvider := change("1")
	yoyTotal, yoyProvider := change("12")
	latest := "Values are the latest month each provider has published (see Data month): the months can differ between providers."
	changeThresholds := thresholds(step(nil, "green"), step(cog.ToPtr(0.0), "red"))
	serviceCost := "sum by (provider, service) (" + cost + ")"
	provisional := dedup(scopeLabels+provisionalLabels, sel("cloudcarbon_provisional_emissions_grams", dataFilter, `month="`+thisMonth+`"`))
	allocated := dedup(scopeLabels+allocationLabels, sel("cloudcarbon_allocated_emissions_grams", dataFilter, `key=~"$key"`))

	return dashboard.NewDashboardBuilder("Cloud carbon overview").
		Uid("cloudcarbon-overview").Readonly().
		Description("Carbon footprint as the clouds report it (GCP, Azure, IBM Cloud), from cloudcarbon_exporter.").
		Tags([]string{"cloudcarbon", "carbon", "finops"}).
		Timezone("utc").Time("now-6h", "now").Refresh("").Tooltip(dashboard.DashboardCursorSyncOff).
		Link(link()).
		WithVariable(datasourceVar()).
		WithVariable(jobVar()).
		WithVariable(instanceVar()).
		WithVariable(labelVar("provider", "Provider", `cloudcarbon_emissions_grams{`+targetFilter+`}`)).
		WithVariable(labelVar("account", "Account", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider"}`)).
		WithVariable(labelVar("service", "Service", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider",account=~"$account"}`)).
		WithVariable(labelVar("location", "Location", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider",account=~"$account",service=~"$service"}`)).
		WithVariable(labelVar("key", "Allocation key", `cloudcarbon_allocated_emissions_grams{`+targetFilter+`,provider=~"$provider"}`).
			Multi(false).IncludeAll(false)).
		WithRow(row("Latest published month")).
		WithPanel(statPanel("Total emissions", "Location-based emissions, all scopes. "+latest, unitTonnes, 4, 5).
			Decimals(2).
			WithTarget(instant("A", "total", "sum("+emissions+") / 1e6"))).
		WithPanel(statPanel("Emissions by provider", "Location-based emissions, all scopes. "+latest, unitTonnes, 8, 5).
			Decimals(2).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+emissions+") / 1e6"))).
		WithPanel(statPanel("Emissions by scope", "GHG Protocol scope; IBM reports no split (unspecified). Scope 2 is location-based. "+latest, unitTonnes, 7, 5).
			Decimals(2).
			WithTarget(instant("A", "scope {{scope}}", "sum by (scope) ("+emissions+") / 1e6"))).
		WithPanel(statPanel("Data month", "The month each provider's data describes (cloudcarbon_data_month_timestamp_seconds). Providers publish a month about two to three weeks after it ends.", unitMonth, 5, 5).
			WithTarget(instant("A", "{{provider}}", `max by (provider) (cloudcarbon_data_month_timestamp_seconds{`+targetFilter+`,provider=~"$provider"}) * 1000`))).
		WithPanel(statPanel("Month-over-month change", "Latest month against the month before, from the history families (months_ago 0 and 1). The total covers the providers that have both months.", unitPercent, 12, 5).
			Decimals(1).Thresholds(changeThresholds).
			WithTarget(instant("A", "all providers", momTotal)).
			WithTarget(instant("B", "{{provider}}", momProvider))).
		WithPanel(statPanel("Year-over-year change", "Latest month against the same month a year before (months_ago 0 and 12). Needs 13 months of history (--history.months, default 13); Azure serves 12 months, so it has none.", unitPercent, 12, 5).
			Decimals(1).Thresholds(changeThresholds).
			WithTarget(instant("A", "all providers", yoyTotal)).
			WithTarget(instant("B", "{{provider}}", yoyProvider))).
		WithRow(row("Last 12 months")).
		WithPanel(monthlyBars("Emissions per month", "Location-based emissions of the last 12 published months per provider, from cloudcarbon_history_emissions_grams: a fresh install shows the whole year, whatever the Prometheus retention.", unitTonnes, 24, 9,
			"sum by (provider, month) ("+dedup(scopeLabels+monthLabels, sel("cloudcarbon_history_emissions_grams", dataFilter, last12))+") / 1e6")).
		WithRow(row("Provisional months: estimates from cost, not published yet")).
		WithPanel(statPanel("This month so far (estimate)", "Emissions of the month in progress estimated from its cost to date, for sources with provisional: true: the month's cost times the emissions per dollar of the latest published month with both. An estimate, never in the published figures; see the estimate error.", unitTonnes, 8, 8).
			Decimals(2).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+provisional+") / 1e6"))).
		WithPanel(monthlyBars("Provisional months", "Estimated emissions of every month after the latest published one, per provider (the month in progress to date), from cloudcarbon_provisional_emissions_grams. Each month leaves this chart for the published ones once its provider publishes it.", unitTonnes, 10, 8,
			"sum by (provider, month) ("+dedup(scopeLabels+provisionalLabels, sel("cloudcarbon_provisional_emissions_grams", dataFilter))+") / 1e6")).
		WithPanel(statPanel("Estimate error (backtest)", "How far such estimates were from what each source then published, on its last published months (cloudcarbon_provisional_backtest_error_ratio, location-based): the mean absolute error. Prices, credits, reserved capacity and renewable purchases move it.", unitPercent, 6, 8).
			Decimals(1).Thresholds(badAbove(0.25)).
			WithTarget(instant("A", "{{provider}} {{source}}", `max by (provider, source) (cloudcarbon_provisional_backtest_error_ratio{`+targetFilter+`,provider=~"$provider",method="location"})`))).
		WithRow(row("Emissions by team, latest month")).
		WithPanel(barGauge("Emissions by team", "Emissions of the latest published month allocated to the values of the tag or label key chosen above (allocate_by), by each value's share of the cost in the same account, service, location and month (cloudcarbon_allocated_emissions_grams). The values add up to the emissions of the sources that allocate by the key; (untagged) is cost without the tag, (other) the values past allocate_top. "+latest, unitGrams, 16, 10).
			WithTarget(instant("A", "{{value}}", "sort_desc(sum by (value) ("+allocated+"))"))).
		WithPanel(statPanel("Cost carrying the key", "Share of the cost of the sources that allocate by the key that carries one of its values (cloudcarbon_allocation_tagged_ratio); the rest is allocated to (untagged).", unitPercent, 8, 10).
			Decimals(1).
			WithTarget(instant("A", "{{provider}} {{source}}", `max by (provider, source) (cloudcarbon_allocation_tagged_ratio{`+targetFilter+`,provider=~"$provider",key=~"$key"})`))).
		WithRow(row("Top emitters, latest month")).
		WithPanel(tablePanel("Top accounts", "The 10 accounts (GCP project, Azure subscription, IBM account) with the most emissions, with their names from cloudcarbon_account_info.", unitGrams, 8, 10).
			WithTarget(tabular("A", "topk(10, "+withNames("sum by (provider, account) ("+emissions+")")+")")).
			WithTransformation(organize([]string{"provider", "account", "name", "Value"}, map[string]string{"Value": "Emissions"})).
			SortBy(sortDesc("Emissions"))).
		WithPanel(barGauge("Top services", "The 10 services with the most emissions.", unitGrams, 8, 10).
			WithTarget(instant("A", "{{service}} ({{provider}})", "sort_desc(topk(10, sum by (provider, service) ("+emissions+")))"))).
		WithPanel(barGauge("Top locations", "The 10 locations with the most emissions.", unitGrams, 8, 10).
			WithTarget(instant("A", "{{location}} ({{provider}})", "sort_desc(topk(10, sum by (provider, location) ("+emissions+")))"))).
		WithRow(row("Market-based and location-based")).
		WithPanel(barGauge("Location-based and market-based emissions", "For the providers that report both methods (GCP): market-based accounts for the energy the provider buys (renewable energy contracts), location-based for the grid where it runs.", unitTonnes, 12, 7).
			Decimals(2).
			WithTarget(instant("A", "{{provider}} location-based", "(sum by (provider) ("+emissions+") and sum by (provider) ("+market+")) / 1e6")).
			WithTarget(instant("B", "{{provider}} market-based", "sum by (provider) ("+market+") / 1e6"))).
		WithPanel(barGauge("Market-based emissions by scope", "Market-based emissions per GHG Protocol scope (cloudcarbon_emissions_market_based_grams). "+latest, unitTonnes, 12, 7).
			Decimals(2).
			WithTarget(instant("A", "{{provider}} scope {{scope}}", "sum by (provider, scope) ("+market+") / 1e6"))).
		WithRow(row("Energy")).
		WithPanel(statPanel("Energy by provider", "Energy of the latest published month, for providers that report it (IBM). "+latest, unitWh, 8, 8).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+energy+") / 3600"))).
		WithPanel(monthlyBars("Energy per month", "Energy of the last 12 published months per provider, from cloudcarbon_history_energy_joules.", unitWh, 16, 8,
			"sum by (provider, month) ("+dedup(dataLabels+monthLabels, sel("cloudcarbon_history_energy_joules", dataFilter, last12))+") / 3600")).
		WithRow(row("Water")).
		WithPanel(statPanel("Water by provider", "Water of the latest published month, for providers that report it per month (Scaleway: water usage). "+latest, unitWater, 6, 7).
			Decimals(1).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+dedup(dataLabels, sel("cloudcarbon_water_cubic_meters", dataFilter))+")"))).
		WithPanel(monthlyBars("Water per month", "Monthly water of the last 12 published months per provider, from cloudcarbon_history_water_cubic_meters.", unitWater, 9, 7,
			"sum by (provider, month) ("+dedup(dataLabels+monthLabels, sel("cloudcarbon_history_water_cubic_meters", dataFilter, last12))+")")).
		WithPanel(barGauge("Water per calendar year", "Water that providers report per calendar year only (AWS: water withdrawals), from cloudcarbon_water_yearly_cubic_meters, per provider and year. A yearly figure: never compare it with a month's.", unitWater, 9, 7).
			Decimals(0).
			WithTarget(instant("A", "{{provider}} {{year}}", "sum by (provider, year) ("+dedup(dataLabels+", year", sel("cloudcarbon_water_yearly_cubic_meters", dataFilter))+")"))).
		WithRow(row("Cost and carbon intensity of spend")).
		WithPanel(statPanel("Billing cost by provider", "Cost net of credits in USD for the same month as the emissions, for providers whose billing data the exporter reads (GCP).", unitUSD, 6, 10).
			Decimals(0).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+cost+")"))).
		WithPanel(statPanel("Carbon intensity of spend", "Grams CO2e (location-based) per US dollar of cost, per provider with billing data.", unitIntensity, 6, 10).
			Decimals(1).
			WithTarget(instant("A", "{{provider}}", "sum by (provider) ("+emissions+") / (sum by (provider) ("+cost+") > 0)"))).
		WithPanel(tablePanel("Emissions, cost and intensity per service", "Per service of the providers with billing data: emissions, cost net of credits, and grams CO2e per USD (services with no positive cost have none).", unitGrams, 12, 10).
			WithTarget(tabular("A", "sum by (provider, service) ("+emissions+") and on (provider) sum by (provider) ("+cost+")")).
			WithTarget(tabular("B", serviceCost)).
			WithTarget(tabular("C", "sum by (provider, service) ("+emissions+") / ("+serviceCost+" > 0)")).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(organize([]string{"provider", "service", "Value #A", "Value #B", "Value #C"},
				map[string]string{"Value #A": "Emissions", "Value #B": "Cost", "Value #C": "gCO2e per USD"})).
			OverrideByName("Emissions", unitOverride(unitGrams)).
			OverrideByName("Cost", unitOverride(unitUSD)).
			OverrideByName("gCO2e per USD", append(unitOverride(unitIntensity), dashboard.DynamicConfigValue{Id: "decimals", Value: 1})).
			SortBy(sortDesc("Emissions")))
}

func health() *dashboard.DashboardBuilder {
	s := func(metric string, extra ...string) string { return sel(metric, sourceFilter, extra...) }
	// latest is a per-source gauge, one copy of each.
	latest := func(metric string) string { return dedup(sourceLabels, s(metric)) }
	// inRange sums a counter's increase over the time range by the labels
	// by, from one copy of each series (labels are the counter's).
	inRange := func(by, labels, metric string, extra ...string) string {
		return fmt.Sprintf("sum by (%s) (%s)", by, dedup(labels, "increase("+s(metric, extra...)+"[$__range])"))
	}
	errors := inRange(errorLabels, errorLabels, "cloudcarbon_refresh_errors_total")
	noErrors := `label_replace(` + inRange(sourceLabels, errorLabels, "cloudcarbon_refresh_errors_total") + ` * 0, "reason", "none", "", "")`
	apiErrors := inRange("provider, endpoint", requestLabels, "cloudcarbon_api_requests_total", `code!~"2.."`)
	apiAll := inRange("provider, endpoint", requestLabels, "cloudcarbon_api_requests_total")
	deniedNames := "max by (provider, source, account, reason) (" + s("cloudcarbon_account_access_denied", `account=~"$account"`) + ")"
	// Exporter-wide series (no source label) are per exporter instance.
	perInstance := func(labels, expr string) string { return dedup("instance"+labels, expr) }

	return dashboard.NewDashboardBuilder("Cloud carbon exporter health").
		Uid("cloudcarbon-exporter-health").Readonly().
		Description("Refreshes, provider API calls, BigQuery usage, state file and OTLP push of cloudcarbon_exporter.").
		Tags([]string{"cloudcarbon"}).
		Timezone("utc").Time("now-24h", "now").Refresh("1m").Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(link()).
		WithVariable(datasourceVar()).
		WithVariable(jobVar()).
		WithVariable(instanceVar()).
		WithVariable(labelVar("provider", "Provider", `cloudcarbon_refresh_success{`+targetFilter+`}`)).
		WithVariable(labelVar("source", "Source", `cloudcarbon_refresh_success{`+targetFilter+`,provider=~"$provider"}`)).
		WithVariable(labelVar("account", "Account", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider"}`)).
		WithVariable(labelVar("service", "Service", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider",account=~"$account"}`)).
		WithVariable(labelVar("location", "Location", `cloudcarbon_emissions_grams{`+targetFilter+`,provider=~"$provider",account=~"$account",service=~"$service"}`)).
		WithRow(row("Refresh")).
		WithPanel(statPanel("Latest refresh", "Whether each source's latest refresh succeeded (cloudcarbon_refresh_success). A failed refresh keeps serving the last good data.", "none", 4, 6).
			Mappings(okFailed()).ColorMode(common.BigValueColorModeBackground).Thresholds(thresholds(step(nil, "red"), step(cog.ToPtr(1.0), "green"))).
			WithTarget(instant("A", "{{provider}} / {{source}}", "min by ("+sourceLabels+") ("+s("cloudcarbon_refresh_success")+")"))).
		WithPanel(statPanel("Last successful refresh", "When each source last refreshed successfully.", unitFromNow, 5, 6).
			WithTarget(instant("A", "{{provider}} / {{source}}", latest("cloudcarbon_last_refresh_success_timestamp_seconds")+" * 1000"))).
		WithPanel(statPanel("Next planned refresh", "When each source refreshes next: often around the provider's publication date, rarely otherwise.", unitFromNow, 5, 6).
			WithTarget(instant("A", "{{provider}} / {{source}}", latest("cloudcarbon_next_refresh_timestamp_seconds")+" * 1000"))).
		WithPanel(statPanel("Data month", "The month the data families describe, per source.", unitMonth, 5, 6).
			WithTarget(instant("A", "{{provider}} / {{source}}", latest("cloudcarbon_data_month_timestamp_seconds")+" * 1000"))).
		WithPanel(statPanel("Months stored", "Months held for each source, with or without data.", "none", 5, 6).
			WithTarget(instant("A", "{{provider}} / {{source}}", latest("cloudcarbon_months_stored")))).
		WithPanel(timeSeries("Refresh duration", "Duration of each source's latest refresh.", "s", 12, 8).
			WithTarget(ranged("A", "{{provider}} / {{source}}", latest("cloudcarbon_refresh_duration_seconds")))).
		WithPanel(timeSeries("Refreshes and failures", "Refreshes that called the provider, and those that failed.", "none", 12, 8).
			DrawStyle(common.GraphDrawStyleBars).FillOpacity(60).Decimals(0).
			WithTarget(ranged("A", "{{provider}} / {{source}} refreshes", dedup(sourceLabels, "increase("+s("cloudcarbon_refreshes_total")+"[$__rate_interval])"))).
			WithTarget(ranged("B", "{{provider}} / {{source}} failures", "sum by (provider, source) ("+dedup(errorLabels, "increase("+s("cloudcarbon_refresh_errors_total")+"[$__rate_interval])")+")"))).
		WithPanel(barGauge("Refresh failures by reason", "Failed refreshes in the time range by reason (auth, permission, throttled, server_error, timeout, …); \"none\" when a source had no failure.", "none", 12, 8).
			Decimals(0).Thresholds(badAbove(1)).
			WithTarget(instant("A", "{{provider}} / {{source}}: {{reason}}", errors+" > 0 or on (provider, source) "+noErrors))).
		WithPanel(tablePanel("Accounts the credentials cannot read", "Accounts the provider denied (Azure: subscriptions without the Carbon Optimization Reader role); their data is missing.", "none", 12, 8).
			WithTarget(tabular("A", withNames(deniedNames))).
			WithTransformation(organize([]string{"provider", "source", "account", "name", "reason"}, nil, "Value"))).
		WithRow(row("Data coverage")).
		WithPanel(statPanel("Accounts with data", "Accounts with emissions in the latest month, per provider: a drop means an account stopped reporting or lost access.", "none", 8, 6).
			Decimals(0).
			WithTarget(instant("A", "{{provider}}", "count by (provider) (count by (provider, account) ("+dedup(scopeLabels, sel("cloudcarbon_emissions_grams", dataFilter))+"))"))).
		WithPanel(statPanel("Months with data", "Months in the history window with emissions, per provider (--history.months, default 13; Azure serves at most 12).", "none", 8, 6).
			Decimals(0).
			WithTarget(instant("A", "{{provider}}", "count by (provider) (count by (provider, month) ("+dedup(scopeLabels+monthLabels, sel("cloudcarbon_history_emissions_grams", dataFilter))+"))"))).
		WithPanel(statPanel("Series exposed", "Emissions series of the latest month and of the history window, per provider: the exporter's cardinality.", "none", 8, 6).
			Decimals(0).
			WithTarget(instant("A", "{{provider}} latest month", "count by (provider) ("+dedup(scopeLabels, sel("cloudcarbon_emissions_grams", dataFilter))+")")).
			WithTarget(instant("B", "{{provider}} history", "count by (provider) ("+dedup(scopeLabels+monthLabels, sel("cloudcarbon_history_emissions_grams", dataFilter))+")"))).
		WithRow(row("Provider APIs")).
		WithPanel(tablePanel("API requests by endpoint and code", "HTTP requests to provider APIs, every attempt and retry counted; code 0 when no response arrived. In the time range, and since the exporter started (the refresh at start lands before the first scrape, so only the second count has it).", "none", 12, 9).
			Decimals(0).
			WithTarget(tabular("A", inRange(requestLabels, requestLabels, "cloudcarbon_api_requests_total"))).
			WithTarget(tabular("B", dedup(requestLabels, s("cloudcarbon_api_requests_total")))).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(organize([]string{"provider", "source", "endpoint", "code", "Value #A", "Value #B"},
				map[string]string{"Value #A": "In time range", "Value #B": "Since start"})).
			SortBy(sortDesc("Since start"))).
		WithPanel(barGauge("API error responses by endpoint", "Requests in the time range that got no 2xx answer (including code 0: no response), per endpoint.", "none", 12, 9).
			Decimals(0).Thresholds(badAbove(1)).
			WithTarget(instant("A", "{{provider}} {{endpoint}}", apiErrors+" or on (provider, endpoint) "+apiAll+" * 0"))).
		WithPanel(timeSeries("API request rate", "Requests per second to provider APIs by endpoint and status code.", "reqps", 24, 8).
			WithTarget(ranged("A", "{{provider}} {{endpoint}} {{code}}", "sum by (provider, endpoint, code) ("+dedup(requestLabels, "rate("+s("cloudcarbon_api_requests_total")+"[$__rate_interval])")+")"))).
		WithRow(row("BigQuery and restatements")).
		WithPanel(statPanel("BigQuery bytes processed", "Bytes processed by the exporter's BigQuery queries, which is what BigQuery bills (GCP): in the time range, and since the exporter started.", "bytes", 12, 6).
			WithTarget(instant("A", "{{provider}} / {{source}} in time range", inRange(sourceLabels, sourceLabels, "cloudcarbon_bigquery_bytes_processed_total"))).
			WithTarget(instant("B", "{{provider}} / {{source}} since start", latest("cloudcarbon_bigquery_bytes_processed_total")))).
		WithPanel(statPanel("Restatements", "Months the provider published again under another model or data revision in the time range (GCP carbon_model_version).", "none", 12, 6).
			Decimals(0).
			WithTarget(instant("A", "{{provider}} / {{source}}", inRange(sourceLabels, sourceLabels, "cloudcarbon_restatements_total")))).
		WithRow(row("Shards")).
		WithPanel(statPanel("Shards reporting", "Shards that report, per number of shards configured (--shard.total, the chart's shards; 1 without sharding). Fewer than configured: the missing shards' sources are missing from every total (alert CloudCarbonShardsMissing).", "none", 12, 5).
			Decimals(0).
			WithTarget(instant("A", "of {{shards}}", "count by (shards) (max by (shard, shards) (cloudcarbon_shard_info{"+targetFilter+"}))"))).
		WithPanel(statPanel("Sources per shard", "Sources each shard refreshes and exposes; 0 on a shard with nothing to do (fewer sources than shards, alert CloudCarbonShardEmpty).", "none", 12, 5).
			Decimals(0).
			WithTarget(instant("A", "shard {{shard}} of {{shards}}", "max by (shard, shards) (cloudcarbon_shard_sources{"+targetFilter+"})"))).
		WithRow(row("Exporter")).
		WithPanel(statPanel("State file errors", "State file loads rejected (corrupt or foreign file, ignored) and writes that failed, in the time range, per exporter instance.", "none", 6, 6).
			Decimals(0).Thresholds(badAbove(1)).
			WithTarget(instant("A", "{{instance}} {{operation}}", perInstance(", operation", "increase(cloudcarbon_state_file_errors_total{"+targetFilter+"}[$__range])")))).
		WithPanel(statPanel("OTLP pushes", "OTLP pushes in the time range by result, per exporter instance, when OTLP is enabled.", "none", 6, 6).
			Decimals(0).
			WithTarget(instant("A", "{{instance}} {{result}}", perInstance(", result", "increase(cloudcarbon_otlp_pushes_total{"+targetFilter+"}[$__range])")))).
		WithPanel(statPanel("Last successful OTLP push", "When an OTLP push last succeeded, per exporter instance.", unitFromNow, 6, 6).
			WithTarget(instant("A", "{{instance}}", "("+perInstance("", "cloudcarbon_otlp_last_push_success_timestamp_seconds{"+targetFilter+"}")+" > 0) * 1000"))).
		WithPanel(statPanel("Configuration", "Whether the last configuration load or reload succeeded, per exporter instance.", "none", 6, 6).
			Mappings(okFailed()).ColorMode(common.BigValueColorModeBackground).Thresholds(thresholds(step(nil, "red"), step(cog.ToPtr(1.0), "green"))).
			WithTarget(instant("A", "{{instance}}", "min by (instance) (cloudcarbon_config_last_reload_successful{"+targetFilter+"})"))).
		WithPanel(tablePanel("Build", "Exporter version per instance.", "none", 24, 5).
			WithTarget(tabular("A", perInstance(", version, revision, branch, goversion, goos, goarch, tags", "cloudcarbon_build_info{"+targetFilter+"}"))).
			WithTransformation(organize([]string{"instance", "version", "revision", "branch", "goversion", "goos", "goarch", "tags"}, nil, "Value")))
}

// render builds a dashboard and encodes it as the committed JSON.
func render(b *dashboard.DashboardBuilder) ([]byte, error) {
	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	// Stable panel ids, in order.
	var id uint32
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func TestGenerated(t *testing.T) {
	for _, g := range generated {
		t.Run(g.file, func(t *testing.T) {
			want, err := render(g.build())
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(g.file, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(g.file)
			if err != nil {
				t.Fatalf("%v (go test ./dashboards -run TestGenerated -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s is stale: run go test ./dashboards -run TestGenerated -update", g.file)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Checks on the committed JSON, whether generated or not.

type target struct {
	dashboard, panel, refID, expr string
}

func (t target) String() string {
	return fmt.Sprintf("%s / %q / %s: %s", t.dashboard, t.panel, t.refID, t.expr)
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	Multi      bool   `json:"multi"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
}

type panel struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"`
}

type board struct {
	file       string
	raw        []byte
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

func (b board) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(b.Panels)
	return out
}

func (b board) targets() []target {
	var out []target
	for _, p := range b.panels() {
		for _, q := range p.Targets {
			out = append(out, target{b.file, p.Title, q.RefID, q.Expr})
		}
	}
	return out
}

func (b board) variable(name string) (variable, bool) {
	for _, v := range b.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

func loadBoards(t *testing.T) []board {
	t.Helper()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboards in dashboards/")
	}
	var out []board
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b := board{file: f, raw: raw}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, b)
	}
	return out
}

func TestStrictUnmarshalAndValidate(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, b := range loadBoards(t) {
		t.Run(b.file, func(t *testing.T) {
			var d dashboard.Dashboard
			if err := d.UnmarshalJSONStrict(b.raw); err != nil {
				t.Fatalf("strict unmarshal: %v", err)
			}
			if err := d.Validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			if d.Uid == nil || !strings.HasPrefix(*d.Uid, "cloudcarbon-") || d.Title == nil || *d.Title == "" {
				t.Errorf("uid %v, title %v: want a cloudcarbon- uid and a title", d.Uid, d.Title)
			}
			if d.Id != nil {
				t.Error("id is set: an imported dashboard must not carry a Grafana instance's id")
			}
		})
	}
}

// Every dashboard selects its Prometheus through a datasource variable, and
// has the filter variables its queries use.
func TestVariables(t *testing.T) {
	want := map[string][]string{
		"cloudcarbon-overview":        {"job", "instance", "provider", "account", "service", "location"},
		"cloudcarbon-exporter-health": {"job", "instance", "provider", "source", "account", "service", "location"},
	}
	for _, b := range loadBoards(t) {
		t.Run(b.file, func(t *testing.T) {
			ds, ok := b.variable("datasource")
			if !ok || ds.Type != "datasource" || ds.Query != "prometheus" {
				t.Errorf("datasource variable: %+v, want type datasource, query prometheus", ds)
			}
			names, ok := want[b.UID]
			if !ok {
				t.Fatalf("uid %q: add its variables to this test", b.UID)
			}
			for _, name := range names {
				v, ok := b.variable(name)
				if !ok {
					t.Errorf("no variable %s", name)
					continue
				}
				q, _ := v.Query.(string)
				all := ".*"
				if name == "job" || name == "instance" {
					all = ".+"
				}
				if v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != all ||
					!strings.HasPrefix(q, "label_values(") || !strings.HasSuffix(q, ", "+name+")") {
					t.Errorf("variable %s: %+v, want a multi-value query variable over label_values(…, %s) with All = %s", name, v, name, all)
				}
			}
			for _, p := range b.panels() {
				if uid, _ := p.Datasource["uid"].(string); uid != "${datasource}" {
					t.Errorf("panel %q: datasource %v, want uid ${datasource}", p.Title, p.Datasource)
				}
				for _, q := range p.Targets {
					if uid, _ := q.Datasource["uid"].(string); uid != "${datasource}" {
						t.Errorf("panel %q target %s: datasource %v, want uid ${datasource}", p.Title, q.RefID, q.Datasource)
					}
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				if p.Type != "table" && p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q has no unit", p.Title)
				}
			}
		})
	}
}

// family is a row of the README metric table.
type family struct {
	name, typ string
	labels    map[string]bool
}

// readmeFamilies reads the README metric table, which a test in the main
// package keeps equal to the real exposition.
func readmeFamilies(t *testing.T) map[string]family {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(cloudcarbon_[a-z0-9_]+)` \\| (gauge|counter|histogram|summary) \\|([^|]*)\\|([^|]*)\\|")
	out := map[string]family{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		f := family{name: m[1], typ: m[2], labels: map[string]bool{}}
		for _, l := range strings.Split(m[4], ",") {
			if l = strings.TrimSpace(l); l != "" {
				f.labels[l] = true
			}
		}
		out[f.name] = f
	}
	if len(out) == 0 {
		t.Fatal("no metric table in README.md")
	}
	return out
}

var metricName = regexp.MustCompile(`\b(?:cloudcarbon|go|process)_[a-z0-9_]+`)

// exprsOf lists every PromQL expression of a dashboard: panel targets and
// the selectors inside label_values() of its variables.
func exprsOf(b board) []target {
	out := b.targets()
	labelValues := regexp.MustCompile(`^label_values\((.*), *[a-zA-Z_][a-zA-Z0-9_]*\)$`)
	for _, v := range b.Templating.List {
		q, _ := v.Query.(string)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			out = append(out, target{b.file, "variable " + v.Name, "", m[1]})
		}
	}
	return out
}

func TestMetricsExist(t *testing.T) {
	families := readmeFamilies(t)
	for _, b := range loadBoards(t) {
		for _, q := range exprsOf(b) {
			names := metricName.FindAllString(q.expr, -1)
			if len(names) == 0 {
				t.Errorf("%s: names no metric", q)
			}
			for _, name := range names {
				if strings.HasPrefix(name, "cloudcarbon_") {
					if _, ok := families[name]; !ok {
						t.Errorf("%s: %s is not in the README metric table (not exposed)", q, name)
					}
				} else {
					t.Errorf("%s: %s: Go runtime and process metrics are not exposed by name in the README; add a check before using them", q, name)
				}
			}
		}
	}
}

// Every selector of a family applies each dashboard variable the family has
// as a label, so that the filters at the top act on every panel.
func TestSelectorsApplyVariables(t *testing.T) {
	families := readmeFamilies(t)
	selector := regexp.MustCompile(`(cloudcarbon_[a-z0-9_]+)(\{[^}]*\})?`)
	for _, b := range loadBoards(t) {
		var filters []string
		for _, v := range b.Templating.List {
			if v.Type == "query" {
				filters = append(filters, v.Name)
			}
		}
		for _, q := range b.targets() {
			for _, m := range selector.FindAllStringSubmatch(q.expr, -1) {
				f := families[m[1]]
				for _, name := range filters {
					// job and instance are target labels: every family has them.
					if (f.labels[name] || name == "job" || name == "instance") && !strings.Contains(m[2], name+`=~"$`+name+`"`) {
						t.Errorf("%s: selector %s%s lacks %s=~\"$%s\"", q, m[1], m[2], name, name)
					}
				}
			}
		}
	}
}

// substitute replaces Grafana variables the way the e2e test does: filters
// with .*, intervals with a duration, the dashboard's month with this one.
func substitute(expr string) string {
	expr = strings.ReplaceAll(expr, thisMonth, time.Now().UTC().Format("2006-01"))
	for _, iv := range []string{"__rate_interval", "__interval", "__range"} {
		expr = strings.ReplaceAll(expr, "${"+iv+"}", "1m")
		expr = strings.ReplaceAll(expr, "$"+iv, "1m")
	}
	return regexp.MustCompile(`\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?`).ReplaceAllString(expr, ".*")
}

func TestSubstitute(t *testing.T) {
	for in, want := range map[string]string{
		`sum(increase(x{provider=~"$provider",source=~"${source}"}[$__range]))`: `sum(increase(x{provider=~".*",source=~".*"}[1m]))`,
		`rate(x[$__rate_interval]) + rate(x[${__interval}])`:                    `rate(x[1m]) + rate(x[1m])`,
	} {
		if got := substitute(in); got != want {
			t.Errorf("substitute(%s) = %s, want %s", in, got, want)
		}
	}
}

// Every expression parses: promtool checks each as a recording rule.
func TestExpressionsParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatal("promtool not on PATH (on Debian: apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH")
	}
	dir := t.TempDir()
	for _, b := range loadBoards(t) {
		for i, q := range exprsOf(b) {
			name := fmt.Sprintf("%s/%d", strings.TrimSuffix(b.file, ".json"), i)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				rules := map[string]any{"groups": []any{map[string]any{
					"name":  "dashboard",
					"rules": []any{map[string]any{"record": "dashboard:expr", "expr": substitute(q.expr)}},
				}}}
				body, err := json.Marshal(rules) // JSON is YAML
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".yml")
				if err := os.WriteFile(file, body, 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
					t.Errorf("%s\npromtool: %v\n%s", q, err, out)
				}
			})
		}
	}
}

// The generated list and the files agree: no stray or missing dashboard.
func TestFilesAreGenerated(t *testing.T) {
	var want, got []string
	for _, g := range generated {
		want = append(want, g.file)
	}
	for _, b := range loadBoards(t) {
		got = append(got, b.file)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("dashboards/*.json = %v, generated = %v", got, want)
	}
}

// The provisioning examples in examples/ load: Grafana's two files have the
// shape Grafana expects, and Prometheus' configuration passes promtool,
// which also loads the rule files it names.
func TestExamples(t *testing.T) {
	read := func(path string, v any) {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("..", "examples", path))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil {
			t.Fatalf("examples/%s: %v", path, err)
		}
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name      string         `yaml:"name"`
			Type      string         `yaml:"type"`
			UID       string         `yaml:"uid"`
			Access    string         `yaml:"access"`
			URL       string         `yaml:"url"`
			IsDefault bool           `yaml:"isDefault"`
			Editable  bool           `yaml:"editable"`
			JSONData  map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	read("grafana/provisioning/datasources/prometheus.yml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL == "" || ds.Datasources[0].Access != "proxy" {
		t.Errorf("datasource provisioning: %+v, want apiVersion 1 and one prometheus data source with a URL, access proxy", ds)
	}

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name                  string `yaml:"name"`
			OrgID                 int    `yaml:"orgId"`
			Folder                string `yaml:"folder"`
			Type                  string `yaml:"type"`
			DisableDeletion       bool   `yaml:"disableDeletion"`
			AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	read("grafana/provisioning/dashboards/cloudcarbon.yml", &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options.Path == "" {
		t.Errorf("dashboard provisioning: %+v, want apiVersion 1 and one file provider with a path", dp)
	}

	var col struct {
		Receivers map[string]any `yaml:"receivers"`
		Exporters map[string]any `yaml:"exporters"`
		Service   struct {
			Pipelines map[string]struct {
				Receivers []string `yaml:"receivers"`
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	read("otelcol.yml", &col)
	if p := col.Service.Pipelines["metrics"]; len(p.Receivers) != 1 || p.Receivers[0] != "otlp" ||
		len(p.Exporters) != 1 || p.Exporters[0] != "prometheusremotewrite" ||
		col.Receivers["otlp"] == nil || col.Exporters["prometheusremotewrite"] == nil {
		t.Errorf("otelcol.yml: want a metrics pipeline from the otlp receiver to the prometheusremotewrite exporter, got %+v", col)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CLOUDCARBON_E2E") != "" {
			t.Fatal("promtool not on PATH (on Debian: apt-get install prometheus)")
		}
		t.Skip("promtool not on PATH")
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join("..", "examples", "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check config examples/prometheus.yml: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`\b[1-9][0-9]* rule files found`).Match(out) {
		t.Errorf("examples/prometheus.yml loads no rule file:\n%s", out)
	}
}

// aggregation is an aggregation operator that encloses a selector.
type aggregation struct {
	op     string
	labels []string // of by (…); nil without
}

// idempotent operators give the same result whether a series comes once
// or several times.
func (a aggregation) idempotent() bool { return a.op == "max" || a.op == "min" }

var aggregationOps = map[string]bool{
	"sum": true, "count": true, "avg": true, "max": true, "min": true, "group": true, "stddev": true,
	"stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true,
}

// enclosing lists the aggregations around position i of expr, innermost
// first. It reads the generated expressions, not any PromQL: calls are
// name(…), aggregations op(…) or op by (…) (…).
func enclosing(expr string, i int) []aggregation {
	var out []aggregation
	for {
		depth, open := 0, -1
		for j := i - 1; j >= 0; j-- {
			switch expr[j] {
			case ')':
				depth++
			case '(':
				if depth == 0 {
					open = j
				} else {
					depth--
				}
			}
			if open >= 0 {
				break
			}
		}
		if open < 0 {
			return out
		}
		pre := strings.TrimRight(expr[:open], " ")
		var labels []string
		if m := regexp.MustCompile(`\b(by|without) *\(([^()]*)\) *$`).FindStringSubmatchIndex(pre); m != nil {
			for _, l := range strings.Split(pre[m[4]:m[5]], ",") {
				labels = append(labels, strings.TrimSpace(l))
			}
			pre = strings.TrimRight(pre[:m[0]], " ")
		}
		name := regexp.MustCompile(`[a-z_]*$`).FindString(pre)
		if aggregationOps[name] {
			out = append(out, aggregation{op: name, labels: labels})
		}
		i = open
	}
}

// TestQueriesDeduplicate: every dashboard query and rule that sums,
// counts or ranks series of the exporter first keeps one copy of each by
// its labels (max or min by all of the family's labels but the target
// ones), so that two jobs, an HA pair, a reshard's overlap or an OTLP copy
// change no figure. Series shown one by one need no such step.
func TestQueriesDeduplicate(t *testing.T) {
	families := readmeFamilies(t)
	var exprs []target
	for _, b := range loadBoards(t) {
		exprs = append(exprs, b.targets()...)
	}
	raw, err := os.ReadFile(filepath.Join("rules", "cloudcarbon.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, target{"rules", r.Record + r.Alert, "", r.Expr})
		}
	}
	// A family name not preceded by ":" (recorded series are already
	// deduplicated).
	selector := regexp.MustCompile(`(?:^|[^:a-z_])(cloudcarbon_[a-z0-9_]+)`)
	checked := 0
	for _, q := range exprs {
		for _, m := range selector.FindAllStringSubmatchIndex(q.expr, -1) {
			name := q.expr[m[2]:m[3]]
			f, ok := families[name]
			if !ok {
				t.Errorf("%s: %s is not in the README metric table", q, name)
				continue
			}
			aggs := enclosing(q.expr, m[2])
			if len(aggs) == 0 {
				continue // one series per result row
			}
			checked++
			first := aggs[0]
			if !first.idempotent() {
				t.Errorf("%s: %s goes into %s before a max or min by its labels keeps one copy of each series", q, name, first.op)
				continue
			}
			if len(aggs) == 1 || strings.HasSuffix(name, "_info") {
				// A max or min alone counts nothing twice; an info
				// family only lends its labels to a join.
				continue
			}
			for l := range f.labels {
				if !slices.Contains(first.labels, l) {
					t.Errorf("%s: %s by (%s) lacks label %s of %s, merging distinct series before %s", q, first.op,
						strings.Join(first.labels, ", "), l, name, aggs[1].op)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d aggregated selectors checked: is the test reading the expressions?", checked)
	}
}

func TestEnclosing(t *testing.T) {
	expr := `sum by (provider) (max by (provider, source, reason) (increase(x{a="b"}[1m]))) / count(y)`
	got := enclosing(expr, strings.Index(expr, "x{"))
	want := []aggregation{{"max", []string{"provider", "source", "reason"}}, {"sum", []string{"provider"}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("enclosing x: %v, want %v", got, want)
	}
	if got := enclosing(expr, strings.Index(expr, "(y)")+1); fmt.Sprint(got) != fmt.Sprint([]aggregation{{"count", nil}}) {
		t.Errorf("enclosing y: %v", got)
	}
	if got := enclosing("topk(10, label_replace(z, \"a\", \"b\", \"\", \"\"))", 23); len(got) != 1 || got[0].op != "topk" {
		t.Errorf("enclosing z: %v", got)
	}
}
