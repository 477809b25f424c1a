package exposition

import (
	"math"
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

// block is one family rendered once, as gzip members: a compressed
// scrape concatenates members (RFC 1952 allows several; Go's and
// Prometheus' readers read them as one stream) instead of compressing the
// data again, and the rare plain scrape decompresses them. The text
// itself is not kept: at a million series it is some 200 MB, its gzip
// form some 15.
type block struct {
	name    string
	members [][]byte
}
