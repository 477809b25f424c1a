# cloudcarbon_exporter build and test entry points. `make test` is the
# command the README and CI run; it installs what the tests need on Debian.

GO        ?= go
BINARY    ?= cloudcarbon_exporter
PKGS      ?= ./...
STATICCHECK_VERSION ?= v0.8.2
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS   := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
             -X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%dT%H%M%SZ)

.PHONY: all build run demo test deps lint unit rules e2e receiver receiver-generate otelcol-receiver emulator-test helm-test fuzz bench scale-test scale-test-1m golden clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS) $(EXTRA_LDFLAGS)" -o $(BINARY) .

# Runs the exporter with the built-in demo dataset on :9874.
demo run: build
	./$(BINARY) --demo

# The full test suite: formatting, vet, staticcheck, unit tests with the
# race detector, the Collector receiver's module, and the end-to-end test
# against a real Prometheus and two OpenTelemetry Collectors.
test: deps lint unit rules receiver e2e

# Installs Prometheus and promtool (Debian package `prometheus`) when they are
# missing, and checks that they are 2.42 or newer. Other systems: install
# Prometheus >= 2.42 so that `prometheus` and `promtool` are on PATH.
deps:
	tools/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:" $$out >&2; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

unit:
	$(GO) test -race -count=1 $(PKGS)

# Checks the bundled Prometheus rules and runs their unit tests.
rules:
	promtool check rules dashboards/rules/cloudcarbon.rules.yml
	cd dashboards/rules && promtool test rules cloudcarbon.rules.test.yml

# Builds the binary, runs it in demo mode and has a real Prometheus scrape it,
# and pushes it over OTLP through a real OpenTelemetry Collector (built once
# per machine by tools/otelcol/build.sh and cached); runs the Collector that
# the builder makes with the cloudcarbon receiver (tools/otelcol/build-receiver.sh,
# cached per source tree) in demo mode and compares its data with the
# exporter's, across a restart on file_storage.
e2e:
	OTELCOL=$$(tools/otelcol/build.sh) && export OTELCOL && \
		OTELCOL_RECEIVER=$$(tools/otelcol/build-receiver.sh) && export OTELCOL_RECEIVER && \
		CLOUDCARBON_E2E=1 $(GO) test -count=1 -tags e2e ./e2e/

# The OpenTelemetry Collector receiver, a Go module of its own so that the
# exporter's module carries no Collector dependency: vet, staticcheck and
# race-enabled tests (config validation, lifecycle with goleak, the
# mdatagen-generated component tests, restart from a storage extension).
RECEIVER_DIR := receiver/cloudcarbonreceiver
receiver:
	cd $(RECEIVER_DIR) && $(GO) vet ./... && \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./... && \
		$(GO) test -race -count=1 ./...

# Regenerates the receiver's metadata.yaml metrics from the engine's
# families, then mdatagen's code and documentation (tools/mdatagen).
receiver-generate:
	cd $(RECEIVER_DIR) && $(GO) test -count=1 -run TestMetadataDescribesEveryMetric -update . && $(GO) generate ./...

# Builds the OpenTelemetry Collector distribution with the receiver and
# prints its path.
otelcol-receiver:
	@tools/otelcol/build-receiver.sh

# Runs the production GCP SQL through the real BigQuery client against
# goccy/bigquery-emulator. The emulator is a cgo build over ZetaSQL that
# takes 15-30 minutes the first time on 2 cores, so it stays out of
# `make test`; tools/bqemulator/build.sh caches the binary per machine.
emulator-test:
	BQ_EMULATOR=$$(tools/bqemulator/build.sh) && export BQ_EMULATOR && \
		$(GO) test -count=1 -tags emulator -run TestEmulator -v ./provider/gcp/

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Runs the real binary, with the default flags, against an IBM fake whose
# enterprise has data for every month the default retention keeps, 50 ms
# per API response: cold start, memory through it and 1,000 scrapes, the
# state file and a warm restart, printed as a row of the README's table.
# 240 accounts (~100k series) take about 20 s; scale-test-1m, 2,400
# accounts (~1M series), about 2 minutes. Both stay out of `make test`.
# CLOUDCARBON_SCALE_BIN=path measures another build (an earlier release).
scale-test:
	$(GO) test -count=1 -tags e2e,scale -run 'TestScale$$' -v ./e2e/

scale-test-1m:
	$(GO) test -count=1 -timeout 30m -tags e2e,scale -run 'TestScale1M$$' -v ./e2e/

# Lints and renders the Helm chart for every values file under
# deploy/helm/cloudcarbon-exporter/ci/ and decodes the objects strictly
# (deploy/helm/test, a Go module of its own, so that the exporter's module
# carries no Kubernetes dependency). helm v3.22.0 is built once per machine
# by tools/helm/build.sh and cached (a few minutes the first time).
helm-test:
	HELM=$$(tools/helm/build.sh) && export HELM && \
		cd deploy/helm/test && $(GO) vet ./... && CLOUDCARBON_E2E=1 $(GO) test -count=1 ./...

# Runs every fuzz target of the module (found in the test files) for
# FUZZTIME each (default 30s), all of them whatever the others do, prints
# a table of each one's outcome and executions, and fails if any failed.
# Their seed corpora run in every `go test`; this explores beyond them. A
# crasher is written to the package's testdata/fuzz/: keep it as a seed.
# FUZZ_TARGETS="./pkg:FuzzName ..." runs only those.
FUZZTIME ?= 30s
FUZZ_TARGETS ?=
fuzz:
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" FUZZ_TARGETS="$(FUZZ_TARGETS)" tools/fuzz.sh

# Rewrites the golden files after an intended change of the exposition.
golden:
	$(GO) test ./refresh ./internal/app -run Golden -update

clean:
	rm -f $(BINARY)
