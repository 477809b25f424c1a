package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const canary = "CANARY-4c1d-SECRET-9e7b"

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	writeFile(t, good, "ibm:\n  - api_key: "+canary+"\n")
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "ibm:\n  - api_key: "+canary+"\n    api_kye: x\n")
	for _, tc := range []struct {
		file     string
		wantCode int
		want     string
	}{
		{good, 0, "api_key: <secret>"},
		{bad, 1, "bad.yml:3: unknown field \"api_kye\""},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"--config.check", "--config.file=" + tc.file}, &stdout, &stderr, time.Now)
		all := stdout.String() + stderr.String()
		if code != tc.wantCode || !strings.Contains(all, tc.want) {
			t.Errorf("--config.check %s: code %d, output %q; want %d and %q", tc.file, code, all, tc.wantCode, tc.want)
		}
		if strings.Contains(all, canary) {
			t.Errorf("--config.check printed the secret: %s", all)
		}
	}
}

// TestFlagValidation: values that would disable a bound by accident, or
// that mean nothing, stop the exporter before it starts.
func TestFlagValidation(t *testing.T) {
	// A busy address makes a run that accepts the flags end at once
	// rather than serve.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		flag, want string
	}{
		{"--web.timeout=-1s", "--web.timeout must be greater than 0"},
		{"--web.timeout=0s", "--web.timeout must be greater than 0"},
		{"--web.max-requests=-1", "--web.max-requests must be 0 (no limit) or more"},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{tc.flag, "--demo", "--web.listen-address=" + busy.Addr().String()}, &stdout, &stderr, time.Now)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: code %d, stderr %q; want 2 and %q", tc.flag, code, stderr.String(), tc.want)
		}
	}
}

// TestConfigCheckHidesPastedKey: a private key pasted where the path of
// OCI's configuration file belongs is not printed back.
func TestConfigCheckHidesPastedKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yml")
	writeFile(t, file, "oci:\n  - config_file: |\n      -----BEGIN PRIVATE KEY-----\n      MIIEvQIB"+canary+"\n      -----END PRIVATE KEY-----\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"--config.check", "--config.file=" + file}, &stdout, &stderr, time.Now)
	all := stdout.String() + stderr.String()
	if code != 1 || !strings.Contains(all, "oci.config_file cannot be read (no such file or directory)") {
		t.Errorf("code %d, output %q", code, all)
	}
	if strings.Contains(all, canary) || strings.Contains(all, "BEGIN") {
		t.Errorf("--config.check printed the key: %s", all)
	}
}

// TestCloudCommands checks that the clouds' subcommands are on the command
// line: gcp-setup's dry run prints its plan and calls nothing.
func TestCloudCommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"gcp-setup", "--project=acme-carbon", "--billing-account=012345-6789AB-CDEF01",
		"--dataset=carbon", "--dry-run"}, &stdout, &stderr, time.Now)
	if code != 0 || !strings.Contains(stdout.String(), "012345-6789AB-CDEF01") {
		t.Errorf("gcp-setup --dry-run: code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
