package gcp_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

// queryRecorder serves the fake and keeps its answers to the requests for
// each query kind's rows, so that fuzz seeds are the fake's real answers.
type queryRecorder struct {
	fake http.Handler
	mu   sync.Mutex
	// answers[kind] are the bodies of that kind's answers.
	answers map[string][][]byte
}

func (q *queryRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, kind := range []string{gcpfake.KindCarbon, gcpfake.KindBilling} {
		if !gcpfake.RowRequests(kind)(r) {
			continue
		}
		rec := httptest.NewRecorder()
		q.fake.ServeHTTP(rec, r)
		q.mu.Lock()
		q.answers[kind] = append(q.answers[kind], rec.Body.Bytes())
		q.mu.Unlock()
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	q.fake.ServeHTTP(w, r)
}

// fakeAnswers returns the answers gcpfake gives the provider's queries of
// the demo dataset's latest month, three rows a page, by query kind.
func fakeAnswers(tb testing.TB, month provider.Month, now time.Time) map[string][][]byte {
	tb.Helper()
	ds := gcpfake.Demo(now)
	// The demo's rows under the test's project and tables.
	ds.Project, ds.CarbonTable, ds.BillingTable, ds.Location = project, carbonTable, billingTable, "US"
	fake := gcpfake.NewServer(ds)
	fake.SetPageSize(3)
	rec := &queryRecorder{fake: fake, answers: map[string][][]byte{}}
	ts := httptest.NewServer(rec)
	defer ts.Close()
	p, err := gcp.New(context.Background(), gcp.Options{
		Project: project, CarbonTable: carbonTable, BillingTable: billingTable, Location: "US",
		Endpoint: ts.URL + gcpfake.BasePath, WithoutAuthentication: true, HTTPClient: ts.Client(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if _, err := p.Fetch(context.Background(), []provider.Month{month}); err != nil {
		tb.Fatalf("seed fetch: %v", err)
	}
	for k, bodies := range rec.answers {
		rec.answers[k] = bodies[:min(3, len(bodies))]
	}
	return rec.answers
}

// switchHandler serves through the handler it holds, so that every fuzz
// input gets a fresh fake (no fault left over) behind one server.
type switchHandler struct {
	h atomic.Pointer[gcpfake.Server]
}

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

// FuzzQueryResponse answers one of the provider's queries (billing or
// carbon) with an arbitrary jobs.query body, the other one truly, and
// runs the whole fetch: the BigQuery client's decoding of rows into the
// provider's row types, then build. A failure must be a classified
// *provider.Error and never a timeout (a retry loop); every record must
// carry finite figures and valid, non-empty labels.
func FuzzQueryResponse(f *testing.F) {
	now := time.Now()
	demoMonth := gcpfake.LatestPublished(now)
	for kind, bodies := range fakeAnswers(f, demoMonth, now) {
		for _, b := range bodies {
			f.Add(kind == gcpfake.KindBilling, string(b))
		}
	}
	const row = `{"kind":"bigquery#queryResponse","jobComplete":true,"totalRows":"1","schema":{"fields":[` +
		`{"name":"usage_month","type":"DATE"},{"name":"project_id","type":"STRING"},{"name":"scope1_kg","type":"FLOAT"},` +
		`{"name":"scope2_location_kg","type":"FLOAT"},{"name":"scope2_market_kg","type":"FLOAT"}]},"rows":[{"f":[` +
		`{"v":"2024-01-01"},{"v":"web"},{"v":"%s"},{"v":"1"},{"v":"1"}]}]}`
	for _, v := range []string{"NaN", "Infinity", "-Infinity", "1.7976931348623157e308"} {
		f.Add(false, strings.Replace(row, "%s", v, 1))
	}
	f.Add(true, `{"kind":"bigquery#queryResponse","jobComplete":true,"schema":{"fields":[{"name":"invoice_month","type":"STRING"},`+
		`{"name":"currency_conversion_rate","type":"FLOAT"},{"name":"net_cost_micros","type":"INTEGER"}]},`+
		`"rows":[{"f":[{"v":"202401"},{"v":"Infinity"},{"v":"9223372036854775807"}]}]}`)
	f.Add(false, `{"kind":"bigquery#queryResponse","jobComplete":false,"jobReference":{"projectId":"test-project","jobId":"nope"}}`)

	f.Fuzz(queryFuzzer(f, demoMonth))
}

// queryFuzzer returns the body of FuzzQueryResponse: a provider on a fake
// whose next query of a kind answers body.
func queryFuzzer(tb testing.TB, demoMonth provider.Month) func(t *testing.T, billing bool, body string) {
	sw := &switchHandler{}
	sw.h.Store(gcpfake.NewServer(handDataset()))
	ts := httptest.NewServer(sw)
	tb.Cleanup(ts.Close)
	p, err := gcp.New(context.Background(), gcp.Options{
		Project: project, CarbonTable: carbonTable, BillingTable: billingTable, Location: "US",
		Endpoint: ts.URL + gcpfake.BasePath, WithoutAuthentication: true, HTTPClient: ts.Client(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	months := []provider.Month{jan24, demoMonth}

	return func(t *testing.T, billing bool, body string) {
		fake := gcpfake.NewServer(handDataset())
		kind := gcpfake.KindCarbon
		if billing {
			kind = gcpfake.KindBilling
		}
		fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: kind, Status: http.StatusOK, Body: body})
		sw.h.Store(fake)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := p.Fetch(ctx, months)
		for _, err := range []error{err, res.Partial} {
			if err == nil {
				continue
			}
			var perr *provider.Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
			}
			if perr.Reason == provider.ReasonTimeout || perr.Reason == provider.ReasonCanceled {
				t.Fatalf("error %v: %s", err, perr.Reason)
			}
		}
		if err != nil {
			return
		}
		for _, r := range res.Records {
			for _, v := range []float64{r.EmissionsGrams, r.MarketBasedGrams, r.CostUSD} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("record with a non-finite figure: %+v", r)
				}
			}
			for _, l := range []string{r.Account, r.Service, r.Location} {
				if l == "" || !utf8.ValidString(l) {
					t.Fatalf("record with an empty or invalid label: %+v", r)
				}
			}
		}
	}
}
