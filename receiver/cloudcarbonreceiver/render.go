package cloudcarbonreceiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/config/configopaque"
)

// paths maps the lines of rendered sections to the paths of the
// receiver's configuration they came from ("ibm::0::api_url"), so that the
// exporter parser's FILE:LINE messages can name what the user wrote.
type paths map[int]string

// render writes the sections, in the order of keys, as the YAML file the
// exporter's parser reads. It writes one key or item per line, strings
// quoted (JSON strings are YAML), so that every line has one path. The
// first key of a list's entry shares the entry's line, and takes the
// entry's path: the parser reports problems of the entry there.
func render(sections map[string]any, keys []string) ([]byte, paths) {
	e := &emitter{paths: paths{}}
	for _, k := range keys {
		if v, ok := sections[k]; ok {
			e.node(0, "", quote(k)+":", k, k, v)
		}
	}
	return e.buf.Bytes(), e.paths
}

type emitter struct {
	buf   bytes.Buffer
	lines int
	paths paths
}

func (e *emitter) line(col int, text, path string) {
	e.lines++
	e.paths[e.lines] = path
	e.buf.WriteString(strings.Repeat(" ", col))
	e.buf.WriteString(text)
	e.buf.WriteByte('\n')
}

// node writes v after head ("key:" or "-"), preceded by lead ("- " for
// the first key of a list entry) at column col. linePath is recorded for
// head's line, path is v's own.
func (e *emitter) node(col int, lead, head, linePath, path string, v any) {
	inner := col + len(lead) + 2 // where v's keys or items start
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			e.line(col, lead+head+" {}", linePath)
			return
		}
		e.line(col, lead+head, linePath)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			e.node(inner, "", quote(k)+":", path+"::"+k, path+"::"+k, v[k])
		}
	case []any:
		if len(v) == 0 {
			e.line(col, lead+head+" []", linePath)
			return
		}
		e.line(col, lead+head, linePath)
		for i, item := range v {
			itemPath := path + "::" + strconv.Itoa(i)
			m, ok := item.(map[string]any)
			if !ok || len(m) == 0 {
				e.node(inner, "", "-", itemPath, itemPath, item)
				continue
			}
			for j, k := range slices.Sorted(maps.Keys(m)) {
				if j == 0 {
					e.node(inner, "- ", quote(k)+":", itemPath, itemPath+"::"+k, m[k])
				} else {
					e.node(inner+2, "", quote(k)+":", itemPath+"::"+k, itemPath+"::"+k, m[k])
				}
			}
		}
	default:
		e.line(col, lead+head+" "+scalar(v), linePath)
	}
}

// scalar renders a value the Collector's configuration gave as YAML that
// reads back as the same value.
func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		switch {
		case math.IsInf(v, 1):
			return ".inf"
		case math.IsInf(v, -1):
			return "-.inf"
		case math.IsNaN(v):
			return ".nan"
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return quote(v)
	case configopaque.String:
		return quote(string(v))
	}
	return quote(fmt.Sprint(v))
}

// quote writes s as a JSON string, which YAML reads as a double-quoted
// scalar, on one line whatever s holds.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// rewrite turns the parser's "FILE:LINE: message" lines into "PATH:
// message", PATH being where the receiver's configuration holds the key.
func (p paths) rewrite(err error, file string) error {
	var errs []error
	for msg := range strings.SplitSeq(err.Error(), "\n") {
		rest, ok := strings.CutPrefix(msg, file+":")
		if !ok {
			errs = append(errs, errors.New(msg))
			continue
		}
		if n, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				if path := p[line]; path != "" {
					errs = append(errs, errors.New(path+": "+text))
					continue
				}
				rest = " " + text
			}
		}
		errs = append(errs, errors.New(strings.TrimPrefix(rest, " ")))
	}
	return errors.Join(errs...)
}
