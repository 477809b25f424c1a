package app

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
)

// TestServeFailsBeforeAnyRefresh: with the listen address in use, or a
// web configuration that cannot be used, the exporter exits without
// calling a provider or writing its state file.
func TestServeFailsBeforeAnyRefresh(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name, addr, webConfig string
		want                  func(error) bool
	}{
		{"address in use", busy.Addr().String(), "", func(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }},
		{"web config missing", "127.0.0.1:0", filepath.Join(t.TempDir(), "web.yml"), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "--web.config.file")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := ibmfake.Demo(time.Now())
			fake := ibmfake.NewServer(ds, canary)
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				fake.ServeHTTP(w, r)
			}))
			defer srv.Close()

			o := testOptions(t)
			writeConfig(t, o.ConfigFile, ibmConfig(srv.URL, ds.EnterpriseID, "api_key: "+canary))
			addrs, systemd := []string{tc.addr}, false
			o.Web = &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &tc.webConfig}
			err := Serve(t.Context(), *o, promslog.New(testLogger(io.Discard)))
			if !tc.want(err) {
				t.Fatalf("Serve: %v", err)
			}
			// Anything started before the failure would have called by now.
			time.Sleep(300 * time.Millisecond)
			if n := requests.Load(); n > 0 {
				t.Errorf("%d requests to the provider", n)
			}
			if _, err := os.Stat(o.StateFile); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("state file: %v, want none written", err)
			}
		})
	}
}
