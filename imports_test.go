package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cloudcarbon/cloudcarbon_exporter"

// cloudSDKs are the import path prefixes of the clouds' SDKs: only the
// cloud's own package under provider/ may import them.
var cloudSDKs = []string{
	"cloud.google.com/", "google.golang.org/api/", "github.com/Azure/", "github.com/IBM/",
	"github.com/aws/", "github.com/oracle/", "github.com/scaleway/",
}

// layers says which packages of the module each package may import, by
// path relative to the module ("." is main). A cloud package ("provider/*")
// may import the provider model, its own sub-packages and the fakes'
// helpers; only the list in internal/clouds imports the clouds. A package
// missing here fails the test, so that a new one gets a place on purpose.
var layers = map[string][]string{
	".":                   {"config", "internal/app", "internal/clouds"},
	"internal/app":        {"config", "demo", "exposition", "otlp", "provider", "refresh", "report", "store"},
	"internal/clouds":     {"provider", "provider/*"},
	"demo":                {"config", "provider"},
	"config":              {"provider"},
	"refresh":             {"provider", "store"},
	"exposition":          {"provider", "store"},
	"report":              {"provider", "store"},
	"store":               {"provider"},
	"otlp":                {},
	"provider":            {},
	"provider/*":          {"provider", "internal/fakehttp"},
	"internal/fakehttp":   {},
	"internal/logbuf":     {},
	"internal/scrapetest": {},
	"dashboards":          {},
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// TestImportRules keeps the layering of DESIGN.md §2: data flows from
// config through the providers to the store, the exposition and OTLP; the
// packages above provider/ import no cloud SDK; a cloud imports no other
// cloud and nothing above it. Test files are not checked: tests may wire
// anything together.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := decodePackages(t, out)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		for _, problem := range importProblems(p) {
			t.Error(problem)
		}
	}
}

func decodePackages(t *testing.T, out []byte) []listedPackage {
	t.Helper()
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

// importProblems lists what p imports against the rules.
func importProblems(p listedPackage) []string {
	rel := relative(p.ImportPath)
	cloud := cloudOf(rel)
	layer := rel
	if cloud != "" {
		layer = "provider/*"
	}
	allowed, known := layers[layer]
	if !known {
		return []string{p.ImportPath + " has no place in the import rules of imports_test.go"}
	}
	var problems []string
	for _, imp := range p.Imports {
		if !strings.HasPrefix(imp, module+"/") && imp != module {
			if cloud == "" && slices.ContainsFunc(cloudSDKs, func(sdk string) bool { return strings.HasPrefix(imp, sdk) }) {
				problems = append(problems, rel+" imports the cloud SDK "+imp+"; only packages under provider/<cloud>/ may")
			}
			continue
		}
		target := relative(imp)
		if cloud != "" && cloudOf(target) == cloud {
			continue // a cloud's own sub-packages (its fake)
		}
		if !slices.ContainsFunc(allowed, func(a string) bool { ok, _ := path.Match(a, target); return ok || a == target }) {
			switch {
			case cloud != "" && cloudOf(target) != "":
				problems = append(problems, rel+" imports another cloud, "+target)
			default:
				problems = append(problems, rel+" may not import "+target+" (allowed: "+strings.Join(allowed, ", ")+")")
			}
		}
	}
	return problems
}

func relative(importPath string) string {
	if importPath == module {
		return "."
	}
	return strings.TrimPrefix(importPath, module+"/")
}

// cloudOf returns the cloud of a package under provider/<cloud>/, or "".
func cloudOf(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) >= 2 && parts[0] == "provider" {
		return parts[1]
	}
	return ""
}

// TestImportRulesCatchViolations makes sure the rules can fail.
func TestImportRulesCatchViolations(t *testing.T) {
	for _, tc := range []struct {
		pkg     listedPackage
		problem string
	}{
		{listedPackage{module + "/store", []string{module + "/provider/ibm"}}, "store may not import provider/ibm"},
		{listedPackage{module + "/exposition", []string{"github.com/Azure/azure-sdk-for-go/sdk/azcore"}}, "exposition imports the cloud SDK"},
		{listedPackage{module + "/provider/azure", []string{module + "/provider/ibm"}}, "provider/azure imports another cloud, provider/ibm"},
		{listedPackage{module + "/provider/ibm/ibmfake", []string{module + "/config"}}, "provider/ibm/ibmfake may not import config"},
		{listedPackage{module + "/provider", []string{module + "/store"}}, "provider may not import store"},
		{listedPackage{module + "/newpkg", nil}, "has no place in the import rules"},
	} {
		problems := importProblems(tc.pkg)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.problem) }) {
			t.Errorf("%s importing %v: got %q, want a problem %q", tc.pkg.ImportPath, tc.pkg.Imports, problems, tc.problem)
		}
	}
	allowed := []listedPackage{
		{module + "/provider/ibm", []string{module + "/provider/ibm/ibmfake", module + "/provider", "github.com/IBM/go-sdk-core/v5/core"}},
		{module + "/internal/clouds", []string{module + "/provider/ibm", module + "/provider"}},
	}
	for _, p := range allowed {
		if problems := importProblems(p); len(problems) > 0 {
			t.Errorf("%s: unexpected problems %q", p.ImportPath, problems)
		}
	}
}

// TestLayersAreAcyclic: the table itself must not allow a cycle, or the
// rules above would not keep the data flowing one way.
func TestLayersAreAcyclic(t *testing.T) {
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(layer string, trail []string)
	visit = func(layer string, trail []string) {
		switch state[layer] {
		case 1:
			t.Fatalf("the import rules allow a cycle: %s", strings.Join(append(trail, layer), " -> "))
		case 2:
			return
		}
		state[layer] = 1
		for _, next := range layers[layer] {
			visit(next, append(trail, layer))
		}
		state[layer] = 2
	}
	for layer := range layers {
		visit(layer, nil)
	}
}

// TestDockerContextHoldsTheBuild: .dockerignore lets into the image's
// build context only what the build needs; every package the binary is
// built from must be among it, or docker build fails.
func TestDockerContextHoldsTheBuild(t *testing.T) {
	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for line := range strings.SplitSeq(string(ignore), "\n") {
		if dir, ok := strings.CutPrefix(strings.TrimSpace(line), "!"); ok {
			allowed[strings.TrimSuffix(dir, "/")] = true
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		rel := relative(pkg)
		if !strings.HasPrefix(pkg, module+"/") || rel == "." {
			continue
		}
		if top, _, _ := strings.Cut(rel, "/"); !allowed[top] {
			t.Errorf("the binary needs %s, which .dockerignore keeps out of the build context", rel)
		}
	}
}
