package awsfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// stsCredentialTTL is the lifetime of the keys the fake's STS issues.
const stsCredentialTTL = time.Hour

// serveSTS implements AssumeRole (signed by a known identity) and
// AssumeRoleWithWebIdentity (unsigned, authorised by the token), in
// awsQuery's form-encoded request and XML answer.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, op string, form url.Values, body []byte) {
	role := form.Get("RoleArn")
	switch op {
	case OpAssumeRole:
		if e := s.verify(r, body, "sts"); e != nil {
			stsError(w, e)
			return
		}
		s.mu.Lock()
		external, ok := s.roles[role]
		s.mu.Unlock()
		if !ok || form.Get("ExternalId") != external {
			stsError(w, &apiError{http.StatusForbidden, "AccessDenied", "User is not authorized to perform: sts:AssumeRole on resource: " + role})
			return
		}
	case OpAssumeRoleWithWebIdentity:
		s.mu.Lock()
		allowed, ok := s.webTokens[form.Get("WebIdentityToken")]
		s.mu.Unlock()
		switch {
		case !ok:
			stsError(w, &apiError{http.StatusBadRequest, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider."})
			return
		case allowed != role:
			stsError(w, &apiError{http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"})
			return
		}
	}
	if form.Get("RoleSessionName") == "" {
		stsError(w, &apiError{http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"})
		return
	}
	creds := Credentials{
		AccessKeyID:     "ASIA" + strings.ToUpper(randomHex(8)),
		SecretAccessKey: randomHex(20),
		SessionToken:    "FwoGZXIvYXdzE" + randomHex(32),
	}
	s.mu.Lock()
	s.keys[creds.AccessKeyID] = creds
	s.mu.Unlock()

	type wireCredentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type wireUser struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	type wireResult struct {
		XMLName         xml.Name
		Credentials     wireCredentials `xml:"Credentials"`
		AssumedRoleUser wireUser        `xml:"AssumedRoleUser"`
	}
	out := struct {
		XMLName   xml.Name
		Namespace string `xml:"xmlns,attr"`
		Result    wireResult
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}{
		XMLName:   xml.Name{Local: op + "Response"},
		Namespace: "https://sts.amazonaws.com/doc/2011-06-15/",
		RequestID: requestID(),
	}
	out.Result = wireResult{
		XMLName: xml.Name{Local: op + "Result"},
		Credentials: wireCredentials{
			AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken,
			Expiration: time.Now().Add(stsCredentialTTL).UTC().Format(time.RFC3339),
		},
		AssumedRoleUser: wireUser{Arn: strings.Replace(role, ":role/", ":assumed-role/", 1) + "/" + form.Get("RoleSessionName"), AssumedRoleID: "AROA" + strings.ToUpper(randomHex(8))},
	}
	b, err := xml.Marshal(out)
	if err != nil {
		stsError(w, &apiError{http.StatusInternalServerError, "InternalFailure", "The fake could not encode its answer."})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(b)
}

// stsError answers as awsQuery services do.
func stsError(w http.ResponseWriter, e *apiError) {
	kind := "Sender"
	if e.status >= 500 {
		kind = "Receiver"
	}
	out := struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Error   struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Error"`
		RequestID string `xml:"RequestId"`
	}{RequestID: requestID()}
	out.Error.Type, out.Error.Code, out.Error.Message = kind, e.code, e.message
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
