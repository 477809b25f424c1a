package ibm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// BenchmarkFetch measures the client's side of a first refresh at scale:
// 14 months of 2,000 (service, location, resource group) rows each, 28,000
// rows in 280 pages of 100 over loopback HTTP, decoded and summed over
// resource groups into 5,600 records. The pages are encoded once up front
// so that the figure is the client's, not the fake's.
func BenchmarkFetch(b *testing.B) {
	last := provider.NewMonth(2026, time.October)
	type row struct {
		AccountID       string         `json:"account_id"`
		CarbonEmission  float64        `json:"carbon_emission"`
		Energy          float64        `json:"energy_consumption"`
		Service         string         `json:"service"`
		Location        string         `json:"location"`
		ResourceGroupID string         `json:"resource_group_id"`
		Month           map[string]any `json:"month"`
	}
	var rows []row
	for m := last - 13; m <= last; m++ {
		for i := range 2000 {
			rows = append(rows, row{
				AccountID: acct, CarbonEmission: float64(i), Energy: float64(2 * i),
				Service: fmt.Sprintf("Service %d", i%40), Location: fmt.Sprintf("Location %d", i/40%10),
				ResourceGroupID: fmt.Sprintf("rg%d", i/400), Month: map[string]any{"value": m.String()},
			})
		}
	}
	pages := map[string][]byte{}
	for off := 0; off < len(rows); off += 100 {
		page := map[string]any{"carbon_emissions": rows[off : off+100], "offset": off, "limit": 100, "total_count": len(rows)}
		if off+100 < len(rows) {
			page["next"] = map[string]string{"href": "/v1/carbon_emissions?offset=" + strconv.Itoa(off+100) + "&limit=100"}
		}
		body, err := json.Marshal(page)
		if err != nil {
			b.Fatal(err)
		}
		pages[strconv.Itoa(off)] = body
	}
	mux := http.NewServeMux()
	mux.Handle("/identity/token", ibmfake.NewServer(ibmfake.Dataset{}, "bench-key"))
	mux.HandleFunc("/v1/carbon_emissions", func(w http.ResponseWriter, r *http.Request) {
		off := r.URL.Query().Get("offset")
		if off == "" {
			off = "0"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pages[off])
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := ibm.New(ibm.Options{APIKey: "bench-key", APIURL: srv.URL, IAMURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	quietSDKLog(b)
	months := provider.Range(last-13, last)
	b.ReportAllocs()
	for b.Loop() {
		res, err := p.Fetch(b.Context(), months)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Records) != 14*400 {
			b.Fatalf("records = %d, want %d", len(res.Records), 14*400)
		}
	}
}

// TestPagesInParallel checks that the pages of a query go out in
// parallel, bounded by PageConcurrency, and that this changes neither the
// result, to the last bit of every sum, nor the requests made.
func TestPagesInParallel(t *testing.T) {
	now := time.Date(2025, time.June, 20, 12, 0, 0, 0, time.UTC)
	ds := ibmfake.Scale(now, 10) // 2,240 rows: 23 pages, 1 page of accounts
	last := ibmfake.LatestPublished(now)
	months := provider.Range(last-ibmfake.ScaleMonths+1, last)
	quietSDKLog(t)

	run := func(t *testing.T, concurrency int) (provider.Result, int, int) {
		t.Helper()
		e := newEnv(t, ds, nil)
		// Latency keeps requests in flight long enough to overlap; no
		// assertion depends on how long anything takes.
		e.fake.SetLatency(10 * time.Millisecond)
		p := e.provider(t, func(o *ibm.Options) { o.EnterpriseID = ds.EnterpriseID; o.PageConcurrency = concurrency })
		res := fetch(t, p, months...)
		return res, e.fake.Requests(ibmfake.CarbonPath), e.fake.MaxInFlight()
	}
	want, wantRequests, inFlight := run(t, 1)
	if inFlight != 1 {
		t.Errorf("PageConcurrency 1: %d requests in flight at once, want 1", inFlight)
	}
	if len(want.Records) != 10*210 || len(want.Accounts) != 10 || wantRequests != 23+1 {
		t.Fatalf("PageConcurrency 1: %d records, %d accounts, %d requests; want %d, 10, 24",
			len(want.Records), len(want.Accounts), wantRequests, 10*210)
	}
	checkTotals(t, ds, want, months, nil)

	for _, concurrency := range []int{2, 8, ibm.MaxPageConcurrency} {
		t.Run(strconv.Itoa(concurrency), func(t *testing.T) {
			got, requests, inFlight := run(t, concurrency)
			if inFlight < 2 || inFlight > concurrency {
				t.Errorf("%d requests in flight at once, want 2 to %d", inFlight, concurrency)
			}
			if requests != wantRequests {
				t.Errorf("%d requests, want %d as with PageConcurrency 1", requests, wantRequests)
			}
			if !reflect.DeepEqual(got, want) {
				t.Error("result differs from PageConcurrency 1's")
			}
		})
	}
}

// BenchmarkColdStart measures a first refresh of a large enterprise
// against a distant API: ibmfake.Scale(250) (52,500 records, 105,000
// series, 560 pages plus 3 of accounts) with 50 ms added to every answer,
// one page at a time against PageConcurrency 8. An operation builds a new
// Provider, so it pays for the IAM token too. One iteration is enough and
// takes half a minute at concurrency 1:
//
//	go test -run '^$' -bench ColdStart -benchtime 1x ./provider/ibm
func BenchmarkColdStart(b *testing.B) {
	now := time.Now()
	ds := ibmfake.Scale(now, 250)
	fake := ibmfake.NewServer(ds, "bench-key")
	srv := httptest.NewServer(fake)
	defer srv.Close()
	quietSDKLog(b)
	last := ibmfake.LatestPublished(now)
	months := provider.Range(last-ibmfake.ScaleMonths+1, last)
	newProvider := func(concurrency int) *ibm.Provider {
		p, err := ibm.New(ibm.Options{APIKey: "bench-key", APIURL: srv.URL, IAMURL: srv.URL,
			EnterpriseID: ds.EnterpriseID, PageConcurrency: concurrency})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	// Let the fake group its answers once, before any latency, so that
	// no sub-benchmark pays for the fake's first request.
	if _, err := newProvider(ibm.MaxPageConcurrency).Fetch(b.Context(), months); err != nil {
		b.Fatal(err)
	}
	fake.SetLatency(50 * time.Millisecond)

	for _, concurrency := range []int{1, 8} {
		b.Run(fmt.Sprintf("page_concurrency=%d", concurrency), func(b *testing.B) {
			before := fake.Requests(ibmfake.CarbonPath)
			for b.Loop() {
				res, err := newProvider(concurrency).Fetch(b.Context(), months)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Records) != 250*210 || len(res.Accounts) != 250 {
					b.Fatalf("%d records, %d accounts; want %d, 250", len(res.Records), len(res.Accounts), 250*210)
				}
			}
			b.ReportMetric(float64(fake.Requests(ibmfake.CarbonPath)-before)/float64(b.N), "requests/op")
		})
	}
}
