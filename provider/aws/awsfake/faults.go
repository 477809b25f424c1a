package awsfake

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// StatusFault is the answer the Sustainability API gives to a carbon
// query with status: the error code AWS sends with that status in
// X-Amzn-ErrorType, and its message in the body.
func StatusFault(status int) Fault {
	var e *apiError
	switch status {
	case http.StatusUnauthorized:
		e = &apiError{status, "UnrecognizedClientException", "The security token included in the request is invalid."}
	case http.StatusForbidden:
		e = accessDenied("AccessDeniedException", OpCarbon)
	case http.StatusTooManyRequests:
		e = &apiError{status, "ThrottlingException", "Rate exceeded"}
	case http.StatusInternalServerError:
		e = &apiError{status, "InternalServerException", "Internal error"}
	default:
		e = &apiError{status, "", http.StatusText(status)}
	}
	f := ErrorFault(e.status, e.code, e.message)
	if e.code == "" {
		f.Header.Del("X-Amzn-Errortype")
	}
	return f
}

// EmptyPage answers a Sustainability API query with a page that holds no
// result but a NextToken, a new one every time, as a broken service
// might forever.
func EmptyPage(w http.ResponseWriter, r *http.Request) {
	var in struct{ NextToken string }
	body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	_ = json.Unmarshal(body, &in)
	n, _ := strconv.Atoi(in.NextToken)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", requestID())
	_ = json.NewEncoder(w).Encode(wirePage[wireResult]{Results: []wireResult{}, NextToken: strconv.Itoa(n + 1)})
}
