# papyra-compact: every target prints what it does (">> …").
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
TOOLS     := $(CURDIR)/.tools/bin
STATICCHECK_VERSION := v0.8.2
CRASH_KILLS ?= 1000

export GOFLAGS := -buildvcs=false

# Every recipe runs in bash with errexit, nounset and pipefail: a pipe
# (go test | grep, say) fails when any of its commands fails, not only
# when the last one does.
SHELL       := bash
.SHELLFLAGS := -euo pipefail -c

.PHONY: all build demo test test-short lint staticcheck unused crash fuzz bench checkmetrics verify-units e2e-systemd package lintian e2e ci deps clean

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
# on a fresh Debian 12 machine). Only `make deps` and `make ci` install
# anything: `make test` never touches the system (a test whose
# prerequisite is missing skips, or fails under CI).
deps:
	@echo ">> checking test prerequisites"
	@command -v strace >/dev/null || { echo ">> apt-get install strace"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
	@command -v setfacl >/dev/null && command -v setfattr >/dev/null || { echo ">> apt-get install acl attr"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl attr >/dev/null; }
	@command -v redis-server >/dev/null || { echo ">> apt-get install redis-server"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v prometheus-node-exporter >/dev/null || { echo ">> apt-get install prometheus-node-exporter"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null; }
	@command -v promtool >/dev/null || { echo ">> apt-get install prometheus (for promtool)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

test:
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
# A failing run fails the target (pipefail); PAPYRA_CRASH_SEED=… replays
# the random kills of a run whose log printed that seed.
crash:
	@echo ">> crash harness: $(CRASH_KILLS) kills"
	PAPYRA_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -tags failpoints -count=1 -timeout 90m -run 'TestCrash' -v ./backends/... | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|kills|seed|^\s+\S+_test\.go'

# fuzz: every fuzz target in the module for FUZZTIME each; a finding
# fails the target (its input is saved under the package's testdata/fuzz/
# by go test). The corpus the engine grew is copied next to it, in
# testdata/fuzz/<Target>/, to be committed: plain go test replays it.
# Not part of ci (minutes); FUZZ=<regexp> picks targets.
FUZZTIME ?= 30s
FUZZ     ?= .
fuzz:
	@cache=$$($(GO) env GOCACHE)/fuzz; \
	targets=$$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.tools/' | sort); \
	test -n "$$targets" || { echo "no fuzz targets found"; exit 1; }; \
	for f in $$targets; do \
		pkg=./$$(dirname "$${f#./}"); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f" | grep -E "$(FUZZ)"); do \
			echo ">> fuzz $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
			src="$$cache/$$($(GO) list "$$pkg")/$$fn"; \
			if [ -d "$$src" ]; then mkdir -p "$$pkg/testdata/fuzz/$$fn" && cp -n "$$src"/* "$$pkg/testdata/fuzz/$$fn/" 2>/dev/null || true; \
				echo ">> corpus $$pkg/testdata/fuzz/$$fn: $$(ls "$$pkg/testdata/fuzz/$$fn" | wc -l) inputs"; fi; \
		done; \
	done

bench: build
	@echo ">> bench/jsonl.sh"
	bench/jsonl.sh

# checkmetrics: promtool lints the golden textfiles and the alert rules,
# and runs the rules' unit tests (one or more per alert).
checkmetrics: deps
	@echo ">> promtool check metrics: agent/testdata/*.prom"
	@for f in agent/testdata/*.prom; do \
		out=$$(promtool check metrics < $$f 2>&1) && test -z "$$out" || { echo "$$f: $$out"; exit 1; }; done
	@echo ">> promtool check rules, test rules: packaging/prometheus/"
	cd packaging/prometheus && promtool check rules papyra-compact.rules.yml
	cd packaging/prometheus && promtool test rules papyra-compact.rules.test.yml

# verify-units: systemd-analyze, which needs no running systemd, checks
# the units (syntax, references; any warning fails) and their sandbox
# (exposure 2.0 or less). verify wants ExecStart= to exist, so it reads a
# copy whose /usr/bin/papyra-compact is a stub.
UNITS := papyra-compact.service papyra-compact.timer papyra-compact-daemon.service
verify-units:
	@echo ">> systemd-analyze verify $(UNITS)"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp units/* "$$tmp"/ && \
		sed -i 's|/usr/bin/papyra-compact|/bin/true|' "$$tmp"/*.service && \
		rc=0; out=$$(cd "$$tmp" && systemd-analyze verify --man=no $(UNITS) 2>&1) || rc=$$?; \
		test -z "$$out" && test $$rc -eq 0 || { echo "$$out"; exit 1; }
	@echo ">> systemd-analyze security --offline=yes --threshold=20"
	@cd units && for u in papyra-compact.service papyra-compact-daemon.service; do \
		rc=0; out=$$(systemd-analyze security --offline=yes --threshold=20 --no-pager $$u 2>&1) || rc=$$?; \
		echo "$$out" | tail -n 1; test $$rc -eq 0 || { echo "$$out"; exit 1; }; done

# e2e-systemd: the end-to-end test under a real systemd, in a Debian 12
# rootfs booted with systemd-nspawn (cmd/papyra-compact/systemd_test.go):
# the timer's pass, the daemon's READY/STATUS/reloads, the watchdog
# killing a stuck loop, journal fields. Needs root; the rootfs is built
# once (about 2-4 minutes). Not part of ci.
E2E_ROOTFS ?= /var/cache/papyra-compact-e2e/rootfs
MIRROR     ?= $(shell awk '/^URIs:/ {print $$2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
e2e-systemd:
	@command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null || { \
		echo ">> apt-get install systemd-container debootstrap"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container debootstrap >/dev/null; }
	@test -d $(E2E_ROOTFS) || { echo ">> debootstrap bookworm into $(E2E_ROOTFS)"; rm -rf $(E2E_ROOTFS).tmp && \
		debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm \
			$(E2E_ROOTFS).tmp $(MIRROR) >/dev/null && \
		chroot $(E2E_ROOTFS).tmp apt-get clean && mv $(E2E_ROOTFS).tmp $(E2E_ROOTFS); }
	@echo ">> go test -tags e2esystemd -run TestSystemd ./cmd/papyra-compact/"
	PAPYRA_E2E_ROOTFS=$(E2E_ROOTFS) $(GO) test -tags e2esystemd -count=1 -timeout 10m -run TestSystemd -v ./cmd/papyra-compact/

# package: .deb and .rpm for amd64 and arm64 in dist/, from nfpm.yaml (the
# one packaging definition) by packaging/build.sh: CGO_ENABLED=0,
# -trimpath, version from git describe (packaging/version.sh), every mtime
# from SOURCE_DATE_EPOCH (default: the last commit's time), so a rebuild
# of one commit is byte-identical (dist/SHA256SUMS).
NFPM_VERSION := v2.45.2
$(TOOLS)/nfpm:
	@echo ">> installing nfpm $(NFPM_VERSION)"
	GOBIN=$(TOOLS) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

package: $(TOOLS)/nfpm
	@echo ">> packaging/build.sh: deb and rpm, amd64 and arm64"
	@NFPM=$(TOOLS)/nfpm GO=$(GO) VERSION=$(VERSION) packaging/build.sh

# lintian: lintian on the .debs (no error or warning; the overrides in
# packaging/lintian-overrides say why), rpmlint on the .rpms
# (packaging/rpmlint.toml), and the rpm's files, flags and scriptlets.
lintian:
	@ls dist/papyra-compact_*.deb >/dev/null 2>&1 || $(MAKE) package
	@command -v lintian >/dev/null && command -v rpmlint >/dev/null || { \
		echo ">> apt-get install lintian rpmlint"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq lintian rpmlint python3-magic rpm >/dev/null; }
	@echo ">> lintian dist/*.deb"
	lintian --fail-on error,warning --display-info --pedantic dist/papyra-compact_*.deb
	@echo ">> rpmlint dist/*.rpm"
	rpmlint -c packaging/rpmlint.toml dist/papyra-compact-*.rpm
	@echo ">> rpm -qp: config|noreplace, scriptlets"
	@for r in dist/papyra-compact-*.rpm; do \
		rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' $$r | grep -x 'cn /etc/papyra/compact.yaml' >/dev/null && \
		test "$$(rpm -qp --scripts $$r | grep -c '^post\(install\|uninstall\)\|^preuninstall')" = 3 || \
		{ echo "$$r: bad config flags or scriptlets"; exit 1; }; done

# e2e: the packages just built, under a real systemd (packaging/e2e/run.sh):
# a Debian 12 root booted with systemd-nspawn; apt install, a compaction of
# a JSON-lines store and a Redis stream, upgrades, remove, reinstall,
# purge; then the same cycle for the rpm. Needs root. About 2.5-3 min
# with the root to build (debootstrap; cached in /var/cache/papyra-compact-e2e),
# 45-90 s after.
e2e: package
	@echo ">> packaging/e2e/run.sh"
	@NFPM=$(TOOLS)/nfpm GO=$(GO) packaging/e2e/run.sh

ci: deps lint checkmetrics verify-units test e2e lintian
	@echo ">> ci: OK"

clean:
	rm -rf bin demo .tools dist
