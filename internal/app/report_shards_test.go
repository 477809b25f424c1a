package app

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/report"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// shardedIBMConfig serves one IBM fake per name, each reporting accounts of
// its own (as separate enterprises do), and returns the configuration of
// them all.
func shardedIBMConfig(t *testing.T, names []string) string {
	t.Helper()
	now := time.Now()
	var cfg strings.Builder
	cfg.WriteString("ibm:\n")
	for _, name := range names {
		ds := ownDataset(now, name)
		srv := httptest.NewServer(ibmfake.NewServer(ds, "k"))
		t.Cleanup(srv.Close)
		fmt.Fprintf(&cfg, "  - name: %s\n    api_key: k\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n",
			name, ds.EnterpriseID, srv.URL, srv.URL)
	}
	return cfg.String()
}

// runToState runs an exporter until its refreshes settle and stops it,
// which writes its state file.
func runToState(t *testing.T, o *Options) {
	t.Helper()
	a := startApp(t, o, nil, true)
	if err := a.waitSettled(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.Close()
}

// TestMergedShardStateEqualsUnsharded runs one configuration unsharded and
// as three shards sharing a state directory: the report of the three shard
// files merged is byte for byte the unsharded exporter's, in every format,
// while one shard's file alone reports only its sources and says so.
func TestMergedShardStateEqualsUnsharded(t *testing.T) {
	names := shardedNames(3, 2)
	config := filepath.Join(t.TempDir(), "config.yml")
	writeConfig(t, config, shardedIBMConfig(t, names))
	dir := t.TempDir()
	options := func(s Shard) *Options {
		o := testOptions(t)
		o.ConfigFile, o.Shard = config, s
		o.StateFile = filepath.Join(dir, "state.json")
		o.RetentionMonths = o.HistoryMonths
		return o
	}
	unsharded := options(Shard{})
	runToState(t, unsharded)
	for index := range 3 {
		runToState(t, options(Shard{Index: index, Total: 3}))
	}
	shardFiles := filepath.Join(dir, "state.shard-*-of-3.json")
	if files, _ := filepath.Glob(shardFiles); len(files) != 3 {
		t.Fatalf("shard state files: %v", files)
	}

	// After every fetch: a report shows the data held at its clock.
	now := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	for _, q := range []string{
		"period=year&format=csv",
		"period=quarter&by=provider,account,scope&format=json&unit=kg",
		"period=month&by=provider,account,service,location,scope&format=markdown",
	} {
		ro, err := report.ParseOptions(mustQuery(t, q))
		if err != nil {
			t.Fatal(err)
		}
		ro.Now = now
		var want, got bytes.Buffer
		if err := Report(t.Context(), *unsharded, FromStateFile, ro, &want, promslog.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		if err := ReportStateFiles(t.Context(), *unsharded, []string{shardFiles}, ro, &got, promslog.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		// The shards refreshed after the unsharded run: their data is as
		// of later times.
		if g, w := withoutTimes(got.String()), withoutTimes(want.String()); g != w {
			t.Errorf("%s: the merged shards' report differs from the unsharded one, timestamps aside:\n%s\nwant:\n%s", q, g, w)
		}
		if !strings.Contains(want.String(), "ibm") {
			t.Errorf("%s: the report holds no data:\n%s", q, want.String())
		}

		var one bytes.Buffer
		if err := Report(t.Context(), *options(Shard{Index: 1, Total: 3}), FromStateFile, ro, &one, promslog.NewNopLogger()); err != nil {
			t.Fatal(err)
		}
		owned := (Shard{Index: 1, Total: 3}).Owned(names)
		note := "This report covers shard 1 of 3 only: sources " + strings.Join(owned, ", ")
		if !strings.Contains(one.String(), note) || bytes.Equal(one.Bytes(), want.Bytes()) {
			t.Errorf("%s: one shard's report lacks %q:\n%s", q, note, one.String())
		}
	}

	// The command: --state.merge, repeatable, each a path or a glob.
	kp := kingpin.New("t", "")
	run := ReportCommand(kp.Command("report", ""))
	out := filepath.Join(t.TempDir(), "reports", "report.csv") // a new directory
	args := []string{"report", "--output=" + out, "--state.merge=" + filepath.Join(dir, "state.shard-0-of-3.json"),
		"--state.merge=" + filepath.Join(dir, "state.shard-[12]-of-3.json")}
	if _, err := kp.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), *unsharded, io.Discard, promslog.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	ro, _ := report.ParseOptions(nil)
	if err := Report(t.Context(), *unsharded, FromStateFile, ro, &want, promslog.NewNopLogger()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); withoutTimes(string(got)) != withoutTimes(want.String()) {
		t.Errorf("report --state.merge wrote:\n%s\nwant:\n%s", got, want.String())
	}
}

// withoutTimes replaces every timestamp of a report.
func withoutTimes(report string) string {
	return timestamp.ReplaceAllString(report, "<time>")
}

var timestamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

func mustQuery(t *testing.T, q string) map[string][]string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/report?"+q, nil)
	return req.URL.Query()
}

// TestLoadStateFiles: a pattern without a match and an unusable file fail
// the merge; a source in two files comes from the one refreshed last.
func TestLoadStateFiles(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	save := func(name string, data map[string]*store.SourceData) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := store.NewStateFile(path).Save(data); err != nil {
			t.Fatal(err)
		}
		return path
	}
	source := func(name string, success time.Time) *store.SourceData {
		return &store.SourceData{Name: name, Provider: "ibm", LastSuccess: success, LastOK: true}
	}
	a := save("state.shard-0-of-2.json", map[string]*store.SourceData{"x": source("x", old), "y": source("y", old)})
	save("state.shard-1-of-2.json", map[string]*store.SourceData{"z": source("z", old)})
	// A reshard from 2 to 3 shards moved x; its new shard refreshed it since.
	save("state.shard-2-of-3.json", map[string]*store.SourceData{"x": source("x", old.Add(time.Hour))})

	logs := &logbuf.Buffer{}
	got, err := LoadStateFiles([]string{filepath.Join(dir, "state.shard-*.json")}, promslog.New(testLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !got["x"].LastSuccess.Equal(old.Add(time.Hour)) {
		t.Errorf("merged: %v; x from %v", len(got), got["x"].LastSuccess)
	}
	if !strings.Contains(logs.String(), "several state files") || !strings.Contains(logs.String(), "state.shard-2-of-3.json") {
		t.Errorf("the duplicate source is not logged:\n%s", logs.String())
	}

	for _, c := range []struct {
		patterns []string
		want     string
	}{
		{nil, "no state file"},
		{[]string{a, filepath.Join(dir, "missing-*.json")}, "no state file matches"},
		{[]string{filepath.Join(dir, "absent.json")}, "no state file matches"},
		{[]string{"[bad"}, "pattern"},
	} {
		if _, err := LoadStateFiles(c.patterns, promslog.NewNopLogger()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.patterns, err, c.want)
		}
	}
	corrupt := filepath.Join(dir, "corrupt.json")
	writeConfig(t, corrupt, "{}")
	if _, err := LoadStateFiles([]string{a, corrupt}, promslog.NewNopLogger()); err == nil || !strings.Contains(err.Error(), "corrupt.json") {
		t.Errorf("an unusable file: %v", err)
	}
}

// TestShardReportSaysWhatItCovers: a sharded replica's GET /report names
// its shard and sources in a header and a note.
func TestShardReportSaysWhatItCovers(t *testing.T) {
	names := shardedNames(3, 2)
	o := testOptions(t)
	o.Shard = Shard{Index: 2, Total: 3}
	writeConfig(t, o.ConfigFile, shardedIBMConfig(t, names))
	a := startApp(t, o, nil, false)
	waitReady(t, a)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	owned := o.Shard.Owned(names)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report?format=csv", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /report: %d %s", rec.Code, rec.Body)
	}
	if got, want := rec.Header().Get(HeaderShard), "2 of 3; sources 2 of 6"; got != want {
		t.Errorf("%s: %q, want %q", HeaderShard, got, want)
	}
	if got, want := rec.Header().Get(HeaderShardSources), strings.Join(owned, ","); got != want {
		t.Errorf("%s: %q, want %q", HeaderShardSources, got, want)
	}
	note := fmt.Sprintf("This report covers shard 2 of 3 only: sources %s (2 of 6 configured).", strings.Join(owned, ", "))
	if !strings.Contains(rec.Body.String(), note) {
		t.Errorf("the report lacks %q:\n%s", note, rec.Body)
	}

	// Unsharded: no header, no note.
	o = testOptions(t)
	o.Demo = true
	a = startApp(t, o, nil, false)
	waitReady(t, a)
	h, _ = a.Handler(t.Context())
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/report", nil))
	if rec.Header().Get(HeaderShard) != "" || strings.Contains(rec.Body.String(), "covers shard") {
		t.Errorf("an unsharded report speaks of shards: %v\n%s", rec.Header(), rec.Body)
	}
}
