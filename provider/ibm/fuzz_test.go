package ibm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// recorder keeps the bodies of the Carbon Calculator answers that pass
// through it, so that fuzz seeds are the fake's real answers.
type recorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, carbonPath) {
		return resp, err
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, data)
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

// fakeAnswers returns the pages ibmfake serves for its demo enterprise
// (every query the provider makes, names included) and for a standard
// account.
func fakeAnswers(tb testing.TB) [][]byte {
	tb.Helper()
	// The package's tests turn go-sdk-core's debug dumps on, which
	// would redact every page with regular expressions: in a fuzzing
	// worker, whose every package is instrumented, that takes minutes.
	loud := core.GetLogger()
	core.SetLogger(core.NewLogger(core.LevelError, log.New(io.Discard, "", 0), log.New(io.Discard, "", 0)))
	defer core.SetLogger(loud)

	const key = "fuzz-seed-key-0123456789abcdef"
	demo := ibmfake.Demo(time.Now())
	// Some pages of the demo enterprise's first month are plenty.
	m := demo.Rows[0].Month
	var rows []ibmfake.Row
	for _, r := range demo.Rows {
		if r.Month == m && len(rows) < 250 {
			rows = append(rows, r)
		}
	}
	enterprise := demo
	enterprise.Rows = rows
	var out [][]byte
	for _, ds := range []ibmfake.Dataset{enterprise, {Rows: rows[:3]}} {
		ts := httptest.NewServer(ibmfake.NewServer(ds, key))
		rec := &recorder{base: ts.Client().Transport}
		p, err := New(Options{APIKey: key, APIURL: ts.URL, IAMURL: ts.URL, EnterpriseID: ds.EnterpriseID,
			HTTPClient: &http.Client{Transport: rec}})
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := p.Fetch(context.Background(), []provider.Month{m}); err != nil {
			tb.Fatalf("seed fetch: %v", err)
		}
		ts.Close()
		for _, b := range rec.bodies {
			out = append(out, shrinkPage(tb, b))
		}
	}
	return out
}

// shrinkPage keeps the first two rows of a page and every other field
// (paging included): large seeds make the fuzzer's minimisation of what
// it derives from them take minutes.
func shrinkPage(tb testing.TB, data []byte) []byte {
	tb.Helper()
	var page map[string]json.RawMessage
	var rows []json.RawMessage
	if err := json.Unmarshal(data, &page); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(page["carbon_emissions"], &rows); err != nil {
		tb.Fatal(err)
	}
	page["carbon_emissions"], _ = json.Marshal(rows[:min(2, len(rows))])
	out, _ := json.Marshal(page)
	return out
}

// FuzzPage feeds arbitrary bodies to the page decoding and row folding of
// GET /v1/carbon_emissions, and to the paging decisions a page drives.
// Every failure must be a classified malformed response; every record
// must carry finite figures and valid, non-empty labels.
func FuzzPage(f *testing.F) {
	for _, b := range fakeAnswers(f) {
		f.Add(b)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"carbon_emissions":[{"account_id":"a","carbon_emission":1e308,"energy_consumption":1e308,"month":{"value":"2024-01"}},` +
			`{"account_id":"a","carbon_emission":1e308,"month":{"value":"2024-01"}}],"total_count":2}`,
		`{"carbon_emissions":[],"total_count":9999999999,"offset":0,"limit":100,"next":{"href":"?offset=100&limit=100"}}`,
		`{"carbon_emissions":[{"entity_type":"account","entity_id":"x","month":{"value":"2024-13"}}]}`,
		`{"carbon_emissions":[{"group_by":{"type":"enterprise_account","value":"acc"},"entity_type":"enterprise","entity_id":"e"}],"next":{"href":"%zz"}}`,
		`{"carbon_emissions":null,"total_count":null}`,
		"{\"carbon_emissions\":[{\"service\":\"\xff\xfe\",\"location\":\"  \",\"carbon_emission\":-0,\"month\":{\"value\":\"2024-02\"}}]}",
	} {
		f.Add([]byte(s))
	}

	p, err := New(Options{APIKey: "fuzz-key-0123456789abcdefghij"})
	if err != nil {
		f.Fatal(err)
	}
	const what = "GET /v1/carbon_emissions?group_by=none&offset=0"
	f.Fuzz(func(t *testing.T, data []byte) {
		page, err := p.decodePage(what, data)
		if err != nil {
			checkMalformed(t, err)
			return
		}
		if offsets := p.plan(page); len(offsets) >= maxPages {
			t.Fatalf("plan of %d pages", len(offsets)+1)
		}
		if page.Next != nil {
			if off, limit, err := p.nextPage(page.Next.Href, pageLimit); err == nil && (off < 0 || limit < 1 || limit > pageLimit) {
				t.Fatalf("next page offset %d limit %d", off, limit)
			}
		}
		// Every month a row names is wanted, so that every row counts.
		want := map[provider.Month]bool{}
		for _, row := range page.CarbonEmissions {
			if row.Month != nil {
				if m, err := provider.ParseMonth(row.Month.Value); err == nil {
					want[m] = true
				}
			}
		}
		records := newRecordSet()
		accounts := map[string]provider.Account{}
		for i := range page.CarbonEmissions {
			row := &page.CarbonEmissions[i]
			if row.EntityType == entityAccount && row.EntityID != "" {
				mergeAccount(accounts, p.accountFromEntity(row))
			}
			if a, ok := p.accountFromGroupRow(row); ok {
				mergeAccount(accounts, a)
			}
			if err := p.addRow(records, want, what, row); err != nil {
				checkMalformed(t, err)
				return
			}
		}
		for i := range records.records {
			checkRecord(t, &records.records[i])
		}
	})
}

func checkMalformed(t *testing.T, err error) {
	t.Helper()
	var perr *provider.Error
	if !errors.As(err, &perr) || perr.Reason != provider.ReasonMalformed {
		t.Fatalf("error %v (%T) is not a malformed response", err, err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("error is not valid UTF-8: %q", err.Error())
	}
}

func checkRecord(t *testing.T, r *provider.Record) {
	t.Helper()
	for _, v := range []float64{r.EmissionsGrams, r.EnergyJoules} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("record with a non-finite figure: %+v", r)
		}
	}
	if r.Known == 0 {
		t.Fatalf("record without a known figure: %+v", r)
	}
	for _, l := range []string{r.Account, r.Service, r.Location} {
		if l == "" || !utf8.ValidString(l) {
			t.Fatalf("record with an empty or invalid label: %+v", r)
		}
	}
}
