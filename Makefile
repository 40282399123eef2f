# evaldb's tasks. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
TOOL  := $(GO) tool -modfile=tools/go.mod
PKGS  := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install what the tests need and a fresh machine lacks (PostgreSQL server binaries, PgBouncer).
	@scripts/ensure-deps.sh

.PHONY: generate
generate: ## After a schema or query change: sqlc, then cachegen (cache layer, statements, triggers); all or nothing.
	$(GO) run -C tools ./cachegen -root ..

.PHONY: verify
verify: ## Fail on generated-code drift, go.mod drift, go vet or staticcheck findings.
	$(GO) run -C tools ./cachegen -root ..
	@git diff --exit-code -- gen schema/generated ':(glob)**/*_gen.go' ':(glob)**/*_gen_test.go' || { echo "generated code is stale: run 'make generate' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- gen schema/generated ':(glob)**/*_gen.go' ':(glob)**/*_gen_test.go')" || { echo "make generate created files that are not committed:"; git status --short -- gen schema/generated ':(glob)**/*_gen.go' ':(glob)**/*_gen_test.go'; exit 1; }
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(TOOL) staticcheck ./...
	cd bench && $(GO) mod tidy -diff
	cd bench && $(GO) vet ./...
	cd bench && $(GO) tool -modfile=../tools/go.mod staticcheck ./...

.PHONY: test
test: deps ## Run every test, integration tests included, with the race detector; fail if any output shows a password.
	set -o pipefail; $(GO) test -race -count=1 -timeout 20m -v $(PKGS) 2>&1 | tee test-output.txt | \
		grep -v -E '^(=== (RUN|PAUSE|CONT|NAME) |[[:space:]]*--- PASS: )'
	scripts/scan-secrets.sh test-output.txt
	cd tools && $(GO) test -count=1 ./...
	$(GO) test -run='^$$' -bench=. -benchtime=1x ./... > /dev/null
	bench/run.sh smoke

.PHONY: pgx-latest
pgx-latest: deps ## Build with the newest pgx/v5 (in a scratch copy) and run every test that does not need pgxmock.
	scripts/pgx-latest.sh

.PHONY: fuzz-smoke
fuzz-smoke: ## Run every fuzz target for a few seconds after its seed corpus (FUZZTIME=5s).
	scripts/fuzz-smoke.sh

.PHONY: reliability
reliability: deps ## Run the long reliability scenarios (load, restarts, network faults, hostile input; see RELIABILITY.md).
	EVALDB_RELIABILITY=long $(GO) test -race -count=1 -timeout 60m -v -run . ./internal/reliability/ | tee reliability.txt
	@grep FIGURE reliability.txt || true

.PHONY: run
run: ## Run the demo on a local PostgreSQL (started from the installed binaries when DATABASE_URL is unset).
	@scripts/ensure-deps.sh postgresql
	$(GO) run ./cmd/evaldb demo

.PHONY: bench
bench: deps ## Run the library's benchmarks, then the comparison with pgx, GORM, bun, Prisma and pgbench (see BENCHMARKS.md).
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./... | tee bench.txt
	bench/run.sh full

.PHONY: bench-compare
bench-compare: deps ## Compare evaldb with raw pgx, GORM, bun, Prisma 7 and pgbench on one server (bench/out/table.md).
	bench/run.sh full

.PHONY: bench-scale
bench-scale: deps ## Cost curves: every read and RecordEvalRun at 10^4..10^7 eval_results rows (bench/out/scale; not in CI, about 10 minutes).
	cd bench && $(GO) run ./cmd/benchscale -out out/scale $(if $(SIZES),-sizes $(SIZES))

.PHONY: bench-smoke
bench-smoke: deps ## Run every comparative benchmark once, plus the bench tests (BENCH_PRISMA=1 adds Prisma).
	bench/run.sh smoke
