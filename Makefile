# The two commands of the README: `make demo` and `make test`. Each creates .venv if missing
# (with the test, dev and docs extras, so `make test` can build the docs too).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := devprovider/node_modules/.installed

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

demo: $(STAMP) $(NODE_STAMP)
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
