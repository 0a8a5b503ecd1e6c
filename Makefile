# canhgac developer and demo entry points. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo demo-stop test lint typecheck unit bench packages clean

help:
	@echo "make demo       install into $(VENV), run a collector on SQLite, ship one agent report, show findings and metrics"
	@echo "make demo-stop  stop the demo collector"
	@echo "make test       lint (ruff), type-check (mypy --strict) and run the whole test suite"
	@echo "                (tests/packaging also builds the wheel and runs its rules lint/test)"
	@echo "make bench      run every benchmark under bench/: one table of figures, var/bench.json"
	@echo "make packages   build the agent's .deb (dpkg-deb) and .rpm (rpmbuild) into dist/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
		echo "python3 with venv is needed: apt-get install -y python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP)
	@bash packaging/demo.sh

demo-stop:
	@bash packaging/demo.sh stop

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/canhgac-agent rules lint
	$(BIN)/canhgac-agent rules test

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/figures.py bench --json var/bench.json

packages:
	@bash packaging/build-packages.sh all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
