package oci_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/oci/ocifake"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/providertest/logbuf"
)

// canary stands for the private key's passphrase; it must never show up
// in any output.
const canary = "CANARY-passphrase-7f3a9c+secret"

const (
	tenancy = "ocid1.tenancy.oc1..aaaaaaaatesttenancy0000000000000000000000000000000000000000"
	user    = "ocid1.user.oc1..aaaaaaaatestuser00000000000000000000000000000000000000000000"
)

var (
	dec25 = provider.NewMonth(2025, time.December)
	jan26 = dec25 + 1
	feb26 = dec25 + 2
)

// testKey is one RSA key for every test: generating keys is slow, most
// of all under the race detector.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func dataset() ocifake.Dataset {
	return ocifake.Dataset{
		TenancyID:   tenancy,
		TenancyName: "acme",
		Rows: []ocifake.Row{
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "us-ashburn-1", Month: jan26, PowerLocation: 0.5, PowerMarket: 0.2, SpendMarket: 0.3},
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "eu-frankfurt-1", Month: jan26, PowerLocation: 0.25, PowerMarket: 0, SpendMarket: 0.1},
			{CompartmentPath: "acme/prod/dev", Service: "BLOCK_STORAGE", Region: "us-ashburn-1", Month: jan26, PowerLocation: 0.01, PowerMarket: 0.004, SpendMarket: 0.006},
			// Another compartment named dev: the path keeps them apart.
			{CompartmentPath: "acme/research/dev", Service: "BLOCK_STORAGE", Region: "us-ashburn-1", Month: jan26, PowerLocation: 0.02, PowerMarket: 0.008, SpendMarket: 0.012},
			{CompartmentPath: "acme", Service: "OBJECT_STORAGE", Region: "us-ashburn-1", Month: jan26, PowerLocation: 0.001, PowerMarket: 0.0005, SpendMarket: 0.0007},
			{CompartmentPath: "acme/prod/web", Service: "API_GATEWAY", Region: "us-ashburn-1", Month: jan26, SpendMarket: 0.002, SpendOnly: true},
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "us-ashburn-1", Month: feb26, PowerLocation: 0.55, PowerMarket: 0.21, SpendMarket: 0.31},
			{CompartmentPath: "acme/prod/web", Service: "COMPUTE", Region: "us-ashburn-1", Month: dec25, PowerLocation: 0.45, PowerMarket: 0.19, SpendMarket: 0.29},
		},
	}
}

// env is a fake Usage API, an API key it accepts, and an OCI config file
// describing that key, its PEM encrypted with the canary passphrase.
type env struct {
	fake       *ocifake.Server
	ts         *httptest.Server
	dir        string
	configFile string
	keyPEM     []byte
	logs       *logbuf.Buffer

	mu       sync.Mutex
	backoffs []uint
	requests map[string]int // by self-metric endpoint name
}

// fakeKey is testKey as the fake knows it: the test user's API key.
func fakeKey() ocifake.Key {
	pub := &testKey().PublicKey
	return ocifake.Key{ID: ocifake.KeyID(tenancy, user, pub), PublicKey: pub}
}

func newEnv(t *testing.T, ds ocifake.Dataset) *env {
	t.Helper()
	e := &env{
		fake:     ocifake.NewServer(ds, fakeKey()),
		dir:      t.TempDir(),
		logs:     &logbuf.Buffer{},
		requests: make(map[string]int),
	}
	e.ts = httptest.NewServer(e.fake)
	t.Cleanup(e.ts.Close)
	e.configFile, e.keyPEM = writeConfig(t, e.dir)
	return e
}

// writeConfig writes testKey to dir, its PEM encrypted with the canary
// passphrase, and an OCI config file whose DEFAULT profile signs with it
// as the test user of the test tenancy.
func writeConfig(t testing.TB, dir string) (configFile string, keyPEM []byte) {
	t.Helper()
	key := testKey()
	// The OCI CLI writes passphrase-protected keys in the legacy
	// encrypted PEM format, which the SDK decrypts with
	// x509.DecryptPEMBlock.
	//lint:ignore SA1019 the legacy format is what the OCI CLI writes and the SDK reads
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), []byte(canary), x509.PEMCipherAES256)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = pem.EncodeToMemory(block)
	keyFile := filepath.Join(dir, "key.pem")
	write(t, keyFile, string(keyPEM))
	configFile = filepath.Join(dir, "config")
	write(t, configFile, fmt.Sprintf("[DEFAULT]\nuser=%s\nfingerprint=%s\ntenancy=%s\nregion=us-ashburn-1\nkey_file=%s\n\n"+
		"[OTHER]\nuser=ocid1.user.oc1..aaaaaaaaother\nfingerprint=00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\ntenancy=%s\nregion=us-ashburn-1\nkey_file=%s\n",
		user, ocifake.Fingerprint(&key.PublicKey), tenancy, keyFile, tenancy, keyFile))
	return configFile, keyPEM
}

// options are a provider's options against the fake, with fast retries.
func (e *env) options() oci.Options {
	return oci.Options{
		ConfigFile:           e.configFile,
		PrivateKeyPassphrase: canary,
		Endpoint:             e.ts.URL,
		Logger:               slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Backoff: func(attempt uint) time.Duration {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.backoffs = append(e.backoffs, attempt)
			return time.Millisecond
		},
		Observe: func(endpoint string, _ int) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.requests[endpoint]++
		},
	}
}

func (e *env) backoffCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.backoffs)
}

func newProvider(t *testing.T, opts oci.Options) *oci.Provider {
	t.Helper()
	p, err := oci.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func fetch(t *testing.T, p *oci.Provider, months ...provider.Month) (provider.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Fetch(ctx, months)
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }
