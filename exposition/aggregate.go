package exposition

import (
	"errors"
	"maps"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// entry is one data series, or before merging one record's contribution
// to it: its place in the registry's order, which says its labels (see
// keyLayout), and its value.
type entry struct {
	key   uint64
	value float64
}

// dataFamily is one data family's series in the order a registry would
// output them.
type dataFamily struct {
	def     *def
	scoped  bool
	history bool
	entries []entry
}

// aggregation is what one render works from: the data families and the
// small families that come with the data (denials, account names).
type aggregation struct {
	data   []dataFamily
	other  *collection
	labels *labelIndex
	// months are the (month, months_ago) pairs of the history families,
	// in the registry's order.
	months []monthAgo
	// layout of the keys of scoped and unscoped families.
	scoped, unscoped keyLayout
	// repaired counts label values that were not valid UTF-8.
	repaired int
	// err is set when the keys cannot hold the ranks (billions of label
	// sets): nothing is rendered rather than something wrong.
	err error
}

// monthAgo is a month of the history families and how many months before
// its provider's latest it is.
type monthAgo struct {
	month provider.Month
	ago   int
}

// keyLayout packs a series' ranks into one integer whose order is the
// registry's order of series: by label values in the order of the sorted
// label names (account, location, month, months_ago, provider, scope,
// service), compared as strings. From the high bits: the rank of
// (account, location), of (month, months_ago) in history families, and
// of (provider, scope, service), or (provider, service) in families
// without scope.
type keyLayout struct {
	monthShift, pairShift uint
	tailBits              uint
}

func newKeyLayout(pairs, months, tails int) (keyLayout, error) {
	l := keyLayout{tailBits: bitsFor(tails)}
	l.monthShift = l.tailBits
	l.pairShift = l.monthShift + bitsFor(months)
	if l.pairShift+bitsFor(pairs) > 64 {
		return l, errors.New("too many label sets to render")
	}
	return l, nil
}

// bitsFor returns the bits that hold the numbers below n.
func bitsFor(n int) uint { return uint(bits.Len(uint(max(n-1, 0)))) }

func (l keyLayout) key(pair, month, tail uint32) uint64 {
	return uint64(pair)<<l.pairShift | uint64(month)<<l.monthShift | uint64(tail)
}

func (l keyLayout) split(k uint64) (pair, month, tail uint32) {
	mask := func(n uint) uint64 { return 1<<n - 1 }
	return uint32(k >> l.pairShift), uint32(k >> l.monthShift & mask(l.pairShift-l.monthShift)), uint32(k & mask(l.tailBits))
}

// aggregate collects the data families of sources. Records sharing a label
// set are summed, so two sources reporting on disjoint accounts of one
// provider merge cleanly and energy or cost split over scopes folds into
// one series. Each record's contribution is one 16-byte entry whose key
// ranks its labels; the entries are sorted stably and equal keys summed in
// the order they came, which keeps a render's memory close to the number
// of series and the sums the same to the bit at every render.
func (ds *defs) aggregate(sources map[string]*store.SourceData, history int, lag func(provider string) int) *aggregation {
	// Sources are visited in name order so that sums over several sources
	// add up in the same order, and to the same bits, every time.
	names := slices.Sorted(maps.Keys(sources))
	visit := historyOf(sources, names, history)
	a := &aggregation{other: &collection{}, labels: newLabelIndex(tablesOf(visit))}
	counts := ds.index(a, visit)
	a.labels.rank()
	if err := a.layout(); err != nil {
		a.err = err
		return a
	}
	ds.collectData(a, visit, counts)
	scratch := make([]entry, slices.Max(append(counts, 0)))
	for i := range a.data {
		a.data[i].merge(scratch)
	}
	a.repaired = a.labels.repaired
	ds.collectOther(a.other, sources, names)
	var allocs allocated
	for _, name := range names {
		d := sources[name]
		estimates := ds.provisional.collectProvisional(a.other, d, lag(d.Provider))
		ds.allocation.collect(a.other, &allocs, d, estimates)
	}
	ds.allocation.emit(a.other, &allocs)
	a.repaired += a.other.repaired
	return a
}

// monthVisitor calls f with every month of the history window: sources in
// name order, months ascending, ago counted from the provider's latest
// published month.
type monthVisitor func(f func(m provider.Month, ago int, md *store.MonthData))

// historyOf returns the visitor of the months the data families show.
// They describe the latest month a provider has published, taken over all
// its sources, so that one lagging source does not mix two months in one
// series set. Months older than the history window, kept for reports,
// are never visited.
func historyOf(sources map[string]*store.SourceData, names []string, history int) monthVisitor {
	latestOf := latestMonths(sources)
	return func(f func(m provider.Month, ago int, md *store.MonthData)) {
		for _, name := range names {
			d := sources[name]
			if _, ok := d.LatestMonth(); !ok {
				continue
			}
			latest := latestOf[d.Provider]
			for _, m := range slices.Sorted(maps.Keys(d.Months)) {
				if ago := int(latest - m); ago >= 0 && ago < history {
					f(m, ago, d.Months[m])
				}
			}
		}
	}
}

// latestMonths returns the latest month each provider has published,
// taken over all its sources: the month its data families describe.
func latestMonths(sources map[string]*store.SourceData) map[string]provider.Month {
	latestOf := map[string]provider.Month{}
	for _, d := range sources {
		if m, ok := d.LatestMonth(); ok && m > latestOf[d.Provider] {
			latestOf[d.Provider] = m
		}
	}
	return latestOf
}

// tablesOf returns the label tables of the months visit visits.
func tablesOf(visit monthVisitor) []*store.LabelTable {
	seen := map[*store.LabelTable]bool{}
	var out []*store.LabelTable
	visit(func(_ provider.Month, _ int, md *store.MonthData) {
		if t := md.Labels(); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	})
	return out
}

// index numbers the label sets and the months the data families show,
// and counts each family's contributions so that collectData allocates
// each family once: current and history of each quantity, in ds.data's
// order.
func (ds *defs) index(a *aggregation, visit monthVisitor) []int {
	counts := make([]int, 2*len(ds.data))
	seen := map[monthAgo]bool{}
	visit(func(m provider.Month, ago int, md *store.MonthData) {
		if !seen[monthAgo{m, ago}] {
			seen[monthAgo{m, ago}] = true
			a.months = append(a.months, monthAgo{m, ago})
		}
		a.labels.number(md)
		for _, k := range md.Known() {
			for fi, f := range ds.data {
				if k&f.quantity != 0 {
					counts[2*fi+1]++
					if ago == 0 {
						counts[2*fi]++
					}
				}
			}
		}
	})
	slices.SortFunc(a.months, func(x, y monthAgo) int {
		if c := compareStrings(x.month.String(), y.month.String()); c != 0 {
			return c
		}
		return compareStrings(strconv.Itoa(x.ago), strconv.Itoa(y.ago))
	})
	return counts
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// layout sets the key layouts once the ranks are known.
func (a *aggregation) layout() error {
	x := a.labels
	var err1, err2 error
	a.scoped, err1 = newKeyLayout(len(x.pairs), len(a.months), len(x.scopedTails))
	a.unscoped, err2 = newKeyLayout(len(x.pairs), len(a.months), len(x.tails))
	return errors.Join(err1, err2)
}

// collectData appends every record's contribution to the current and
// history family of each quantity it carries.
func (ds *defs) collectData(a *aggregation, visit monthVisitor, counts []int) {
	a.data = make([]dataFamily, 0, 2*len(ds.data))
	for fi, f := range ds.data {
		a.data = append(a.data,
			dataFamily{def: f.current, scoped: f.scoped, entries: make([]entry, 0, counts[2*fi])},
			dataFamily{def: f.history, scoped: f.scoped, history: true, entries: make([]entry, 0, counts[2*fi+1])})
	}
	monthRank := make(map[monthAgo]uint32, len(a.months))
	for i, ma := range a.months {
		monthRank[ma] = uint32(i)
	}
	x := a.labels
	visit(func(m provider.Month, ago int, md *store.MonthData) {
		month := monthRank[monthAgo{m, ago}]
		global := x.tables[md.Labels()]
		ids, known := md.LabelIDs(), md.Known()
		for fi, f := range ds.data {
			col := md.Column(f.quantity)
			if col == nil {
				continue
			}
			layout, tails := a.unscoped, x.tail
			if f.scoped {
				layout, tails = a.scoped, x.scopedTail
			}
			cur, hist := &a.data[2*fi], &a.data[2*fi+1]
			for i, id := range ids {
				if known[i]&f.quantity == 0 {
					continue
				}
				g := global[id] - 1
				pair, tail := x.pair[g], tails[g]
				if ago == 0 {
					cur.entries = append(cur.entries, entry{key: layout.key(pair, 0, tail), value: col[i]})
				}
				hist.entries = append(hist.entries, entry{key: layout.key(pair, month, tail), value: col[i]})
			}
		}
	})
}

// merge sorts the family's contributions in the registry's order, stably,
// and sums those with equal keys in the order they came. scratch is at
// least as long as the entries.
func (f *dataFamily) merge(scratch []entry) {
	radixSort(f.entries, scratch[:len(f.entries)])
	out := f.entries[:0]
	for _, e := range f.entries {
		if n := len(out); n > 0 && out[n-1].key == e.key {
			out[n-1].value += e.value
			continue
		}
		out = append(out, e)
	}
	f.entries = out
}

// radixSort sorts entries by key, stably: a least-significant-digit radix
// sort over the bits the keys use, 11 at a time, through scratch, which is
// as long as es.
func radixSort(es, scratch []entry) {
	var top uint64
	for _, e := range es {
		top |= e.key
	}
	if len(es) < 2 || top == 0 {
		return
	}
	const digit = 11
	src, dst := es, scratch
	for shift := uint(0); shift < uint(bits.Len64(top)); shift += digit {
		var count [1 << digit]int
		for _, e := range src {
			count[e.key>>shift&(1<<digit-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, e := range src {
			d := e.key >> shift & (1<<digit - 1)
			dst[count[d]] = e
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &es[0] {
		copy(es, src)
	}
}

// values returns an entry's label values in the def's order.
func (a *aggregation) values(f *dataFamily, e *entry) []string {
	layout := a.unscoped
	if f.scoped {
		layout = a.scoped
	}
	pair, month, tail := layout.split(e.key)
	x := a.labels
	p := x.pairs[pair]
	var v []string
	if f.scoped {
		t := x.scopedTails[tail]
		v = []string{t[0], p[0], t[2], p[1], t[1]}
	} else {
		t := x.tails[tail]
		v = []string{t[0], p[0], t[1], p[1]}
	}
	if f.history {
		ma := a.months[month]
		v = append(v, ma.month.String(), strconv.Itoa(ma.ago))
	}
	return v
}

// provider returns the provider label of an entry.
func (a *aggregation) provider(f *dataFamily, e *entry) string {
	if f.scoped {
		_, _, tail := a.scoped.split(e.key)
		return a.labels.scopedTails[tail][0]
	}
	_, _, tail := a.unscoped.split(e.key)
	return a.labels.tails[tail][0]
}

// month returns the month of an entry of a history family.
func (a *aggregation) month(f *dataFamily, e *entry) provider.Month {
	layout := a.unscoped
	if f.scoped {
		layout = a.scoped
	}
	_, month, _ := layout.split(e.key)
	return a.months[month].month
}
