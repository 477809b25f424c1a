package gcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

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

// handAnswers are answers the fake never gives: non-finite and overflowing
// figures, absurd rates and micros, and answers without a job.
func handAnswers() []struct {
	billing bool
	body    string
} {
	const row = `{"kind":"bigquery#queryResponse","jobComplete":true,"totalRows":"1","schema":{"fields":[` +
		`{"name":"usage_month","type":"DATE"},{"name":"project_id","type":"STRING"},{"name":"scope1_kg","type":"FLOAT"},` +
		`{"name":"scope2_location_kg","type":"FLOAT"},{"name":"scope2_market_kg","type":"FLOAT"}]},"rows":[{"f":[` +
		`{"v":"2024-01-01"},{"v":"web"},{"v":"%s"},{"v":"1"},{"v":"1"}]}]}`
	var out []struct {
		billing bool
		body    string
	}
	for _, v := range []string{"NaN", "Infinity", "-Infinity", "1.7976931348623157e308"} {
		out = append(out, struct {
			billing bool
			body    string
		}{false, strings.Replace(row, "%s", v, 1)})
	}
	return append(out, []struct {
		billing bool
		body    string
	}{
		{true, `{"kind":"bigquery#queryResponse","jobComplete":true,"schema":{"fields":[{"name":"invoice_month","type":"STRING"},` +
			`{"name":"currency_conversion_rate","type":"FLOAT"},{"name":"net_cost_micros","type":"INTEGER"}]},` +
			`"rows":[{"f":[{"v":"202401"},{"v":"Infinity"},{"v":"9223372036854775807"}]}]}`},
		{false, `{"kind":"bigquery#queryResponse","jobComplete":false,"jobReference":{"projectId":"test-project","jobId":"nope"}}`},
	}...)
}

// FuzzQueryResponse decodes an arbitrary jobs.query or getQueryResults
// answer of the billing or the carbon query into records: the rows are
// turned into the client's values as the BigQuery client does, then
// loaded and built by the provider's own code (gcp.DecodeRows), with no
// client, server or HTTP in the way. A failure must be a malformed
// *provider.Error; every record must carry finite figures and valid,
// non-empty labels. TestHandAnswersThroughTheClient runs the hand-written
// seeds through the whole client as well.
func FuzzQueryResponse(f *testing.F) {
	now := time.Now()
	demoMonth := gcpfake.LatestPublished(now)
	for kind, bodies := range fakeAnswers(f, demoMonth, now) {
		for _, b := range bodies {
			f.Add(kind == gcpfake.KindBilling, string(b))
		}
	}
	for _, a := range handAnswers() {
		f.Add(a.billing, a.body)
	}
	months := []provider.Month{jan24, demoMonth}
	f.Fuzz(func(t *testing.T, billing bool, body string) {
		schema, rows, ok := clientValues(body)
		if !ok {
			return // the client refuses it before the provider sees a row
		}
		res, err := gcp.DecodeRows(billing, schema, rows, months)
		if err != nil {
			var perr *provider.Error
			if !errors.As(err, &perr) || perr.Reason != provider.ReasonMalformed {
				t.Fatalf("error %v (%T) is not a malformed *provider.Error", err, err)
			}
			return
		}
		checkRecords(t, res)
	})
}

// checkRecords fails t on a record with a non-finite figure or an empty
// or invalid label.
func checkRecords(t *testing.T, res provider.Result) {
	t.Helper()
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

// clientValues decodes the schema and rows of an answer into the values
// the BigQuery client hands a row's ValueLoader (its convertRow): NULL,
// the parsed value of a basic type, a list for a repeated column. ok is
// false where the client would fail before any row is loaded.
func clientValues(body string) (schema bigquery.Schema, rows [][]bigquery.Value, ok bool) {
	var a struct {
		Schema *struct {
			Fields json.RawMessage `json:"fields"`
		} `json:"schema"`
		Rows []struct {
			F []struct {
				V any `json:"v"`
			} `json:"f"`
		} `json:"rows"`
	}
	if json.Unmarshal([]byte(body), &a) != nil {
		return nil, nil, false
	}
	if a.Schema == nil || len(a.Schema.Fields) == 0 {
		return nil, nil, len(a.Rows) == 0
	}
	defer func() {
		if recover() != nil { // a schema the client cannot read either
			schema, rows, ok = nil, nil, false
		}
	}()
	schema, err := bigquery.SchemaFromJSON(a.Schema.Fields)
	if err != nil {
		return nil, nil, false
	}
	for _, r := range a.Rows {
		if len(r.F) != len(schema) {
			return nil, nil, false
		}
		row := make([]bigquery.Value, len(schema))
		for i, cell := range r.F {
			if row[i], ok = clientValue(cell.V, schema[i]); !ok {
				return nil, nil, false
			}
		}
		rows = append(rows, row)
	}
	return schema, rows, true
}

func clientValue(v any, f *bigquery.FieldSchema) (bigquery.Value, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		return basicValue(v, f.Type)
	case []any:
		var list []bigquery.Value
		for _, c := range v {
			m, isMap := c.(map[string]any)
			if !isMap {
				return nil, false
			}
			x, ok := clientValue(m["v"], f)
			if !ok {
				return nil, false
			}
			list = append(list, x)
		}
		return list, true
	}
	return nil, false
}

func basicValue(s string, t bigquery.FieldType) (bigquery.Value, bool) {
	var v bigquery.Value
	var err error
	switch t {
	case bigquery.StringFieldType, bigquery.JSONFieldType, bigquery.GeographyFieldType:
		v = s
	case bigquery.IntegerFieldType:
		v, err = strconv.ParseInt(s, 10, 64)
	case bigquery.FloatFieldType:
		v, err = strconv.ParseFloat(s, 64)
	case bigquery.BooleanFieldType:
		v, err = strconv.ParseBool(s)
	case bigquery.DateFieldType:
		v, err = civil.ParseDate(s)
	default:
		return nil, false
	}
	return v, err == nil
}

// TestHandAnswersThroughTheClient runs the answers the fake never gives
// through the whole BigQuery client and the provider's Fetch.
func TestHandAnswersThroughTheClient(t *testing.T) {
	check := clientCheck(t, gcpfake.LatestPublished(time.Now()))
	for i, a := range handAnswers() {
		t.Run(strconv.Itoa(i), func(t *testing.T) { check(t, a.billing, a.body) })
	}
}

// clientCheck returns a check of one answer through the whole client: a
// provider on a fake whose next query of a kind answers body. A failure
// must be a classified *provider.Error and never a timeout (a retry loop).
func clientCheck(tb testing.TB, demoMonth provider.Month) func(t *testing.T, billing bool, body string) {
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
		checkRecords(t, res)
	}
}
