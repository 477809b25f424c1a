package gcpfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/fakehttp"
)

// EndpointToken names the requests to TokenPath in Requests.
const EndpointToken = "token"

// jobID names a job after its query's kind, so that the requests for its
// rows tell the kind without the fake's state (see RowRequests).
func jobID(kind string, seq int) string {
	return fmt.Sprintf("gcpfake_%s_%d", kind, seq)
}

// kindOfJob returns the query kind in a job id the fake gave.
func kindOfJob(id string) string {
	kind, _, _ := strings.Cut(strings.TrimPrefix(id, "gcpfake_"), "_")
	return kind
}

// RowRequests returns a selector of the requests for the rows of kind's
// queries: their jobs.query and the jobs.getQueryResults of their jobs.
// It reads a jobs.query body and puts it back.
func RowRequests(kind string) func(*http.Request) bool {
	return func(r *http.Request) bool { return queryKind(r) == kind }
}

// queryKind returns the kind of the query whose rows r asks for, "" for
// other requests.
func queryKind(r *http.Request) string {
	switch {
	case r.Method == http.MethodGet && resultsRoute.MatchString(r.URL.Path):
		return kindOfJob(resultsRoute.FindStringSubmatch(r.URL.Path)[2])
	case r.Method != http.MethodPost || !queriesRoute.MatchString(r.URL.Path) || r.Body == nil:
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Query string `json:"query"`
	}
	if err != nil || json.Unmarshal(body, &req) != nil {
		return ""
	}
	return kindOfQuery(req.Query)
}

// ErrorFault is BigQuery's error answer with status, with the reason and
// message BigQuery gives it: 429 and 5xx are the ones its clients retry.
func ErrorFault(status int) fakehttp.Fault {
	reason, msg := "invalid", http.StatusText(status)
	switch {
	case status == http.StatusUnauthorized:
		reason, msg = "authError", "Request had invalid authentication credentials. Expected OAuth 2 access token."
	case status == http.StatusForbidden:
		reason, msg = "accessDenied", "Access Denied: Project cloudcarbon: User does not have bigquery.jobs.create permission in project cloudcarbon."
	case status == http.StatusTooManyRequests:
		reason, msg = "rateLimitExceeded", "Exceeded rate limits: too many api requests per user per method for this user_method."
	case status >= 500:
		reason, msg = "backendError", "Error encountered during execution. Retrying may solve the problem."
	}
	return fakehttp.Fault{Status: status, Body: ErrorBody(status, reason, msg),
		Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}}}
}

// EmptyPage answers a request for a query's rows (jobs.query or
// jobs.getQueryResults) with a complete job's page that holds no row but
// a token for the next page, as a broken service might forever.
func EmptyPage(w http.ResponseWriter, r *http.Request) {
	project, id := "", jobID(queryKind(r), 0)
	if m := resultsRoute.FindStringSubmatch(r.URL.Path); m != nil {
		project, id = m[1], m[2]
	} else if m := queriesRoute.FindStringSubmatch(r.URL.Path); m != nil {
		project = m[1]
	}
	next, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("pageToken"), "empty-"))
	writeJSON(w, map[string]any{
		"kind":         "bigquery#getQueryResultsResponse",
		"jobReference": map[string]any{"projectId": project, "jobId": id},
		"schema":       map[string]any{"fields": []any{map[string]any{"name": "usage_month", "type": "DATE", "mode": "NULLABLE"}}},
		"totalRows":    "1000000",
		"jobComplete":  true,
		"pageToken":    "empty-" + strconv.Itoa(next+1),
	})
}

// ErrorBody returns a BigQuery error answer, e.g.
// ErrorBody(403, "accessDenied", "Access Denied: ...").
func ErrorBody(code int, reason, message string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code":    code,
		"message": message,
		"errors":  []any{map[string]any{"message": message, "domain": "global", "reason": reason}},
		"status":  statusName(code),
	}})
	return string(b)
}
