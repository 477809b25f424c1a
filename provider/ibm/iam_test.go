package ibm

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// TestTokenRefresh covers the refresh window of a cached token: due for
// refresh but still valid, it is replaced when IAM answers and kept (for
// tokenRetryDelay) when IAM fails.
func TestTokenRefresh(t *testing.T) {
	const key = "iam-test-key-0123456789abcdef"
	fake := ibmfake.NewServer(ibmfake.Dataset{}, key)
	ts := httptest.NewServer(fake)
	defer ts.Close()
	p, err := New(Options{APIKey: key, APIURL: ts.URL, IAMURL: ts.URL, HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Fresh: served from the cache.
	first, err := p.token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.token(ctx); again != first || fake.Requests(ibmfake.TokenPath) != 1 {
		t.Fatalf("fresh token not reused: %d IAM requests", fake.Requests(ibmfake.TokenPath))
	}

	// Due for refresh, IAM fails: the old token serves, and IAM is not
	// asked again before tokenRetryDelay.
	p.tokMu.Lock()
	p.tok.refresh = time.Now().Add(-time.Second)
	p.tokMu.Unlock()
	fake.Inject(ibmfake.TokenPath, ibmfake.Fault{Status: 503})
	if tok, err := p.token(ctx); err != nil || tok != first {
		t.Fatalf("failed refresh: token changed or failed: %v", err)
	}
	if tok, _ := p.token(ctx); tok != first || fake.Requests(ibmfake.TokenPath) != 2 {
		t.Fatalf("after a failed refresh: %d IAM requests, want 2", fake.Requests(ibmfake.TokenPath))
	}
	if d := time.Until(p.cachedToken().refresh); d < tokenRetryDelay-time.Second || d > tokenRetryDelay {
		t.Errorf("next refresh in %v, want %v", d, tokenRetryDelay)
	}

	// Due for refresh, IAM answers: a new token.
	p.tokMu.Lock()
	p.tok.refresh = time.Now().Add(-time.Second)
	p.tokMu.Unlock()
	second, err := p.token(ctx)
	if err != nil || second == first {
		t.Fatalf("refresh: same token or %v", err)
	}
	tok := p.cachedToken()
	if life := time.Until(tok.expires); life < 59*time.Minute || life > time.Hour+time.Second {
		t.Errorf("expires in %v, want the fake's hour", life)
	}
	if d := tok.expires.Sub(tok.refresh); d < 11*time.Minute || d > 13*time.Minute {
		t.Errorf("refresh %v before expiry, want a fifth of the hour", d)
	}

	// Expired (or about to): a failure is an error, not the old token.
	p.tokMu.Lock()
	p.tok.expires = time.Now().Add(tokenExpiryWindow / 2)
	p.tokMu.Unlock()
	fake.Inject(ibmfake.TokenPath, ibmfake.Fault{Status: 503})
	if _, err := p.token(ctx); err == nil {
		t.Error("expired token and IAM down: no error")
	}

	// A canceled context ends a wait for another request's token fetch.
	p.iamSem <- struct{}{}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.token(cctx); err == nil {
		t.Error("token returned while another request held the token fetch")
	}
	<-p.iamSem
}
