package app

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/report"
)

// TestMarketBasedOnlySourceIsServed: an Oracle Cloud source with
// emission_calculation_method spend_based reports market-based emissions
// only. Its months count as published: /metrics serves the market-based
// family, its history and the data month, and /report has its months.
func TestMarketBasedOnlySourceIsServed(t *testing.T) {
	now := time.Now()
	d, err := oci.Plugin().Demo(t.Context(), now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	entry := d.Entries[0]
	entry["emission_calculation_method"] = "spend_based"
	text, err := yaml.Marshal(map[string]any{"oci": []map[string]any{entry}})
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	writeConfig(t, o.ConfigFile, string(text))
	a := startApp(t, o, nil, false)
	waitReady(t, a)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		body, _ := io.ReadAll(rec.Body)
		return string(body)
	}
	metrics := get("/metrics")
	for _, want := range []string{
		`cloudcarbon_emissions_market_based_grams{account=`,
		`cloudcarbon_history_emissions_market_based_grams{account=`,
		`cloudcarbon_data_month_timestamp_seconds{provider="oci",source="oci-demo"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if strings.Contains(metrics, `cloudcarbon_emissions_grams{`) {
		t.Error("/metrics serves location-based emissions for a spend-based source")
	}
	var rep struct {
		Rows []struct {
			Provider      string              `json:"provider"`
			Values        map[string]*float64 `json:"values"`
			MonthsCovered int                 `json:"months_covered"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(get("/report?period=month&format=json")), &rep); err != nil {
		t.Fatal(err)
	}
	months := 0
	for _, row := range rep.Rows {
		if row.Provider == oci.Name && row.Values[report.KeyMarketBased] != nil && row.MonthsCovered > 0 {
			months++
		}
	}
	if months == 0 {
		t.Error("/report has no month of the spend-based source")
	}
}
