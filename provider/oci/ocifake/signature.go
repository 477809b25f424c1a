package ocifake

import (
	"crypto"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key is an API signing key the fake accepts: its key id, as OCI's signer
// sends it ("TENANCY_OCID/USER_OCID/FINGERPRINT"), and the public half.
type Key struct {
	ID        string
	PublicKey *rsa.PublicKey
}

// Fingerprint returns the fingerprint OCI shows for an API key: the MD5 of
// the public key's DER (SubjectPublicKeyInfo), in colon-separated hex.
func Fingerprint(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := md5.Sum(der)
	h := hex.EncodeToString(sum[:])
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// KeyID returns the key id OCI's signer sends for a user's API key.
func KeyID(tenancy, user string, pub *rsa.PublicKey) string {
	return tenancy + "/" + user + "/" + Fingerprint(pub)
}

// maxClockSkew is how far a request's date may be from the fake's clock:
// OCI refuses requests dated more than five minutes off.
const maxClockSkew = 5 * time.Minute

// Headers every signature must cover, and those a request with a body
// must cover as well (OCI's signing specification, draft-cavage-http-
// signatures as OCI profiles it).
var (
	genericSignedHeaders = []string{"date", "(request-target)", "host"}
	bodySignedHeaders    = []string{"content-length", "content-type", "x-content-sha256"}
)

// authorization is a parsed Authorization header.
type authorization struct {
	keyID     string
	headers   []string
	signature []byte
}

// checkSignature checks r's OCI request signature: the Authorization
// header's shape, that it covers the headers OCI requires, that those
// headers are present and agree with the request (body hash, length,
// date within the allowed skew), and, when keys are known, the RSA
// signature itself. It returns the signing key's id, or an error worded
// for a NotAuthenticated answer.
func checkSignature(r *http.Request, body []byte, keys map[string]*rsa.PublicKey, now time.Time) (string, error) {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	want := slices.Clone(genericSignedHeaders)
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		want = append(want, bodySignedHeaders...)
	}
	for _, h := range want {
		if !slices.Contains(a.headers, h) {
			return "", fmt.Errorf("the signature does not cover the %q header", h)
		}
	}
	for _, h := range a.headers {
		if h != "(request-target)" && h != "host" && r.Header.Get(h) == "" {
			return "", fmt.Errorf("the signed header %q is missing from the request", h)
		}
	}
	date, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		return "", errors.New("the date header is not an HTTP date")
	}
	if d := now.Sub(date); d > maxClockSkew || d < -maxClockSkew {
		return "", fmt.Errorf("the date header is %s away from the server's clock, more than the %s allowed", d.Round(time.Second), maxClockSkew)
	}
	if slices.Contains(a.headers, "x-content-sha256") {
		sum := sha256.Sum256(body)
		if r.Header.Get("X-Content-Sha256") != base64.StdEncoding.EncodeToString(sum[:]) {
			return "", errors.New("x-content-sha256 does not match the body")
		}
	}
	if slices.Contains(a.headers, "content-length") {
		if n, err := strconv.Atoi(r.Header.Get("Content-Length")); err != nil || n != len(body) {
			return "", errors.New("content-length does not match the body")
		}
	}
	if len(keys) == 0 {
		return a.keyID, nil
	}
	pub, ok := keys[a.keyID]
	if !ok {
		return "", errors.New("the key id names no API key of a known user")
	}
	hashed := sha256.Sum256([]byte(signingString(r, a.headers)))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashed[:], a.signature); err != nil {
		return "", errors.New("the signature does not verify with the user's API key")
	}
	return a.keyID, nil
}

// parseAuthorization reads `Signature version="1",keyId="…",
// algorithm="rsa-sha256",headers="…",signature="…"`, in any order.
func parseAuthorization(h string) (*authorization, error) {
	rest, ok := strings.CutPrefix(h, "Signature ")
	if !ok {
		return nil, errors.New("the Authorization header is missing or not an OCI signature")
	}
	params := make(map[string]string)
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=\"")
		if !ok {
			return nil, errors.New("the Authorization header is malformed")
		}
		value, after, ok := strings.Cut(after, "\"")
		if !ok {
			return nil, errors.New("the Authorization header is malformed")
		}
		name = strings.TrimSpace(name)
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("the Authorization header repeats %q", name)
		}
		params[name] = value
		rest = strings.TrimPrefix(strings.TrimSpace(after), ",")
	}
	switch {
	case params["version"] != "1":
		return nil, errors.New(`the signature's version must be "1"`)
	case params["algorithm"] != "rsa-sha256":
		return nil, errors.New(`the signature's algorithm must be "rsa-sha256"`)
	case !wellFormedKeyID(params["keyId"]):
		return nil, errors.New("the signature's keyId is not TENANCY_OCID/USER_OCID/FINGERPRINT nor a security token")
	case params["headers"] == "":
		return nil, errors.New("the signature names no headers")
	}
	sig, err := base64.StdEncoding.DecodeString(params["signature"])
	if err != nil || len(sig) == 0 {
		return nil, errors.New("the signature is not base64")
	}
	return &authorization{keyID: params["keyId"], headers: strings.Fields(params["headers"]), signature: sig}, nil
}

// wellFormedKeyID accepts an API key's id and a security token's ("ST$"
// and the token: instance principals, workload identity).
func wellFormedKeyID(id string) bool {
	if tok, ok := strings.CutPrefix(id, "ST$"); ok {
		return tok != ""
	}
	parts := strings.Split(id, "/")
	return len(parts) == 3 && strings.HasPrefix(parts[0], "ocid1.tenancy.") &&
		strings.HasPrefix(parts[1], "ocid1.user.") && strings.Count(parts[2], ":") == 15
}

// signingString is what OCI's signer signs: one "name: value" line per
// covered header, in the order the signature names them.
func signingString(r *http.Request, headers []string) string {
	lines := make([]string, len(headers))
	for i, h := range headers {
		var v string
		switch h {
		case "(request-target)":
			v = strings.ToLower(r.Method) + " " + r.RequestURI
		case "host":
			v = r.Host
		default:
			v = r.Header.Get(h)
		}
		lines[i] = h + ": " + v
	}
	return strings.Join(lines, "\n")
}
