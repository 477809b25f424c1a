package app

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

// TestAssignShardsBalanced deals many configurations and checks that every
// source has exactly one shard, that each shard holds ⌊N/S⌋ or ⌈N/S⌉
// sources, that the assignment does not depend on the order of the
// configuration, and that Owned agrees with it.
func TestAssignShardsBalanced(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 1))
	type shape struct{ names, shards int }
	// Every small estate, and a few large ones.
	shapes := []shape{{100, 7}, {1000, 16}, {3, 1000}, {4096, 64}}
	for names := range 41 {
		for shards := 1; shards <= 9; shards++ {
			shapes = append(shapes, shape{names, shards})
		}
	}
	for _, shape := range shapes {
		for run := range 4 {
			names := make([]string, shape.names)
			for i := range names {
				// Names alike in all but a suffix, and random ones.
				if run%2 == 0 {
					names[i] = fmt.Sprintf("ibm-%d", i)
				} else {
					names[i] = fmt.Sprintf("src-%x", rng.Uint64())
				}
			}
			assigned := AssignShards(names, shape.shards)
			if len(assigned) != len(names) {
				t.Fatalf("%d names on %d shards: %d assigned", len(names), shape.shards, len(assigned))
			}
			count := make([]int, shape.shards)
			for name, shard := range assigned {
				if shard < 0 || shard >= shape.shards {
					t.Fatalf("%s on shard %d of %d", name, shard, shape.shards)
				}
				count[shard]++
			}
			lo, hi := shape.names/shape.shards, (shape.names+shape.shards-1)/shape.shards
			for shard, n := range count {
				if n < lo || n > hi {
					t.Fatalf("%d names on %d shards: shard %d holds %d, want %d or %d (counts %v)",
						shape.names, shape.shards, shard, n, lo, hi, count)
				}
			}
			shuffled := slices.Clone(names)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if again := AssignShards(shuffled, shape.shards); !maps.Equal(again, assigned) {
				t.Fatalf("%d names on %d shards: the assignment depends on the order of the names", shape.names, shape.shards)
			}
			owners := map[string]int{}
			for index := range shape.shards {
				for _, name := range (Shard{Index: index, Total: shape.shards}).Owned(shuffled) {
					owners[name]++
					if assigned[name] != index {
						t.Fatalf("Owned puts %s on shard %d, AssignShards on %d", name, index, assigned[name])
					}
				}
			}
			for _, name := range names {
				if owners[name] != 1 {
					t.Fatalf("%s is owned by %d shards", name, owners[name])
				}
			}
		}
	}
}

// TestAssignShardsMovesFew: adding a source to an estate moves few of the
// others, since every moved source is fetched again by its new shard.
// Dealing the sorted names round-robin would move about half of them.
func TestAssignShardsMovesFew(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 2))
	moved, runs := 0, 0
	for _, shards := range []int{2, 3, 4, 8} {
		for range 50 {
			names := make([]string, 40+rng.IntN(60))
			for i := range names {
				names[i] = fmt.Sprintf("src-%x", rng.Uint64())
			}
			before := AssignShards(names, shards)
			after := AssignShards(append(slices.Clone(names), fmt.Sprintf("src-%x", rng.Uint64())), shards)
			for _, name := range names {
				if before[name] != after[name] {
					moved++
				}
			}
			runs++
		}
	}
	avg := float64(moved) / float64(runs)
	t.Logf("adding a source moved %.2f others on average", avg)
	if avg > 3 {
		t.Errorf("adding a source moves %.1f others on average, want at most 3", avg)
	}
}

func TestUnshardedOwnsEverything(t *testing.T) {
	names := []string{"b", "a", "c"}
	for _, s := range []Shard{{}, {Index: 0, Total: 1}} {
		if got := s.Owned(names); !slices.Equal(got, names) {
			t.Errorf("%+v owns %v, want %v", s, got, names)
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
		ds := ownDataset(now, name)
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
			if owned := slices.Contains(shard.Owned(names), name); owned != (n > 0) {
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
// perShard of them: the assignment is balanced.
func shardedNames(total, perShard int) []string {
	var names []string
	for i := range total * perShard {
		names = append(names, fmt.Sprintf("ibm-%d", i))
	}
	slices.Sort(names)
	return names
}

// TestEmptyShardWarns: with fewer sources than shards some shard holds
// none. It still starts and reports ready, but says so at WARN and in
// cloudcarbon_shard_sources, which the rules alert on.
func TestEmptyShardWarns(t *testing.T) {
	var cfg strings.Builder
	cfg.WriteString("ibm:\n")
	names := []string{"ibm-a", "ibm-b"}
	for _, name := range names {
		ds := ibmfake.Demo(time.Now())
		ownEnterprise(&ds, name)
		srv := httptest.NewServer(ibmfake.NewServer(ds, "k"))
		t.Cleanup(srv.Close)
		fmt.Fprintf(&cfg, "  - name: %s\n    api_key: k\n    enterprise_id: %s\n    api_url: %s\n    iam_url: %s\n", name, ds.EnterpriseID, srv.URL, srv.URL)
	}
	assigned := AssignShards(names, 3)
	for index := range 3 {
		t.Run(fmt.Sprint(index), func(t *testing.T) {
			o := testOptions(t)
			o.Shard = Shard{Index: index, Total: 3}
			writeConfig(t, o.ConfigFile, cfg.String())
			logs := &logbuf.Buffer{}
			a := startApp(t, o, logs, false)
			waitReady(t, a)
			owned := 0
			for _, shard := range assigned {
				if shard == index {
					owned++
				}
			}
			want := fmt.Sprintf(`# HELP cloudcarbon_shard_sources Sources this replica refreshes and exposes; 0 on a shard that the assignment left empty.
# TYPE cloudcarbon_shard_sources gauge
cloudcarbon_shard_sources{shard="%d",shards="3"} %d
# HELP cloudcarbon_shards_configured Number of shards the sources are split over (--shard.total): how many replicas should report.
# TYPE cloudcarbon_shards_configured gauge
cloudcarbon_shards_configured{shard="%d",shards="3"} 3
# HELP cloudcarbon_sources_configured Sources in the configuration, whichever shard holds them.
# TYPE cloudcarbon_sources_configured gauge
cloudcarbon_sources_configured{shard="%d",shards="3"} 2
`, index, owned, index, index)
			if got := gatherText(t, a.gatherer(), "cloudcarbon_shard_sources", "cloudcarbon_shards_configured", "cloudcarbon_sources_configured"); got != want {
				t.Errorf("shard metrics:\n%s\nwant:\n%s", got, want)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "This shard holds no source")
			if warned != (owned == 0) {
				t.Errorf("shard %d holds %d sources; warned: %v\n%s", index, owned, warned, logs.String())
			}
		})
	}
}
