package exposition

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// labelIndex numbers the label sets of one render's records, whichever
// source and label table they come from, and ranks the parts of them that
// series sort by: a record then costs two array reads to place.
type labelIndex struct {
	// tables maps each label table's numbers to the render's, plus one
	// (0: not seen yet).
	tables map[*store.LabelTable][]uint32
	index  map[store.Labels]uint32
	// sets are the render's label sets, repaired (see add).
	sets     []store.Labels
	repaired int

	// pair, scopedTail and tail are, per set, the rank of its (account,
	// location), of its (provider, scope, service) and of its (provider,
	// service); pairs, scopedTails and tails are the values of each rank.
	pair, scopedTail, tail []uint32
	pairs, tails           [][2]string
	scopedTails            [][3]string
}

// newLabelIndex returns an index for the sets of tables, sized for all.
func newLabelIndex(tables []*store.LabelTable) *labelIndex {
	x := &labelIndex{tables: make(map[*store.LabelTable][]uint32, len(tables))}
	n := 0
	for _, t := range tables {
		x.tables[t] = make([]uint32, t.Len())
		n += t.Len()
	}
	x.index = make(map[store.Labels]uint32, n)
	x.sets = make([]store.Labels, 0, n)
	return x
}

// number numbers the label sets of md's records.
func (x *labelIndex) number(md *store.MonthData) {
	t := md.Labels()
	global := x.tables[t]
	if n := t.Len(); len(global) < n {
		global = append(global, make([]uint32, n-len(global))...)
		x.tables[t] = global
	}
	var sets []store.Labels
	for _, id := range md.LabelIDs() {
		if global[id] != 0 {
			continue
		}
		if sets == nil {
			sets = t.Sets()
		}
		global[id] = x.add(sets[id]) + 1
	}
}

// add returns the render's number of l. A label value that is not valid
// UTF-8, which a registry would refuse with the whole series, is repaired
// instead: the series stays visible with U+FFFD where the bad bytes were,
// and merges with one that has that value.
func (x *labelIndex) add(l store.Labels) uint32 {
	if !utf8.ValidString(l.Provider) || !utf8.ValidString(l.Account) || !utf8.ValidString(l.Service) ||
		!utf8.ValidString(l.Location) || !utf8.ValidString(string(l.Scope)) {
		l = x.repair(l)
	}
	if n, ok := x.index[l]; ok {
		return n
	}
	n := uint32(len(x.sets))
	x.index[l] = n
	x.sets = append(x.sets, l)
	return n
}

// repair returns l with U+FFFD for the bytes of its values that are not
// valid UTF-8.
func (x *labelIndex) repair(l store.Labels) store.Labels {
	for _, s := range []*string{&l.Provider, &l.Account, &l.Service, &l.Location, (*string)(&l.Scope)} {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
			x.repaired++
		}
	}
	return l
}

// rank ranks the parts of the label sets numbered.
func (x *labelIndex) rank() {
	x.pair, x.pairs = rankBy(x.sets, func(l *store.Labels) [2]string { return [2]string{l.Account, l.Location} })
	x.scopedTail, x.scopedTails = rankBy(x.sets, func(l *store.Labels) [3]string { return [3]string{l.Provider, string(l.Scope), l.Service} })
	x.tail, x.tails = rankBy(x.sets, func(l *store.Labels) [2]string { return [2]string{l.Provider, l.Service} })
}

// rankBy returns, for each set, the rank of key(set) among the distinct
// keys, compared element by element as strings, and the keys by rank.
func rankBy[K [2]string | [3]string](sets []store.Labels, key func(*store.Labels) K) ([]uint32, []K) {
	ranks := make(map[K]uint32, len(sets))
	var keys []K
	for i := range sets {
		k := key(&sets[i])
		if _, ok := ranks[k]; !ok {
			ranks[k] = 0
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b K) int {
		for i := range len(a) {
			if c := cmp.Compare(a[i], b[i]); c != 0 {
				return c
			}
		}
		return 0
	})
	for r, k := range keys {
		ranks[k] = uint32(r)
	}
	out := make([]uint32, len(sets))
	for i := range sets {
		out[i] = ranks[key(&sets[i])]
	}
	return out, keys
}
