package gcp_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/gcp/gcpfake"
)

// TestTruncatedBodyIsMalformed: an answer that ends before its
// Content-Length (a dropped connection) is a malformed response, at once;
// the BigQuery client would otherwise retry it until the refresh's
// deadline and report a timeout.
func TestTruncatedBodyIsMalformed(t *testing.T) {
	for _, endpoint := range []string{gcpfake.EndpointQuery, gcpfake.EndpointQueryResults} {
		t.Run(endpoint, func(t *testing.T) {
			e := newEnv(t, handDataset())
			if endpoint == gcpfake.EndpointQueryResults {
				e.fake.SetIncompletePolls(1)
			}
			f := gcpfake.Truncated(endpoint, "", `{"kind":"bigquery#queryResponse","jobComplete":true,"rows":[{"f":[{"v":`)
			f.Times = 1000
			e.fake.Inject(f)
			p := e.provider(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := p.Fetch(ctx, []provider.Month{jan24})
			if got := provider.ReasonOf(err); got != provider.ReasonMalformed {
				t.Errorf("reason = %s (%v), want %s", got, err, provider.ReasonMalformed)
			}
			if err != nil && !strings.Contains(err.Error(), "malformed response") {
				t.Errorf("error %q does not say malformed response", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v, want at once", d)
			}
		})
	}
}

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

// TestUntrustedCertificate: an endpoint whose TLS certificate the client
// does not trust is a network problem and says so.
func TestUntrustedCertificate(t *testing.T) {
	fake := gcpfake.NewServer(handDataset())
	ts := httptest.NewUnstartedServer(fake)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	p := newEnv(t, handDataset()).provider(t, func(o *gcp.Options) {
		o.Endpoint = ts.URL + gcpfake.BasePath
		o.HTTPClient = &http.Client{} // the system's roots
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Fetch(ctx, []provider.Month{jan24})
	if got := provider.ReasonOf(err); got != provider.ReasonNetwork {
		t.Errorf("reason = %s (%v), want %s", got, err, provider.ReasonNetwork)
	}
	for _, want := range []string{"certificate", "not trusted", "HTTPS_PROXY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
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
