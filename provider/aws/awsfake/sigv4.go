package awsfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credentials are keys the fake accepts: issued by its STS or given to
// NewServer.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// maxSkew is how far a request's X-Amz-Date may be from the fake's clock,
// AWS's own limit.
const maxSkew = 15 * time.Minute

// authorization is a parsed SigV4 Authorization header.
type authorization struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
}

// parseAuthorization reads "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/
// SERVICE/aws4_request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (authorization, bool) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return authorization{}, false
	}
	var a authorization
	var haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return authorization{}, false
			}
			a.accessKeyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			haveSig = v != ""
		}
	}
	return a, haveSig && a.accessKeyID != "" && len(a.signedHeaders) > 0
}

// verify checks r's SigV4 signature the way AWS does: it signs a copy of
// the request (its signed headers and body only) with the secret of the
// access key the request names, using the SDK's signer, and compares the
// results. It returns the error AWS would answer, or nil.
func (s *Server) verify(r *http.Request, body []byte, service string) *apiError {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &apiError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	a, ok := parseAuthorization(auth)
	if !ok {
		return &apiError{http.StatusForbidden, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters."}
	}
	s.mu.Lock()
	creds, known := s.keys[a.accessKeyID]
	region := s.region
	s.mu.Unlock()
	if !known {
		return &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if a.service != service || a.region != region {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			"Credential should be scoped to a valid region and service: expected " + region + "/" + service + ", got " + a.region + "/" + a.service + "."}
	}
	if r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return &apiError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || !strings.HasPrefix(r.Header.Get("X-Amz-Date"), a.date) {
		return &apiError{http.StatusForbidden, "IncompleteSignatureException", "X-Amz-Date is missing or does not match the credential scope."}
	}
	if d := time.Since(signedAt); d > maxSkew || d < -maxSkew {
		return &apiError{http.StatusForbidden, "InvalidSignatureException", "Signature expired: " + signedAt.Format("20060102T150405Z") + " is not within 15 minutes of the server time."}
	}

	again, err := http.NewRequestWithContext(context.Background(), r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return &apiError{http.StatusBadRequest, "ValidationException", "Malformed request URI."}
	}
	again.ContentLength = 0 // signed only if the client signed it
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			for _, v := range r.Header.Values(h) {
				again.Header.Add(h, v)
			}
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	cred := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(r.Context(), cred, again, payload, a.service, a.region, signedAt); err != nil {
		return &apiError{http.StatusInternalServerError, "InternalServerException", "The fake could not sign the request again."}
	}
	if again.Header.Get("Authorization") != auth {
		return &apiError{http.StatusForbidden, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	}
	return nil
}
