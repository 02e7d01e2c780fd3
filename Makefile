# hookd — the two commands: `make run` (or `go run ./cmd/hookd serve`) and `make test`.

GO ?= go

.PHONY: test vet build run bench fmt

## test: vet, then every test with the race detector, then the end-to-end
## suite of package app and the engine tests again on PostgreSQL (HOOKD_TEST_STORE).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
	HOOKD_TEST_STORE=postgres $(GO) test -race -count=1 -timeout 15m ./app ./delivery

vet:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/hookd ./cmd/hookd

run:
	$(GO) run ./cmd/hookd serve --dev

## bench: the Go benchmarks of the hot paths (quote medians: run with COUNT=10 and benchstat).
## The load tool is `hookd bench` (docs/performance.md).
COUNT ?= 6
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(COUNT) ./delivery ./sqlite ./postgres ./signature .
