package azurefake

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// IsReport reports whether r asks for carbonEmissionReports, the
// operation that carries the data.
func IsReport(r *http.Request) bool { return operation(r) == OpReports }

// EmptyPage answers a carbonEmissionReports request with a page that
// holds no item but sends a skipToken, a new one each time, as a broken
// server might forever.
func EmptyPage(w http.ResponseWriter, r *http.Request) {
	var q struct {
		SkipToken string `json:"skipToken"`
	}
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	_ = json.Unmarshal(body, &q)
	n, _ := strconv.Atoi(strings.TrimPrefix(q.SkipToken, "empty-"))
	writeJSON(w, http.StatusOK, wireResult{Value: []*wireItem{}, SkipToken: "empty-" + strconv.Itoa(n+1),
		SubscriptionAccessDecisionList: []accessDecision{}})
}

// ErrorFault is ARM's answer with status to a carbonEmissionReports
// request, in ARM's error shape, with the codes and messages ARM sends.
func ErrorFault(status int) Fault {
	code, msg := "", http.StatusText(status)
	switch status {
	case http.StatusUnauthorized:
		code, msg = "InvalidAuthenticationToken", "The access token is invalid."
	case http.StatusForbidden:
		code, msg = "AuthorizationFailed", "The client does not have authorization to perform action "+
			"'Microsoft.Carbon/carbonEmissionReports/action' over scope '/providers/Microsoft.Carbon' or the scope is invalid."
	case http.StatusTooManyRequests:
		code, msg = "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read."
	case http.StatusInternalServerError:
		code, msg = "InternalServerError", "Encountered internal server error."
	default:
		code = strings.ReplaceAll(http.StatusText(status), " ", "")
	}
	body, _ := json.Marshal(armErrorBody(code, msg))
	return Fault{Status: status, Body: string(body)}
}
