package app

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
)

// Shard says which sources this replica refreshes and exposes: each source
// belongs to exactly one of Total shards, by a stable hash of its name, so
// that replicas agree without talking to each other and a source keeps its
// shard across restarts and reloads.
type Shard struct {
	Index, Total int
}

// Owns reports whether the source named name belongs to s.
func (s Shard) Owns(name string) bool {
	if s.Total <= 1 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32()%uint32(s.Total)) == s.Index
}

// Sharded reports whether there is more than one shard.
func (s Shard) Sharded() bool { return s.Total > 1 }

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
