// Package demogolden is what the demo golden files agree on: each cloud's
// file, which the conformance suite checks against the cloud's demo run
// alone, and the exporter's, whose test checks that the whole demo
// serves each cloud's series exactly as its file holds them.
package demogolden

import (
	"strings"
	"time"
)

// File is a cloud's demo golden file, relative to its package.
const File = "testdata/demo.prom"

// History and Retention are the months the demo golden files are made
// with: the exporter's defaults.
const (
	History   = 13
	Retention = 38
)

// Time returns the clock of every demo golden file.
func Time() time.Time { return time.Date(2026, time.November, 22, 12, 0, 0, 0, time.UTC) }

// Series returns the lines of an exposition that are series of provider
// prov, less those that depend on jitter (the next planned refresh).
func Series(exposition, prov string) string {
	var b strings.Builder
	label := `provider="` + prov + `"`
	for line := range strings.Lines(exposition) {
		if strings.HasPrefix(line, "#") || !strings.Contains(line, label) ||
			strings.HasPrefix(line, "cloudcarbon_next_refresh_timestamp_seconds{") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
