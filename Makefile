# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest system-deps postgres browser node-deps test-art bench clean ray

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# pdqhash compiles from source: it needs g++.
system-deps:
	@command -v g++ >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq g++; \
	  else echo "g++ is missing: install it (apt-get install g++)"; exit 1; fi; }

# The console's browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "!!! /usr/bin/chromium is missing: the console browser tests will be SKIPPED !!!"; fi; }

# An independent C2PA reader (npm @trustnxt/c2pa-ts, pinned in tests/js/package-lock.json) that
# the provenance tests cross-check our manifests with; Debian's nodejs/npm when missing.
node-deps:
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "!!! npm is missing: the c2pa-ts cross-checks will be SKIPPED !!!"; fi; }
	@if command -v npm >/dev/null 2>&1 && [ ! -d tests/js/node_modules/@trustnxt/c2pa-ts ]; then \
	  npm install --prefix tests/js --ignore-scripts --no-audit --no-fund --silent; fi

$(VENV)/.synced: uv.lock pyproject.toml | $(UV) system-deps
	$(UV) sync --frozen
	touch $@

# The Ray engine (`clearhouse clear --engine ray`) is the optional extra clearhouse[ray]; the
# tests install it so that its test runs (the base install stays without it).
$(VENV)/.ray: $(VENV)/.synced
	$(UV) sync --frozen --extra ray
	touch $@

ray: $(VENV)/.ray

# Real game art for the recall tests (Debian's wesnoth-1.16-data, apt-get download + unpack into
# ~/.cache/clearhouse-test-art; nothing installed). When it cannot be fetched the tests that
# need it are skipped with a loud line.
test-art:
	@bash scripts/fetch-test-art.sh

postgres:
	@bash scripts/ensure-postgres.sh || true

lint: $(VENV)/.synced
	$(BIN)/ruff check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy

pytest: $(VENV)/.synced $(VENV)/.ray postgres browser node-deps test-art
	$(BIN)/pytest -q

test: lint typecheck pytest

demo: $(VENV)/.synced
	$(BIN)/python scripts/demo.py

bench: $(VENV)/.synced
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf .venv .tools .clearhouse .pytest_cache .mypy_cache .ruff_cache
