package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// Headers of a sharded replica's GET /report: which shard answered and
// which sources its report covers, so that a client that reached one shard
// through a Service can tell that it got part of the estate.
const (
	HeaderShard        = "Cloudcarbon-Shard"
	HeaderShardSources = "Cloudcarbon-Shard-Sources"
)

// shardReportNote says that a report covers one shard's sources only, and
// how to get the whole estate's.
func shardReportNote(s Shard, sources []string, configured int) string {
	covered := "no source"
	if len(sources) > 0 {
		covered = "sources " + strings.Join(sources, ", ")
	}
	of := ""
	if configured > 0 {
		of = fmt.Sprintf(" (%d of %d configured)", len(sources), configured)
	}
	return fmt.Sprintf("This report covers shard %d of %d only: %s%s. The other shards hold the other sources; "+
		"for the whole estate merge every shard's state file (report --state.merge).", s.Index, s.Total, covered, of)
}

// shardHeaders sets the headers of a sharded replica's report.
func shardHeaders(h http.Header, s Shard, sources []string, configured int) {
	h.Set(HeaderShard, fmt.Sprintf("%d of %d; sources %d of %d", s.Index, s.Total, len(sources), configured))
	h.Set(HeaderShardSources, strings.Join(sources, ","))
}

// ReportStateFiles writes the report of several state files merged into
// one, such as the files of every shard of an estate: each pattern is a
// path or a glob (state.shard-*-of-3.json). Shards hold disjoint sources,
// so the merged report equals the report of one unsharded exporter.
func ReportStateFiles(_ context.Context, o Options, patterns []string, ro report.Options, w io.Writer, logger *slog.Logger) error {
	sources, err := LoadStateFiles(patterns, logger)
	if err != nil {
		return err
	}
	if ro.Now.IsZero() {
		ro.Now = o.Now()
	}
	r, err := report.Build(reportInput(sources, o.Plugins, fileDigest(o)), ro)
	if err != nil {
		return err
	}
	return r.Write(w)
}

// LoadStateFiles loads and merges the state files that patterns name. A
// pattern that matches no file, and a file that cannot be read, are
// errors: a report that silently lacks a shard would understate the
// estate. A source held by several files (an old shard's file left by a
// reshard) is taken from the one that refreshed it last.
func LoadStateFiles(patterns []string, logger *slog.Logger) (map[string]*store.SourceData, error) {
	if len(patterns) == 0 {
		return nil, errors.New("no state file to merge")
	}
	var files []string
	for _, p := range patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("state file pattern %q: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no state file matches %q", p)
		}
		files = append(files, matches...)
	}
	slices.Sort(files)
	files = slices.Compact(files)
	merged := map[string]*store.SourceData{}
	from := map[string]string{}
	for _, f := range files {
		data, err := store.NewStateFile(f).Load()
		if err != nil {
			return nil, err
		}
		if data == nil {
			return nil, fmt.Errorf("no state file at %s", f)
		}
		for _, name := range slices.Sorted(maps.Keys(data)) {
			d := data[name]
			prev, ok := merged[name]
			if ok {
				keep, drop := f, from[name]
				if !fresher(d, prev) {
					keep, drop = drop, keep
				}
				logger.Warn("A source is in several state files; the report takes it from the one refreshed last",
					"source", name, "used", keep, "ignored", drop)
				if !fresher(d, prev) {
					continue
				}
			}
			merged[name], from[name] = d, f
		}
	}
	logger.Info("Merged state files", "files", len(files), "sources", len(merged))
	return merged, nil
}

// fresher reports whether a holds newer data of a source than b.
func fresher(a, b *store.SourceData) bool {
	if !a.LastSuccess.Equal(b.LastSuccess) {
		return a.LastSuccess.After(b.LastSuccess)
	}
	if !a.LastAttempt.Equal(b.LastAttempt) {
		return a.LastAttempt.After(b.LastAttempt)
	}
	return len(a.Months) > len(b.Months)
}
