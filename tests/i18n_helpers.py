"""Our English messages, for tests that check a page in another language has none of them left.

The messages are the msgids of the .pot, which ``make messages`` extracts from the Python code
*and* the templates, so :func:`english_sentences` finds a template's English as well as the
code's. :func:`page_strings` is what a reader meets on a page: its text and the attribute
values a browser shows or reads aloud (``aria-label``, ``placeholder``, ``title``) or a script
shows (``data-bo-*``).
"""

from __future__ import annotations

import html
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


#: attributes whose values a reader sees or hears
SHOWN_ATTRIBUTES = re.compile(r'\s(?:aria-label|placeholder|title|alt|data-bo-[\w-]+)="([^"]*)"')


def page_strings(page: str) -> str:
    """The text of an HTML ``page`` (tags, scripts and styles dropped) followed by the values
    of its shown attributes, entities decoded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    text = re.sub(r"<[^>]+>", " ", body)
    attributes = SHOWN_ATTRIBUTES.findall(page)
    return html.unescape("\n".join([text, *attributes]))
