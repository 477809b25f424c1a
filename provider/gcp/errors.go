package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	"google.golang.org/api/googleapi"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// BigQuery error reasons (the "reason" of the first error of an error
// answer) that decide the classification where the HTTP status alone is
// ambiguous: BigQuery answers 403 both for missing permissions and for
// some quotas, and 400 both for bad SQL and for a query over its bytes
// limit.
const (
	reasonAccessDenied        = "accessDenied"
	reasonNotFound            = "notFound"
	reasonBytesBilledExceeded = "bytesBilledLimitExceeded"
	reasonRateLimitExceeded   = "rateLimitExceeded"
	reasonQuotaExceeded       = "quotaExceeded"
	reasonJobRateLimit        = "jobRateLimitExceeded"
	reasonBackendError        = "backendError"
	reasonInternalError       = "internalError"
)

// maxMessageBytes bounds the server-supplied text an error repeats.
const maxMessageBytes = 512

// query describes one query for error messages.
type query struct {
	kind  string // "carbon" or "billing"
	table tableRef
}

// failure classifies an error of a query. The BigQuery client retries
// rate limits, backend errors and 5xx answers itself until the caller's
// deadline, and then returns the last server error: that error, not the
// deadline, is what the user needs to see, so BigQuery's own answers are
// classified before the failures of the transport (httpx.Classify, the
// caller's context first). A refresh over its budget is reported as such
// whatever the client or the token source made of the read that passed it.
func (p *Provider) failure(ctx context.Context, q query, err error) *provider.Error {
	what := fmt.Sprintf("gcp: %s query on %s", q.kind, q.table)
	if f := feedOf(ctx); f != nil {
		what = fmt.Sprintf("gcp: %s: %s query on %s", f.name, q.kind, q.table)
	}
	if over := httpx.Overrun(ctx); over != nil {
		err = over
	}
	if gerr, ok := errors.AsType[*googleapi.Error](err); ok {
		return p.apiFailure(what, q, gerr)
	}
	if perr, ok := httpx.Classify(ctx, what, err); ok {
		return perr
	}
	if aerr, ok := errors.AsType[*auth.Error](err); ok {
		return tokenFailure(what, aerr)
	}
	if isJSONError(err) {
		return &provider.Error{Reason: provider.ReasonMalformed, Err: fmt.Errorf("%s: malformed response: %w", what, err)}
	}
	return &provider.Error{Reason: provider.ReasonOther, Err: fmt.Errorf("%s: %w", what, err)}
}

// tokenFailure classifies the token endpoint's error answer: the
// credentials' fault, unless the endpoint was throttled or failing.
func tokenFailure(what string, aerr *auth.Error) *provider.Error {
	reason := provider.ReasonAuth
	if aerr.Response != nil && (aerr.Response.StatusCode == http.StatusTooManyRequests || aerr.Response.StatusCode >= 500) {
		reason = httpx.ReasonForStatus(aerr.Response.StatusCode)
	}
	return &provider.Error{Reason: reason, Err: fmt.Errorf("%s: getting an access token: %w", what, aerr)}
}

func isJSONError(err error) bool {
	_, syntax := errors.AsType[*json.SyntaxError](err)
	_, typ := errors.AsType[*json.UnmarshalTypeError](err)
	return syntax || typ
}

// apiFailure classifies an error answer of the BigQuery API, with a hint
// for the causes a user can fix.
func (p *Provider) apiFailure(what string, q query, gerr *googleapi.Error) *provider.Error {
	reason := ""
	if len(gerr.Errors) > 0 {
		reason = gerr.Errors[0].Reason
	}
	msg := gerr.Message
	if msg == "" && len(gerr.Errors) > 0 {
		msg = gerr.Errors[0].Message
	}
	msg = provider.Truncate(strings.TrimSpace(msg), maxMessageBytes)

	var retryAfter time.Duration
	if gerr.Code == http.StatusTooManyRequests || gerr.Code == http.StatusServiceUnavailable {
		retryAfter, _ = httpx.ParseRetryAfter(gerr.Header.Get("Retry-After"), time.Now())
	}
	cls := httpx.ReasonForStatus(gerr.Code)
	switch reason {
	case reasonRateLimitExceeded, reasonQuotaExceeded, reasonJobRateLimit:
		cls = provider.ReasonThrottled
	case reasonBackendError, reasonInternalError:
		cls = provider.ReasonServer
	case reasonAccessDenied:
		cls = provider.ReasonPermission
	case reasonBytesBilledExceeded:
		cls = provider.ReasonBadRequest
	}

	var err error
	status := fmt.Sprintf("%d %s", gerr.Code, http.StatusText(gerr.Code))
	if reason != "" {
		status += " [" + reason + "]"
	}
	switch {
	case reason == reasonBytesBilledExceeded:
		err = fmt.Errorf("%s: the query would bill more than max_bytes_billed (%d bytes): %s: %s; raise max_bytes_billed, "+
			"or check that the table is the export's own (the billing query relies on its ingestion-time partitioning)",
			what, p.opts.MaxBytesBilled, status, msg)
	case (gerr.Code == http.StatusNotFound || reason == reasonNotFound) && !strings.Contains(msg, "Job"):
		cls = provider.ReasonNotFound
		err = fmt.Errorf("%s: %s: %s; %s", what, status, msg, missingTableHint(q, p.opts.Location))
	case cls == provider.ReasonPermission:
		err = fmt.Errorf("%s: %s: %s; the credentials need roles/bigquery.jobUser on project %s and "+
			"roles/bigquery.dataViewer on dataset %s.%s", what, status, msg, p.opts.Project, q.table.project, q.table.dataset)
	case q.kind == kindBilling && strings.Contains(msg, "_PARTITIONTIME"):
		err = fmt.Errorf("%s: %s: %s; the billing table must be the standard billing export's own table, "+
			"which is partitioned by ingestion time", what, status, msg)
	case cls == provider.ReasonAuth:
		err = fmt.Errorf("%s: %s: %s; check the credentials file or Application Default Credentials", what, status, msg)
	default:
		err = fmt.Errorf("%s: %s: %s", what, status, msg)
	}
	if retryAfter > 0 {
		err = fmt.Errorf("%w (retry after %s)", err, retryAfter)
	}
	return &provider.Error{Reason: cls, RetryAfter: retryAfter, Err: err}
}

// missingTableHint says how to create the export a query found missing.
func missingTableHint(q query, location string) string {
	loc := "the dataset's location"
	if location != "" {
		loc = "the configured location " + location
	}
	if q.kind == kindBilling {
		return fmt.Sprintf("table %s does not exist: enable the standard usage cost export to BigQuery "+
			"(console: Billing → Billing export → BigQuery export) into dataset %s.%s, and check the table name "+
			"(gcp_billing_export_v1_ followed by the billing account id with _ for -) and %s",
			q.table, q.table.project, q.table.dataset, loc)
	}
	return fmt.Sprintf("table %s does not exist: create the Carbon Footprint export into dataset %s.%s with "+
		"`cloudcarbon_exporter gcp-setup` (or in the console: Carbon Footprint → Export), wait for its first "+
		"run, and check the table name and %s", q.table, q.table.project, q.table.dataset, loc)
}
