package exposition

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// segmentLines is how many series of a data family go into one gzip
// member: members are compressed in parallel at a render, and
// decompressed ahead of the writer at a plain scrape, each holding its
// text (a megabyte or two) meanwhile; what compression loses at the start
// of each member is a fraction of a percent.
const segmentLines = 8 << 10

// renderBlocks renders every family of a to gzip members, in name order.
func renderBlocks(a *aggregation) ([]block, error) {
	if a.err != nil {
		return nil, a.err
	}
	fr := newFragments(a)
	// One writer per goroutine that may run at once, for all families.
	writers := make([]*segmentWriter, runtime.GOMAXPROCS(0))
	for i := range writers {
		writers[i] = newSegmentWriter()
	}
	var out []block
	for i := range a.data {
		if f := &a.data[i]; len(f.entries) > 0 {
			b, err := renderData(f, fr, writers)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	for _, s := range a.other.sorted() {
		gz, err := writers[0].member(appendSeries(nil, s))
		if err != nil {
			return nil, err
		}
		out = append(out, block{name: s.def.name, members: [][]byte{gz}})
	}
	slices.SortFunc(out, func(x, y block) int { return strings.Compare(x.name, y.name) })
	return out, nil
}

// renderData renders a data family a segment at a time, on as many
// goroutines as there are writers: compression is most of a render's
// work.
func renderData(f *dataFamily, fr *fragments, writers []*segmentWriter) (block, error) {
	n := (len(f.entries) + segmentLines - 1) / segmentLines
	b := block{name: f.def.name, members: make([][]byte, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for _, w := range writers[:min(len(writers), n)] {
		wg.Go(func() {
			for seg := int(next.Add(1) - 1); seg < n; seg = int(next.Add(1) - 1) {
				b.members[seg], errs[seg] = w.segment(f, fr, seg)
			}
		})
	}
	wg.Wait()
	return b, errors.Join(errs...)
}

// segmentWriter renders segments of data families; one per goroutine.
type segmentWriter struct {
	text []byte
	out  bytes.Buffer
	zw   *gzip.Writer
}

func newSegmentWriter() *segmentWriter {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
	return &segmentWriter{text: make([]byte, 0, 64<<10), zw: zw}
}

// member returns text as one gzip member.
func (w *segmentWriter) member(text []byte) ([]byte, error) {
	w.out.Reset()
	w.zw.Reset(&w.out)
	if _, err := w.zw.Write(text); err != nil {
		return nil, err
	}
	if err := w.zw.Close(); err != nil {
		return nil, err
	}
	return bytes.Clone(w.out.Bytes()), nil
}

// segment returns segment seg of family f as one gzip member, the family's
// header first in the first segment.
func (w *segmentWriter) segment(f *dataFamily, fr *fragments, seg int) ([]byte, error) {
	w.out.Reset()
	w.zw.Reset(&w.out)
	text := w.text[:0]
	if seg == 0 {
		text = appendHeader(text, f.def)
	}
	entries := f.entries[seg*segmentLines : min((seg+1)*segmentLines, len(f.entries))]
	for i := range entries {
		text = fr.appendLine(text, f, &entries[i])
		if len(text) >= cap(w.text)-1024 {
			if _, err := w.zw.Write(text); err != nil {
				return nil, err
			}
			text = text[:0]
		}
	}
	if _, err := w.zw.Write(text); err != nil {
		return nil, err
	}
	if err := w.zw.Close(); err != nil {
		return nil, err
	}
	w.text = text[:0]
	return bytes.Clone(w.out.Bytes()), nil
}

// fragments hold the escaped label text of a render's ranks, so that a
// series line is a few copies and a number:
//
//	name + pair + [month +] tail + value
//
// pair is `{account="…",location="…"`, month `,month="…",months_ago="…"`
// and tail `,provider="…",scope="…",service="…"} ` (scope only in scoped
// families): the labels in name order, as the text format wants them.
type fragments struct {
	a                             *aggregation
	pairs, months, tails, scopedT arena
}

// arena holds byte strings end to end.
type arena struct {
	buf []byte
	end []int
}

func (r *arena) add(f func(b []byte) []byte) {
	r.buf = f(r.buf)
	r.end = append(r.end, len(r.buf))
}

func (r *arena) at(i uint32) []byte {
	start := 0
	if i > 0 {
		start = r.end[i-1]
	}
	return r.buf[start:r.end[i]]
}

func newFragments(a *aggregation) *fragments {
	fr := &fragments{a: a}
	x := a.labels
	for _, p := range x.pairs {
		fr.pairs.add(func(b []byte) []byte {
			return appendLabel(appendLabel(b, true, "account", p[0]), false, "location", p[1])
		})
	}
	for _, ma := range a.months {
		fr.months.add(func(b []byte) []byte {
			b = appendLabel(b, false, "month", ma.month.String())
			return appendLabel(b, false, "months_ago", strconv.Itoa(ma.ago))
		})
	}
	for _, t := range x.tails {
		fr.tails.add(func(b []byte) []byte {
			return append(appendLabel(appendLabel(b, false, "provider", t[0]), false, "service", t[1]), "} "...)
		})
	}
	for _, t := range x.scopedTails {
		fr.scopedT.add(func(b []byte) []byte {
			b = appendLabel(appendLabel(b, false, "provider", t[0]), false, "scope", t[1])
			return append(appendLabel(b, false, "service", t[2]), "} "...)
		})
	}
	return fr
}

// appendLine appends the series line of entry e of family f.
func (fr *fragments) appendLine(b []byte, f *dataFamily, e *entry) []byte {
	layout, tails := fr.a.unscoped, &fr.tails
	if f.scoped {
		layout, tails = fr.a.scoped, &fr.scopedT
	}
	pair, month, tail := layout.split(e.key)
	b = append(b, f.def.name...)
	b = append(b, fr.pairs.at(pair)...)
	if f.history {
		b = append(b, fr.months.at(month)...)
	}
	b = append(b, tails.at(tail)...)
	b = appendFloat(b, e.value)
	return append(b, '\n')
}
