package store

import (
	"maps"
	"slices"
)

// CompactLabels moves d's months onto a new label table that holds only
// the label sets they use, when they use fewer than half of the sets of
// d's table, or when some month is encoded against another table (a
// month built on its own, or loaded from a JSON state file): a table
// only grows, and the sets of accounts, services and locations gone from
// every month would otherwise stay for the source's life. Months are
// immutable, so a moved month is a new MonthData that shares its value
// columns with the old one. Call it on a SourceData being updated.
func (d *SourceData) CompactLabels() {
	if !d.needsCompacting() {
		return
	}
	t := NewLabelTable()
	// remap holds, per table, each old number plus one (0: not seen).
	remap := map[*LabelTable][]uint32{}
	for _, m := range slices.Sorted(maps.Keys(d.Months)) {
		md := d.Months[m]
		c := *md
		c.labels, c.ids = t, make([]uint32, len(md.ids))
		r := remap[md.labels]
		if r == nil && md.labels != nil {
			r = make([]uint32, md.labels.Len())
			remap[md.labels] = r
		}
		sets := md.labels.Sets()
		for i, id := range md.ids {
			if r[id] == 0 {
				r[id] = t.Intern(&sets[id]) + 1
			}
			c.ids[i] = r[id] - 1
		}
		d.Months[m] = &c
	}
	d.labels = t
}

// needsCompacting reports whether a month of d uses another table than
// d's, or d's months use fewer than half of its table's sets.
func (d *SourceData) needsCompacting() bool {
	if d.labels == nil {
		return true
	}
	used := make([]bool, d.labels.Len())
	n := 0
	for _, md := range d.Months {
		if md.Len() == 0 {
			continue
		}
		if md.labels != d.labels {
			return true
		}
		for _, id := range md.ids {
			if !used[id] {
				used[id] = true
				n++
			}
		}
	}
	return n*2 < len(used)
}
