package exposition

import (
	"bytes"
	"compress/gzip"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The text format's escaping, as github.com/prometheus/common/expfmt
// writes it: HELP escapes backslash and newline, label values also the
// double quote. A test compares the output with expfmt's.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// appendHeader appends a gauge family's HELP and TYPE lines.
func appendHeader(b []byte, d *def) []byte {
	b = append(b, "# HELP "...)
	b = append(b, d.name...)
	b = append(b, ' ')
	b = appendEscaped(b, d.help, helpEscaper, "\\\n")
	b = append(b, "\n# TYPE "...)
	b = append(b, d.name...)
	return append(b, " gauge\n"...)
}

func appendEscaped(b []byte, s string, r *strings.Replacer, special string) []byte {
	if !strings.ContainsAny(s, special) {
		return append(b, s...)
	}
	return append(b, r.Replace(s)...)
}

// appendLabel appends name="value" with the separator before it.
func appendLabel(b []byte, first bool, name, value string) []byte {
	if first {
		b = append(b, '{')
	} else {
		b = append(b, ',')
	}
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendEscaped(b, value, valueEscaper, "\\\n\"")
	return append(b, '"')
}

// appendSample ends a series line with its value.
func appendSample(b []byte, labelled bool, v float64) []byte {
	if labelled {
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendSeries appends s in the text format 0.0.4, byte for byte what
// expfmt.MetricFamilyToText writes for a gauge family.
func appendSeries(b []byte, s series) []byte {
	b = appendHeader(b, s.def)
	for _, smp := range s.samples {
		b = append(b, s.def.name...)
		for n, i := range s.def.order {
			b = appendLabel(b, n == 0, s.def.labels[i], smp.values[i])
		}
		b = appendSample(b, len(s.def.order) > 0, smp.value)
	}
	return b
}

// appendData appends a data family, its labels in sorted order: account,
// location, [month, months_ago,] provider, [scope,] service.
func appendData(b []byte, f *dataFamily, agoText []string) []byte {
	b = appendHeader(b, f.def)
	for i := range f.entries {
		k := &f.entries[i].key
		b = append(b, f.def.name...)
		b = appendLabel(b, true, "account", k.account)
		b = appendLabel(b, false, "location", k.location)
		if f.history {
			b = appendLabel(b, false, "month", k.month.String())
			b = appendLabel(b, false, "months_ago", agoText[k.monthsAgo])
		}
		b = appendLabel(b, false, "provider", k.provider)
		if f.scoped {
			b = appendLabel(b, false, "scope", string(k.scope))
		}
		b = appendLabel(b, false, "service", k.service)
		b = appendSample(b, true, f.entries[i].value)
	}
	return b
}

// dataSize bounds the text of a data family from above, so that its
// buffer is allocated once.
func dataSize(f *dataFamily) int {
	const perLine = len(`{account="",location="",month="",months_ago="",provider="",scope="",service=""} `) + 24 + 1 + 10
	n := len(f.def.name)*2 + len(f.def.help) + 32
	for i := range f.entries {
		k := &f.entries[i].key
		n += len(f.def.name) + perLine + len(k.account) + len(k.location) + len(k.provider) + len(k.scope) + len(k.service)
	}
	return n
}

// appendFloat formats v as expfmt does.
func appendFloat(dst []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(dst, '1')
	case v == 0:
		return append(dst, '0')
	case v == -1:
		return append(dst, "-1"...)
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, +1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// block is one family rendered once: its text and the same text as one
// gzip member, so that a compressed scrape concatenates members (RFC 1952
// allows several; Go's and Prometheus' readers read them as one stream)
// instead of compressing the data again.
type block struct {
	name string
	text []byte
	gz   []byte
}

// renderBlocks renders every family of a to text and gzip, in name order.
func renderBlocks(a *aggregation) ([]block, error) {
	var out []block
	for i := range a.data {
		if f := &a.data[i]; len(f.entries) > 0 {
			out = append(out, block{name: f.def.name, text: appendData(make([]byte, 0, dataSize(f)), f, a.agoText)})
		}
	}
	for _, s := range a.other.sorted() {
		out = append(out, block{name: s.def.name, text: appendSeries(nil, s)})
	}
	slices.SortFunc(out, func(x, y block) int { return strings.Compare(x.name, y.name) })
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	for i := range out {
		gz.Reset()
		zw.Reset(&gz)
		if _, err := zw.Write(out[i].text); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		out[i].gz = bytes.Clone(gz.Bytes())
	}
	return out, nil
}
