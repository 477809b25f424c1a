package ibm_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// silentServer accepts connections and never answers, as an IAM endpoint
// behind a broken proxy or firewall does. Connections are closed when
// the test ends. accepted receives a value per accepted connection (or
// drops it when nobody listens).
func silentServer(t *testing.T) (url string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 1)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "http://" + l.Addr().String(), ch
}

// TestHungIAMDoesNotStallOtherSources: go-sdk-core serialises every IAM
// token request of the process behind one lock. A source whose IAM
// endpoint accepts connections and never answers must fail at its own
// deadline, without holding up the token requests of another source, and
// without leaving goroutines behind.
func TestHungIAMDoesNotStallOtherSources(t *testing.T) {
	hungURL, accepted := silentServer(t)
	healthy := newEnv(t, pagingDataset(3), nil)
	hung := healthy.provider(t, func(o *ibm.Options) {
		o.IAMURL = hungURL
		// A client without a timeout of its own: only the refresh's
		// context may bound the token request.
		o.HTTPClient = &http.Client{}
	})
	good := healthy.provider(t, nil)

	// The hung source asks for a token first and is stuck in it.
	hungErr := make(chan *provider.Error, 1)
	hungTook := make(chan time.Duration, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := hung.Fetch(ctx, []provider.Month{jan})
		hungTook <- time.Since(start)
		perr, _ := errors.AsType[*provider.Error](err)
		hungErr <- perr
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the hung source never connected to its IAM endpoint")
	}

	// Meanwhile the healthy source gets its token and its data.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res, err := good.Fetch(ctx, []provider.Month{jan})
	if err != nil {
		t.Errorf("healthy source failed while another source's IAM hangs: %v", err)
	} else if len(res.Records) != 3 {
		t.Errorf("healthy source: %d records, want 3", len(res.Records))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("healthy source took %v while another source's IAM hangs, want well under a second", d)
	}

	perr, took := <-hungErr, <-hungTook
	if perr == nil || perr.Reason != provider.ReasonTimeout {
		t.Errorf("hung source: %v, want a timeout", perr)
	}
	if took > 3*time.Second {
		t.Errorf("hung source failed after %v, want at its 1.5s deadline", took)
	}

	// Refresh after refresh of the hung source leaves no goroutine
	// behind: each token request ends with its refresh.
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, _ = hung.Fetch(ctx, []provider.Month{jan})
		cancel()
	}
	n := runtime.NumGoroutine()
	for deadline := time.Now().Add(3 * time.Second); n > base+4 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+4 {
		t.Errorf("goroutines grew from %d to %d over 20 refreshes of the hung source", base, n)
	}
}

// TestMessagesCutOnRuneBoundaries: IBM's error messages are bounded, and
// the cut never splits a character.
func TestMessagesCutOnRuneBoundaries(t *testing.T) {
	msg := strings.Repeat("a", 511) + "é and more"
	e := newEnv(t, pagingDataset(3), nil)
	e.fake.Inject(ibmfake.CarbonPath, ibmfake.Fault{Status: 403,
		Body: `{"status":"403","error":"Forbidden","message":"` + msg + `"}`})
	perr := fetchErr(t, context.Background(), e.provider(t, nil), jan)
	if !utf8.ValidString(perr.Error()) {
		t.Errorf("error is not valid UTF-8: %q", perr.Error())
	}
	if !strings.Contains(perr.Error(), strings.Repeat("a", 511)+"…") {
		t.Errorf("error %q does not hold the message cut before the é", perr.Error())
	}
}

// TestIAMTimeout: a token request IAM does not answer fails after
// Options.IAMTimeout, however long the refresh may take, as a timeout
// that names IAM.
func TestIAMTimeout(t *testing.T) {
	hungURL, _ := silentServer(t)
	e := newEnv(t, pagingDataset(3), nil)
	p := e.provider(t, func(o *ibm.Options) {
		o.IAMURL = hungURL
		o.HTTPClient = &http.Client{}
		o.IAMTimeout = 300 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	perr := fetchErr(t, ctx, p, jan)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failed after %v, want after the 300ms IAM timeout", d)
	}
	if perr.Reason != provider.ReasonTimeout || !strings.Contains(perr.Error(), "IAM did not answer within 300ms") ||
		!errors.Is(perr, context.DeadlineExceeded) {
		t.Errorf("error = %v (%s)", perr, perr.Reason)
	}
	if _, err := ibm.New(ibm.Options{APIKey: canary, IAMTimeout: -time.Second}); err == nil {
		t.Error("New accepted a negative IAM timeout")
	}
}

// TestEchoedCredentialsAreScrubbed: a server whose error answer echoes the
// request shows neither the bearer token the source sent nor the API key
// in any form it travelled (form-encoded to IAM, or base64 as a server
// might log it) in the error.
func TestEchoedCredentialsAreScrubbed(t *testing.T) {
	// go-sdk-core's debug dumps, which TestMain turns on, show echoed
	// bodies by design; the exporter never turns them on.
	quietSDKLog(t)
	key := "ECHO+key/0123456789abcdef=="
	tests := []struct {
		name string
		path string
		echo func(r *http.Request) string
	}{
		{"bearer token in a data error", ibmfake.CarbonPath, func(r *http.Request) string { return r.Header.Get("Authorization") }},
		{"form-encoded key in an IAM error", ibmfake.TokenPath, func(r *http.Request) string {
			body, _ := io.ReadAll(r.Body)
			return string(body)
		}},
		{"base64 key in an IAM error", ibmfake.TokenPath, func(*http.Request) string {
			return "apikey " + base64.StdEncoding.EncodeToString([]byte("user:"+key))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent []string
			e := newEnvKey(t, pagingDataset(3), key, func(fake http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != tt.path {
						fake.ServeHTTP(w, r)
						return
					}
					echoed := tt.echo(r)
					sent = append(sent, echoed)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_ = json.NewEncoder(w).Encode(map[string]string{"errorMessage": "bad request: " + echoed, "message": "bad request: " + echoed})
				})
			})
			perr := fetchErr(t, context.Background(), e.provider(t, func(o *ibm.Options) { o.APIKey = key }), jan)
			if len(sent) == 0 {
				t.Fatal("the echoing server was not asked")
			}
			// Messages are cut at 512 bytes: any long piece is a leak.
			token := strings.TrimPrefix(sent[0], "Bearer ")
			token = token[:min(len(token), 40)]
			for _, leak := range []string{key, url.QueryEscape(key), token} {
				if leak != "" && strings.Contains(perr.Error(), leak) {
					t.Errorf("the error shows a credential: %v", perr)
				}
			}
			if httpx.Scrub(perr.Error(), key) != perr.Error() {
				t.Errorf("the error shows an encoded form of the key: %v", perr)
			}
		})
	}
}
