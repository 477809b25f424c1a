package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// recorder keeps the bodies of the report answers that pass through it,
// so that fuzz seeds are the fake's real answers.
type recorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	bodies [][]byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || endpointName(req) != EndpointReports {
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

// fakeAnswers returns report pages azurefake serves for the demo tenant's
// latest month, paged small so that skip tokens appear, access decisions
// included.
func fakeAnswers(tb testing.TB) [][]byte {
	tb.Helper()
	now := time.Now()
	ds := azurefake.Demo(now)
	ts := httptest.NewTLSServer(azurefake.NewServer(ds, azurefake.DemoClientID, azurefake.DemoClientSecret))
	defer ts.Close()
	rec := &recorder{base: ts.Client().Transport}
	p, err := New(Options{
		TenantID: azurefake.DemoTenantID, Credential: CredentialClientSecret,
		ClientID: azurefake.DemoClientID, ClientSecret: azurefake.DemoClientSecret,
		AuthorityHost: ts.URL, ResourceManagerEndpoint: ts.URL,
		// Small pages: skip tokens appear, and seeds stay small, which
		// keeps the fuzzer's minimisation of what it derives quick.
		ListSubscriptions: true, PageSize: 2,
		HTTPClient: &http.Client{Transport: rec},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.Fetch(context.Background(), []provider.Month{azurefake.LatestMonth(now)}); err != nil {
		tb.Fatalf("seed fetch: %v", err)
	}
	return rec.bodies[:min(6, len(rec.bodies))]
}

// FuzzReportPage feeds arbitrary bodies of carbonEmissionReports answers
// to the SDK's decoding and to the folding of items and access decisions
// into records. Every failure must be a classified malformed response;
// every sum must be finite in grams, no negative figure summed with
// others, every label and denial reason valid UTF-8, reasons bounded.
func FuzzReportPage(f *testing.F) {
	for _, b := range fakeAnswers(f) {
		f.Add(b)
	}
	item := func(extra string) string {
		return `{"dataType":"ResourceItemDetailsData","itemName":"vm1","categoryType":"Resource","resourceGroup":"rg",` +
			`"resourceId":"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",` +
			`"resourceType":"microsoft.compute/virtualmachines","location":"east us","previousMonthEmissions":1,` + extra + `}`
	}
	for _, s := range []string{
		`{"value":[` + item(`"latestMonthEmissions":1e308`) + `,` + item(`"latestMonthEmissions":1e308`) + `]}`,
		`{"value":[` + item(`"latestMonthEmissions":1,"subscriptionId":""`) + `],"skipToken":"abc"}`,
		`{"value":[` + item(`"latestMonthEmissions":2`) + `,` + item(`"latestMonthEmissions":-1`) + `]}`,
		`{"value":[],"subscriptionAccessDecisionList":[{"subscriptionId":"00000000-0000-0000-0000-000000000002","decision":"Denied","denialReason":"` +
			strings.Repeat("a", 511) + `é and more"}]}`,
		`{"value":[{"dataType":"ItemDetailsData","itemName":"east us","categoryType":"Location","latestMonthEmissions":1}]}`,
		`{"value":[{"latestMonthEmissions":1}]}`,
		`{"value":[null]}`,
		`{"value":null}`,
		"{\"value\":[],\"subscriptionAccessDecisionList\":[{\"subscriptionId\":\"\xff\",\"decision\":\"Denied\",\"denialReason\":\"\xfe\\n\\tx\"},null,{}]}",
	} {
		f.Add([]byte(s))
	}

	p, err := New(Options{
		TenantID: "11111111-2222-4333-8444-555555555555", Credential: CredentialClientSecret,
		ClientID: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", ClientSecret: "fuzz-secret",
		AuthorityHost: "https://login.example.com", ResourceManagerEndpoint: "https://management.example.com",
		Subscriptions: []string{"00000000-0000-0000-0000-000000000001"},
	})
	if err != nil {
		f.Fatal(err)
	}
	tk := &task{month: provider.NewMonth(2025, time.March), scope: 1,
		batch: []string{"00000000-0000-0000-0000-000000000001"}, from: 1, to: 1, totalSubs: 1}
	what := tk.what(1)
	ok200 := &http.Response{StatusCode: http.StatusOK}
	f.Fuzz(func(t *testing.T, data []byte) {
		var page armcarbonoptimization.CarbonEmissionDataListResult
		if err := json.Unmarshal(data, &page); err != nil {
			// What the SDK returns for a 200 that does not decode.
			checkMalformed(t, p.classify(context.Background(), what, err, ok200))
			return
		}
		res := newTaskResult()
		if err := p.addPage(res, tk, what, page); err != nil {
			checkMalformed(t, err)
			return
		}
		for k, v := range res.kg {
			if v < 0 {
				t.Fatalf("a negative figure is summed into %+v: %g", k, v)
			}
		}
		for _, sums := range []map[recordKey]float64{res.kg, res.negative} {
			for k, v := range sums {
				if !finite(v * GramsPerKilogram) {
					t.Fatalf("non-finite emissions %g for %+v", v, k)
				}
				for _, l := range []string{k.account, k.service, k.location} {
					if l == "" || !utf8.ValidString(l) {
						t.Fatalf("empty or invalid label in %+v", k)
					}
				}
			}
		}
		for id, reason := range res.denied {
			if !utf8.ValidString(id) || !utf8.ValidString(reason) || len(reason) > maxMessageBytes+len("…") ||
				strings.ContainsAny(reason, "\n\r\t") {
				t.Fatalf("denial of %q: reason %q is not a bounded line of valid UTF-8", id, reason)
			}
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
