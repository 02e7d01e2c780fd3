# hookd — the two commands: `make run` (or `go run ./cmd/hookd serve`) and `make test`.

GO ?= go

.PHONY: test vet build run bench fmt fuzz

## test: vet, then every test with the race detector, then the end-to-end
## suite of package app and the engine tests again on PostgreSQL (HOOKD_TEST_STORE).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
	HOOKD_TEST_STORE=postgres $(GO) test -race -count=1 -timeout 15m ./app ./delivery
	$(MAKE) --no-print-directory fuzz FUZZTIME=3000x

## fuzz: every fuzz target of every package (found with go test -list), for
## FUZZTIME each; make test runs them briefly, by a count of inputs rather than a
## duration (go1.26's fuzzer can report a spurious "context deadline exceeded"
## when a -fuzztime duration ends, golang/go#75804). A failure leaves its input in
## the package's testdata/fuzz, which then runs as a seed in every test run.
FUZZTIME ?= 200000x
fuzz:
	@$(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { names = names " " $$1 } /^ok/ { if (names != "") print $$2 names; names = "" }' | \
	while read -r pkg names; do \
		for name in $$names; do \
			echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
			out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1) || \
				{ echo "$$out"; exit 1; }; \
		done; \
	done

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
