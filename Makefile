# herald — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin
PKGS      := ./...
# TESTMOD is the test module (its own go.mod, so the root one holds only
# what the server links): the suites against the binary, the interop and
# browser tests, the NATS broker's tests on an embedded NATS server.
TESTMOD   := test
# staticcheck runs from the module proxy at this version (nothing to install).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME  ?= 30s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build run test test-deps lint vet fmt-check cross fuzz bench bench-micro bench-compare bench-mem bench-storms load-cluster clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/herald ./cmd/herald
	@if [ -d cmd/loadgen ] && ls cmd/loadgen/*.go >/dev/null 2>&1; then \
		$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/loadgen ./cmd/loadgen; fi

## run: the server with the embedded in-memory broker (WebSocket :8080, API :8081).
run: build
	$(BIN)/herald serve --allow-anonymous --demo

## test-deps: installs what the interop tests need (Node's ws, Pusher's Node server library, Chromium).
test-deps:
	bash scripts/test-deps.sh

## test: every test, the way CI runs them: every package of both modules
## (root, then test/) under the race detector in shuffled order, the
## end-to-end, cluster and compression suites against a herald binary
## built with -race (the server is another process: its races show only
## in its own build), the other suites against the plain one; the gnet
## backend (the default off Linux) through the poller, conformance,
## end-to-end and TLS suites.
test: test-deps lint cross build
	$(GO) test -count=1 -race -shuffle=on -timeout 20m $(PKGS)
	cd $(TESTMOD) && HERALD_TEST_RACE=e2e,cluster,compression $(GO) test -count=1 -race -shuffle=on -timeout 20m ./...
	HERALD_POLLER_BACKEND=gnet $(GO) test -count=1 -timeout 20m ./poller/
	cd $(TESTMOD) && HERALD_POLLER_BACKEND=gnet $(GO) test -count=1 -timeout 20m ./conformance/ ./e2e/ ./tls/
	cd client/js/types-test && node check.mjs

lint: vet fmt-check
	cd bench && $(GO) vet ./...
	$(GO) run $(STATICCHECK) $(PKGS)
	cd $(TESTMOD) && $(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...

vet:
	$(GO) vet $(PKGS)
	cd $(TESTMOD) && $(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## cross: the event loops build on kqueue systems too.
cross:
	GOOS=darwin  $(GO) build ./...
	GOOS=freebsd $(GO) build ./...

## fuzz: runs each fuzz target for FUZZTIME.
fuzz:
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzDecoder$$' -fuzztime $(FUZZTIME)
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./auth -run '^$$' -fuzz '^FuzzChannelPattern$$' -fuzztime $(FUZZTIME)
	$(GO) test ./auth -run '^$$' -fuzz '^FuzzOrigin$$' -fuzztime $(FUZZTIME)
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzInflate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./codec -run '^$$' -fuzz '^FuzzNegotiateDeflate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./push -run '^$$' -fuzz '^FuzzParseCommand$$' -fuzztime $(FUZZTIME)
	$(GO) test ./tlsrec -run '^$$' -fuzz '^FuzzRecord$$' -fuzztime $(FUZZTIME)

## bench: micro-benchmarks, then herald against its peers (writes bench/RESULTS.md; QUICK=1 for a short run).
bench: bench-micro bench-compare

## bench-micro: the Go benchmarks (0 allocs/op claims, fan-out cost per subscriber).
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=20000x ./codec/... ./hub/... ./pool/... ./auth/...

## bench-compare: herald against gorilla, nbio, gws and bare gnet under the same load.
bench-compare: build
	bash bench/run.sh

## bench-mem: RSS per idle connection, N sized to the open-file limit.
bench-mem: build
	$(GO) run ./cmd/idlebench -server $(BIN)/herald

## bench-storms: shootout (herald vs the peers), jitter and deploy, herald alone and 3 nodes on NATS, medians of 3 (~20 min; bench/STORMS.md).
bench-storms: build
	bash bench/storms.sh

## load-cluster: K nodes over NATS on one box, aiming at 1M connections and one broadcast (not in `make test`).
load-cluster: build
	bash scripts/load-cluster.sh

clean:
	rm -rf $(BIN)
