package config

import (
	"strconv"
)

// overlaps refuses two sources of one cloud that read the same data: the
// exposition and reports add sources up, so every figure of that data
// would be counted twice, silently. Sources say what they read through
// provider.SourceConfig.Covers; disjoint parts (other subscriptions,
// projects or billing accounts) do not overlap.
func (p *parser) overlaps(c *Config) {
	type owner struct{ name, what string }
	seen := map[string]owner{}
	index := map[string]int{}
	for _, src := range c.Sources {
		path := src.Provider + "." + strconv.Itoa(index[src.Provider])
		index[src.Provider]++
		for _, cov := range src.Config.Covers() {
			key := src.Provider + "\x00" + cov.Key
			first, dup := seen[key]
			if !dup {
				seen[key] = owner{src.Name(), cov.What}
				continue
			}
			p.errorf(p.line(path), "%s entries %s and %s both read %s: every figure of it would be counted twice; "+
				"remove one, or give each a part of its own", src.Provider, shown(first.name), shown(src.Name()), cov.What)
			break
		}
	}
}

// shown quotes a source name that is known to be one; a name the file
// got wrong may be anything, a pasted secret included.
func shown(name string) string {
	if validName(name) {
		return strconv.Quote(name)
	}
	return "(an entry with an invalid name)"
}
