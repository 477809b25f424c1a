package report

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// methodology returns what each provider of the sources declares.
func (b *builder) methodology() []Methodology {
	var provs []string
	for _, d := range b.in.Sources {
		provs = addOnce(provs, d.Provider)
	}
	slices.Sort(provs)
	out := make([]Methodology, 0, len(provs))
	for _, prov := range provs {
		m := b.in.Methodology[prov]
		md := Methodology{Provider: prov, Source: m.Source, Includes: m.Includes, Unit: m.Unit, URL: m.URL,
			ModelVersion: m.ModelVersion, Water: m.Water, Caveats: []Caveat{}}
		for _, c := range m.Caveats {
			md.Caveats = append(md.Caveats, Caveat{Flag: c.Flag, Text: c.Text})
		}
		out = append(out, md)
	}
	return out
}

// inRange reports whether month m is in the report's periods.
func (b *builder) inRange(m provider.Month) bool {
	p := b.cal.index(m)
	return p >= b.from && p <= b.to
}

// restatements returns the ledger entries of the report's months known at
// its time, each with the figures it superseded and those that replaced
// them.
func (b *builder) restatements() []Restatement {
	out := []Restatement{}
	for _, name := range b.names {
		d := b.in.Sources[name]
		if d.Ledger == nil {
			continue
		}
		entries := d.Ledger.Entries
		for i, e := range entries {
			if e.At.After(b.at) || !b.inRange(e.Month) {
				continue
			}
			var replacement []provider.Record
			if j := slices.IndexFunc(entries[i+1:], func(n store.Restatement) bool { return n.Month == e.Month }); j >= 0 {
				replacement = entries[i+1+j].Superseded
			} else if md := d.Months[e.Month]; md != nil {
				replacement = md.Records()
			}
			out = append(out, Restatement{
				Source: name, Provider: d.Provider, Month: e.Month.String(), Period: b.cal.name(b.cal.index(e.Month)),
				RestatedAt: e.At.UTC(), Cause: e.Cause, OldRevision: e.OldRevision, NewRevision: e.NewRevision,
				Superseded: b.monthValues(e.Superseded, d.Provider), Replacement: b.monthValues(replacement, d.Provider),
			})
		}
	}
	slices.SortStableFunc(out, func(x, y Restatement) int {
		return cmp.Or(strings.Compare(x.Month, y.Month), strings.Compare(x.Source, y.Source), x.RestatedAt.Compare(y.RestatedAt))
	})
	return out
}

// monthValues returns the figures of a month's records, as the provider
// reports them (no fallback).
func (b *builder) monthValues(records []provider.Record, prov string) map[string]*float64 {
	s := newSum(len(b.cols))
	for i := range records {
		s.add(b.cols, &records[i], b.water(prov))
	}
	out := make(map[string]*float64, len(b.cols))
	for i, c := range b.cols {
		out[c.Key] = nil
		if v, _, ok := s.value(b.cols, i, false); ok {
			out[c.Key] = rounded(v/c.scale, c.dec)
		}
	}
	return out
}

// sourceMeta describes each source's data at the report's time.
func (b *builder) sourceMeta(restatements []Restatement) []SourceMeta {
	out := make([]SourceMeta, 0, len(b.names))
	for _, name := range b.names {
		d := b.in.Sources[name]
		s := SourceMeta{Name: name, Provider: d.Provider, LastRefreshOK: d.LastOK, EmptyMonths: []string{}, DeniedAccounts: len(d.Denied)}
		if !d.LastSuccess.IsZero() {
			s.DataAsOf = d.LastSuccess.UTC()
			if !b.o.AsOf.IsZero() && b.o.AsOf.Before(d.LastSuccess) {
				s.DataAsOf = b.o.AsOf.UTC()
			}
		}
		for _, m := range slices.Sorted(maps.Keys(b.views[name])) {
			v := b.views[name][m]
			if d.Published(v.md) {
				s.FirstMonth = cmp.Or(s.FirstMonth, m.String())
				s.LatestMonth = m.String()
			}
			if v.md.Len() == 0 && !v.md.FetchedAt.IsZero() && b.inRange(m) && m.End().Before(b.at) {
				s.EmptyMonths = append(s.EmptyMonths, m.String())
			}
		}
		for _, r := range restatements {
			if r.Source == name {
				s.Restatements++
			}
		}
		out = append(out, s)
	}
	return out
}

// modelVersions returns the model versions of the report's months, by
// provider of the sources.
func (b *builder) modelVersions() map[string][]string {
	out := map[string][]string{}
	for _, name := range b.names {
		prov := b.in.Sources[name].Provider
		if out[prov] == nil {
			out[prov] = []string{}
		}
		for m, v := range b.views[name] {
			if v.md.Revision != "" && b.inRange(m) {
				out[prov] = union(out[prov], []string{v.md.Revision})
			}
		}
	}
	return out
}

// dataTime formats a time of the metadata and notes.
func dataTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
