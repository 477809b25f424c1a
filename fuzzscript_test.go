package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFuzzRunsEveryTarget: make fuzz goes on past a failing target, reports
// every target with its executions, and fails at the end.
func TestFuzzRunsEveryTarget(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for go test -fuzz: the target FuzzBad fails, the others
	// pass, each printing the fuzzer's last progress line.
	fakeGo := filepath.Join(dir, "go")
	writeFile(t, fakeGo, `#!/bin/sh
for a in "$@"; do case "$a" in ^Fuzz*) fn=$a;; esac; done
echo "$fn" >> "`+filepath.Join(dir, "ran")+`"
echo "fuzz: elapsed: 10s, gathering baseline coverage: 40/40 completed, now fuzzing with 2 workers"
echo "fuzz: elapsed: 1m0s, execs: 120000 (2000/sec), new interesting: 3 (total: 40)"
case "$fn" in *FuzzBad*) echo "--- FAIL: FuzzBad"; exit 1;; esac
echo PASS
`)
	if err := os.Chmod(fakeGo, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tools/fuzz.sh")
	cmd.Env = append(os.Environ(), "GO="+fakeGo, "FUZZTIME=60s", "FUZZLOGS="+filepath.Join(dir, "logs"),
		"FUZZ_TARGETS=./a:FuzzBad ./b:FuzzGood ./c:FuzzAlsoGood")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("tools/fuzz.sh with a failing target: %v, want exit status 1\n%s", err, out)
	}
	ran, _ := os.ReadFile(filepath.Join(dir, "ran"))
	if got := strings.Fields(string(ran)); strings.Join(got, " ") != "^FuzzBad$ ^FuzzGood$ ^FuzzAlsoGood$" {
		t.Errorf("ran %v, want every target", got)
	}
	for _, row := range []string{
		"| ./a FuzzBad                              | FAIL        |     120000 |      60s |      10s |    2400 |",
		"| ./b FuzzGood                             | pass        |     120000 |      60s |      10s |    2400 |",
		"| ./c FuzzAlsoGood                         | pass        |     120000 |      60s |      10s |    2400 |",
	} {
		if !strings.Contains(string(out), row) {
			t.Errorf("no row %q in\n%s", row, out)
		}
	}
}

// TestFuzzFindsEveryTarget: without FUZZ_TARGETS, make fuzz runs every
// fuzz target of the module's test files.
func TestFuzzFindsEveryTarget(t *testing.T) {
	dir := t.TempDir()
	fakeGo := filepath.Join(dir, "go")
	writeFile(t, fakeGo, `#!/bin/sh
echo "$@" >> "`+filepath.Join(dir, "ran")+`"
echo "fuzz: elapsed: 1s, execs: 10 (10/sec), new interesting: 0 (total: 1)"
`)
	if err := os.Chmod(fakeGo, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tools/fuzz.sh")
	cmd.Env = append(os.Environ(), "GO="+fakeGo, "FUZZLOGS="+filepath.Join(dir, "logs"), "FUZZ_TARGETS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tools/fuzz.sh: %v\n%s", err, out)
	}
	ran, _ := os.ReadFile(filepath.Join(dir, "ran"))
	list, err := exec.Command("git", "grep", "-l", "^func Fuzz", "--", "*_test.go").Output()
	if err != nil {
		t.Skipf("git grep: %v", err)
	}
	for file := range strings.FieldsSeq(string(list)) {
		if pkg := "./" + filepath.Dir(file); !strings.Contains(string(ran), " "+pkg+"\n") {
			t.Errorf("the targets of %s did not run; ran:\n%s", pkg, ran)
		}
	}
}
