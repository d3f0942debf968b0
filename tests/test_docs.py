"""The documentation site (``make docs``) builds with warnings as errors, and its generated pages
follow the code: every setting of ``config.FIELDS`` in the settings reference, an anchor per
error code in troubleshooting — the one each error page links to."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from helpers import configure

from flask_booklore_oidc.config import APP_ONLY_DEFAULTS, FIELDS
from flask_booklore_oidc.errors import ERRORS

DOCS = Path(__file__).resolve().parent.parent / "docs"
DEFAULT_DOCS_URL = "https://flask-booklore-oidc.readthedocs.io/en/latest/"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for the module the way ``make docs`` builds it (``-W``)."""
    try:
        import sphinx  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Sphinx is not installed: `make test` installs the docs extra (pip install -e '.[docs]').")
        pytest.skip("SKIPPED LOUDLY: Sphinx is not installed, so the docs were not built (pip install -e '.[docs]').")
    out = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"sphinx-build -W failed:\n{result.stdout}\n{result.stderr}"
    return out


def page(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_the_settings_reference_lists_every_setting_by_its_config_key(site):
    text = page(site, "settings.html")
    missing = [f.key for f in FIELDS if f.key not in text]
    assert not missing


def test_the_settings_reference_lists_the_config_only_keys(site):
    text = page(site, "settings.html")
    assert [key for key in APP_ONLY_DEFAULTS if key not in text] == []
    assert "BOOKLORE_OIDC_SESSION_CHECK_INTERVAL" in text


def test_the_settings_reference_shows_each_settings_help_text(site):
    text = html.unescape(re.sub(r"<[^>]+>", "", page(site, "settings.html")))
    assert [f.name for f in FIELDS if " ".join(f.help.split()) not in " ".join(text.split())] == []


def test_troubleshooting_has_an_anchor_named_after_each_error_code(site):
    text = page(site, "troubleshooting.html")
    ids = set(re.findall(r'id="([^"]+)"', text))
    assert [code for code in ERRORS if code not in ids] == []


def test_the_api_reference_documents_guard_login_view(site):
    text = page(site, "api.html")
    assert 'id="flask_booklore_oidc.BookloreOIDC.guard_login_view"' in text


def test_every_provider_guide_is_built(site):
    for guide in ("pocket-id", "authelia", "authentik", "keycloak", "kanidm", "zitadel", "lemonldap", "dev-provider"):
        assert (site / "providers" / f"{guide}.html").is_file(), guide


# -- each error page links to its entry ------------------------------------------------------


def test_an_error_page_links_to_its_troubleshooting_entry(app: Flask, client):
    configure(app, enabled=False)
    response = client.get("/login/oidc")
    assert response.status_code == 404
    link = f'href="{DEFAULT_DOCS_URL}troubleshooting.html#oidc_disabled"'
    assert link in response.get_data(as_text=True)
    assert "More about this error" in response.get_data(as_text=True)


def test_the_docs_url_is_configurable_and_an_empty_one_drops_the_link(app: Flask, client):
    configure(app, enabled=False)
    app.config["BOOKLORE_OIDC_DOCS_URL"] = "https://docs.example.org/oidc"
    assert 'href="https://docs.example.org/oidc/troubleshooting.html#oidc_disabled"' in client.get(
        "/login/oidc"
    ).get_data(as_text=True)
    app.config["BOOKLORE_OIDC_DOCS_URL"] = ""
    assert "More about this error" not in client.get("/login/oidc").get_data(as_text=True)


def test_the_readme_names_every_setting():
    # The README lists the names and links to the generated reference; the list must not drift.
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    assert [f.name.upper() for f in FIELDS if f"`{f.name.upper()}`" not in section] == []
