package config

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// parser decodes in two passes over the same bytes. A yaml.Decoder with
// KnownFields(true) into the plain structs gives strictness everywhere
// (KnownFields does not reach into custom UnmarshalYAML methods, so there
// are none). A yaml.Node of the same document gives the line of every key,
// for validation messages and for rewriting yaml.v3's messages, which name
// Go types and quote values that may be secrets.
type parser struct {
	file   string
	getenv func(string) string
	pos    map[string]position // by path: "refresh.interval", "ibm.0.api_key"
	errs   []lineError
	layout *layout
	// credentials digests secrets and credential files for Config.Hash.
	credentials hash.Hash
	// expanded counts the keys and items the index has visited, aliases
	// and merge keys expanded; past maxExpanded the file is refused.
	expanded int
}

// position is where a key and its value are, and what the value decodes
// into.
type position struct {
	key, value int
	tag        string // of the value, such as "!!float"
	typ        reflect.Type
}

type lineError struct {
	line int
	err  error
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, lineError{line, fmt.Errorf(format, args...)})
}

// err reports problems in file order, each prefixed with FILE:LINE so that
// editors can jump to it.
func (p *parser) err() error {
	slices.SortStableFunc(p.errs, func(a, b lineError) int { return a.line - b.line })
	var errs []error
	for i, e := range p.errs {
		if i > 0 && e.line == p.errs[i-1].line && e.err.Error() == p.errs[i-1].err.Error() {
			continue // One bad anchor merged into several entries.
		}
		if e.line > 0 {
			errs = append(errs, fmt.Errorf("%s:%d: %w", p.file, e.line, e.err))
		} else {
			errs = append(errs, fmt.Errorf("%s: %w", p.file, e.err))
		}
	}
	return errors.Join(errs...)
}

// has reports whether the file sets path, as opposed to it taking a default.
func (p *parser) has(path string) bool {
	_, ok := p.pos[path]
	return ok
}

// line is the line of path's key, or of the nearest enclosing key when the
// file does not set path; 0 if there is none.
func (p *parser) line(path string) int {
	for {
		if pos, ok := p.pos[path]; ok {
			return pos.key
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

func (p *parser) decode(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // An empty file is an empty configuration.
	} else if err != nil {
		p.syntaxError(err)
		return p.err()
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(next.Line, "a second YAML document starts here; put the whole configuration in one document")
		return p.err()
	} else if !errors.Is(err, io.EOF) {
		p.syntaxError(err)
		return p.err()
	}

	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		return nil
	case root.Kind != yaml.MappingNode:
		p.errorf(root.Line, "the configuration must be a mapping of keys such as refresh and ibm, not %s", kindName(root))
		return p.err()
	}
	// Anchors, aliases and merge keys can make a small file expand to
	// millions of nodes; yaml.v3's own aliasing check does not catch
	// expansions that also carry plain keys. Measure the expansion first,
	// in time linear in the file, before anything expands it.
	if expandedSize(root, map[*yaml.Node]int{}) > maxExpanded || !p.index(root, p.layout.typ, "") {
		p.errorf(0, "the configuration expands to more than %d keys through anchors, aliases and merge keys (<<); write it out or use fewer of them", maxExpanded)
		return p.err()
	}

	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	v := p.layout.value(c)
	err := strict.Decode(v.Interface())
	p.layout.extract(v, c)
	var te *yaml.TypeError
	switch {
	case errors.As(err, &te):
		sections := sections(p.layout.typ)
		for _, msg := range te.Errors {
			p.typeError(msg, sections)
		}
	case err != nil:
		p.syntaxError(err)
	}
	for _, path := range slices.Sorted(maps.Keys(p.pos)) {
		if pos := p.pos[path]; pos.typ.Kind() == reflect.Int && pos.tag == "!!float" {
			// yaml.v3 would silently truncate 1.5 to 1.
			p.errorf(pos.key, "%s must be %s", display(path), expected("int"))
		}
	}
	return p.err()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "this"
}

// syntaxError rewrites "yaml: line 3: mapping values are not allowed in
// this context". yaml.v3's syntax messages name what is wrong; the few
// that quote the file (an unknown anchor, a value of an explicit tag) are
// scrubbed.
func (p *parser) syntaxError(err error) {
	msg := scrubMessage(strings.TrimPrefix(err.Error(), "yaml: "))
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, m, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, m
			}
		}
	}
	p.errorf(line, "invalid YAML: %s", msg)
}

// typeError rewrites one of yaml.v3's unmarshal errors. Those name Go types
// and quote the start of the offending value, which for api_key is the
// secret, so no part of a value is carried over.
func (p *parser) typeError(msg string, sections map[string]section) {
	rest, ok := strings.CutPrefix(msg, "line ")
	n, rest, ok2 := strings.Cut(rest, ": ")
	line, err := strconv.Atoi(n)
	if !ok || !ok2 || err != nil {
		p.errorf(0, "invalid configuration")
		return
	}

	if field, ok := strings.CutPrefix(rest, "field "); ok {
		if name, typ, ok := strings.Cut(field, " not found in type "); ok {
			s := sections[typ]
			what := "an unknown field"
			if keyLike.MatchString(name) {
				what = fmt.Sprintf("unknown field %q", name)
			}
			p.errorf(line, "%s %s; known fields are %s", what, s.where, strings.Join(s.keys, ", "))
			return
		}
	}
	if key, ok := strings.CutPrefix(rest, "mapping key "); ok {
		if key, first, ok := strings.Cut(key, " already defined at line "); ok {
			if k, err := strconv.Unquote(key); err == nil && keyLike.MatchString(k) {
				p.errorf(line, "duplicate key %s, already set at line %s", key, first)
			} else {
				p.errorf(line, "duplicate key, already set at line %s", first)
			}
			return
		}
	}
	if strings.HasPrefix(rest, "cannot unmarshal ") {
		typ := rest[strings.LastIndex(rest, " into ")+len(" into "):]
		subject := "this value"
		for _, path := range slices.Sorted(maps.Keys(p.pos)) {
			if pos := p.pos[path]; pos.value == line && pos.typ.String() == typ {
				subject, line = display(path), pos.key
				if _, err := strconv.Atoi(path[strings.LastIndexByte(path, '.')+1:]); err == nil {
					subject += " entry" // "ibm.0" is an entry of ibm.
				}
				break
			}
		}
		p.errorf(line, "%s must be %s", subject, expected(typ))
		return
	}
	p.errorf(line, "invalid value")
}

// keyLike is what a key may look like to be quoted back: a key name as
// the configuration spells them, small letters and '_'. Anything else (a
// pasted secret, a token with digits or mixed case) is not repeated.
var keyLike = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)

// quotedInMessage finds what yaml.v3 quotes in its messages: anchor names
// ('…'), values (`…`) and keys ("…").
var quotedInMessage = regexp.MustCompile("'[^']*'|`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\"")

// scrubMessage removes from one of yaml.v3's messages what it quotes from
// the file, unless it is key-like, and the value it prints after "invalid
// map key".
func scrubMessage(msg string) string {
	if i := strings.Index(msg, "invalid map key"); i >= 0 {
		msg = msg[:i+len("invalid map key")]
	}
	return quotedInMessage.ReplaceAllStringFunc(msg, func(q string) string {
		if keyLike.MatchString(q[1 : len(q)-1]) {
			return q
		}
		return "(not shown)"
	})
}

// expected describes a Go type in the user's terms.
func expected(typ string) string {
	switch {
	case typ == "time.Duration":
		return `a duration such as "6h", "30m" or "90s"`
	case typ == "float64":
		return "a number"
	case strings.HasPrefix(typ, "int"):
		return "a whole number"
	case typ == "string" || typ == "provider.Secret":
		return "a single string"
	case strings.HasPrefix(typ, "[]"):
		return `a list, one entry per item, each starting with "- "`
	}
	return "a mapping of keys"
}

// display turns "ibm.0.api_url" into "ibm.api_url": the line number already
// says which entry.
func display(path string) string {
	parts := strings.Split(path, ".")
	parts = slices.DeleteFunc(parts, func(s string) bool {
		_, err := strconv.Atoi(s)
		return err == nil
	})
	return strings.Join(parts, ".")
}

// section is how messages name a mapping of the configuration and which
// keys it takes.
type section struct {
	where string
	keys  []string
}

// sections derives, from the struct tags, the sections by Go type name as
// yaml.v3 prints it, so that new providers need no change here.
func sections(top reflect.Type) map[string]section {
	s := map[string]section{}
	var walk func(t reflect.Type, where string)
	walk = func(t reflect.Type, where string) {
		sec := section{where: where}
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlKey(f)
			if name == "" {
				continue
			}
			sec.keys = append(sec.keys, name)
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, "in "+name)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), "in "+name+" entry")
			}
		}
		s[t.String()] = sec
	}
	walk(top, "at the top level")
	return s
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// maxExpanded bounds the keys and items a file may expand to. A real
// configuration has hundreds; anchors and merge keys can make a file of a
// few hundred bytes expand to millions, which would take seconds and
// gigabytes to index and decode.
const maxExpanded = 100_000

// index records the position of every key of n that t knows, following the
// shape of t rather than of the document, which bounds the walk even when
// aliases make the document cyclic. It returns false once the walk has
// expanded more than maxExpanded keys and items.
func (p *parser) index(n *yaml.Node, t reflect.Type, path string) bool {
	n = resolve(n)
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		kvs, ok := p.pairs(n, 0)
		if !ok {
			return false
		}
		for _, kv := range kvs {
			k, v := kv[0], kv[1]
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				continue
			}
			key := k.Value
			if path != "" {
				key = path + "." + k.Value
			}
			if _, dup := p.pos[key]; dup {
				continue
			}
			p.pos[key] = position{key: k.Line, value: v.Line, tag: v.Tag, typ: f.Type}
			if !p.index(v, f.Type, key) {
				return false
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if p.expanded++; p.expanded > maxExpanded {
				return false
			}
			item = resolve(item)
			key := path + "." + strconv.Itoa(i)
			p.pos[key] = position{key: item.Line, value: item.Line, tag: item.Tag, typ: t.Elem()}
			if !p.index(item, t.Elem(), key) {
				return false
			}
		}
	}
	return true
}

// expandedSize returns how many nodes n stands for once every alias is
// replaced by the node it names, saturating past maxExpanded. memo holds
// the sizes already known (-1 while a node is being measured, which makes
// an alias to an enclosing node, a cycle, count as too large).
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if size, ok := memo[n]; ok {
		if size < 0 {
			return maxExpanded + 1
		}
		return size
	}
	memo[n] = -1
	size := 1
	for _, c := range n.Content {
		if size += expandedSize(c, memo); size > maxExpanded {
			size = maxExpanded + 1
			break
		}
	}
	memo[n] = size
	return size
}

// pairs returns the key/value pairs of a mapping with merge keys ("<<")
// expanded, in order of precedence: the mapping's own keys, then the merged
// ones in order. depth stops cyclic merges; the expansion budget stops wide
// ones (false).
func (p *parser) pairs(n *yaml.Node, depth int) ([][2]*yaml.Node, bool) {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if p.expanded++; p.expanded > maxExpanded {
			return nil, false
		}
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.Value != "<<" || k.Tag != "!!merge" {
			own = append(own, [2]*yaml.Node{k, v})
			continue
		}
		if depth >= 8 {
			continue
		}
		from := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			from = v.Content
		}
		for _, m := range from {
			if m = resolve(m); m.Kind == yaml.MappingNode {
				kvs, ok := p.pairs(m, depth+1)
				if !ok {
					return nil, false
				}
				merged = append(merged, kvs...)
			}
		}
	}
	return append(own, merged...), true
}

func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// layout is the shape of the whole file: refresh, otlp and a list of each
// plug-in's entry type. It is a struct type built at run time so that
// yaml.v3's strict decoding, and the key index, reach into every plug-in's
// own yaml tags as if the sections were written out in Config.
type layout struct {
	typ     reflect.Type
	plugins []provider.Plugin
	entries []reflect.Type // by plug-in
}

func newLayout(plugins []provider.Plugin) (*layout, error) {
	l := &layout{plugins: plugins}
	fields := []reflect.StructField{
		{Name: "Refresh", Type: reflect.TypeFor[Refresh](), Tag: `yaml:"refresh"`},
		{Name: "OTLP", Type: reflect.TypeFor[OTLP](), Tag: `yaml:"otlp"`},
	}
	seen := map[string]bool{"refresh": true, "otlp": true}
	for i, pl := range plugins {
		t := reflect.TypeOf(pl.NewConfig())
		if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
			return nil, fmt.Errorf("plug-in %q: NewConfig must return a pointer to a struct", pl.Name)
		}
		if seen[pl.Name] || !validName(pl.Name) {
			return nil, fmt.Errorf("plug-in %q: the name is taken or not a valid section key", pl.Name)
		}
		seen[pl.Name] = true
		l.entries = append(l.entries, t.Elem())
		fields = append(fields, reflect.StructField{
			Name: "Cloud" + strconv.Itoa(i),
			Type: reflect.SliceOf(t.Elem()),
			Tag:  reflect.StructTag(`yaml:"` + pl.Name + `,omitempty"`),
		})
	}
	l.typ = reflect.StructOf(fields)
	return l, nil
}

// value returns a pointer to a new file-shaped value holding c.
func (l *layout) value(c *Config) reflect.Value {
	if l == nil {
		l = &layout{typ: reflect.StructOf([]reflect.StructField{
			{Name: "Refresh", Type: reflect.TypeFor[Refresh](), Tag: `yaml:"refresh"`},
			{Name: "OTLP", Type: reflect.TypeFor[OTLP](), Tag: `yaml:"otlp"`},
		})}
	}
	v := reflect.New(l.typ)
	v.Elem().Field(0).Set(reflect.ValueOf(c.Refresh))
	v.Elem().Field(1).Set(reflect.ValueOf(c.OTLP))
	for i, pl := range l.plugins {
		list := v.Elem().Field(2 + i)
		for _, src := range c.Sources {
			if src.Provider == pl.Name {
				list.Set(reflect.Append(list, reflect.ValueOf(src.Config).Elem()))
			}
		}
	}
	return v
}

// extract copies a decoded file-shaped value into c.
func (l *layout) extract(v reflect.Value, c *Config) {
	c.Refresh = v.Elem().Field(0).Interface().(Refresh)
	c.OTLP = v.Elem().Field(1).Interface().(OTLP)
	c.Sources = nil
	for i, pl := range l.plugins {
		list := v.Elem().Field(2 + i)
		for j := range list.Len() {
			c.Sources = append(c.Sources, Source{Provider: pl.Name, Config: list.Index(j).Addr().Interface().(provider.SourceConfig)})
		}
	}
}
