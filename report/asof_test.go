package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// figuresOf is what a report says of its periods, without the flag and
// the note that say that figures were superseded since: what two reports
// of the same data at the same time must agree on byte for byte.
func figuresOf(t *testing.T, r *Report) string {
	t.Helper()
	strip := func(f *Figures) {
		f.Flags = slices.DeleteFunc(slices.Clone(f.Flags), func(s string) bool { return s == FlagSuperseded })
	}
	rows, totals := slices.Clone(r.Rows), slices.Clone(r.Totals)
	for i := range rows {
		strip(&rows[i].Figures)
	}
	for i := range totals {
		strip(&totals[i].Figures)
	}
	notes := slices.DeleteFunc(slices.Clone(r.Notes), func(n string) bool { return strings.HasPrefix(n, "Figures as the exporter held them") })
	b, err := json.MarshalIndent(struct {
		Rows   []Row
		Totals []Total
		Notes  []string
	}{rows, totals, notes}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestatementsAndAsOf: after a provider restates months (a new model
// version, and figures changed under none) and publishes a new one, the
// report lists the restatements with the figures before and after, flags
// the rows, and a report as of a time before reproduces the report made
// then exactly; one as of a time in between has the first restatement
// and not the second.
func TestRestatementsAndAsOf(t *testing.T) {
	t0 := now
	t1, t2, t3 := t0.Add(5*24*time.Hour), t0.Add(12*24*time.Hour), t0.Add(21*24*time.Hour)
	march, may := provider.NewMonth(2024, time.March), provider.NewMonth(2024, time.May)
	jan := provider.NewMonth(2025, time.January)
	options := []Options{
		{Period: PeriodYear},
		{Period: PeriodMonth, By: []string{DimScope}, Unit: UnitGrams, MarketBasedFallback: true},
		{Period: PeriodQuarter, By: []string{DimProvider}, Unit: UnitKilograms},
	}

	in := dataset()
	before := make([]string, len(options))
	for i, o := range options {
		o.Now = t0
		before[i] = figuresOf(t, build(t, in, o))
	}
	restate(in.Sources["gcp-main"], march, "14", 1.5, t1)
	in.Sources["gcp-main"].Replace(jan, fetchedMonth(gcpRecords(jan), t1, "14"), t1)
	restate(in.Sources["azure-prod"], may, "", 0.9, t2)
	between := figuresOf(t, build(t, in, Options{Period: PeriodYear, Now: t1}))

	after := build(t, in, Options{Period: PeriodYear, Now: t3})
	if len(after.Restatements) != 2 {
		t.Fatalf("restatements %+v", after.Restatements)
	}
	gcp, azure := after.Restatements[0], after.Restatements[1]
	if gcp.Month != "2024-03" || gcp.Source != "gcp-main" || gcp.Cause != store.CauseModelVersion || gcp.OldRevision != "12" ||
		gcp.NewRevision != "14" || !gcp.RestatedAt.Equal(t1) || gcp.Period != "2024" {
		t.Errorf("GCP restatement %+v", gcp)
	}
	if azure.Month != "2024-05" || azure.Cause != store.CauseFigures || azure.OldRevision != "" || azure.Superseded[KeyMarketBased] != nil {
		t.Errorf("Azure restatement %+v", azure)
	}
	for _, s := range after.Restatements {
		old, new := *s.Superseded[KeyLocationBased], *s.Replacement[KeyLocationBased]
		if want := map[string]float64{"gcp-main": 1.5, "azure-prod": 0.9}[s.Source]; new/old < want-1e-3 || new/old > want+1e-3 {
			t.Errorf("%s %s: %v → %v", s.Source, s.Month, old, new)
		}
	}
	if r := rowsBy(build(t, in, Options{Period: PeriodYear, By: []string{DimProvider}, Now: t3})); !slices.Contains(r[[2]string{"2024", "gcp"}].Flags, FlagRestated) ||
		slices.Contains(r[[2]string{"2023", "gcp"}].Flags, FlagRestated) {
		t.Errorf("restated flags: 2024 %v, 2023 %v", r[[2]string{"2024", "gcp"}].Flags, r[[2]string{"2023", "gcp"}].Flags)
	}
	for format, want := range map[string]string{
		FormatCSV:      "restatement,2024-03,gcp,,",
		FormatMarkdown: "| 2024-03 | gcp | gcp-main | " + t1.Format(time.RFC3339) + " | 12 → 14 |",
		FormatJSON:     `"restated_at": "` + t1.Format(time.RFC3339) + `"`,
	} {
		after.Options.Format = format
		if b := render(t, after); !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", format, want, b)
		}
	}

	for i, o := range options {
		o.Now, o.AsOf = t3, t0
		r := build(t, in, o)
		if got := figuresOf(t, r); got != before[i] {
			t.Errorf("%+v: as of %v differs from the report made then:\n%s\nwant:\n%s", o, t0, got, before[i])
		}
		if len(r.Restatements) != 0 || !r.Metadata.AsOf.Equal(t0) || !strings.HasPrefix(r.Notes[len(r.Notes)-1], "Figures as the exporter held them at") {
			t.Errorf("%+v: as of %v: restatements %+v, metadata %+v, notes %q", o, t0, r.Restatements, r.Metadata, r.Notes)
		}
	}
	r := build(t, in, Options{Period: PeriodYear, Now: t3, AsOf: t1})
	if got := figuresOf(t, r); got != between {
		t.Errorf("as of %v differs from the report made then:\n%s\nwant:\n%s", t1, got, between)
	}
	if len(r.Restatements) != 1 || r.Restatements[0].Source != "gcp-main" {
		t.Errorf("as of %v: restatements %+v", t1, r.Restatements)
	}
}

// TestAsOfNeedsProviderAndScope: superseded figures are kept per provider
// and scope, so a report that needs them split finer says so.
func TestAsOfNeedsProviderAndScope(t *testing.T) {
	in := dataset()
	at := now.Add(24 * time.Hour)
	restate(in.Sources["gcp-main"], provider.NewMonth(2024, time.March), "14", 1.5, at)
	_, err := Build(in, Options{By: []string{DimProvider, DimAccount}, Now: at, AsOf: now})
	if err == nil || !strings.Contains(err.Error(), "as_of: 2024-03 of source gcp-main was restated after 2025-01-20T12:00:00Z") {
		t.Errorf("by account as of before a restatement: %v", err)
	}
	// Periods without restated months need nothing from the ledger.
	if _, err := Build(in, Options{By: []string{DimAccount}, From: "2023", To: "2023", Now: at, AsOf: now}); err != nil {
		t.Errorf("by account as of, without restated months: %v", err)
	}
}
