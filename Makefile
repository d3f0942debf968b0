# The two commands of the README: `make demo` and `make test`. Each creates .venv if missing
# (with the test, dev and docs extras, so `make test` can build the docs too).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := devprovider/node_modules/.installed
# The demo needs the package and the provider only: no test or lint tools, no axe-core.
DEMO_STAMP := $(VENV)/.demo-installed
DEMO_NODE_STAMP := devprovider/node_modules/.demo-installed

.PHONY: demo test lint docs bench browsers clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test,dev,docs]'
	touch $@

$(NODE_STAMP): devprovider/package.json devprovider/package-lock.json
	cd devprovider && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

# A full install (make test's) already holds what the demo needs; else only the dependencies.
$(DEMO_NODE_STAMP): devprovider/package.json devprovider/package-lock.json
	if [ ! -f $(NODE_STAMP) ] || [ $(NODE_STAMP) -ot devprovider/package-lock.json ]; then \
	  cd devprovider && npm ci --omit=dev --no-audit --no-fund --loglevel=error; fi
	touch $@

demo: $(DEMO_STAMP) $(DEMO_NODE_STAMP)
	@echo "make demo: installed the package and the development provider only (make test adds the test tools)."
	$(PY) -m example_app.demo

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest ran no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check flask_booklore_oidc example_app
	$(VENV)/bin/mypy

# The documentation site; warnings are errors (a broken reference fails the build). -E: every
# page is read again each time, so a warning in an unchanged page still fails the build.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -E -q -b html docs docs/_build/html
	@echo "make docs: open docs/_build/html/index.html"

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) devprovider/node_modules dist build docs/_build
