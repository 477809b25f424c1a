package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cloudcarbon/cloudcarbon_exporter"

// layers says which packages of the module each package may import, by
// path relative to the module ("." is main). A cloud ("provider/*": every
// package under provider/ that internal/clouds lists, with its
// sub-packages) may import the provider model, the HTTP layer and the
// fakes' kit; only the list in internal/clouds imports the clouds. The
// conformance suite may wire the exporter's parts together, but only tests
// import it. A package missing here fails the test, so that a new one
// gets a place on purpose.
var layers = map[string][]string{
	".":                                {"config", "internal/app", "internal/clouds"},
	"internal/app":                     {"config", "demo", "exposition", "otlp", "provider", "provisional", "refresh", "report", "store"},
	"internal/clouds":                  {"provider", "provider/*"},
	"clouds":                           {"internal/clouds", "provider"},
	"internal/configschema":            {"config", "provider"},
	"demo":                             {"config", "provider"},
	"config":                           {"provider"},
	"refresh":                          {"provider", "provider/httpx", "provisional", "store"},
	"exposition":                       {"allocation", "provider", "provisional", "store"},
	"report":                           {"provider", "store"},
	"store":                            {"provider"},
	"provisional":                      {"provider"},
	"allocation":                       {"provider"},
	"otlp":                             {},
	"provider":                         {},
	"provider/httpx":                   {"provider"},
	"provider/fakehttp":                {"provider"},
	"provider/*":                       {"provider", "provider/httpx", "provider/fakehttp"},
	"provider/providertest":            {"config", "exposition", "provider", "provider/fakehttp", "provider/httpx", "provider/providertest/demogolden", "provider/providertest/logbuf", "provisional", "refresh", "report", "store"},
	"provider/providertest/logbuf":     {},
	"provider/providertest/demogolden": {},
	"internal/scrapetest":              {},
	"dashboards":                       {},
}

// testOnly are packages no package of the binary may import.
var testOnly = []string{"provider/providertest", "provider/providertest/logbuf", "provider/providertest/demogolden"}

type listedPackage struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Module       *struct{ Path string }
}

// rules are the import rules of one module, derived from its packages:
// which packages are clouds (those internal/clouds lists, and their
// sub-packages), and which modules are cloud SDKs (those a cloud imports
// that the provider contract and its HTTP layer do not, golang.org/x
// aside), so that a new cloud or SDK needs no edit here.
type rules struct {
	clouds map[string]bool // cloud names, "ibm"
	sdks   map[string]bool // module paths
	module map[string]string
}

func listPackages(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,TestImports,XTestImports,Module"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	return decodePackages(t, out)
}

func deriveRules(all []listedPackage) rules {
	r := rules{clouds: map[string]bool{}, sdks: map[string]bool{}, module: map[string]string{}}
	// Test variants and test mains import what tests import.
	pkgs := slices.DeleteFunc(slices.Clone(all), func(p listedPackage) bool { return isTest(p.ImportPath) })
	for _, p := range pkgs {
		if p.Module != nil {
			r.module[p.ImportPath] = p.Module.Path
		}
		if relative(p.ImportPath) == "internal/clouds" {
			for _, imp := range p.Imports {
				if parts := strings.Split(relative(imp), "/"); len(parts) == 2 && parts[0] == "provider" {
					r.clouds[parts[1]] = true
				}
			}
		}
	}
	shared := map[string]bool{}
	for _, p := range pkgs {
		rel := relative(p.ImportPath)
		if !strings.HasPrefix(p.ImportPath, module) || r.cloudOf(rel) != "" {
			continue
		}
		if rel == "provider" || strings.HasPrefix(rel, "provider/") {
			for _, imp := range p.Imports {
				shared[r.moduleOf(imp)] = true
			}
		}
	}
	for _, p := range pkgs {
		if r.cloudOf(relative(p.ImportPath)) == "" {
			continue
		}
		for _, imp := range p.Imports {
			if m := r.moduleOf(imp); m != "" && m != module && !shared[m] && !strings.HasPrefix(m, "golang.org/x/") {
				r.sdks[m] = true
			}
		}
	}
	return r
}

// isTest reports whether a listed package is a test variant, an external
// test package or a test main.
func isTest(importPath string) bool {
	return strings.Contains(importPath, " ") || strings.HasSuffix(importPath, ".test") || strings.HasSuffix(importPath, "_test")
}

// moduleOf returns the module of an imported package, "" for the
// standard library.
func (r rules) moduleOf(imp string) string {
	if m, ok := r.module[imp]; ok {
		return m
	}
	first, _, _ := strings.Cut(imp, "/")
	if !strings.Contains(first, ".") {
		return "" // standard library
	}
	return imp
}

// cloudOf returns the cloud of a package under provider/<cloud>/, or "".
func (r rules) cloudOf(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) >= 2 && parts[0] == "provider" && r.clouds[parts[1]] {
		return parts[1]
	}
	return ""
}

// TestImportRules keeps the layering of the README's code layout: data
// flows from config through the providers to the store, the exposition and
// OTLP; the packages outside a cloud import no cloud SDK; a cloud imports
// no other cloud and nothing above it. Test files are not checked: tests
// may wire anything together.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t, "-deps", "-test", "./...")
	r := deriveRules(pkgs)
	if len(r.clouds) < 6 || len(r.sdks) < 6 {
		t.Fatalf("derived %d clouds and %d SDK modules: the derivation is broken", len(r.clouds), len(r.sdks))
	}
	t.Logf("clouds %v; their SDK modules %v", slices.Sorted(maps.Keys(r.clouds)), slices.Sorted(maps.Keys(r.sdks)))
	for _, p := range pkgs {
		if !strings.HasPrefix(p.ImportPath, module) || isTest(p.ImportPath) {
			continue
		}
		for _, problem := range r.problems(p) {
			t.Error(problem)
		}
	}
}

// TestProviderImportsNothingInternal: nothing under provider/, tests
// included, imports a package under internal/, so that a cloud and its
// tests stand on the provider tree alone.
func TestProviderImportsNothingInternal(t *testing.T) {
	for _, p := range listPackages(t, "./provider/...") {
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("%s imports %s", relative(p.ImportPath), relative(imp))
			}
		}
	}
}

// TestTestOnlyPackagesStayOutOfTheBinary: the conformance suite wires the
// exporter's parts together for tests; the binary never links it.
func TestTestOnlyPackagesStayOutOfTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if slices.Contains(testOnly, relative(pkg)) {
			t.Errorf("the binary links %s, which only tests may import", relative(pkg))
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

// problems lists what p imports against the rules.
func (r rules) problems(p listedPackage) []string {
	rel := relative(p.ImportPath)
	cloud := r.cloudOf(rel)
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
			if m := r.moduleOf(imp); cloud == "" && r.sdks[m] {
				problems = append(problems, rel+" imports the cloud SDK "+imp+"; only packages under provider/<cloud>/ may")
			}
			continue
		}
		target := relative(imp)
		if cloud != "" && r.cloudOf(target) == cloud {
			continue // a cloud's own sub-packages (its fake)
		}
		ok := slices.ContainsFunc(allowed, func(a string) bool {
			return a == target || a == "provider/*" && r.cloudOf(target) != ""
		})
		if !ok {
			switch {
			case cloud != "" && r.cloudOf(target) != "":
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

// TestImportRulesCatchViolations makes sure the rules can fail, and that
// a cloud and its SDK added to the list are recognised without an edit
// here.
func TestImportRulesCatchViolations(t *testing.T) {
	pkgs := listPackages(t, "-deps", "./...")
	pkgs = append(pkgs,
		listedPackage{ImportPath: module + "/internal/clouds", Imports: []string{module + "/provider/zz"}},
		listedPackage{ImportPath: module + "/provider/zz", Imports: []string{"example.com/zzsdk/client"}},
		listedPackage{ImportPath: "example.com/zzsdk/client", Module: &struct{ Path string }{"example.com/zzsdk"}},
	)
	r := deriveRules(pkgs)
	pkg := func(path string, imports ...string) listedPackage {
		return listedPackage{ImportPath: module + "/" + path, Imports: imports}
	}
	for _, tc := range []struct {
		pkg     listedPackage
		problem string
	}{
		{pkg("store", module+"/provider/ibm"), "store may not import provider/ibm"},
		{pkg("exposition", "github.com/Azure/azure-sdk-for-go/sdk/azcore"), "exposition imports the cloud SDK"},
		{pkg("exposition", "example.com/zzsdk/client"), "exposition imports the cloud SDK example.com/zzsdk/client"},
		{pkg("provider/azure", module+"/provider/ibm"), "provider/azure imports another cloud, provider/ibm"},
		{pkg("provider/zz", module+"/provider/ibm"), "provider/zz imports another cloud, provider/ibm"},
		{pkg("provider/ibm/ibmfake", module+"/config"), "provider/ibm/ibmfake may not import config"},
		{pkg("provider/ibm", module+"/provider/providertest"), "provider/ibm may not import provider/providertest"},
		{pkg("provider", module+"/store"), "provider may not import store"},
		{pkg("provider/httpx", module+"/refresh"), "provider/httpx may not import refresh"},
		{pkg("newpkg"), "has no place in the import rules"},
	} {
		problems := r.problems(tc.pkg)
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.problem) }) {
			t.Errorf("%s importing %v: got %q, want a problem %q", tc.pkg.ImportPath, tc.pkg.Imports, problems, tc.problem)
		}
	}
	for _, p := range []listedPackage{
		pkg("provider/ibm", module+"/provider/ibm/ibmfake", module+"/provider", module+"/provider/httpx", "github.com/IBM/go-sdk-core/v5/core"),
		pkg("internal/clouds", module+"/provider/ibm", module+"/provider/zz", module+"/provider"),
		pkg("provider/zz", "example.com/zzsdk/client", module+"/provider/fakehttp"),
	} {
		if problems := r.problems(p); len(problems) > 0 {
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
