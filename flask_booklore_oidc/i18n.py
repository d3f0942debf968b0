"""Our own gettext domain, ``flask_booklore_oidc``: the reader's language when the host uses
Flask-Babel, English (the message id itself) when it does not.

The catalogs live in ``translations/<lang>/LC_MESSAGES/flask_booklore_oidc.{po,mo}`` inside the
package, apart from the host's own ``messages`` domain, so a host never merges or compiles them.
When ``flask_babel`` is importable *and* the host initialised it (``"babel" in
app.extensions``), a message is looked up with a :class:`flask_babel.Domain` of ours, in the
locale the host's locale selector picks for the request. Outside a request (the CLI, startup,
a background job) there is no reader, and the text stays English.

Placeholders are ``%(name)s`` (Babel's python-format), filled after the lookup; a message is
a whole sentence, never pieced together from translated fragments::

    gettext("Cannot reach %(url)s: %(problem)s.", url=url, problem=problem)

:func:`lazy_gettext` is for module-level tables (:data:`~.errors.ERRORS`,
:data:`~.config.FIELDS`) and for error details: a :class:`LazyString` is looked up each time
it is turned into text, so the table is built once and read in the locale of the moment, and
the log (:func:`untranslated`, ``str(OIDCError)``) stays English.

Our templates translate with the app's Jinja globals ``booklore_oidc_gettext`` and
``booklore_oidc_ngettext``, never the host's ``_``, which is bound to the host's own domain.
``make messages`` extracts every message into ``translations/flask_booklore_oidc.pot`` and
merges it into each ``.po``; ``make translations`` compiles the ``.mo`` files the wheel ships.
"""

from __future__ import annotations

import os
from typing import Any

from flask import current_app, has_request_context
from markupsafe import Markup, escape

#: our gettext domain (the name of every catalog file)
DOMAIN = "flask_booklore_oidc"
#: where the catalogs are: ``<lang>/LC_MESSAGES/flask_booklore_oidc.mo``
TRANSLATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations")

_domain: Any = None


def _babel_domain() -> Any:
    """Our :class:`flask_babel.Domain` when the request's app uses Flask-Babel, else ``None``."""
    global _domain
    if not has_request_context() or "babel" not in current_app.extensions:
        return None
    try:
        import flask_babel
    except ImportError:  # another extension registered under the name "babel"
        return None
    # Flask-Babel 4 registers its configuration, earlier versions the Babel object; anything
    # else (Flask-BabelEx, say) is not ours to drive.
    kinds = tuple(kind for kind in (getattr(flask_babel, "BabelConfiguration", None), flask_babel.Babel) if kind)
    if not isinstance(current_app.extensions["babel"], kinds) or not hasattr(flask_babel, "Domain"):
        return None
    if _domain is None:
        # One object for every app: its cache is keyed by locale, and the catalogs are ours.
        _domain = flask_babel.Domain(translation_directories=[TRANSLATIONS], domain=DOMAIN)
    return _domain


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the reader's language, with ``%(name)s`` placeholders filled from
    ``variables`` (English without Flask-Babel or outside a request)."""
    domain = _babel_domain()
    text = message if domain is None else str(domain.get_translations().ugettext(message))
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """:func:`gettext` with a plural form chosen by ``num`` (available as ``%(num)s``)."""
    variables.setdefault("num", num)
    domain = _babel_domain()
    if domain is None:
        text = singular if num == 1 else plural
    else:
        text = str(domain.get_translations().ungettext(singular, plural, num))
    return text % variables


def translated(text: str) -> str:
    """The translation of ``text`` if it is one of our message ids, else ``text`` itself: for
    English text kept as it was logged (the activity list's details), shown on a page later."""
    domain = _babel_domain()
    return text if domain is None else str(domain.get_translations().ugettext(text))


def language() -> str:
    """The language our pages are in for this request: the locale Flask-Babel picked when we
    have a catalog for its language (``de_AT`` reads German), ``"en"`` otherwise.

    base.html puts it into ``<html lang>``, so screen readers pronounce the page right."""
    domain = _babel_domain()
    if domain is None:
        return "en"
    import flask_babel

    locale = flask_babel.get_locale()
    if locale is None or not os.path.isdir(os.path.join(TRANSLATIONS, locale.language)):
        return "en"
    return str(locale.language)


def template_gettext(message: str, **variables: Any) -> Markup:
    """:func:`gettext` for our templates (the Jinja global ``booklore_oidc_gettext``).

    The translation is text, escaped like any other; the values are escaped too unless they are
    markup already, so a template may emphasise a value without putting the tag into the msgid::

        {{ booklore_oidc_gettext("Password of %(name)s", name="<strong>"|safe ~ name ~ "</strong>"|safe) }}
    """
    text = escape(gettext(message))
    return text % variables if variables else text


def template_ngettext(singular: str, plural: str, num: int, **variables: Any) -> Markup:
    """:func:`ngettext` for our templates (``booklore_oidc_ngettext``), escaped as
    :func:`template_gettext` is."""
    variables.setdefault("num", num)
    domain = _babel_domain()
    if domain is None:
        text = singular if num == 1 else plural
    else:
        text = str(domain.get_translations().ungettext(singular, plural, num))
    return escape(text) % variables


def english_template_globals() -> dict[str, Any]:
    """Our template globals, English whatever the request: for a page rendered while the host's
    locale selector cannot answer (it may read the reader's language from the database that is
    down)."""

    def english(message: str, **variables: Any) -> Markup:
        text = escape(message)
        return text % variables if variables else text

    def english_plural(singular: str, plural: str, num: int, **variables: Any) -> Markup:
        variables.setdefault("num", num)
        return escape(singular if num == 1 else plural) % variables

    return {
        "booklore_oidc_gettext": english,
        "booklore_oidc_ngettext": english_plural,
        "booklore_oidc_language": lambda: "en",
    }


def lazy_gettext(message: str, **variables: Any) -> LazyString:
    """A :class:`LazyString` for ``message``: translated when it is turned into text."""
    return LazyString(message, variables)


def untranslated(text: str) -> str:
    """The English text of ``text``, a :class:`LazyString` or not: for log lines, which stay
    English whatever language the reader's page is in."""
    return str.__str__(text)


class LazyString(str):
    """A message looked up in the current locale every time it is used as text.

    It is a ``str`` whose own value is the English text, so code and tests that treat the tables
    as English keep working without Flask-Babel. Everything that turns it into text asks for the
    translation: ``str()``, ``format``/f-strings, ``"%s" %``, ``+`` on either side, ``%``,
    ``==`` and hashing, and Jinja (``__html__``, so WTForms labels too). What reads the
    characters directly sees the English text: ``"".join``, ``in``, slicing, ``json.dumps``
    and the ``str`` methods. Call ``str(value)`` first there.
    """

    __slots__ = ("_message", "_variables")

    _message: str
    _variables: dict[str, Any]

    def __new__(cls, message: str, variables: dict[str, Any] | None = None) -> LazyString:
        variables = dict(variables or {})
        english = {
            name: untranslated(value) if isinstance(value, LazyString) else value for name, value in variables.items()
        }
        self = super().__new__(cls, message % english if variables else message)
        self._message = message
        self._variables = variables
        return self

    @property
    def message(self) -> str:
        """The message id (the English text, placeholders unfilled)."""
        return self._message

    def __str__(self) -> str:
        return gettext(self._message, **self._variables)

    def __repr__(self) -> str:
        return f"lazy_gettext({self._message!r})"

    def __html__(self) -> str:
        return str(escape(str(self)))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) == str(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, str):
            return str(self) != str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __add__(self, other: str) -> str:
        return str(self) + str(other)

    def __radd__(self, other: str) -> str:
        return str(other) + str(self)

    def __mod__(self, other: Any) -> str:
        text: str = str(self) % other
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (LazyString, (self._message, self._variables))
