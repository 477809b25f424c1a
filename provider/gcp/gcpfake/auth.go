package gcpfake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
)

// TokenPath is where the fake issues OAuth access tokens: point a
// service-account key's token_uri at server URL + TokenPath.
const TokenPath = "/token"

// jwtBearer is the grant type of a service account's token request.
const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// ServiceAccount is a service-account key whose signed assertions the
// fake exchanges for an access token, as Google's OAuth endpoint does.
type ServiceAccount struct {
	Email string
	// PrivateKey is the key's PKCS #8 PEM: the credential itself.
	PrivateKey string
	// AccessToken is the token the fake issues for the key.
	AccessToken string
	public      *rsa.PublicKey
}

// NewServiceAccount returns a service account of project with a fresh
// key and access token.
func NewServiceAccount(project string) (*ServiceAccount, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("gcpfake: service account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("gcpfake: service account key: %w", err)
	}
	return &ServiceAccount{
		Email:       "cloudcarbon@" + project + ".iam.gserviceaccount.com",
		PrivateKey:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		AccessToken: "ya29." + rand.Text() + rand.Text(),
		public:      &key.PublicKey,
	}, nil
}

// Leaks returns the strings whose presence in an output would betray the
// account: the access token, and each line of the key's PEM body, which a
// key file holds between escaped newlines.
func (a *ServiceAccount) Leaks() []string {
	lines := strings.Split(strings.TrimSpace(a.PrivateKey), "\n")
	return append([]string{a.AccessToken}, lines[1:len(lines)-1]...)
}

// KeyFile returns the account's JSON key file, as the console downloads
// it, naming tokenURL as its token endpoint.
func (a *ServiceAccount) KeyFile(tokenURL string) []byte {
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"private_key_id": "gcpfake",
		"private_key":    a.PrivateKey,
		"client_email":   a.Email,
		"client_id":      "1",
		"token_uri":      tokenURL,
	})
	return b
}

// RequireServiceAccount makes the fake issue a.AccessToken at TokenPath
// for an assertion a's key signed, and refuse every BigQuery request that
// does not carry that token.
func (s *Server) RequireServiceAccount(a *ServiceAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account = a
}

// authorized answers 401 as BigQuery does, and reports false, for a
// request without the required token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	a := s.account
	s.mu.Unlock()
	if a == nil || r.Header.Get("Authorization") == "Bearer "+a.AccessToken {
		return true
	}
	writeError(w, http.StatusUnauthorized, "authError", "Request is missing required authentication credential. Expected OAuth 2 access token.")
	return false
}

// serveToken answers a service account's token request.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.requests.Inc(EndpointToken)
	s.mu.Lock()
	a := s.account
	s.mu.Unlock()
	if a == nil {
		writeOAuthError(w, "invalid_client", "gcpfake: no service account is set (RequireServiceAccount).")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != jwtBearer {
		writeOAuthError(w, "unsupported_grant_type", "Invalid grant_type.")
		return
	}
	if !a.signed(r.PostForm.Get("assertion")) {
		writeOAuthError(w, "invalid_grant", "Invalid JWT Signature.")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": a.AccessToken, "token_type": "Bearer", "expires_in": 3599})
}

// signed reports whether assertion is an RS256 JWT of a's key issued by a.
func (a *ServiceAccount) signed(assertion string) bool {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(a.public, crypto.SHA256, digest[:], sig) != nil {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss string `json:"iss"`
	}
	return err == nil && json.Unmarshal(payload, &claims) == nil && claims.Iss == a.Email
}

func writeOAuthError(w http.ResponseWriter, code, description string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
