package azure

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

func TestLocationName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"east us", "eastus"},
		{"East US 2", "eastus2"},
		{"west us 2", "westus2"},
		{"west central us", "westcentralus"},
		{"southeast asia", "southeastasia"},
		{"uk south", "uksouth"},
		{"germany west central", "germanywestcentral"},
		{"central us euap", "centraluseuap"},
		{"usgov virginia", "usgovvirginia"},
		{"china north 3", "chinanorth3"},
		{"  north   europe ", "northeurope"},
		{"eastus", "eastus"},
		{"Global", "global"},
		{"", Unknown},
		{"   ", Unknown},
	}
	for _, tt := range tests {
		if got := LocationName(tt.in); got != tt.want {
			t.Errorf("LocationName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSubscriptionAndType(t *testing.T) {
	const sub = "00000000-0000-0000-0000-000000000001"
	tests := []struct {
		sub, typ, id          string
		wantAccount, wantType string
	}{
		{sub, "Microsoft.Compute/virtualMachines", "", sub, "microsoft.compute/virtualmachines"},
		{strings.ToUpper(sub), "microsoft.storage/storageaccounts", "", sub, "microsoft.storage/storageaccounts"},
		{"", "", "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1", sub, "microsoft.compute/virtualmachines"},
		{"", "", "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/db1", sub, "microsoft.sql/servers/databases"},
		// Extension resource: the last providers segment names the type.
		{"", "", "/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1/providers/Microsoft.Insights/diagnosticSettings/d", sub, "microsoft.insights/diagnosticsettings"},
		{sub, "", "/subscriptions/" + sub + "/resourceGroups/rg", sub, Unknown},
		{"", "", "", provider.AccountPlaceholder, Unknown},
		{"", "", "garbage", provider.AccountPlaceholder, Unknown},
	}
	for _, tt := range tests {
		a, s := subscriptionAndType(tt.sub, tt.typ, tt.id)
		if a != tt.wantAccount || s != tt.wantType {
			t.Errorf("subscriptionAndType(%q, %q, %q) = %q, %q; want %q, %q", tt.sub, tt.typ, tt.id, a, s, tt.wantAccount, tt.wantType)
		}
	}
}

func TestEndpointName(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://login.microsoftonline.com/tenant/oauth2/v2.0/token", EndpointToken},
		{"https://login.microsoftonline.com/tenant/oauth2/token", EndpointToken},
		{"http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01", EndpointToken},
		{"https://login.microsoftonline.com/tenant/v2.0/.well-known/openid-configuration", EndpointOpenID},
		{"https://management.azure.com/providers/Microsoft.Carbon/carbonEmissionReports?api-version=2025-04-01", EndpointReports},
		{"https://proxy.example/arm/providers/microsoft.carbon/carbonemissionreports", EndpointReports},
		{"https://management.azure.com/providers/Microsoft.Carbon/queryCarbonEmissionDataAvailableDateRange?api-version=2025-04-01", EndpointDateRange},
		{"https://management.azure.com/subscriptions?api-version=2022-12-01", EndpointSubscriptions},
		{"https://login.microsoftonline.com/common/discovery/instance", EndpointOther},
		{"https://management.azure.com/subscriptions/x/providers/Microsoft.Carbon/register", EndpointOther},
		{"https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?api-version=2022-10-01", EndpointCostQuery},
		{"https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?api-version=2022-10-01&$skiptoken=AQAA", EndpointCostQuery},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		if got := endpointName(&http.Request{URL: u}); got != tt.want {
			t.Errorf("endpointName(%s) = %q, want %q", tt.url, got, tt.want)
		}
	}
	// TagCosts' queries are the same operation, told apart by their
	// context: its token requests are still tokens.
	tag := context.WithValue(t.Context(), tagQueryKey{}, true)
	for url, want := range map[string]string{
		"https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?api-version=2022-10-01":                 EndpointCostTagQuery,
		"https://management.azure.com/subscriptions/x/providers/Microsoft.CostManagement/query?api-version=2022-10-01&$skiptoken=AQAA": EndpointCostTagQuery,
		"https://login.microsoftonline.com/tenant/oauth2/v2.0/token":                                                                   EndpointToken,
	} {
		req, err := http.NewRequestWithContext(tag, http.MethodPost, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := endpointName(req); got != want {
			t.Errorf("endpointName(%s) in a tag query = %q, want %q", url, got, want)
		}
	}
}

// TestRetryAfter covers the millisecond headers azure adds on top of
// httpx.ParseRetryAfter, and their precedence over Retry-After.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"date", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"unparsable", http.Header{"Retry-After": {"soon"}}, 0},
		{"ms first", http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}}, 1500 * time.Millisecond},
		{"x-ms", http.Header{"X-Ms-Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{"ms capped", http.Header{"Retry-After-Ms": {"99999999999999"}}, httpx.MaxRetryAfter},
		{"bad ms falls back", http.Header{"Retry-After-Ms": {"soon"}, "Retry-After": {"3"}}, 3 * time.Second},
		{"cost management", http.Header{"X-Ms-Ratelimit-Microsoft.costmanagement-Qpu-Retry-After": {"4"},
			"X-Ms-Ratelimit-Microsoft.costmanagement-Tenant-Retry-After": {"12"}, "Retry-After": {"5"}}, 12 * time.Second},
		{"cost management shorter", http.Header{"x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": {"2"}, "Retry-After": {"5"}}, 5 * time.Second},
		{"cost management capped", http.Header{"X-Ms-Ratelimit-Microsoft.costmanagement-Qpu-Retry-After": {"1e12"}}, httpx.MaxRetryAfter},
		{"cost management remaining is no wait", http.Header{"X-Ms-Ratelimit-Microsoft.costmanagement-Qpu-Remaining": {"400"}}, 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("%s: retryAfter(%v) = %s, want %s", tt.name, tt.header, got, tt.want)
		}
	}
}

func TestParseAPIDate(t *testing.T) {
	for in, want := range map[string]provider.Month{
		"2025-05-01":           provider.NewMonth(2025, time.May),
		"2025-05-31":           provider.NewMonth(2025, time.May),
		"2025-05-01T00:00:00Z": provider.NewMonth(2025, time.May),
	} {
		if got, err := parseAPIDate(in); err != nil || got != want {
			t.Errorf("parseAPIDate(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "2025-05", "05/01/2025"} {
		if _, err := parseAPIDate(in); err == nil {
			t.Errorf("parseAPIDate(%q) succeeded", in)
		}
	}
}

// TestShouldRetry: azcore's retries, but none whose wait outlasts the
// call's deadline.
func TestShouldRetry(t *testing.T) {
	p := &Provider{opts: Options{RetryDelay: 4 * time.Second, MaxRetryDelay: time.Minute}}
	answer := func(code int, deadline time.Duration, header http.Header) *http.Response {
		ctx := context.WithValue(t.Context(), triesKey{}, new(atomic.Int32))
		ctx, cancel := context.WithTimeout(ctx, deadline)
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://arm.example", nil)
		return &http.Response{StatusCode: code, Header: header, Request: req}
	}
	tests := []struct {
		name string
		resp *http.Response
		want bool
	}{
		{"server error, time to wait", answer(500, time.Hour, nil), true},
		{"server error, no time for the first backoff (4s, jitter 30%)", answer(500, 5*time.Second, nil), false},
		{"throttled, time for Retry-After", answer(429, time.Hour, http.Header{"Retry-After": {"30"}}), true},
		{"throttled past the deadline", answer(429, 10*time.Second, http.Header{"Retry-After": {"30"}}), false},
		{"not found", answer(404, time.Hour, nil), false},
	}
	for _, tt := range tests {
		if got := p.shouldRetry(tt.resp, nil); got != tt.want {
			t.Errorf("%s: shouldRetry = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !p.shouldRetry(nil, errors.New("connection reset")) {
		t.Error("a network error is not retried")
	}
	// The second try waits (2^2-1) × 4s = 12s, up to 15.6s with jitter.
	resp := answer(503, 14*time.Second, nil)
	if !p.shouldRetry(resp, nil) || p.shouldRetry(resp, nil) {
		t.Error("the backoff does not grow with the tries of one call")
	}
}

// TestCostLocation: Cost Management's spellings of regions become the ARM
// names the carbon data carries.
func TestCostLocation(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"US East", "eastus"},
		{"US East 2", "eastus2"},
		{"US West Central", "westcentralus"},
		{"US North Central", "northcentralus"},
		{"EU West", "westeurope"},
		{"EU North", "northeurope"},
		{"AP Southeast", "southeastasia"},
		{"AP East", "eastasia"},
		{"IN Central", "centralindia"},
		{"JA East", "japaneast"},
		{"UK South", "uksouth"},
		{"AU Central 2", "australiacentral2"},
		{"DE West Central", "germanywestcentral"},
		{"ZA North", "southafricanorth"},
		{"US Gov Virginia", "usgovvirginia"},
		{"US DoD East", "usdodeast"},
		{"CN North 2", "chinanorth2"},
		{"eastus", "eastus"},
		{"East US", "eastus"},
		{"West Europe", "westeurope"},
		{"UAE North", "uaenorth"},
		{"Unknown", "unknown"},
		{"Unassigned", "unassigned"},
		{"global", "global"},
		{"", Unknown},
		{"US", "us"},
	} {
		if got := CostLocationName(tt.in); got != tt.want {
			t.Errorf("CostLocationName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
