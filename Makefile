# brig: the two commands a fresh Debian 12 machine needs are
#   sudo make demo   # installs what is missing, builds brig, runs a container
#   sudo make test   # the whole test suite (what CI runs)
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/brig
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build deps demo test unit fuzz integration conformance vm lint bench clean

all: build

deps:
	@scripts/deps.sh

# brig is linked statically, as runc's releases are: the dynamic loader's
# work would be paid twice per container (brig and its init), and no
# libseccomp.so is needed where brig runs. The pure-Go
# resolver and user lookup keep glibc's NSS out of the static binary.
# disablethp=1 (the binary's default GODEBUG; the go command has no
# //go:debug key for it) keeps brig's Go heap out of transparent huge
# pages: where THP is "always", as in Debian's kernels, each heap region
# would be a 2 MB page, zeroed when first touched, for processes that live
# a few ms (the init) or wait with a small heap (`brig run`): 2.8 MB less
# memory per waiting `brig run`. The container's process is not affected
# (execve starts a new address space). TestBrigHeapWithoutHugePages checks.
LDFLAGS := -linkmode external -extldflags -static -X main.version=$(VERSION) -X runtime.godebugDefault=disablethp=1
BUILDFLAGS := -tags netgo,osusergo -ldflags "$(LDFLAGS)"
# brig-init, beside brig, is the container's init without the command
# line's packages: its Go runtime starts in about half the time. brig is
# given its Go build ID and starts it only when the file beside it has
# that ID (otherwise it starts itself as the init), so a brig copied
# alone, or beside another build's brig-init, still works.
INIT := $(dir $(BIN))brig-init

build:
	$(GO) build $(BUILDFLAGS) -o $(INIT) ./cmd/brig-init
	$(GO) build -tags netgo,osusergo -ldflags "$(LDFLAGS) -X brig/internal/bootstrap.initBuildID=$$($(GO) tool buildid $(INIT))" -o $(BIN) ./cmd/brig

demo: deps build
	$(GO) run ./tools/mkbundle -brig $(BIN) /tmp/brig-demo sh -c 'echo "hello from a brig container: $$(hostname), pid $$$$"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'
	$(BIN) run --bundle /tmp/brig-demo demo-$$$$
	@rm -rf /tmp/brig-demo

lint:
	@test -z "$$(gofmt -l cmd internal tests tools)" || { gofmt -l cmd internal tests tools; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...
	cd tests/conformance && $(GO) vet . && $$($(GO) env GOPATH)/bin/staticcheck .

# The plan's decisions, create's and exec's, and the protocol need no
# privilege: their tests run again with every capability gone (as root, no
# bounding set).
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /tests/)
	setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all -- $(GO) test -count=1 ./internal/plan/ ./internal/container/ ./internal/protocol/

integration: build
	cd tests/integration && BRIG=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -v .

# The OCI runtime-tools validation programs, with brig, runc and crun; fails
# if brig fails a program another runtime passes.
conformance: build
	cd tests/conformance && $(GO) run . -brig $(CURDIR)/$(BIN) -min-pass 32

# Fuzz the parsers briefly: each target runs a fixed number of inputs
# (about 15 s each here), not a time budget. With a duration (-fuzztime
# 15s), Go's fuzz coordinator before Go 1.27 can fail a target with
# "context deadline exceeded" and no failing input when the time runs out
# while a worker is mid-input (golang/go#75804; seen here on two targets):
# a count has no deadline to race. Longer: make fuzz FUZZX=20 (twenty
# times the counts). Inputs are not minimized (FUZZMIN=0): minimizing
# each new interesting input takes up to -fuzzminimizetime runs of it,
# minutes for the seccomp compiler's (FUZZMIN=1000x turns it on); a
# failing input is written as found.
FUZZX ?= 1
FUZZMIN ?= 0
FUZZ = $(GO) test -run XXX -fuzzminimizetime $(FUZZMIN)
fuzzn = -fuzztime $(shell echo $$(( $(1) * $(FUZZX) )))x
fuzz:
	$(FUZZ) $(call fuzzn,500000) -fuzz FuzzParseValidate ./internal/spec/
	$(FUZZ) $(call fuzzn,40000) -fuzz FuzzParseCompile ./internal/seccomp/
	$(FUZZ) $(call fuzzn,500000) -fuzz FuzzParse ./internal/egress/
	$(FUZZ) $(call fuzzn,80000) -fuzz FuzzCommandLine ./cmd/brig/
	$(FUZZ) $(call fuzzn,500000) -fuzz FuzzGoBuildID ./internal/bootstrap/
	$(FUZZ) $(call fuzzn,300000) -fuzz FuzzScanBTF ./internal/bpflsm/

# The VM lane: the integration suite and the OCI conformance suite again in
# a qemu guest running Debian's kernel with pure cgroup v2 and AppArmor
# (what this host can't show).
vm:
	scripts/vm.sh
	scripts/vm.sh -m v2-selinux -r TestSELinux
	scripts/vm.sh -m v2-systemd -r TestSystemd
	scripts/vm.sh -c

test: deps lint unit fuzz conformance integration vm

bench: deps build
	$(GO) run ./tools/bench -brig $(BIN) -n 50
	$(GO) run ./tools/bench -brig $(BIN) -n 30 -seccomp engines
	$(GO) run ./tools/bench -brig $(BIN) -sandbox 40
	$(GO) run ./tools/seccompbench -brig $(BIN)
	$(GO) run ./tools/learnbench -brig $(BIN) -n 9
	scripts/vm.sh -b

clean:
	rm -rf bin
