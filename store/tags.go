package store

import (
	"maps"
	"slices"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// TagMonth is what a source's tag feed (provider.TagFeed) read for one
// allocation key and month: the weight of each of the key's values per
// cell, as the provider grouped it, before any folding, so that the top
// values are chosen over every month held.
type TagMonth struct {
	Rows      []provider.TagCost `json:"rows"`
	FetchedAt time.Time          `json:"fetched_at"`
}

// Allocations are the tag weights of a source by allocation key and
// month, for the latest published month and the months not published
// yet; Top is the values kept per key (allocate_top).
type Allocations struct {
	Keys map[string]map[provider.Month]*TagMonth `json:"keys"`
	Top  int                                     `json:"top"`
	// Attempt, Success and OK are the tag feed's freshness.
	Attempt time.Time `json:"attempt,omitzero"`
	Success time.Time `json:"success,omitzero"`
	OK      bool      `json:"ok,omitempty"`
}

// clone copies a deeply enough for an update: the maps are new, the
// months themselves immutable and shared.
func (a *Allocations) clone() *Allocations {
	if a == nil {
		return nil
	}
	c := *a
	c.Keys = make(map[string]map[provider.Month]*TagMonth, len(a.Keys))
	for k, ms := range a.Keys {
		c.Keys[k] = maps.Clone(ms)
	}
	return &c
}

// Rows returns the tag weights held for key over every month, oldest
// month first.
func (a *Allocations) Rows(key string) []provider.TagCost {
	if a == nil {
		return nil
	}
	var out []provider.TagCost
	for _, m := range slices.Sorted(maps.Keys(a.Keys[key])) {
		out = append(out, a.Keys[key][m].Rows...)
	}
	return out
}

// Month returns what was read for key and month m; nil if nothing was.
func (a *Allocations) Month(key string, m provider.Month) *TagMonth {
	if a == nil {
		return nil
	}
	return a.Keys[key][m]
}

// Store returns a (which may be nil) with the weights read at start for
// months, by key: keys that alloc no longer names go, and months before
// latest, the latest published month, which no allocation family shows.
func (a *Allocations) Store(read map[string][]provider.TagCost, months []provider.Month, latest provider.Month,
	alloc provider.Allocation, start time.Time) *Allocations {
	if a == nil {
		a = &Allocations{}
	}
	keys := make(map[string]map[provider.Month]*TagMonth, len(alloc.By))
	for _, key := range alloc.By {
		ms := maps.Clone(a.Keys[key])
		if ms == nil {
			ms = map[provider.Month]*TagMonth{}
		}
		if rows, ok := read[key]; ok {
			for _, m := range months {
				ms[m] = &TagMonth{FetchedAt: start}
			}
			for _, t := range rows {
				if tm := ms[t.Month]; tm != nil {
					tm.Rows = append(tm.Rows, t)
				}
			}
		}
		maps.DeleteFunc(ms, func(m provider.Month, _ *TagMonth) bool { return m < latest })
		keys[key] = ms
	}
	a.Keys, a.Top = keys, alloc.Top
	a.Attempt, a.Success, a.OK = start, start, true
	return a
}

// Attempted returns a (which may be nil) with a failed read at start.
func (a *Allocations) Attempted(start time.Time) *Allocations {
	if a == nil {
		a = &Allocations{}
	}
	a.Attempt, a.OK = start, false
	return a
}
