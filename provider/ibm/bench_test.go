package ibm_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

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
	// TestMain turns go-sdk-core's debug dumps on for its leak check; they
	// would dominate the figure.
	quiet := core.GetLogger()
	core.SetLogger(core.NewLogger(core.LevelError, log.New(io.Discard, "", 0), log.New(io.Discard, "", 0)))
	defer core.SetLogger(quiet)
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
