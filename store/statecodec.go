package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Version 3 of the state file is a JSON header line, the payload
// compressed with gzip, and the SHA-256 of everything before it:
//
//	{"format":"cloudcarbon_exporter/state","version":3,"encoding":"gzip"}\n
//	gzip(payload)
//	sha256 (32 bytes)
//
// The payload is binary: unsigned and signed varints (encoding/binary),
// "bytes" being a length and that many bytes, floats as their IEEE 754
// bits in 8 bytes, little-endian:
//
//	sources                      uvarint, then per source in name order:
//	  fields                     bytes: the source's JSON as in version 2, months left out
//	  strings                    uvarint, then each as bytes
//	  label sets                 uvarint, then per set 5 uvarints: the strings of
//	                             provider, account, service, location, scope
//	  months                     uvarint, then per month in month order:
//	    month                    varint (provider.Month)
//	    fields                   bytes: JSON of fetched_at, revision, first_seen
//	    records                  uvarint n
//	    label set of each        n varints, each the difference from the one before
//	    quantities of each       n bytes (provider.Quantity)
//	    columns                  1 byte, bit q set when column q follows
//	    values                   per column in bit order, n floats
//
// Columns rather than records, and label sets numbered once per source,
// keep the payload near the size of the figures themselves; gzip takes
// what repeats (label set numbers, quantities, exponents).
const stateEncoding = "gzip"

// Bounds of what a payload may declare, so that a damaged file that
// passes the checksum (crafted, or written by a broken build) fails
// cleanly rather than allocating without limit; slices also grow only as
// their elements are read.
const (
	maxStateCount  = 1 << 28
	maxStateString = 1 << 20
)

// monthFields are the fields of a month besides its records.
type monthFields struct {
	FetchedAt time.Time `json:"fetched_at"`
	Revision  string    `json:"revision,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// sourceFields is a source's JSON without the months, which version 3
// holds in binary: the outer Months hides the embedded one.
type sourceFields struct {
	*SourceData
	Months *struct{} `json:"months,omitempty"`
}

// writeState writes data as a version 3 state file to w, streaming.
func writeState(w io.Writer, data map[string]*SourceData) error {
	sum := sha256.New()
	out := bufio.NewWriterSize(io.MultiWriter(w, sum), 64<<10)
	head, err := json.Marshal(stateHeader{Format: stateFormat, Version: stateVersion, Encoding: stateEncoding})
	if err != nil {
		return err
	}
	out.Write(head)
	out.WriteByte('\n')
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		return err
	}
	e := &encoder{w: bufio.NewWriterSize(zw, 64<<10)}
	e.payload(data)
	for _, step := range []func() error{e.w.Flush, zw.Close, out.Flush} {
		if e.err == nil {
			e.err = step()
		}
	}
	if e.err != nil {
		return e.err
	}
	_, err = w.Write(sum.Sum(nil))
	return err
}

// encoder writes a payload; the first error sticks.
type encoder struct {
	w       *bufio.Writer
	scratch []byte
	err     error
}

func (e *encoder) write(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) uvarint(v uint64) { e.write(binary.AppendUvarint(e.scratch[:0], v)) }
func (e *encoder) varint(v int64)   { e.write(binary.AppendVarint(e.scratch[:0], v)) }

func (e *encoder) bytes(b []byte) {
	e.uvarint(uint64(len(b)))
	e.write(b)
}

func (e *encoder) json(v any) {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = err
	}
	e.bytes(b)
}

func (e *encoder) payload(data map[string]*SourceData) {
	e.scratch = make([]byte, 0, 4096)
	names := slices.Sorted(maps.Keys(data))
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		e.source(data[name])
	}
}

func (e *encoder) source(d *SourceData) {
	e.json(sourceFields{SourceData: d})
	sets, ids := sourceLabels(d)
	e.labels(sets)
	months := slices.Sorted(maps.Keys(d.Months))
	e.uvarint(uint64(len(months)))
	for _, m := range months {
		md := d.Months[m]
		e.varint(int64(m))
		e.json(monthFields{FetchedAt: md.FetchedAt, Revision: md.Revision, FirstSeen: md.FirstSeen})
		e.month(md, ids(m))
	}
}

// sourceLabels returns the label sets to write for d, and the numbers of
// a month's records among them: d's table as it is when every month uses
// it, as refreshes and loads make them; otherwise one table for all,
// built for the write.
func sourceLabels(d *SourceData) ([]Labels, func(m provider.Month) []uint32) {
	shared := true
	for _, md := range d.Months {
		shared = shared && (md.Len() == 0 || md.labels == d.labels)
	}
	if shared {
		return d.labels.Sets(), func(m provider.Month) []uint32 { return d.Months[m].ids }
	}
	c := *d
	c.Months = maps.Clone(d.Months)
	c.CompactLabels()
	return c.labels.Sets(), func(m provider.Month) []uint32 { return c.Months[m].ids }
}

func (e *encoder) labels(sets []Labels) {
	index := map[string]uint64{}
	var strs []string
	for i := range sets {
		for _, s := range labelStrings(&sets[i]) {
			if _, ok := index[s]; !ok {
				index[s] = uint64(len(strs))
				strs = append(strs, s)
			}
		}
	}
	e.uvarint(uint64(len(strs)))
	for _, s := range strs {
		e.uvarint(uint64(len(s)))
		if e.err == nil {
			_, e.err = e.w.WriteString(s)
		}
	}
	e.uvarint(uint64(len(sets)))
	for i := range sets {
		for _, s := range labelStrings(&sets[i]) {
			e.uvarint(index[s])
		}
	}
}

func labelStrings(l *Labels) [5]string {
	return [5]string{l.Provider, l.Account, l.Service, l.Location, string(l.Scope)}
}

// month writes a month's records by column, ids being their label sets'
// numbers in the source's written table.
func (e *encoder) month(md *MonthData, ids []uint32) {
	e.uvarint(uint64(len(ids)))
	prev := int64(0)
	for _, id := range ids {
		e.varint(int64(id) - prev)
		prev = int64(id)
	}
	for _, k := range md.known {
		if e.err == nil {
			e.err = e.w.WriteByte(byte(k))
		}
	}
	var mask byte
	for q, col := range md.values {
		if col != nil {
			mask |= 1 << q
		}
	}
	e.write([]byte{mask})
	for _, col := range md.values {
		for len(col) > 0 {
			n := min(len(col), cap(e.scratch)/8)
			b := e.scratch[:0]
			for _, v := range col[:n] {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			}
			e.write(b)
			col = col[n:]
		}
	}
}

// decodeBinaryState checks and decodes a version 3 file whose header
// line ends at off.
func decodeBinaryState(raw []byte, off int64, encoding string) (map[string]*SourceData, error) {
	if encoding != stateEncoding {
		return nil, fmt.Errorf("unknown payload encoding %q", encoding)
	}
	if int64(len(raw)) < off+1+sha256.Size {
		return nil, errChecksum
	}
	body, trailer := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer) {
		return nil, errChecksum
	}
	if body[off] != '\n' {
		return nil, errors.New("no line break after the header")
	}
	zr, err := gzip.NewReader(bytes.NewReader(body[off+1:]))
	if err != nil {
		return nil, err
	}
	return decodePayload(bufio.NewReaderSize(zr, 64<<10))
}

// decodePayload decodes a payload that r holds whole.
func decodePayload(r *bufio.Reader) (map[string]*SourceData, error) {
	dec := &decoder{r: r}
	data := dec.payload()
	if dec.err == nil {
		if _, err := r.ReadByte(); err != io.EOF {
			dec.fail(errors.New("data after the payload"))
		}
	}
	if dec.err != nil {
		return nil, dec.err
	}
	return data, nil
}

// decoder reads a payload; the first error sticks, and every read after
// it yields zero values.
type decoder struct {
	r       *bufio.Reader
	scratch []byte
	err     error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = fmt.Errorf("payload: %w", err)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	if err != nil {
		d.fail(err)
	}
	return v
}

// count reads a count of at most limit.
func (d *decoder) count(limit uint64, what string) int {
	n := d.uvarint()
	if n > limit {
		d.fail(fmt.Errorf("%d %s, at most %d", n, what, limit))
		return 0
	}
	return int(n)
}

// read returns the next n bytes, valid until the next read.
func (d *decoder) read(n int) []byte {
	if d.err != nil {
		return nil
	}
	if cap(d.scratch) < n {
		d.scratch = make([]byte, n)
	}
	b := d.scratch[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail(err)
		return nil
	}
	return b
}

func (d *decoder) bytes() []byte { return d.read(d.count(maxStateString, "bytes")) }

func (d *decoder) json(v any) {
	if b := d.bytes(); d.err == nil {
		if err := json.Unmarshal(b, v); err != nil {
			d.fail(err)
		}
	}
}

func (d *decoder) payload() map[string]*SourceData {
	n := d.count(maxStateCount, "sources")
	data := make(map[string]*SourceData, min(n, 1024))
	for range n {
		s := d.source()
		if d.err != nil {
			return nil
		}
		if _, dup := data[s.Name]; dup {
			d.fail(fmt.Errorf("source %q twice", s.Name))
			return nil
		}
		data[s.Name] = s
	}
	return data
}

func (d *decoder) source() *SourceData {
	s := &SourceData{}
	d.json(&sourceFields{SourceData: s})
	s.labels = newLabelTable(d.labels())
	s.Months = map[provider.Month]*MonthData{}
	n := d.count(maxStateCount, "months")
	for range n {
		m := provider.Month(d.varint())
		var f monthFields
		d.json(&f)
		md := d.month(s.labels)
		if d.err != nil {
			return s
		}
		if _, dup := s.Months[m]; dup {
			d.fail(fmt.Errorf("month %s of %q twice", m, s.Name))
			return s
		}
		md.month, md.FetchedAt, md.Revision, md.FirstSeen = m, f.FetchedAt, f.Revision, f.FirstSeen
		s.Months[m] = md
	}
	return s
}

func (d *decoder) labels() []Labels {
	n := d.count(maxStateCount, "strings")
	strs := make([]string, 0, min(n, 4096))
	for range n {
		if b := d.bytes(); d.err == nil {
			strs = append(strs, string(b))
		}
	}
	n = d.count(maxStateCount, "label sets")
	sets := make([]Labels, 0, min(n, 4096))
	for range n {
		var v [5]string
		for i := range v {
			if j := d.uvarint(); j < uint64(len(strs)) {
				v[i] = strs[j]
			} else {
				d.fail(fmt.Errorf("string %d of %d", j, len(strs)))
			}
		}
		if d.err != nil {
			return nil
		}
		sets = append(sets, Labels{Provider: v[0], Account: v[1], Service: v[2], Location: v[3], Scope: provider.Scope(v[4])})
	}
	return sets
}

// month reads a month's records by column.
func (d *decoder) month(t *LabelTable) *MonthData {
	md := &MonthData{labels: t}
	n := d.count(maxStateCount, "records")
	sets := int64(t.Len())
	md.ids = make([]uint32, 0, min(n, 1<<16))
	id := int64(0)
	for range n {
		if id += d.varint(); id < 0 || id >= sets {
			d.fail(fmt.Errorf("label set %d of %d", id, sets))
		}
		if d.err != nil {
			return md
		}
		md.ids = append(md.ids, uint32(id))
	}
	md.known = make([]provider.Quantity, 0, min(n, 1<<16))
	for len(md.known) < n && d.err == nil {
		for _, k := range d.read(min(n-len(md.known), 4096)) {
			md.known = append(md.known, provider.Quantity(k))
			md.carried |= provider.Quantity(k)
		}
	}
	b := d.read(1)
	if d.err != nil {
		return md
	}
	mask := b[0] // before the next read reuses b
	if mask>>quantityBits != 0 {
		d.fail(fmt.Errorf("unknown columns %#x", mask))
	}
	for q := range quantityBits {
		if mask&(1<<q) != 0 {
			md.values[q] = d.floats(n)
		}
	}
	return md
}

// floats reads n floats, a chunk at a time.
func (d *decoder) floats(n int) []float64 {
	out := make([]float64, 0, min(n, 1<<16))
	for len(out) < n && d.err == nil {
		b := d.read(8 * min(n-len(out), 4096))
		for len(b) >= 8 {
			out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
			b = b[8:]
		}
	}
	return out
}
