package ocifake

import (
	"encoding/json"
	"net/http"
	"strings"
)

// StatusFault is the answer the Usage API gives with status: the error
// code OCI sends with it, and its message.
func StatusFault(status int) Fault {
	switch status {
	case http.StatusUnauthorized:
		return ErrorFault(status, "NotAuthenticated", "The required information to complete authentication was not provided or was incorrect.")
	case http.StatusForbidden:
		return ErrorFault(status, "NotAuthorized", "Authorization failed or requested resource not found.")
	case http.StatusTooManyRequests:
		return ErrorFault(status, "TooManyRequests", "Too many requests for the tenancy.")
	case http.StatusInternalServerError:
		return ErrorFault(status, "InternalServerError", "Internal error.")
	}
	return ErrorFault(status, strings.ReplaceAll(http.StatusText(status), " ", ""), http.StatusText(status)+".")
}

// EmptyPage answers a carbon query with a page that holds no item but
// links to another, a new one every time, as a broken service might
// forever.
func EmptyPage(w http.ResponseWriter, r *http.Request) {
	_, n, _ := parseToken(r.URL.Query().Get("page"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Opc-Request-Id", newRequestID())
	w.Header().Set("Opc-Next-Page", pageToken("empty", n+1))
	_ = json.NewEncoder(w).Encode(wireAggregation{Items: []wireItem{}})
}
