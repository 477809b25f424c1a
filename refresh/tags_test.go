package refresh

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

// tagProvider is a costProvider whose cost carries a team tag: in every
// month, Code Engine in dallas costs 3 dollars for team web and 1 without
// the tag, Kubernetes Service in frankfurt 2 for team data. No cost
// carries any other key.
type tagProvider struct {
	*costProvider
	tagMu    sync.Mutex
	tagCalls []string
	tagErr   error
}

func (p *tagProvider) TagCosts(_ context.Context, months []provider.Month, key string) ([]provider.TagCost, error) {
	p.tagMu.Lock()
	defer p.tagMu.Unlock()
	p.tagCalls = append(p.tagCalls, key)
	if p.tagErr != nil {
		return nil, p.tagErr
	}
	var out []provider.TagCost
	for _, m := range months {
		row := func(service, location string, usd float64, value string) provider.TagCost {
			if key != "team" {
				value = ""
			}
			return provider.TagCost{Record: provider.Record{Provider: "ibm", Account: "acc1", Service: service, Location: location,
				Month: m, CostUSD: usd, Known: provider.Cost}, Value: value}
		}
		out = append(out, row("Code Engine", "dallas", 3, "web"), row("Code Engine", "dallas", 1, ""),
			row("Kubernetes Service", "frankfurt", 2, "data"))
	}
	return out, nil
}

func (p *tagProvider) tagCallCount() int {
	p.tagMu.Lock()
	defer p.tagMu.Unlock()
	return len(p.tagCalls)
}

// TestAllocation: a source that allocates by team reads the tag weights
// of the latest published month and the provisional one, serves every
// series split by them (adding up to the series), warns about a key no
// cost carries, serves its allocations after a restart without reading
// tags until a month is due, and keeps them through a failed read.
func TestAllocation(t *testing.T) {
	e := newCostEnv(t)
	o, path, s, m, reg := e.o, e.path, e.s, e.m, e.reg
	published := func(mo provider.Month) []provider.Record {
		if mo >= month("2026-11") {
			return nil
		}
		return sampleRecords(mo)
	}
	fp := &tagProvider{costProvider: &costProvider{fakeProvider: &fakeProvider{records: published}}}
	src := Source{Name: "ibm", Identity: "ibm|test", Provider: fp, Provisional: true,
		Allocation: provider.Allocation{By: []string{"team", "nosuch"}, Top: 100}}
	configure(s, src)
	var logs bytes.Buffer
	r := &refresher{src: src, store: s, metrics: m, opts: o, sem: make(chan struct{}, 1), logger: slog.New(slog.NewTextHandler(&logs, nil))}
	r.refresh(t.Context())

	d, _ := s.Get("ibm")
	for _, key := range src.Allocation.By {
		for _, mo := range []provider.Month{month("2026-10"), month("2026-11")} {
			if d.Allocations.Month(key, mo) == nil {
				t.Errorf("no tag weights of %s for %s", key, mo)
			}
		}
	}
	if n := fp.tagCallCount(); n != 2 {
		t.Errorf("%d tag reads, want one per key", n)
	}
	if !strings.Contains(logs.String(), "No cost carries the allocation key") || !strings.Contains(logs.String(), "key=nosuch") {
		t.Errorf("no warning about the key no cost carries:\n%s", logs.String())
	}
	// October: Code Engine 10,001 + 10 g, 3/4 web; Kubernetes Service
	// 10,002 g, all data.
	series := func(key, service, location, value string, v float64) string {
		return fmt.Sprintf(`cloudcarbon_allocated_emissions_grams{account="acc1",key=%q,location=%q,month="2026-10",provider="ibm",scope="unspecified",service=%q,value=%q} %v`,
			key, location, service, value, v)
	}
	wants := []string{
		series("team", "Code Engine", "dallas", "web", 7508.25),
		series("team", "Code Engine", "dallas", "(untagged)", 2502.75),
		series("team", "Kubernetes Service", "frankfurt", "data", 10002),
		series("nosuch", "Code Engine", "dallas", "(untagged)", 10011),
		`cloudcarbon_allocation_tagged_ratio{key="team",provider="ibm",source="ibm"} 0.8333333333333334`,
		`cloudcarbon_allocation_tagged_ratio{key="nosuch",provider="ibm",source="ibm"} 0`,
		`cloudcarbon_allocation_values{key="team",provider="ibm",source="ibm"} 2`,
		`cloudcarbon_allocation_refresh_success{provider="ibm",source="ibm"} 1`,
		`cloudcarbon_provisional_allocated_emissions_grams{account="acc1",key="team",location="dallas",month="2026-11",months_ahead="1",provider="ibm",scope="unspecified",service="Code Engine",value="web"}`,
	}
	checkText := func(when string) {
		t.Helper()
		text := string(reg.Body())
		for _, want := range wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s: /metrics has no %s", when, want)
			}
		}
	}
	checkText("first refresh")

	// A restart from the state file serves the allocations at once and
	// reads no tags until a month is due.
	s2, m2, reg2 := newTestStore(t, 13, store.NewStateFile(path))
	fp2 := &tagProvider{costProvider: &costProvider{fakeProvider: &fakeProvider{records: published}}}
	src2 := src
	src2.Provider = fp2
	s2.Configure([]store.Key{{Name: "ibm", Provider: "ibm", Identity: "ibm|test"}}, s2.LoadState())
	r2 := &refresher{src: src2, store: s2, metrics: m2, opts: o, sem: make(chan struct{}, 1), logger: discardLogger()}
	if wait := r2.nextWait(); wait <= 0 || fp2.tagCallCount() != 0 {
		t.Errorf("restart: next in %s, %d tag reads; want none due", wait, fp2.tagCallCount())
	}
	if text := string(reg2.Body()); !strings.Contains(text, wants[0]) {
		t.Errorf("restart: /metrics has no %s", wants[0])
	}

	// A failed read keeps the allocations, and says so.
	e.now = e.now.Add(7 * time.Hour)
	fp.tagErr = &provider.Error{Reason: provider.ReasonPermission, Err: fmt.Errorf("needs the cost permission")}
	r.refresh(t.Context())
	wants = slices.Replace(wants, 7, 8, `cloudcarbon_allocation_refresh_success{provider="ibm",source="ibm"} 0`)
	checkText("after a failed read")
	if text := string(reg.Body()); !strings.Contains(text, `cloudcarbon_refresh_errors_total{provider="ibm",reason="permission",source="ibm"} 1`) {
		t.Error("the failed tag read is not counted")
	}
}
