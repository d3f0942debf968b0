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

.PHONY: demo test lint docs bench browsers clean messages translations

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

# Our own gettext domain (flask_booklore_oidc/i18n.py). `make messages` extracts every message of
# the package and the templates into the .pot and merges it into each language's .po; translate
# the new entries, then `make translations` compiles the .mo files the wheel ships (committed).
CATALOGS := flask_booklore_oidc/translations
LANGUAGES := de fr

messages: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k lazy_gettext -k ngettext:1,2 -k booklore_oidc_gettext -k booklore_oidc_ngettext:1,2 --no-wrap --sort-by-file \
		--project=flask-booklore-oidc --copyright-holder="flask-booklore-oidc authors" \
		--msgid-bugs-address="" -o $(CATALOGS)/flask_booklore_oidc.pot \
		flask_booklore_oidc templates
	for lang in $(LANGUAGES); do \
		if [ -f $(CATALOGS)/$$lang/LC_MESSAGES/flask_booklore_oidc.po ]; then \
			$(VENV)/bin/pybabel update --no-wrap --no-fuzzy-matching -D flask_booklore_oidc -l $$lang \
				-i $(CATALOGS)/flask_booklore_oidc.pot -d $(CATALOGS); \
		else \
			$(VENV)/bin/pybabel init --no-wrap -D flask_booklore_oidc -l $$lang \
				-i $(CATALOGS)/flask_booklore_oidc.pot -d $(CATALOGS); \
		fi; \
	done

translations: $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -D flask_booklore_oidc -d $(CATALOGS)

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) devprovider/node_modules dist build docs/_build
