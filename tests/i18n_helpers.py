"""Our English messages, for tests that check a page in another language has none of them left.

The templates pass (issue 17) will use :func:`english_sentences` on whole pages rendered in
``de`` and ``fr``; today it checks what the Python side renders (Test Connection, errors).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent.parent / "flask_booklore_oidc" / "translations"
POT = TRANSLATIONS / "flask_booklore_oidc.pot"
LANGUAGES = ("de", "fr")

#: a placeholder of a message: ``%(name)s`` (gettext) or ``{name}`` (a literal shown to admins)
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def po_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / "flask_booklore_oidc.po"


def message_ids() -> list[str]:
    """Every msgid of the .pot (both forms of a plural)."""
    ids: list[str] = []
    for message in read_catalog(POT):
        if message.id:
            ids.extend(message.id if isinstance(message.id, tuple) else [message.id])
    return ids


@cache
def english_fragments(min_words: int = 4) -> frozenset[str]:
    """The runs of English text of our messages between placeholders, of at least ``min_words``
    words: what must not appear on a translated page (shorter runs — "Client ID", "Issuer
    URI", "PKCE with S256" — are terms kept as they are in every language)."""
    fragments = set()
    for message in message_ids():
        for part in PLACEHOLDER.split(message):
            part = part.strip(" .,;:()")
            if len(part.split()) >= min_words:
                fragments.add(part)
    return frozenset(fragments)


def english_sentences(text: str, *, min_words: int = 4) -> list[str]:
    """The English message fragments (see :func:`english_fragments`) found in ``text``
    (a page with HTML entities decoded), longest first."""
    flat = " ".join(text.split())
    return sorted((f for f in english_fragments(min_words) if f in flat), key=len, reverse=True)
