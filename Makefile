# Two commands do everything: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
SIZE ?= 10000
DB ?= sqlite
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js

.PHONY: run test test-quick bench install clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# axe-core for the browser test's accessibility check: npm from the registry once, cached in the venv, never
# fetched while the tests run.
$(AXE):
	npm install --prefix $(VENV)/axe --no-audit --no-fund axe-core@4

install: $(STAMP) $(AXE)

run: install  ## create the venv, migrate, seed the demo library on first start, start app + worker
	$(PY) -m crmcore init
	$(PY) -m crmcore serve

test: install  ## the whole suite (SQLite, PostgreSQL when CRM_TEST_DATABASE_URL is set, browser)
	$(PY) -m pytest

test-quick: install  ## the suite without the long concurrency and crash tests
	$(PY) -m pytest -m "not slow"

bench: install  ## the benchmark harness (bench/), SIZE=10000 by default, DB=sqlite (or postgres)
	$(PY) -m bench --size $(SIZE) --db $(DB)

clean:
	rm -rf $(VENV) .pytest_cache
