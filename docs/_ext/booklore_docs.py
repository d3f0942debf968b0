"""Sphinx directives that write the reference pages from the package's own tables, so the
documentation cannot drift from the code:

``.. booklore-settings::``
    One section per :data:`flask_booklore_oidc.config.SECTIONS` entry with a table of its
    :data:`~flask_booklore_oidc.config.FIELDS` (key, type, default, bounds, help), then the
    config-only keys of :data:`~flask_booklore_oidc.config.APP_ONLY_DEFAULTS`.

``.. booklore-errors::``
    One section per :data:`flask_booklore_oidc.errors.ERRORS` entry, its HTML anchor being the
    error code itself (``troubleshooting.html#user_not_provisioned``: the link on each error
    page), with the status, the title, the advice the page shows, and the notes below.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from flask_booklore_oidc import config, errors

KINDS = {
    "bool": "boolean",
    "str": "text",
    "int": "whole number",
    "float": "number",
    "list": "list (comma-separated)",
    "choice": "one of",
    "secret": "secret (write-only)",
}

#: what the troubleshooting page says beyond the advice every error page shows (reStructuredText)
NOTES: dict[str, str] = {
    "provider_unreachable": (
        "Run ``flask booklore-oidc test`` (or **Test Connection** on the settings page) on the server "
        "itself: it names the URL it tried and how long it waited. The failure is remembered for about "
        "30 seconds, so a down provider does not slow local sign-in; fix it and try again after that."
    ),
    "issuer_mismatch": (
        "Compare the Issuer URI with the ``issuer`` in the provider's "
        "``/.well-known/openid-configuration``. Keycloak's issuer includes the realm "
        "(``https://kc.example.com/realms/books``); Authentik's includes the application slug "
        "(``https://authentik.example.com/application/o/booklore/``)."
    ),
    "invalid_state": (
        "Common causes: the sign-in took longer than ten minutes, the browser blocks the session cookie, "
        "the Back button re-sent an old callback, or the Public URL's host differs from the one the reader "
        "started on (the cookie is per host)."
    ),
    "provider_error": (
        "The provider refused before signing anyone in; its own error text is shown on the page (with any "
        "secret removed). ``redirect_uri`` mismatches are the usual cause: copy the Redirect URI from the "
        "*Provider Configuration Reference* panel."
    ),
    "invalid_client": (
        "Pocket ID guide: *Double-check the Client ID. Copy it fresh from Pocket ID. Make sure the "
        "Issuer URI matches your Pocket ID URL exactly.*"
    ),
    "user_not_provisioned": (
        "Pocket ID guide: *Auto-provisioning is off by default. Either enable it in OIDC Settings, or "
        "create a user with a username that exactly matches the Pocket ID username (case-sensitive).* "
        "See :doc:`concepts`."
    ),
    "account_conflict": (
        "``flask booklore-oidc identities`` lists who is linked to what; ``flask booklore-oidc unlink USER`` "
        "and ``flask booklore-oidc link USER SUBJECT`` fix a wrong link."
    ),
    "local_login_disabled": (
        "OIDC-Only Mode is on. Administrators still sign in locally at ``/login?local=true``; if no "
        "administrator can, set ``FORCE_DISABLE_OIDC=true`` in the environment and restart (see "
        ":ref:`way-back-in`)."
    ),
    "oidc_disabled": (
        "``flask booklore-oidc status`` shows whether OIDC Login is on, where each setting comes from, and "
        "whether ``FORCE_DISABLE_OIDC`` is set."
    ),
}


def _default(field: config.Field) -> str:
    value = field.default
    if field.kind == "bool":
        return "on" if value else "off"
    if value in ("", (), []):
        return "*automatic*" if field.name in ("scopes",) else "*empty*"
    return f"``{value}``"


def _bounds(field: config.Field) -> str:
    if field.kind == "choice":
        return ", ".join(f"``{c}``" for c in field.choices)
    if field.kind in ("int", "float"):
        return f"{field.minimum:g} – {field.maximum:g}"
    if field.kind == "list":
        return f"at most {config.MAX_LIST_ITEMS} entries of {config.MAX_LIST_ITEM_LENGTH} characters"
    if field.max_length:
        return f"at most {field.max_length} characters"
    return ""


def _plain(text: str) -> str:
    """Text from the package, shown as written: no character of it is reStructuredText markup."""
    for char in "\\*`|_[]":
        text = text.replace(char, "\\" + char)
    return text


def _cell(text: str) -> str:
    return text.replace("\n", " ") or " "


def _table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        first, *rest = row
        lines.append(f"   * - {_cell(first)}")
        lines.extend(f"     - {_cell(cell)}" for cell in rest)
    return [*lines, ""]


class _Generated(SphinxDirective):
    has_content = False

    def _section(self, anchor: str, title: str, body: list[str]) -> nodes.section:
        section = nodes.section(ids=[anchor], names=[anchor])
        section += nodes.title(title, title)
        # A label of the same name, so other pages can write :ref:`user_not_provisioned`.
        self.env.get_domain("std").note_hyperlink_target(anchor, self.env.docname, anchor, title)  # type: ignore[attr-defined]
        self.state.nested_parse(StringList(body, source="<generated>"), self.content_offset, section)
        return section


class SettingsDirective(_Generated):
    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for section in config.SECTIONS:
            rows = [
                [f"``{f.key}``", f"**{_plain(f.label)}**", KINDS[f.kind], _default(f), _bounds(f), _plain(f.help)]
                for f in config.fields_of(section)
            ]
            body = [
                _plain(section.intro),
                "",
                *_table(["key", "on the page", "type", "default", "bounds", "what"], rows, "24 14 10 12 14 26"),
            ]
            out.append(self._section(f"settings-{section.anchor}", section.heading, body))
        rows = [
            [f"``{key}``", f"``{default}``" if default != "" else "*empty*", config.APP_ONLY_HELP[key]]  # written as reST
            for key, default in config.APP_ONLY_DEFAULTS.items()
        ]
        body = [
            "Read from ``app.config`` only (not stored, not on the settings page), when ``init_app`` runs.",
            "",
            *_table(["key", "default", "what"], rows, "30 25 45"),
        ]
        out.append(self._section("settings-config-only", "Config-only keys", body))
        return out


class ErrorsDirective(_Generated):
    def run(self) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for code, info in errors.ERRORS.items():
            body = [f"**HTTP {info.status}** · {_plain(info.title)}", "", "What the page advises:", ""]
            body += [f"- {_plain(line)}" for line in info.advice]
            body.append("")
            if code in NOTES:
                body += [NOTES[code], ""]
            out.append(self._section(code, code, body))
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("booklore-settings", SettingsDirective)
    app.add_directive("booklore-errors", ErrorsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
