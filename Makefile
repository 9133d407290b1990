# Kappa: every target bootstraps the toolchain first (idempotent; a no-op when done).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
BIN    := $(VENV)/bin
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VYPER_VERSION := 0.4.3
# ape-vyper looks for compilers under $VVM_BINARY_PATH/vyper-<version>; we link the pinned one there
# so that nothing ever tries to download a compiler. The folder is the checkout's own (.vvm), so
# two checkouts never point each other's tools at a deleted venv.
export VVM_BINARY_PATH ?= $(CURDIR)/.vvm
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export HYPOTHESIS_PROFILE ?= ci

VYPER_LINK := $(VVM_BINARY_PATH)/vyper-$(VYPER_VERSION)

.PHONY: help setup test demo bench fuzz lint clean prereqs mutate keeper drills redis

help:
	@echo "make setup   bootstrap .venv, the anvil binary and the compiler link (idempotent)"
	@echo "make demo    the main job (see README)"
	@echo "make test    the full test suite (what CI runs)"
	@echo "make bench   every benchmark; results in bench/results/*.json"
	@echo "make keeper  the keeper bot against a local demo chain (anvil + deployment; docs/keeper.md)"
	@echo "make drills  the keeper's fault drills on anvil (+ Redis); bench/results/keeper_drills.json"
	@echo "make fuzz    long property-based fuzzing (HYPOTHESIS_PROFILE=deep)"
	@echo "make lint    ruff (check, format --check) and mypy (keeper/, kappa_ops/)"
	@echo "make clean   remove .venv, node_modules and build caches"

setup: $(VENV)/.installed node_modules/.installed $(VYPER_LINK)

prereqs:
	@bash scripts/check_prereqs.sh "$(PYTHON)"

$(VENV)/.installed: pyproject.toml constraints.txt | prereqs
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json | prereqs
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VYPER_LINK): $(VENV)/.installed
	@mkdir -p $(VVM_BINARY_PATH)
	@ln -sfn $(CURDIR)/$(BIN)/vyper $@
	@$@ --version | grep -q '^$(VYPER_VERSION)' || { echo "kappa: $@ is not vyper $(VYPER_VERSION)"; exit 1; }

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

demo: setup
	$(BIN)/ape run demo --network base:local:foundry

# The keeper bot (docs/keeper.md) against a local demo chain: anvil on KEEPER_PORT (started in
# the background if nothing answers there), the demo market deployed and seeded once, then the
# Silverback bot signing as ape's test account 3. Move the market from another terminal:
#   .venv/bin/python -m keeper.runtime.localnet crash --port 8545 --spot 2200
KEEPER_PORT ?= 8545
KEEPER_ACCOUNT ?= TEST::3
keeper: setup
	$(BIN)/python -m keeper.runtime.localnet up --port $(KEEPER_PORT)
	APE_FOUNDRY_HOST=http://127.0.0.1:$(KEEPER_PORT) $(BIN)/silverback run keeper.runtime.bot:bot \
		--network base:local:foundry --account $(KEEPER_ACCOUNT)

# The keeper's fault drills (tests/integration/drills, docs/keeper.md "Faults"): restart, RPC
# loss, stuck transactions, reorgs, two bots, and the distributed mode over a real Redis server
# (Debian's redis-server, installed here when missing). Writes bench/results/keeper_drills.json.
drills: setup redis
	KAPPA_DRILLS=1 $(BIN)/python -m pytest -q tests/integration/drills

redis:
	@command -v redis-server >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

bench: setup
	$(BIN)/python -m bench

fuzz: setup
	HYPOTHESIS_PROFILE=deep $(BIN)/python -m pytest -q tests/fuzz tests/property tests/differential

mutate: setup
	$(BIN)/python tools/mutate.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules .build .hypothesis .pytest_cache .ruff_cache
