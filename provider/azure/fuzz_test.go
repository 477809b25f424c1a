package azure

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/carbonoptimization/armcarbonoptimization"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/costmanagement/armcostmanagement/v2"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/azure/azurefake"
)

// fakeAnswers returns report pages azurefake serves for the demo tenant's
// latest month, as it sent them, paged small so that skip tokens appear,
// access decisions included.
func fakeAnswers(tb testing.TB) [][]byte {
	tb.Helper()
	now := time.Now()
	fake := azurefake.NewServer(azurefake.Demo(now), azurefake.DemoClientID, azurefake.DemoClientSecret)
	var mu sync.Mutex
	var pages [][]byte
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := httptest.NewRecorder()
		fake.ServeHTTP(answer, r)
		maps.Copy(w.Header(), answer.Header())
		w.WriteHeader(answer.Code)
		_, _ = w.Write(answer.Body.Bytes())
		if azurefake.IsReport(r) {
			mu.Lock()
			defer mu.Unlock()
			pages = append(pages, answer.Body.Bytes())
		}
	}))
	defer ts.Close()
	p, err := New(Options{
		TenantID: azurefake.DemoTenantID, Credential: CredentialClientSecret,
		ClientID: azurefake.DemoClientID, ClientSecret: azurefake.DemoClientSecret,
		AuthorityHost: ts.URL, ResourceManagerEndpoint: ts.URL,
		// Small pages: skip tokens appear, and seeds stay small, which
		// keeps the fuzzer's minimisation of what it derives quick.
		ListSubscriptions: true, PageSize: 2, HTTPClient: ts.Client(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.Fetch(tb.Context(), []provider.Month{azurefake.LatestMonth(now)}); err != nil {
		tb.Fatalf("seed fetch: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return pages[:min(6, len(pages))]
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
	if perr, ok := errors.AsType[*provider.Error](err); !ok || perr.Reason != provider.ReasonMalformed || !utf8.ValidString(err.Error()) {
		t.Fatalf("error %q (%T) is not a malformed response in valid UTF-8", err, err)
	}
}

// FuzzCostPage feeds arbitrary bodies of Cost Management query answers to
// the SDK's decoding and to the folding of rows into cost sums. Every
// failure must be a classified malformed response; every sum finite;
// every label valid UTF-8, bounded and never empty.
func FuzzCostPage(f *testing.F) {
	cols := `"columns":[{"name":"Cost","type":"Number"},{"name":"CostUSD","type":"Number"},{"name":"ResourceType","type":"String"},` +
		`{"name":"ResourceLocation","type":"String"},{"name":"Currency","type":"String"}]`
	tagCols := `"columns":[{"name":"Cost","type":"Number"},{"name":"CostUSD","type":"Number"},{"name":"ResourceType","type":"String"},` +
		`{"name":"TagKey","type":"String"},{"name":"TagValue","type":"String"}]`
	for _, s := range []string{
		`{"properties":{"nextLink":null,` + cols + `,"rows":[[1.5,1.62,"microsoft.compute/virtualmachines","US East","EUR"],[2,2,"","Unknown","USD"]]}}`,
		`{"properties":{"nextLink":"https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?$skiptoken=a",` + cols + `,"rows":[]}}`,
		`{"properties":{` + cols + `,"rows":[[1e308,1e308,"t","US East","USD"],[1e308,1e308,"t","US East","USD"]]}}`,
		`{"properties":{` + cols + `,"rows":[["1",1,"t","l","USD"],[1,1,null,null,null],[1,1,2,3,4],[1]]}}`,
		`{"properties":{"columns":[{"name":"totalCost"},{"name":"ResourceType"},{"name":"ResourceLocation"},{"name":"Currency"}],"rows":[[1,"t","AU Central 2","usd"],[1,"t","EU West","EUR"]]}}`,
		"{\"properties\":{" + cols + ",\"rows\":[[1,1,\"\xff\xfe\",\"US \xff 2\",\"USD\"]]}}",
		`{"properties":null}`,
		`{}`,
		`{"properties":{` + tagCols + `,"rows":[[1,1,"t","team","web"],[2,2,"t",null,null],[3,3,"t","","x"],[4,4,"t","TEAM","Web"]]}}`,
		`{"properties":{` + tagCols + `,"rows":[[1,1,"t","env","prod"],[1,1,"t","team",5],[1,1,"t","team","\u0000\n"]]}}`,
		"{\"properties\":{" + tagCols + ",\"rows\":[[1,1,\"t\",\"team\",\"\xff\xfe\"]]}}",
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
	tk := &costTask{month: provider.NewMonth(2025, time.March), sub: "00000000-0000-0000-0000-000000000001"}
	what := tk.what(1)
	ok200 := &http.Response{StatusCode: http.StatusOK}
	f.Fuzz(func(t *testing.T, data []byte) {
		var res armcostmanagement.QueryResult
		if err := json.Unmarshal(data, &res); err != nil {
			checkMalformed(t, p.classifyCost(context.Background(), what, err, ok200))
			return
		}
		if res.Properties == nil {
			return
		}
		// Each page is folded as Costs' answer and as TagCosts' one.
		for _, task := range []*costTask{tk, {month: tk.month, sub: tk.sub, tag: "team"}} {
			sums := map[costKey]float64{}
			if err := p.addCostPage(sums, task, what, res.Properties); err != nil {
				checkMalformed(t, err)
				continue
			}
			checkCostSums(t, task, sums)
		}
	})
}

// checkCostSums checks the sums of a page folded for task: finite, and
// labelled in valid UTF-8, bounded, never empty but for the location of
// a tag query (always "") and its value ("" for cost without the tag).
func checkCostSums(t *testing.T, task *costTask, sums map[costKey]float64) {
	t.Helper()
	for k, v := range sums {
		if !finite(v) {
			t.Fatalf("non-finite cost %g for %+v", v, k)
		}
		labels := []string{k.account, k.service, k.location}
		if task.tag != "" {
			labels = labels[:2]
			if k.location != "" || !utf8.ValidString(k.value) || len(k.value) > maxTagValueBytes+len("…") {
				t.Fatalf("a location, or an invalid or unbounded value, in %+v", k)
			}
		}
		for _, l := range labels {
			if l == "" || !utf8.ValidString(l) || len(l) > maxMessageBytes+len("…") {
				t.Fatalf("empty, invalid or unbounded label in %+v", k)
			}
		}
	}
}
