package app

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/promslog"

	"github.com/cloudcarbon/cloudcarbon_exporter/exposition"
	"github.com/cloudcarbon/cloudcarbon_exporter/internal/clouds"
	"github.com/cloudcarbon/cloudcarbon_exporter/otlp"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm/ibmfake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/demogolden"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
	"github.com/cloudcarbon/cloudcarbon_exporter/refresh"
	"github.com/cloudcarbon/cloudcarbon_exporter/store"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func testLogger(w io.Writer) *promslog.Config {
	lvl := promslog.NewLevel()
	_ = lvl.Set("debug")
	return &promslog.Config{Level: lvl, Writer: w}
}

func testOptions(t *testing.T) *Options {
	t.Helper()
	return &Options{
		ConfigFile:    filepath.Join(t.TempDir(), "config.yml"),
		TelemetryPath: "/metrics",
		HistoryMonths: 13,
		StateFile:     filepath.Join(t.TempDir(), "state.json"),
		Plugins:       clouds.All(),
		Now:           time.Now,
	}
}

func startApp(t *testing.T, o *Options, logs io.Writer, persist bool) *App {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	a, err := New(t.Context(), *o, promslog.New(testLogger(logs)), persist)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func waitReady(t *testing.T, a *App) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !a.ready() {
		if time.Now().After(deadline) {
			t.Fatal("not ready after 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exposition renders the named families of a registry as text.
func gatherText(t *testing.T, g prometheus.Gatherer, names ...string) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if len(names) > 0 && !slices.Contains(names, mf.GetName()) {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

func writeConfig(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeIBM serves the demo dataset on an httptest server that accepts key.
func fakeIBM(t *testing.T, now time.Time, key string) (*ibmfake.Server, ibmfake.Dataset, string) {
	t.Helper()
	ds := ibmfake.Demo(now)
	fake := ibmfake.NewServer(ds, key)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, ds, srv.URL
}

// ownDataset is the demo enterprise with an enterprise id and accounts of
// its own, derived from name, so that sources of several such datasets
// report no series in common.
func ownDataset(now time.Time, name string) ibmfake.Dataset {
	ds := ibmfake.Demo(now)
	ownEnterprise(&ds, name)
	for i := range ds.Rows {
		ds.Rows[i].AccountID = name + "-" + ds.Rows[i].AccountID
	}
	for i := range ds.Entities {
		if ds.Entities[i].Type == ibmfake.TypeAccount {
			ds.Entities[i].ID = name + "-" + ds.Entities[i].ID
		}
	}
	return ds
}

// ownEnterprise gives ds an enterprise id of its own, derived from name,
// as separate enterprises have: sources of one enterprise read the same
// data, which the configuration refuses.
func ownEnterprise(ds *ibmfake.Dataset, name string) {
	sum := sha256.Sum256([]byte(name))
	id, old := hex.EncodeToString(sum[:16]), ds.EnterpriseID
	ds.EnterpriseID = id
	for i := range ds.Entities {
		if ds.Entities[i].ID == old {
			ds.Entities[i].ID = id
		}
		if ds.Entities[i].ParentID == old {
			ds.Entities[i].ParentID = id
		}
	}
}

func ibmConfig(url, enterprise, keyLine string) string {
	return fmt.Sprintf(`refresh:
  backoff_min: 1h
ibm:
  - name: acme
    %s
    enterprise_id: %s
    api_url: %s
    iam_url: %s
`, keyLine, enterprise, url, url)
}

var dataFamilies = []string{
	"cloudcarbon_emissions_grams", "cloudcarbon_energy_joules",
	"cloudcarbon_history_emissions_grams", "cloudcarbon_history_energy_joules",
	"cloudcarbon_account_info", "cloudcarbon_data_month_timestamp_seconds",
}

func TestRestartServesStateBeforeAnyRequest(t *testing.T) {
	fake, ds, url := fakeIBM(t, time.Now(), "k-123")
	f := testOptions(t)
	writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k-123"))

	first := startApp(t, f, nil, true)
	waitReady(t, first)
	want := gatherText(t, first.gatherer(), dataFamilies...)
	if !strings.Contains(want, "cloudcarbon_emissions_grams{") {
		t.Fatalf("no data after the first start:\n%s", want)
	}
	first.Close()
	requests := fake.Requests("/v1/carbon_emissions") + fake.Requests("/identity/token")

	// Second start: the state file alone serves the same data at once.
	second := startApp(t, f, nil, true)
	if got := gatherText(t, second.gatherer(), dataFamilies...); got != want {
		t.Errorf("after restart the exposition differs:\n%s\nwant:\n%s", got, want)
	}
	if !second.ready() {
		t.Error("not ready at once with persisted state")
	}
	time.Sleep(200 * time.Millisecond) // give the refresher a chance to misbehave
	if got := fake.Requests("/v1/carbon_emissions") + fake.Requests("/identity/token"); got != requests {
		t.Errorf("provider requests went from %d to %d after a restart with fresh state", requests, got)
	}
	second.Close()

	// A corrupted state file is reported, ignored, and the data refetched.
	raw, err := os.ReadFile(f.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x5a
	if err := os.WriteFile(f.StateFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	third := startApp(t, f, logs, true)
	waitReady(t, third)
	if got := gatherText(t, third.gatherer(), dataFamilies...); got != want {
		t.Errorf("after a corrupt state file the exposition differs:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(logs.String(), "Ignoring state file") {
		t.Errorf("corrupt state file not logged:\n%s", logs)
	}
	if err := testutil.GatherAndCompare(third.gatherer(), strings.NewReader(`
# HELP cloudcarbon_state_file_errors_total State file operations that failed: a load of a corrupt or foreign file (ignored), or a write.
# TYPE cloudcarbon_state_file_errors_total counter
cloudcarbon_state_file_errors_total{operation="load"} 1
cloudcarbon_state_file_errors_total{operation="write"} 0
`), "cloudcarbon_state_file_errors_total"); err != nil {
		t.Error(err)
	}
	if fake.Requests("/v1/carbon_emissions") == 0 {
		t.Error("no refetch after ignoring the state file")
	}
}

const canary = "CANARY-4c1d-SECRET-9e7b"

// TestSecretNeverLeaks puts a canary API key in the config and looks for it
// in every output: logs at debug level, /metrics, the landing page, health,
// readiness and reload responses, reload errors and --config.check.
func TestSecretNeverLeaks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		acceptKey string
	}{
		{"key accepted", canary},
		{"key rejected", "another-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ds, url := fakeIBM(t, time.Now(), tc.acceptKey)
			f := testOptions(t)
			writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: "+canary))
			logs := &logbuf.Buffer{}
			a := startApp(t, f, logs, true)
			waitReady(t, a)
			h, err := a.Handler(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var outputs []string
			for _, req := range []*http.Request{
				httptest.NewRequest(http.MethodGet, "/metrics", nil),
				httptest.NewRequest(http.MethodGet, "/", nil),
				httptest.NewRequest(http.MethodGet, "/-/healthy", nil),
				httptest.NewRequest(http.MethodGet, "/-/ready", nil),
				httptest.NewRequest(http.MethodPost, "/-/reload", nil),
			} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				outputs = append(outputs, rec.Body.String())
			}
			// A reload with a broken file near the secret answers with an error.
			writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: "+canary+"\n    api_kye: "+canary))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
			if rec.Code != http.StatusInternalServerError {
				t.Errorf("reload of a broken config: %d, want 500", rec.Code)
			}
			outputs = append(outputs, rec.Body.String())
			// So does one with a private key pasted where a path belongs.
			writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: "+canary)+
				"oci:\n  - config_file: |\n      -----BEGIN PRIVATE KEY-----\n      "+canary+"\n      -----END PRIVATE KEY-----\n")
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
			if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "oci.config_file cannot be read") {
				t.Errorf("reload of a key pasted as a path: %d %q, want 500", rec.Code, rec.Body.String())
			}
			outputs = append(outputs, rec.Body.String(), logs.String())
			if err := a.store.Flush(); err != nil {
				t.Fatal(err)
			}
			state, _ := os.ReadFile(f.StateFile)
			outputs = append(outputs, string(state))
			for i, out := range outputs {
				if strings.Contains(out, canary) {
					t.Errorf("output %d contains the secret:\n%s", i, out)
				}
			}
			if tc.acceptKey != canary && !strings.Contains(logs.String(), "Refresh failed") {
				t.Errorf("rejected key not reported in the logs:\n%s", logs)
			}
		})
	}
}

func TestReloadKeepsOldConfigOnError(t *testing.T) {
	_, ds, url := fakeIBM(t, time.Now(), "k")
	f := testOptions(t)
	writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k"))
	a := startApp(t, f, nil, false)
	waitReady(t, a)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reload := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
		return rec
	}
	success := func() float64 {
		mfs, _ := a.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "cloudcarbon_config_last_reload_successful" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}

	writeConfig(t, f.ConfigFile, "ibm:\n  - api_key: k\n    enterprise_id: nope\n")
	if rec := reload(); rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "config.yml:3:") {
		t.Errorf("bad reload: %d %q", rec.Code, rec.Body.String())
	}
	if got := success(); got != 0 {
		t.Errorf("reload gauge = %v after a failed reload, want 0", got)
	}
	if _, ok := a.store.Get("acme"); !ok {
		t.Error("old source gone after a failed reload")
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/-/reload", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", rec.Code)
	}

	writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k")+`  - name: second
    api_key: k
    api_url: `+url+"\n    iam_url: "+url+"\n")
	if rec := reload(); rec.Code != http.StatusOK {
		t.Errorf("good reload: %d %q", rec.Code, rec.Body.String())
	}
	if got := success(); got != 1 {
		t.Errorf("reload gauge = %v after a good reload, want 1", got)
	}
	if _, ok := a.store.Get("second"); !ok {
		t.Error("new source missing after reload")
	}
	if d, ok := a.store.Get("acme"); !ok || len(d.Months) == 0 {
		t.Error("data of the unchanged source lost on reload")
	}
}

// TestDemoExpositionGolden pins the whole demo exposition at a fixed time:
// each cloud's series are those its own demo golden holds (checked there
// by the conformance suite, provider/providertest), and the rest, the
// exporter's own, are in testdata/demo.prom. Only series that depend on
// the wall clock or the build are left out.
func TestDemoExpositionGolden(t *testing.T) {
	f := testOptions(t)
	f.Demo = true
	f.Now = demogolden.Time
	f.HistoryMonths, f.RetentionMonths = demogolden.History, demogolden.Retention
	a := startApp(t, f, nil, false)
	waitReady(t, a)
	for deadline := time.Now().Add(time.Minute); !a.settled(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the demo's older months were not fetched within a minute")
		}
	}
	// What /metrics serves, less the process and Go families.
	var text bytes.Buffer
	if err := a.expo.Write(&text, a.reg); err != nil {
		t.Fatal(err)
	}
	for _, pl := range clouds.All() {
		if pl.Demo == nil {
			continue
		}
		golden := filepath.Join("..", "..", "provider", pl.Name, demogolden.File)
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (the %s conformance test with -update writes it)", err, pl.Name)
		}
		if got := demogolden.Series(text.String(), pl.Name); got != string(want) {
			t.Errorf("the demo's %s series differ from %s, which the %s conformance test checks", pl.Name, golden, pl.Name)
		}
	}
	got := exporterSeries(text.String(), clouds.All())
	golden := filepath.Join("..", "..", "testdata", "demo.prom")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run Golden -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("demo exposition differs from %s; if the change is intended, run: go test ./internal/app -run Golden -update", golden)
	}
}

// exporterSeries returns the families of an exposition less every
// cloud's series, and less those that depend on the wall clock or the
// build; a family left without series is left out whole.
func exporterSeries(exposition string, plugins []provider.Plugin) string {
	var b, family strings.Builder
	kept := false
	flush := func() {
		if kept {
			b.WriteString(family.String())
		}
		family.Reset()
		kept = false
	}
	skip := false
	for line := range strings.Lines(exposition) {
		if name, ok := strings.CutPrefix(line, "# HELP "); ok {
			flush()
			name, _, _ = strings.Cut(name, " ")
			skip = slices.Contains([]string{"cloudcarbon_build_info", "cloudcarbon_config_last_reload_success_timestamp_seconds",
				"cloudcarbon_next_refresh_timestamp_seconds"}, name)
		}
		if skip || !strings.HasPrefix(line, "#") && slices.ContainsFunc(plugins, func(pl provider.Plugin) bool {
			return strings.Contains(line, `provider="`+pl.Name+`"`)
		}) {
			continue
		}
		family.WriteString(line)
		kept = kept || !strings.HasPrefix(line, "#")
	}
	flush()
	return b.String()
}

// TestREADMEMetricTable fails when the README's metric table and the real
// exposition disagree: every exposed family must be documented with its
// type, and every documented family must exist.
func TestREADMEMetricTable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(cloudcarbon_[a-z_]+)` \\| (gauge|counter|histogram|summary) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = m[2]
	}
	if len(documented) == 0 {
		t.Fatal("no metric table found in README.md")
	}

	// OTLP on, towards a port nothing listens on: its metrics appear too.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	f := testOptions(t)
	f.Demo, f.OTLP = true, true
	a := startApp(t, f, nil, false)
	waitReady(t, a)
	mfs, err := a.gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]string{}
	for _, mf := range mfs {
		exposed[mf.GetName()] = strings.ToLower(dto.MetricType_name[int32(mf.GetType())])
	}
	// Families the exporter declares but the demo leaves empty (another
	// provider's) must still be documented.
	rec := &descRecorder{names: map[string]bool{}}
	refresh.NewMetrics(rec, clouds.All())
	otlp.NewMetrics(rec)
	store.New(store.Options{Registerer: rec, Logger: slog.New(slog.DiscardHandler)})
	e := exposition.New(1, nil, nil)
	rec.MustRegister(e.Freshness(), e.Data())
	declared := rec.names

	for n, typ := range exposed {
		if doc, ok := documented[n]; !ok {
			t.Errorf("%s (%s) is exposed but not in the README metric table", n, typ)
		} else if doc != typ {
			t.Errorf("%s is a %s but the README says %s", n, typ, doc)
		}
	}
	for n := range documented {
		if _, ok := exposed[n]; !ok && !declared[n] {
			t.Errorf("%s is in the README metric table but not exposed", n)
		}
	}
}

// descRecorder is a Registerer that only notes the metric names collectors
// describe.
type descRecorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return false }

// TestReloadAfterCloseDoesNothing: a reload racing with shutdown (SIGHUP or
// a slow /-/reload) must not start refreshers or a pusher after close.
func TestReloadAfterCloseDoesNothing(t *testing.T) {
	_, ds, url := fakeIBM(t, time.Now(), "k")
	f := testOptions(t)
	writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k"))
	a := startApp(t, f, nil, false)
	waitReady(t, a)
	var wg sync.WaitGroup
	wg.Go(func() {
		writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k")+"otlp:\n  enabled: true\n  endpoint: 127.0.0.1:1\n  insecure: true\n")
		_ = a.Reload(t.Context())
	})
	a.Close()
	wg.Wait()
	if err := a.Reload(t.Context()); !errors.Is(err, errShuttingDown) {
		t.Errorf("reload after close: %v, want errShuttingDown", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pusher != nil {
		t.Error("an OTLP pusher runs after close")
	}
}

// TestDemoReloadSaysNothingWasReloaded: demo mode has no file to reload,
// and POST /-/reload says so instead of answering 200.
func TestDemoReloadSaysNothingWasReloaded(t *testing.T) {
	f := testOptions(t)
	f.Demo = true
	a := startApp(t, f, nil, false)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "demo mode") {
		t.Errorf("POST /-/reload in demo mode: %d %q, want 409 saying why", rec.Code, rec.Body.String())
	}
}

// TestFailedReloadIsLogged: a reload through POST /-/reload that fails is
// logged, as one through SIGHUP is.
func TestFailedReloadIsLogged(t *testing.T) {
	_, ds, url := fakeIBM(t, time.Now(), "k")
	f := testOptions(t)
	writeConfig(t, f.ConfigFile, ibmConfig(url, ds.EnterpriseID, "api_key: k"))
	logs := &logbuf.Buffer{}
	a := startApp(t, f, logs, false)
	h, err := a.Handler(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, f.ConfigFile, "refresh: {interval: nope}\n")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/-/reload", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("reload of a broken file: %d", rec.Code)
	}
	if !strings.Contains(logs.String(), "Reload failed") {
		t.Errorf("failed reload not logged:\n%s", logs)
	}
}

// TestPprofOnlyWhenEnabled: the landing page links to profiles only when
// --web.enable-pprof serves them.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		f := testOptions(t)
		f.Demo, f.Pprof = true, enabled
		a := startApp(t, f, nil, false)
		h, err := a.Handler(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		landing, profile := httptest.NewRecorder(), httptest.NewRecorder()
		h.ServeHTTP(landing, httptest.NewRequest(http.MethodGet, "/", nil))
		h.ServeHTTP(profile, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
		linked := strings.Contains(landing.Body.String(), "debug/pprof")
		if linked != enabled || (profile.Code == http.StatusOK) != enabled {
			t.Errorf("pprof enabled %v: landing page links it %v, /debug/pprof/ answers %d", enabled, linked, profile.Code)
		}
	}
}
