"""Sphinx configuration of the flask-booklore-oidc documentation (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

import flask_booklore_oidc  # noqa: E402

project = "flask-booklore-oidc"
author = "the flask-booklore-oidc authors"
copyright = "the flask-booklore-oidc authors"
release = version = flask_booklore_oidc.__version__

extensions = [
    "sphinx.ext.autodoc",
    "booklore_docs",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# No intersphinx: the build needs no network, so references to Flask or SQLAlchemy names in
# docstrings render as code, not links (and are not warnings: nitpicky stays off).

html_theme = "furo"
html_title = f"flask-booklore-oidc {release}"
html_static_path: list[str] = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
# Text from the package (help texts, advice) is shown exactly as the pages show it.
smartquotes = False
