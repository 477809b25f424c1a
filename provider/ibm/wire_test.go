package ibm

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// TestDocumentedPayloadsDecode decodes every example payload of IBM's API
// reference into the wire types and checks the fields each one carries.
func TestDocumentedPayloadsDecode(t *testing.T) {
	const id = "x2x261x8x5x84xxxx49x4891xx077xx9"
	tests := []struct {
		file                string
		groupBy             string
		monthValue          [2]string // month.value of the two rows
		accountID           string
		service, location   [2]string
		resourceGroup       string
		entityType          string
		entityName, parName string
	}{
		{file: "group_by_month.json", groupBy: "month", monthValue: [2]string{"2023-01", "2023-02"}, accountID: id},
		{file: "group_by_service.json", groupBy: "service", accountID: id, service: [2]string{"Cloud Object Storage", ""}},
		{file: "group_by_resource_group.json", groupBy: "resource_group", accountID: id, resourceGroup: id},
		{file: "group_by_location.json", groupBy: "location", monthValue: [2]string{"2023-01", "2023-01"}, accountID: id, location: [2]string{"Washington DC", "Dallas"}},
		{file: "enterprise_account_by_month.json", groupBy: "month", monthValue: [2]string{"2023-01", "2023-02"}, entityType: "account", entityName: "Sales-Dallas", parName: "Sales-US"},
		{file: "enterprise_group_by_month.json", groupBy: "month", monthValue: [2]string{"2023-01", "2023-02"}, accountID: id, entityType: "account_group", entityName: "Sales-US", parName: "Sales"},
		{file: "enterprise_by_month.json", groupBy: "month", monthValue: [2]string{"2023-01", "2023-02"}, accountID: id, entityType: "enterprise", entityName: "Sales"},
		{file: "enterprise_by_enterprise_group.json", groupBy: "enterprise_group", monthValue: [2]string{"2023-01", "2023-02"}, entityType: "enterprise", entityName: "Sales"},
		{file: "enterprise_by_enterprise_account.json", groupBy: "enterprise_account", monthValue: [2]string{"2023-01", "2023-02"}, entityType: "enterprise", entityName: "Sales"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var page wirePage
			if err := json.Unmarshal(data, &page); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(page.CarbonEmissions) != 2 {
				t.Fatalf("rows = %d, want 2", len(page.CarbonEmissions))
			}
			if page.TotalCount == nil || *page.TotalCount != 104 || page.Next == nil || page.Next.Href == "" {
				t.Errorf("paging fields: total_count=%v next=%v", page.TotalCount, page.Next)
			}
			for i, row := range page.CarbonEmissions {
				if row.CarbonEmission == nil || row.EnergyConsumption == nil || *row.EnergyConsumption != 5000 {
					t.Errorf("row %d figures: %v %v", i, row.CarbonEmission, row.EnergyConsumption)
				}
				if row.GroupBy == nil || row.GroupBy.Type != tt.groupBy {
					t.Errorf("row %d group_by = %+v, want type %q", i, row.GroupBy, tt.groupBy)
				}
				if row.Month == nil || row.Month.Value != tt.monthValue[i] || row.Month.Min != "2023-01" || row.Month.Max != "2023-02" {
					t.Errorf("row %d month = %+v, want value %q", i, row.Month, tt.monthValue[i])
				}
				if row.AccountID != tt.accountID {
					t.Errorf("row %d account_id = %q, want %q", i, row.AccountID, tt.accountID)
				}
				if row.Service != tt.service[i] || row.Location != tt.location[i] {
					t.Errorf("row %d service/location = %q/%q", i, row.Service, row.Location)
				}
				if i == 0 && row.ResourceGroupID != tt.resourceGroup {
					t.Errorf("row %d resource_group_id = %q", i, row.ResourceGroupID)
				}
				if row.EntityType != tt.entityType || row.EntityName != tt.entityName || row.ParentEntityName != tt.parName {
					t.Errorf("row %d entity = %q %q parent %q", i, row.EntityType, row.EntityName, row.ParentEntityName)
				}
			}
		})
	}
}

func TestLocationAndServiceLabels(t *testing.T) {
	for in, want := range map[string]string{
		"Washington DC":   "washington-dc",
		"Dallas":          "dallas",
		"  Sao  Paulo ":   "sao-paulo",
		"":                Unknown,
		"   ":             Unknown,
		"MONTREAL":        "montreal",
		"Frankfurt\tWest": "frankfurt-west",
	} {
		if got := locationLabel(in); got != want {
			t.Errorf("locationLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"Cloud Object Storage":  "Cloud Object Storage",
		" Kubernetes  Service ": "Kubernetes Service",
		"":                      Unknown,
	} {
		if got := serviceLabel(in); got != want {
			t.Errorf("serviceLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	resp := func(h string) *http.Response {
		r := &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}}
		if h != "" {
			r.Header.Set("Retry-After", h)
		}
		return r
	}
	tests := []struct {
		name     string
		min, max time.Duration
		attempt  int
		resp     *http.Response
		want     time.Duration
	}{
		{"exponential", time.Second, 30 * time.Second, 2, nil, 4 * time.Second},
		{"capped", time.Second, 30 * time.Second, 10, nil, 30 * time.Second},
		{"retry-after honoured", time.Second, 30 * time.Second, 0, resp("7"), 7 * time.Second},
		{"retry-after capped", time.Second, 30 * time.Second, 0, resp("3600"), 30 * time.Second},
		{"unparsable retry-after", time.Second, 30 * time.Second, 1, resp("later"), 2 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(tt.min, tt.max, tt.attempt, tt.resp); got != tt.want {
			t.Errorf("%s: backoff = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "error_403.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	p := &Provider{opts: Options{APIKey: "test-key-0123456789abcdefghij"}}
	perr := p.statusFailure("GET /v1/carbon_emissions", &core.DetailedResponse{StatusCode: 403, Result: m, Headers: http.Header{}}, apiCarbon)
	want := "ibm: GET /v1/carbon_emissions: 403 Forbidden: An authenticated access token without proper access to carbon calculator was provided. (needs the Viewer role on Billing, or Usage report viewer on the enterprise)"
	if perr.Error() != want || perr.Reason != provider.ReasonPermission {
		t.Errorf("got %q (%s)\nwant %q", perr.Error(), perr.Reason, want)
	}

	iam := p.statusFailure("POST /identity/token", &core.DetailedResponse{StatusCode: 400, Headers: http.Header{},
		Result: map[string]any{"errorCode": "BXNIM0415E", "errorMessage": "Provided API key could not be found."}}, apiIAM)
	if iam.Reason != provider.ReasonAuth || !strings.Contains(iam.Error(), "Provided API key could not be found. [BXNIM0415E]") {
		t.Errorf("IAM 400: %q (%s)", iam.Error(), iam.Reason)
	}
	throttled := p.statusFailure("POST /identity/token", &core.DetailedResponse{StatusCode: 429, Headers: http.Header{"Retry-After": {"12"}}}, apiIAM)
	if throttled.Reason != provider.ReasonThrottled || throttled.RetryAfter != 12*time.Second {
		t.Errorf("IAM 429: %q (%s, %v)", throttled.Error(), throttled.Reason, throttled.RetryAfter)
	}
}
