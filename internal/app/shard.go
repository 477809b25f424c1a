package app

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Shard says which sources this replica refreshes and exposes: each source
// belongs to exactly one of Total shards. Every replica deals the same
// sources to the same shards from the configuration alone (see
// AssignShards), so that replicas agree without talking to each other.
type Shard struct {
	Index, Total int
}

// Sharded reports whether there is more than one shard.
func (s Shard) Sharded() bool { return s.Total > 1 }

// Owned returns the names, of all the configuration's source names, that
// belong to s, in the order given.
func (s Shard) Owned(names []string) []string {
	if !s.Sharded() {
		return slices.Clone(names)
	}
	assigned := AssignShards(names, s.Total)
	var out []string
	for _, name := range names {
		if assigned[name] == s.Index {
			out = append(out, name)
		}
	}
	return out
}

// AssignShards deals the sources named names over total shards and returns
// the shard of each name. It is a function of the set of names and total
// only, so that every replica computes the same assignment from the same
// configuration, whatever the order of its sections.
//
// The assignment is balanced: with N sources on S shards every shard holds
// ⌊N/S⌋ or ⌈N/S⌉ of them, so that no shard is empty while another holds
// two sources. Within that bound each source goes to the shard it ranks
// first by a hash of its name and the shard (rendezvous hashing), taking
// the sources in name order, so that adding or removing a source moves few
// others: a moved source is fetched again by its new shard, which costs
// API calls and, for BigQuery, bytes billed.
func AssignShards(names []string, total int) map[string]int {
	out := make(map[string]int, len(names))
	if total <= 1 {
		for _, name := range names {
			out[name] = 0
		}
		return out
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	floor, fuller := len(sorted)/total, len(sorted)%total
	count := make([]int, total)
	full := 0 // shards holding floor+1 sources
	for _, name := range sorted {
		h := nameHash(name)
		best, bestScore := -1, uint64(0)
		for shard := range total {
			room := count[shard] < floor || count[shard] == floor && full < fuller
			if score := rendezvous(h, shard); room && (best < 0 || score > bestScore) {
				best, bestScore = shard, score
			}
		}
		if count[best] == floor {
			full++
		}
		count[best]++
		out[name] = best
	}
	return out
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// rendezvous scores shard for a source whose name hashes to h: the
// splitmix64 finaliser of the two, so that every shard ranks the sources
// independently.
func rendezvous(h uint64, shard int) uint64 {
	x := h ^ (uint64(shard)+1)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ResolveShard checks the --shard.* flags. An index of -1 takes the index
// from the ordinal that ends the pod name, as a StatefulSet names its pods
// (cloudcarbon-exporter-2): from $POD_NAME, else the host name.
func ResolveShard(index, total int) (Shard, error) {
	if total < 1 {
		return Shard{}, fmt.Errorf("--shard.total must be at least 1, not %d", total)
	}
	if index == -1 {
		name := os.Getenv("POD_NAME")
		if name == "" {
			var err error
			if name, err = os.Hostname(); err != nil {
				return Shard{}, fmt.Errorf("--shard.index=-1: %w", err)
			}
		}
		i := strings.LastIndexByte(name, '-')
		n, err := strconv.Atoi(name[i+1:])
		if err != nil || n < 0 {
			return Shard{}, fmt.Errorf("--shard.index=-1 takes the index from the ordinal that ends the pod name, and %q has none (set POD_NAME or --shard.index)", name)
		}
		index = n
	}
	if index < 0 || index >= total {
		return Shard{}, errors.New("--shard.index must be from 0 to --shard.total - 1 (or -1 for the pod's ordinal)")
	}
	return Shard{Index: index, Total: total}, nil
}

// statePath gives each shard its own state file when several share a
// directory: state.json becomes state.shard-1-of-3.json.
func (s Shard) statePath(path string) string {
	if !s.Sharded() || path == "" {
		return path
	}
	ext := ""
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexByte(path, '/') {
		path, ext = path[:i], path[i:]
	}
	return fmt.Sprintf("%s.shard-%d-of-%d%s", path, s.Index, s.Total, ext)
}
