package app

import (
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

func TestShardOwnsEachSourceOnce(t *testing.T) {
	for total := 1; total <= 5; total++ {
		for i := range 200 {
			name := fmt.Sprintf("source-%d", i)
			owners := 0
			for index := range total {
				if (Shard{Index: index, Total: total}).Owns(name) {
					owners++
				}
			}
			if owners != 1 {
				t.Fatalf("%s has %d owners among %d shards", name, owners, total)
			}
		}
	}
}

func TestResolveShard(t *testing.T) {
	t.Setenv("POD_NAME", "cloudcarbon-exporter-2")
	for _, tc := range []struct {
		index, total int
		want         Shard
		err          string
	}{
		{0, 1, Shard{0, 1}, ""},
		{1, 3, Shard{1, 3}, ""},
		{-1, 3, Shard{2, 3}, ""},
		{-1, 2, Shard{}, "--shard.index must be"},
		{3, 3, Shard{}, "--shard.index must be"},
		{0, 0, Shard{}, "--shard.total must be at least 1"},
	} {
		got, err := ResolveShard(tc.index, tc.total)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveShard(%d, %d) = %v, %v; want an error with %q", tc.index, tc.total, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveShard(%d, %d) = %v, %v; want %v", tc.index, tc.total, got, err, tc.want)
		}
	}
	t.Setenv("POD_NAME", "no-ordinal")
	if _, err := ResolveShard(-1, 3); err == nil || !strings.Contains(err.Error(), "no-ordinal") {
		t.Errorf("a pod name without an ordinal: %v", err)
	}
	if got := (Shard{1, 3}).statePath("/var/lib/x/state.json"); got != "/var/lib/x/state.shard-1-of-3.json" {
		t.Errorf("state path %s", got)
	}
}

// TestShardsSplitTheSources runs three exporters with --shard.total 3 over
// one configuration of several IBM sources, each with its own fake, and
// one exporter without sharding: the shards' data series together are the
// unsharded exporter's, no series is in two shards, and each fake was
// called only by the shard that owns its source.
func TestShardsSplitTheSources(t *testing.T) {
	now := time.Now()
	names := shardedNames(3, 2)
	// Every source reports its own accounts, so that no series is the sum
	// of two sources.
	datasets := map[string]ibmfake.Dataset{}
	for _, name := range names {
		ds := ibmfake.Demo(now)
		for i := range ds.Rows {
			ds.Rows[i].AccountID = name + "-" + ds.Rows[i].AccountID
		}
		for i := range ds.Entities {
			if ds.Entities[i].Type == ibmfake.TypeAccount {
				ds.Entities[i].ID = name + "-" + ds.Entities[i].ID
			}
		}
		datasets[name] = ds
	}
	run := func(shard Shard) (series map[string]bool, called map[string]int) {
		t.Helper()
		var cfg strings.Builder
		cfg.WriteString("ibm:\n")
		fakes := map[string]*ibmfake.Server{}
		for _, name := range names {
			fake := ibmfake.NewServer(datasets[name], "k")
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			fakes[name] = fake
			fmt.Fprintf(&cfg, "  - name: %s\n    api_key: k\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n",
				name, datasets[name].EnterpriseID, srv.URL, srv.URL)
		}
		o := testOptions(t)
		o.Shard = shard
		writeConfig(t, o.ConfigFile, cfg.String())
		a := startApp(t, o, nil, true)
		waitReady(t, a)
		series = map[string]bool{}
		for line := range strings.SplitSeq(gatherText(t, a.gatherer(), dataFamilies[:4]...), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				series[line] = true
			}
		}
		called = map[string]int{}
		for name, fake := range fakes {
			called[name] = fake.Requests("/v1/carbon_emissions")
		}
		a.Close()
		return series, called
	}

	all, _ := run(Shard{})
	union := map[string]bool{}
	for index := range 3 {
		shard := Shard{Index: index, Total: 3}
		series, called := run(shard)
		if len(series) == 0 {
			t.Errorf("shard %d exposes no data", index)
		}
		for s := range series {
			if union[s] {
				t.Errorf("series in two shards: %s", s)
			}
			union[s] = true
		}
		for name, n := range called {
			if owned := shard.Owns(name); owned != (n > 0) {
				t.Errorf("shard %d: fake of %s called %d times; the shard owns it: %v", index, name, n, owned)
			}
		}
	}
	if !maps.Equal(union, all) {
		missing, extra := 0, 0
		for s := range all {
			if !union[s] {
				missing++
			}
		}
		for s := range union {
			if !all[s] {
				extra++
			}
		}
		t.Errorf("the shards' series differ from the unsharded exporter's: %d missing, %d extra (of %d)", missing, extra, len(all))
	}
}

// shardedNames returns source names such that each of total shards owns
// perShard of them.
func shardedNames(total, perShard int) []string {
	count := make([]int, total)
	var names []string
	for i := 0; len(names) < total*perShard; i++ {
		name := fmt.Sprintf("ibm-%d", i)
		for index := range total {
			if (Shard{Index: index, Total: total}).Owns(name) && count[index] < perShard {
				count[index]++
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}
