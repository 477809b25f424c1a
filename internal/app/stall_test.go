package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// TestHungSourceStallsNothingElse: with one slot per provider, a source
// whose endpoint never answers gives its slot to the provider's healthy
// source within seconds, and readiness does not wait for it; the hung
// source is still refreshing (until refresh.timeout) all the while.
func TestHungSourceStallsNothingElse(t *testing.T) {
	now := time.Now()
	stop := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(stop) })
	_, ds, healthy := fakeIBM(t, now, "k")
	o := testOptions(t)
	writeConfig(t, o.ConfigFile, fmt.Sprintf(`refresh:
  max_concurrency: 1
ibm:
  - name: a-hung
    api_key: k
    api_url: %[1]s
    iam_url: %[1]s
  - name: b-healthy
    api_key: k
    enterprise_id: %[3]s
    api_url: %[2]s
    iam_url: %[2]s
`, hung.URL, healthy, ds.EnterpriseID))
	o.StateFile = filepath.Join(t.TempDir(), "state.json")
	start := time.Now()
	a := startApp(t, o, nil, false)
	for !a.ready() {
		if time.Since(start) > 5*time.Second {
			t.Fatal("not ready within 5 s of start while one source hangs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d, _ := a.store.Get("b-healthy")
	if _, ok := d.LatestMonth(); !ok {
		t.Errorf("ready after %s without the healthy source's data", time.Since(start).Round(time.Millisecond))
	}
	if hungData, _ := a.store.Get("a-hung"); hungData.Attempted || !hungData.Stalled {
		t.Errorf("the hung source: attempted %v, stalled %v; want it still refreshing, and stalled", hungData.Attempted, hungData.Stalled)
	}
	t.Logf("ready with the healthy source's data %s after start", time.Since(start).Round(time.Millisecond))
}
