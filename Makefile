# Concord's build, run and test entry points. `make run` and `make test` are
# the two commands README.md promises a newcomer.

GO        ?= go
BIN       := bin
# etcd's tools are built from separate modules (tools/, tools/benchmark/):
# `go install` refuses etcd's modules, and they stay out of Concord's go.mod.
ETCDCTL   := $(BIN)/etcdctl
ETCD      := $(BIN)/etcd
BENCHMARK := $(BIN)/benchmark
STATICCHECK := $(BIN)/staticcheck
TEST_FLAGS ?= -race -count=1 -timeout 15m

.PHONY: all build run test test-short lint tools tools-ci bench acceptance clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/concord ./cmd/concord

run:
	$(GO) run ./cmd/concord agent --dev

# The full suite: unit, in-process cluster and end-to-end tests (the e2e
# tests drive the real etcdctl, which this target builds first).
test: $(ETCDCTL) lint
	ETCDCTL=$(CURDIR)/$(ETCDCTL) $(GO) test $(TEST_FLAGS) ./...

test-short:
	$(GO) test -short -count=1 ./...

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

tools-ci: $(ETCDCTL) $(STATICCHECK)

tools: $(ETCDCTL) $(ETCD) $(BENCHMARK) $(STATICCHECK)

$(ETCDCTL): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(ETCDCTL) go.etcd.io/etcd/etcdctl/v3

$(ETCD): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(ETCD) go.etcd.io/etcd/server/v3

$(STATICCHECK): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck

$(BENCHMARK): tools/benchmark/go.mod tools/benchmark/go.sum
	cd tools/benchmark && $(GO) build -o ../../$(BENCHMARK) go.etcd.io/etcd/v3/tools/benchmark

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./core/...

acceptance: $(ETCDCTL)
	for s in ../shared/acceptance/*.sh; do bash $$s || exit 1; done

clean:
	rm -rf $(BIN)
