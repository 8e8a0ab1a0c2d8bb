# screenpop — the two commands a new developer needs are `make run` and
# `make test`; everything else here serves them.
GO      ?= go
PKGS    ?= ./...
DEMO_DB_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test vet build bench services demo-db monitoring clean

## run: start screenpopd on the embedded demo configuration (prints the URL to open)
run:
	$(GO) run ./cmd/screenpopd

## test: go vet and every test with the race detector, against real Redis,
## PostgreSQL and headless Chromium (installed and started when missing)
test: services vet
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet $(PKGS)

## fuzz: optional: every fuzz test for FUZZTIME each (make test runs only
## their seed corpora, testdata/fuzz/). A failing input is written to the
## package's testdata/fuzz/<Fuzz...>/: fix the bug, keep the file.
FUZZTIME ?= 30s
FUZZ_TARGETS = ./aggregator:FuzzNormalize ./adapters:FuzzSignificantDigits \
	./telephony/httpin:FuzzCallEventBody ./telephony/httpin:FuzzDecodeFast \
	./telephony/ari:FuzzHandleFrame ./telephony/ari:FuzzDecodeEvent ./configs:FuzzParse ./pop:FuzzBrowserRequest ./pop:FuzzParseEncoded
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*}), $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

## build: the daemon binary in bin/
build:
	$(GO) build -o bin/screenpopd ./cmd/screenpopd

## bench: optional, not part of setting up: the load harness (screenpopd
## against a bare WebSocket floor; bench/README.md) and the Go benchmarks,
## written to bench/RESULTS.md; about 45 minutes. A short run that only
## shows everything works: make bench BENCH_FLAGS=-quick
BENCH_FLAGS ?=
bench: services
	$(GO) run ./bench/cmd/popbench $(BENCH_FLAGS)

## monitoring: only the checks of configs/prometheus and configs/grafana (make
## test runs them too): promtool on the rules and their unit tests, the
## dashboard's queries, and every metric they read in a running daemon's scrape
monitoring: services
	$(GO) test -race -count=1 ./configs/prometheus/ ./configs/grafana/ ./internal/promqlnames/ ./internal/grafanatest/
	$(GO) test -race -count=1 -run 'TestMonitoringThroughScriptedCalls|TestDuplicateKeys' ./cmd/screenpopd/

## services: make sure Redis, PostgreSQL and Chromium are there and running,
## and promtool (Debian's prometheus package; its server is not started)
services:
	@bash .ci/services

## demo-db: load the realistic demo data set into PostgreSQL (see configs/demo-db/README.md)
demo-db: services
	psql "$(DEMO_DB_URL)" -v ON_ERROR_STOP=1 -q -f configs/demo-db/demo.sql
	@echo "demo data loaded; run: SCREENPOP_DEMO_DSN=$(DEMO_DB_URL) $(GO) run ./cmd/screenpopd -config configs/postgres.yaml"

clean:
	rm -rf bin
