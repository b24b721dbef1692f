# papyra-compact: every target prints what it does (">> …").
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TOOLS     := $(CURDIR)/.tools/bin
STATICCHECK_VERSION := v0.8.2
CRASH_KILLS ?= 1000

export GOFLAGS := -buildvcs=false

.PHONY: all build demo test test-short lint staticcheck unused crash bench ci deps clean

all: lint test build

build:
	@echo ">> building bin/papyra-compact $(VERSION)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/papyra-compact ./cmd/papyra-compact

# demo: lay a Papyra-written store (from the shared fixtures) in ./demo,
# compact it with a local config, print the summary. No services needed.
demo: build
	@echo ">> laying a sample Papyra store in ./demo"
	@rm -rf demo && mkdir -p demo/data
	@cp testdata/fixtures/jsonl/store.jsonl demo/data/orders.jsonl
	@sed "s|@DEMO@|$(CURDIR)/demo|g" testdata/demo.yaml > demo/compact.yaml
	@echo ">> papyra-compact check --config demo/compact.yaml"
	@bin/papyra-compact check --config demo/compact.yaml
	@echo ">> papyra-compact run --dry-run (changes nothing)"
	@bin/papyra-compact run --config demo/compact.yaml --dry-run --now 1795000000
	@echo ">> papyra-compact run"
	@bin/papyra-compact run --config demo/compact.yaml --now 1795000000
	@echo ">> quarantined lines: $$(cat demo/quarantine/orders/*.jsonl | wc -l) in demo/quarantine/orders/"

# deps installs what the tests need when it is missing (CI runs as root
# on a fresh Debian 12 machine).
deps:
	@echo ">> checking test prerequisites"
	@command -v redis-server >/dev/null || { echo ">> apt-get install redis-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

test: deps
	@echo ">> all tests with the race detector (long rounds shortened)"
	$(GO) test -race -short -count=1 -timeout 20m ./...
	@echo ">> full-length tests: 20 concurrency rounds"
	$(GO) test -count=1 -timeout 20m -run 'ConcurrentWriters' ./...
	@echo ">> crash harness (CI size) with fail points"
	PAPYRA_CRASH_KILLS=$${PAPYRA_CRASH_KILLS:-120} $(GO) test -tags failpoints -count=1 -timeout 20m -run 'TestCrash' ./...

test-short:
	@echo ">> running short tests"
	$(GO) test -short -count=1 ./...

$(TOOLS)/staticcheck:
	@echo ">> installing staticcheck $(STATICCHECK_VERSION)"
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(TOOLS)/staticcheck
	@echo ">> gofmt, go vet, staticcheck"
	@test -z "$$(gofmt -l . | grep -v '^.tools/')" || { gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags failpoints ./...
	$(TOOLS)/staticcheck ./...

unused:
	@echo ">> checking go.mod is tidy"
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

# crash: the full crash harness, SIGKILL at every named step and at random
# moments, $(CRASH_KILLS) kills in all.
crash:
	@echo ">> crash harness: $(CRASH_KILLS) kills"
	PAPYRA_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -tags failpoints -count=1 -timeout 60m -run 'TestCrash' -v ./backends/jsonl/ | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|kills'

bench: build
	@echo ">> bench/jsonl.sh"
	bench/jsonl.sh

ci: lint test
	@echo ">> ci: OK"

clean:
	rm -rf bin demo .tools
