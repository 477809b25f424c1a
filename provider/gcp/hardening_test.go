package gcp_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

// TestBillingRetryRunsOnlyBilling: while the billing query keeps failing,
// each retry of the fetch runs the billing query alone; the carbon rows
// of the first attempt are reused.
func TestBillingRetryRunsOnlyBilling(t *testing.T) {
	want := fetch(t, newEnv(t, handDataset()).provider(t, nil), jan24, feb24)

	e := newEnv(t, handDataset())
	e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: gcpfake.KindBilling, Status: 403, Times: 2,
		Body: gcpfake.ErrorBody(403, "accessDenied", "Access Denied")})
	p := e.provider(t, nil)
	for i := range 2 {
		res := fetch(t, p, jan24, feb24)
		if provider.ReasonOf(res.Partial) != provider.ReasonPermission {
			t.Fatalf("attempt %d: partial = %v, want the billing query's permission error", i+1, res.Partial)
		}
	}
	got := fetch(t, p, feb24, jan24)
	if got.Partial != nil {
		t.Fatalf("third attempt: partial = %v", got.Partial)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("result after the retries differs from a fetch that never failed:\n got %+v\nwant %+v", got, want)
	}
	if n := e.fake.Queries(gcpfake.KindCarbon); n != 1 {
		t.Errorf("carbon queries = %d, want 1", n)
	}
	if n := e.fake.Requests(gcpfake.EndpointQuery); n != 4 {
		t.Errorf("jobs.query requests = %d, want 1 carbon + 3 billing", n)
	}

	// Once the fetch is whole, the next one queries both tables again.
	fetch(t, p, jan24, feb24)
	if n := e.fake.Queries(gcpfake.KindCarbon); n != 2 {
		t.Errorf("carbon queries after a complete fetch = %d, want 2", n)
	}
}

// TestMessagesCutOnRuneBoundaries: BigQuery's error messages are bounded
// without splitting a character.
func TestMessagesCutOnRuneBoundaries(t *testing.T) {
	e := newEnv(t, handDataset())
	e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: gcpfake.KindCarbon, Status: 400,
		Body: gcpfake.ErrorBody(400, "invalidQuery", strings.Repeat("a", 511)+"é and more")})
	_, err := e.provider(t, nil).Fetch(t.Context(), []provider.Month{jan24})
	if err == nil {
		t.Fatal("Fetch succeeded")
	}
	if !utf8.ValidString(err.Error()) {
		t.Errorf("error is not valid UTF-8: %q", err)
	}
	if !strings.Contains(err.Error(), strings.Repeat("a", 511)+"…") {
		t.Errorf("error %q does not hold the message cut before the é", err)
	}
}

// TestAnswerWithoutJobIsMalformed: a jobs.query answer without
// jobComplete and jobReference made the BigQuery client panic in the
// query's goroutine, which took the whole process down (found by
// FuzzQueryResponse). It is a malformed response.
func TestAnswerWithoutJobIsMalformed(t *testing.T) {
	for _, kind := range []string{gcpfake.KindCarbon, gcpfake.KindBilling} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, handDataset())
			e.fake.Inject(gcpfake.Fault{Endpoint: gcpfake.EndpointQuery, Kind: kind, Status: http.StatusOK, Body: `{}`})
			res, err := e.provider(t, nil).Fetch(t.Context(), []provider.Month{jan24})
			if err == nil {
				err = res.Partial
			}
			if got := provider.ReasonOf(err); got != provider.ReasonMalformed || !strings.Contains(err.Error(), "malformed response") {
				t.Errorf("error = %v (%s), want a malformed response", err, got)
			}
		})
	}
}
