# screenpop — the two commands a new developer needs are `make run` and
# `make test`; everything else here serves them.
GO      ?= go
PKGS    ?= ./...
DEMO_DB_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: run test vet build services demo-db clean

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

## build: the daemon binary in bin/
build:
	$(GO) build -o bin/screenpopd ./cmd/screenpopd

## services: make sure Redis, PostgreSQL and Chromium are there and running
services:
	@bash .ci/services

## demo-db: load the realistic demo data set into PostgreSQL (see configs/demo-db/README.md)
demo-db: services
	psql "$(DEMO_DB_URL)" -v ON_ERROR_STOP=1 -q -f configs/demo-db/demo.sql
	@echo "demo data loaded; run: SCREENPOP_DEMO_DSN=$(DEMO_DB_URL) $(GO) run ./cmd/screenpopd -config configs/postgres.yaml"

clean:
	rm -rf bin
