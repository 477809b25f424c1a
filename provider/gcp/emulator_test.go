//go:build emulator

// The emulator acceptance test runs the production SQL, unchanged, through
// the real BigQuery client against goccy/bigquery-emulator (a GoogleSQL
// engine) loaded with testdata/emulator/fixture.yaml, and compares the
// records with expectations computed by hand from the fixture. It is kept
// out of the unit tests because the emulator is a cgo build of ZetaSQL
// that takes minutes to compile:
//
//	BQ_EMULATOR="$(tools/bqemulator/build.sh)" go test -tags emulator -run TestEmulator ./provider/gcp/

package gcp_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

const (
	emuProject      = "emu-project"
	emuCarbonTable  = "emu-project.carbon_export.carbon_footprint"
	emuBillingTable = "emu-project.billing_export.gcp_billing_export_v1_0A1B2C_3D4E5F_6A7B8C"
	emuBilling      = "0A1B2C-3D4E5F-6A7B8C"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startEmulator starts one emulator for the test and returns its REST
// endpoint once the fixture is loaded.
func startEmulator(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("BQ_EMULATOR")
	if bin == "" {
		t.Fatal("BQ_EMULATOR is not set: build the emulator with tools/bqemulator/build.sh and set BQ_EMULATOR to the path it prints")
	}
	port, grpcPort := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--project="+emuProject,
		"--host=127.0.0.1",
		fmt.Sprintf("--port=%d", port),
		fmt.Sprintf("--grpc-port=%d", grpcPort),
		"--data-from-yaml=testdata/emulator/fixture.yaml",
		"--log-level=warn",
	)
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel() // kills the emulator started above
		<-exited
		if t.Failed() {
			t.Logf("emulator output:\n%s", out.String())
		}
	})

	// The emulator serves HTTP only after loading the fixture (about 15
	// rows a second).
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/bigquery/v2/", port)
	probe := endpoint + "projects/" + emuProject + "/datasets"
	deadline := time.Now().Add(5 * time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("emulator exited before serving: %v\n%s", err, out.String())
		default:
		}
		resp, err := http.Get(probe)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator not ready after 5 minutes (last error %v)\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestEmulator(t *testing.T) {
	start := time.Now()
	endpoint := startEmulator(t)
	t.Logf("emulator ready in %v", time.Since(start).Round(time.Millisecond))

	logs := &logbuf.Buffer{}
	emuProvider := func(t *testing.T, edit func(*gcp.Options)) *gcp.Provider {
		return newProvider(t, gcp.Options{
			Project:               emuProject,
			CarbonTable:           emuCarbonTable,
			BillingTable:          emuBillingTable,
			Location:              "US",
			Endpoint:              endpoint,
			WithoutAuthentication: true,
			Logger:                slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}, edit)
	}
	fetchAll := func(t *testing.T, p *gcp.Provider, months ...provider.Month) provider.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		res, err := p.Fetch(ctx, months)
		if err != nil {
			t.Fatalf("Fetch: %v\nlogs:\n%s", err, logs.String())
		}
		return res
	}

	t.Run("records", func(t *testing.T) {
		p := emuProvider(t, nil)
		// January and February 2024 are one run (one billing query),
		// December 2022 and January 2023 another.
		res := fetchAll(t, p, dec22, jan23, jan24, feb24)

		checkEmulatorRecords(t, res)
	})

	t.Run("only the requested months", func(t *testing.T) {
		p := emuProvider(t, func(o *gcp.Options) { o.BillingTable = "" })
		res := fetchAll(t, p, feb24)
		for _, r := range res.Records {
			if r.Month != feb24 || r.Has(provider.Cost) {
				t.Errorf("unexpected record %+v", r)
			}
		}
		if len(res.Records) != 3 {
			t.Errorf("records = %d, want the three scopes of February's one row", len(res.Records))
		}
	})

	t.Run("a month alone counts as in a run", func(t *testing.T) {
		p := emuProvider(t, nil)
		alone := costOf(t, fetchAll(t, p, jan24), "web-prod", jan24)
		inRun := costOf(t, fetchAll(t, p, jan24, feb24), "web-prod", jan24)
		if alone != inRun {
			t.Errorf("January cost alone %v, in a run with February %v", alone, inRun)
		}
	})

	// Every key in one query, reading both label columns; and each key
	// alone, reading its column only.
	for _, configured := range [][]string{{"team", "k8s-namespace", "project:env"}, nil} {
		t.Run(fmt.Sprintf("tag feed of %v", configured), func(t *testing.T) {
			checkEmulatorTags(t, emuProvider(t, func(o *gcp.Options) { o.TagKeys = configured }), logs)
		})
	}

	t.Run("missing table", func(t *testing.T) {
		p := emuProvider(t, func(o *gcp.Options) { o.CarbonTable = "emu-project.carbon_export.no_such_table" })
		_, err := p.Fetch(t.Context(), []provider.Month{jan24})
		if err == nil {
			t.Fatal("Fetch succeeded on a missing table")
		}
		// The emulator answers a missing table with a 400 jobInternalError
		// rather than BigQuery's 404 notFound, so only the message is
		// checked here; the 404 classification is covered by the unit
		// tests against gcpfake.
		if !strings.Contains(err.Error(), "carbon query on emu-project.carbon_export.no_such_table") {
			t.Errorf("error %v does not name the table", err)
		}
	})
}

// emuKey identifies an emulator record; emuEmissions are its figures.
type emuKey struct {
	acct, svc, loc string
	m              provider.Month
	sc             provider.Scope
}

type emuEmissions struct {
	g, mb float64
	k     provider.Quantity
}

var jan23 = provider.NewMonth(2023, time.January)

// checkEmulatorRecords compares the records of December 2022, January
// 2023, January and February 2024 with the fixture's.
func checkEmulatorRecords(t *testing.T, res provider.Result) {
	t.Helper()
	wantEmissions, wantCost := emulatorEmissions(), emulatorCost()
	gotEmissions := map[emuKey]emuEmissions{}
	gotCost := map[emuKey]float64{}
	for _, r := range res.Records {
		k := emuKey{r.Account, r.Service, r.Location, r.Month, r.Scope}
		if r.Scope == provider.ScopeNone {
			if r.Known != provider.Cost {
				t.Errorf("%v: cost record with Known %b", k, r.Known)
			}
			gotCost[k] = r.CostUSD
			continue
		}
		gotEmissions[k] = emuEmissions{r.EmissionsGrams, r.MarketBasedGrams, r.Known}
	}
	// The fixture's kg values are dyadic fractions: sums and the
	// conversion to grams are exact.
	if !reflect.DeepEqual(gotEmissions, wantEmissions) {
		t.Errorf("emissions:\n got %v\nwant %v", gotEmissions, wantEmissions)
	}
	if len(gotCost) != len(wantCost) {
		t.Errorf("cost records:\n got %v\nwant %v", gotCost, wantCost)
	}
	for k, byRate := range wantCost {
		var want float64
		for rate, n := range byRate {
			want += float64(n) / 1e6 / rate
		}
		got, ok := gotCost[k]
		// One micro is at least 1e-6/rate USD; the tolerance is six
		// orders of magnitude below it.
		if !ok || math.Abs(got-want) > 1e-12*want {
			t.Errorf("%v: cost %v USD, want %v", k, got, want)
		}
		if len(byRate) == 1 {
			for rate, n := range byRate {
				if back := int64(math.Round(got * rate * 1e6)); back != n {
					t.Errorf("%v: %d micros, want %d", k, back, n)
				}
			}
		}
	}

	wantAccounts := []provider.Account{
		{Provider: "gcp", ID: "data-prod", Name: "Data (prod)", ParentType: "billing_account", ParentID: emuBilling},
		{Provider: "gcp", ID: "none", ParentType: "billing_account", ParentID: emuBilling},
		{Provider: "gcp", ID: "web-prod", Name: "Web (prod)", ParentType: "billing_account", ParentID: emuBilling},
	}
	if !reflect.DeepEqual(res.Accounts, wantAccounts) {
		t.Errorf("accounts:\n got %+v\nwant %+v", res.Accounts, wantAccounts)
	}
	wantRevisions := map[provider.Month]string{dec22: "9", jan23: "9", jan24: "12", feb24: "12"}
	if !reflect.DeepEqual(res.Revisions, wantRevisions) {
		t.Errorf("revisions = %v, want %v", res.Revisions, wantRevisions)
	}
}

// emulatorEmissions are the fixture's emission records, computed by hand
// from it: kgCO2e × 1000.
func emulatorEmissions() map[emuKey]emuEmissions {
	const lb, both = provider.Emissions, provider.Emissions | provider.EmissionsMarketBased
	return map[emuKey]emuEmissions{
		// Before 2023: market-based is NULL, so absent (not zero).
		{"web-prod", "Compute Engine", "us-central1", dec22, provider.Scope1}: {500, 0, lb},
		{"web-prod", "Compute Engine", "us-central1", dec22, provider.Scope2}: {10250, 0, lb},
		{"web-prod", "Compute Engine", "us-central1", dec22, provider.Scope3}: {4000, 0, lb},
		// NULL project, multi-region EU.
		{"none", "Cloud Storage", "eu", dec22, provider.Scope1}: {125, 0, lb},
		{"none", "Cloud Storage", "eu", dec22, provider.Scope2}: {1500, 0, lb},
		{"none", "Cloud Storage", "eu", dec22, provider.Scope3}: {750, 0, lb},
		// 2023: market-based present; scopes 1 and 3 repeat their value.
		{"web-prod", "Compute Engine", "us-central1", jan23, provider.Scope1}: {500, 500, both},
		{"web-prod", "Compute Engine", "us-central1", jan23, provider.Scope2}: {8000, 2000, both},
		{"web-prod", "Compute Engine", "us-central1", jan23, provider.Scope3}: {4000, 4000, both},
		// Region and its zone merged: 0.25+0.125, 6.5+0.5 (1.25+0.25), 3+0.375.
		{"web-prod", "Compute Engine", "us-central1", jan24, provider.Scope1}: {375, 375, both},
		{"web-prod", "Compute Engine", "us-central1", jan24, provider.Scope2}: {7000, 1500, both},
		{"web-prod", "Compute Engine", "us-central1", jan24, provider.Scope3}: {3375, 3375, both},
		// Two rows of one group: 0.0625×2, 2+1 (1+0.5), 1.5+0.5.
		{"data-prod", "BigQuery", "us", jan24, provider.Scope1}: {125, 125, both},
		{"data-prod", "BigQuery", "us", jan24, provider.Scope2}: {3000, 1500, both},
		{"data-prod", "BigQuery", "us", jan24, provider.Scope3}: {2000, 2000, both},
		// A deleted project in 2024.
		{"none", "Compute Engine", "europe-west1", jan24, provider.Scope1}: {1000, 1000, both},
		{"none", "Compute Engine", "europe-west1", jan24, provider.Scope2}: {2000, 500, both},
		{"none", "Compute Engine", "europe-west1", jan24, provider.Scope3}: {3000, 3000, both},
		{"web-prod", "Cloud Run", "europe-west4", feb24, provider.Scope1}:  {250, 250, both},
		{"web-prod", "Cloud Run", "europe-west4", feb24, provider.Scope2}:  {1000, 125, both},
		{"web-prod", "Cloud Run", "europe-west4", feb24, provider.Scope3}:  {500, 500, both},
	}
}

// emulatorCost is the fixture's net cost by cost record, in exact micros
// of EUR per conversion rate, from the fixture's comments. A truncating
// CAST would be one micro off in several of them; a float sum would drift.
func emulatorCost() map[emuKey]map[float64]int64 {
	return map[emuKey]map[float64]int64{
		{"web-prod", "Compute Engine", "us-central1", dec22, ""}: {0.95: 11345677},
		// 1003747 + 8200000 + 0 + 200000; the row exported after the
		// partition window (500 EUR) is not counted.
		{"web-prod", "Compute Engine", "us-central1", jan24, ""}: {0.9: 9403747},
		{"data-prod", "BigQuery", "us", jan24, ""}:               {0.9: 3000000, 0.8: 720000},
		{"none", "Cloud Support", "global", jan24, ""}:           {0.9: 29000000},
		{"web-prod", "Compute Engine", "us-central1", feb24, ""}: {0.9: 7000000},
	}
}

// checkEmulatorTags compares each key's tag records of January and
// February 2024 with the fixture's.
func checkEmulatorTags(t *testing.T, p *gcp.Provider, logs *logbuf.Buffer) {
	t.Helper()
	for key, want := range emulatorTags() {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		recs, err := p.ReadTagCosts(ctx, []provider.Month{jan24, feb24}, key)
		cancel()
		if err != nil {
			t.Fatalf("ReadTagCosts(%q): %v\nlogs:\n%s", key, err, logs.String())
		}
		got := map[emuTag]float64{}
		for _, r := range recs {
			got[emuTag{emuKey{r.Account, r.Service, r.Location, r.Month, r.Scope}, r.Value}] += r.CostUSD
		}
		if len(got) != len(want) {
			t.Errorf("%s:\n got %v\nwant %v", key, got, want)
		}
		for k, byRate := range want {
			var usd float64
			for rate, n := range byRate {
				usd += float64(n) / 1e6 / rate
			}
			if g, ok := got[k]; !ok || math.Abs(g-usd) > 1e-12*math.Abs(usd) {
				t.Errorf("%s: %v: %v USD, want %v", key, k, g, usd)
			}
		}
	}
}

// emuTag is a tag record of the emulator: its series and value.
type emuTag struct {
	emuKey
	value string
}

// emulatorTags are the fixture's cost of January and February 2024 by
// key, series and value, in exact micros of EUR per conversion rate: the
// cost of emulatorCost split by the rows' labels. A row without the label
// and the row whose team label is empty are untagged; the row that gives
// team twice counts once, under the greater value.
func emulatorTags() map[string]map[emuTag]map[float64]int64 {
	web := emuKey{"web-prod", "Compute Engine", "us-central1", jan24, ""}
	webFeb := emuKey{"web-prod", "Compute Engine", "us-central1", feb24, ""}
	data := emuKey{"data-prod", "BigQuery", "us", jan24, ""}
	support := emuKey{"none", "Cloud Support", "global", jan24, ""}
	return map[string]map[emuTag]map[float64]int64{
		"team": {
			{web, "web"}: {0.9: 1003747}, {web, "data"}: {0.9: 8200000}, {web, ""}: {0.9: 200000},
			{webFeb, "web"}: {0.9: 7000000},
			{data, ""}:      {0.9: 3000000}, {data, "ml"}: {0.8: 720000},
			{support, ""}: {0.9: 29000000},
		},
		"k8s-namespace": {
			{web, "checkout"}: {0.9: 1003747}, {web, ""}: {0.9: 8400000},
			{webFeb, ""}:  {0.9: 7000000},
			{data, ""}:    {0.9: 3000000, 0.8: 720000},
			{support, ""}: {0.9: 29000000},
		},
		// The support fee's row names no project but carries its labels.
		"project:env": {
			{web, "prod"}: {0.9: 9403747}, {webFeb, "prod"}: {0.9: 7000000},
			{data, "prod"}: {0.9: 3000000, 0.8: 720000}, {support, "prod"}: {0.9: 29000000},
		},
	}
}
