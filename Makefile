# The README's Quickstart is `make demo` (install + run the main job) and `make test`
# (install + run the whole test suite). Both are idempotent: re-running skips the install.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Machines of this project's kind keep the CPU build of torch on disk; naming the folder keeps
# pip from resolving torch==2.13.0 to a CUDA build from the index.
PIP_FLAGS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: install install-dev contracts-deps interop-deps system-deps demo test test-fast lint mutation bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev contracts-deps interop-deps system-deps

# System packages the test suite runs for real: the mosquitto broker (the nodes never install
# anything themselves; without it they say how to install it) and headless Chromium, which
# renders the validator's dashboard in tests/e2e/test_operate_devnet.py.
system-deps:
	@command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || { \
	    echo "mosquitto is missing: install it (apt-get install -y mosquitto) and re-run"; exit 1; }; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; }
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null || { \
	    echo "chromium is missing: install it (apt-get install -y chromium) and re-run"; exit 1; }; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Node tooling for the contracts: the pinned solc (staleness test) and anvil (realistic chain).
contracts-deps:
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20+)"; exit 1; }
	@[ -d contracts/node_modules ] || (cd contracts && npm ci --no-audit --no-fund)

# The js-libp2p peer of the interop test (tests/interop), pinned by its package-lock.json:
# installed again only when the lock file changes, so an installed tree needs no network.
INTEROP_JS := tests/interop/js
interop-deps: $(INTEROP_JS)/node_modules/.installed

$(INTEROP_JS)/node_modules/.installed: $(INTEROP_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (Node.js 20+)"; exit 1; }
	cd $(INTEROP_JS) && npm ci --no-audit --no-fund
	touch $@

demo: install
	$(BIN)/seedswarm devnet

# pytest exits 5 when it collected nothing; a suite that runs nothing must not pass.
test: install-dev
	@$(BIN)/pytest -m ""; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test-fast: install-dev
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

# Mutation testing of the consensus and reward modules (tools/mutate.py): a score per module,
# the survivors not argued equivalent in tools/mutation_equivalents.toml, and out/mutation.json.
# All ten modules take about 35 minutes on two busy cores; MODULES="protocol.replay" runs one.
MODULES ?=
mutation: $(VENV)/.installed-dev
	$(BIN)/python -m tools.mutate $(MODULES)

clean:
	rm -rf $(VENV) contracts/node_modules $(INTEROP_JS)/node_modules .pytest_cache .mypy_cache .ruff_cache
