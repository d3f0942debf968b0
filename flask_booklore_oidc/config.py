"""The one definition of every setting of SPEC §4: name, type, default, bounds, validation, help
text and the section of the settings page it appears in.

Everything else derives from :data:`FIELDS`: the :class:`~.settings.Settings` snapshot, the
database columns (:class:`~.models.SettingsRow`), the settings form and its sections, the CLI's
``set`` and the parsing of ``app.config`` and the environment. :meth:`Field.parse` is the one
validator, so a value the settings page refuses is refused everywhere, with the same message.

Every setting ``X`` can be given as ``BOOKLORE_OIDC_X`` in the environment (wins), in
``app.config``, or stored in the database from the settings page, in that order of precedence.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy import Boolean, Float, Integer, String, Text
from sqlalchemy.types import TypeEngine

from .claims import validate_mapping
from .i18n import gettext, lazy_gettext

PREFIX = "BOOKLORE_OIDC_"

#: Session keys set by this extension; an app that purges its session can remove them all.
SESSION_KEYS = (
    "_booklore_oidc_browser",  # random value binding pending sign-ins to this browser
    "_booklore_oidc_login",  # id of the server-side login record (no tokens in the cookie)
    "_booklore_oidc_redirects",  # automatic redirects in a row, for the loop breaker
    "_booklore_oidc_last_error",  # code of the last error page shown, for the loop breaker
    "_booklore_oidc_link",  # id of a pending link waiting for the account's password (SPEC §6)
    "_booklore_oidc_checked",  # when the login record was last checked (session_check_interval)
    "_booklore_oidc_logout_state",  # the state sent to the end-session endpoint, until it returns
    "_booklore_oidc_signed_out",  # just signed out: the login page shows itself once (OIDC-only mode)
)

Kind = Literal["bool", "str", "int", "float", "list", "choice", "secret"]

TOKEN_AUTH_METHODS = ("auto", "none", "client_secret_basic", "client_secret_post")
GROUP_SYNC_MODES = ("disabled", "replace", "additive")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

#: a list setting holds at most this many entries, each at most this long
MAX_LIST_ITEMS = 100
MAX_LIST_ITEM_LENGTH = 255

#: RFC 6749 §3.3 scope-token characters
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Section:
    """A card of the settings page."""

    anchor: str
    heading: str
    intro: str


SECTIONS: tuple[Section, ...] = (
    Section(
        "login-methods",
        lazy_gettext("Login Methods"),
        lazy_gettext("How readers sign in. Administrators can always use /login?local=true."),
    ),
    Section(
        "provider",
        lazy_gettext("Provider"),
        lazy_gettext("The client you created at your identity provider (Pocket ID, Authelia, Keycloak, …)."),
    ),
    Section(
        "claims",
        lazy_gettext("Claim Mappings"),
        lazy_gettext("Which claims of the provider's tokens hold the username, email, name and groups."),
    ),
    Section(
        "provisioning",
        lazy_gettext("Provisioning and Linking"),
        lazy_gettext("Who gets an account, and how existing accounts are matched on their first sign-in."),
    ),
    Section("advanced", lazy_gettext("Session and Advanced"), lazy_gettext("Addresses, time limits and sign-out.")),
)


@dataclass(frozen=True)
class Field:
    """One setting. :meth:`parse` turns a raw value from any source into the setting's type or
    raises :class:`ValueError` with the message every surface shows."""

    name: str  # lower-case attribute name; the config key is PREFIX + name.upper()
    kind: Kind
    default: Any
    label: str
    help: str
    section: str
    choices: tuple[str, ...] = ()
    #: the longest accepted text (also the database column's length)
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    #: a further check of the parsed value: a message naming the problem, or ``None``
    check: Callable[[Any], str | None] | None = None
    #: surrounding whitespace is removed before validation (else it is an error)
    strip: bool = True
    #: the message when the value is empty, for a setting that must not be
    required: str | None = None

    @property
    def key(self) -> str:
        return PREFIX + self.name.upper()

    def column_type(self) -> TypeEngine[Any]:
        """The database column holding a stored value (``NULL``: not set there)."""
        if self.kind == "bool":
            return Boolean()
        if self.kind == "int":
            return Integer()
        if self.kind == "float":
            return Float()
        if self.kind in ("list", "secret"):
            return Text()  # a JSON list; a Fernet token
        return String(self.max_length)

    def parse(self, raw: Any) -> Any:
        """The value of ``raw`` (text from a form, the CLI or the environment, or a Python
        value from ``app.config``), checked against every rule of this setting."""
        value = self._convert(raw)
        if self.required and value == "":
            raise ValueError(str(self.required))
        if self.kind in ("int", "float") and not _within(value, self.minimum, self.maximum):
            raise ValueError(
                gettext(
                    "%(label)s must be between %(minimum)s and %(maximum)s.",
                    label=self.label,
                    minimum=f"{self.minimum:g}",
                    maximum=f"{self.maximum:g}",
                )
            )
        if self.check is not None and value not in ("", []):
            problem = self.check(value)
            if problem:
                raise ValueError(problem)
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError(
                gettext(
                    "%(label)s contains a control character (a line break, tab or NUL); remove it.", label=self.label
                )
            )
        return value

    def _convert(self, raw: Any) -> Any:
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            word = str(raw).strip().lower()
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
                return False
            raise ValueError(
                gettext("%(label)s: expected true or false, got %(value)s.", label=self.label, value=_shown(raw))
            )
        if self.kind == "list":
            items = list(raw) if isinstance(raw, (list, tuple, set, frozenset)) else str(raw).split(",")
            values = [v for v in (str(item).strip() for item in items) if v]
            if len(values) > MAX_LIST_ITEMS:
                raise ValueError(
                    gettext("%(label)s: at most %(count)s entries.", label=self.label, count=MAX_LIST_ITEMS)
                )
            for value in values:
                if len(value) > MAX_LIST_ITEM_LENGTH or _CONTROL.search(value):
                    raise ValueError(
                        gettext(
                            "%(label)s: each entry must be at most %(count)s characters, without control characters.",
                            label=self.label,
                            count=MAX_LIST_ITEM_LENGTH,
                        )
                    )
            return values
        if self.kind in ("int", "float"):
            text = str(raw).strip()
            try:
                number: float = int(text) if self.kind == "int" else float(text)
            except ValueError:
                message = (
                    gettext("%(label)s: expected a whole number, got %(value)s.", label=self.label, value=_shown(raw))
                    if self.kind == "int"
                    else gettext("%(label)s: expected a number, got %(value)s.", label=self.label, value=_shown(raw))
                )
                raise ValueError(message) from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(
                    gettext("%(label)s: expected a number, got %(value)s.", label=self.label, value=_shown(raw))
                )
            return number
        text = "" if raw is None else str(raw)
        if self.kind == "choice":
            text = text.strip()
            if text not in self.choices:
                raise ValueError(
                    gettext("%(label)s: must be one of %(choices)s.", label=self.label, choices=", ".join(self.choices))
                )
            return text
        if self.strip:
            text = text.strip()
        if self.max_length is not None and len(text) > self.max_length:
            raise ValueError(
                gettext("%(label)s is longer than %(count)s characters.", label=self.label, count=self.max_length)
            )
        return text


def _within(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _shown(raw: Any) -> str:
    """A short, printable echo of a refused value (never the whole of a long one)."""
    text = repr(str(raw))
    return text if len(text) <= 40 else text[:37] + "…'"


# -- checks ---------------------------------------------------------------------------------------


def _client_id(value: str) -> str | None:
    for index, char in enumerate(value):
        if char.isspace():
            space = _describe_space(char)
            if index == 0:
                return gettext(
                    "Client ID contains whitespace (%(space)s at the start): copy it again from the provider, "
                    "without spaces.",
                    space=space,
                )
            if index == len(value) - 1:
                return gettext(
                    "Client ID contains whitespace (%(space)s at the end): copy it again from the provider, "
                    "without spaces.",
                    space=space,
                )
            return gettext(
                "Client ID contains whitespace (%(space)s inside it): copy it again from the provider, without spaces.",
                space=space,
            )
    return None


def _client_secret(value: str) -> str | None:
    if value != value.strip():
        return gettext("Client Secret starts or ends with whitespace: copy it again from the provider, without spaces.")
    return None


def http_url_problem(value: str, label: str, *, https_only: bool) -> str | None:
    """What is wrong with ``value`` as an absolute base URL, or ``None``."""
    example = "pocket-id" if https_only else "books"
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return gettext(
            "%(label)s is not a valid URL; enter one such as %(example)s.",
            label=label,
            example=f"https://{example}.example.com",
        )
    if parts.scheme not in ("http", "https") or not hostname:
        return gettext(
            "%(label)s must be an absolute URL such as %(example)s, got %(value)s.",
            label=label,
            example=f"https://{example}.example.com",
            value=_shown(value),
        )
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return gettext("%(label)s must not contain a query (?…) or a fragment (#…).", label=label)
    if parts.username is not None or parts.password is not None:
        return gettext("%(label)s must not contain a user name or password.", label=label)
    if https_only and parts.scheme == "http" and hostname not in _LOCAL_HOSTS:
        return gettext(
            "%(label)s must be an https:// URL (http:// is allowed only for localhost, 127.0.0.1 and ::1), "
            "got %(value)s.",
            label=label,
            value=_shown(value),
        )
    return None


def _issuer(value: str) -> str | None:
    if value.rstrip("/").endswith("/.well-known/openid-configuration"):
        return gettext("Issuer URI: enter the provider's base URL, without /.well-known/openid-configuration.")
    return http_url_problem(value, lazy_gettext("Issuer URI"), https_only=True)


def _public_url(value: str) -> str | None:
    return http_url_problem(value, lazy_gettext("Public URL"), https_only=False)


def _scopes(value: str) -> str | None:
    for scope in value.replace(",", " ").split():
        if not _SCOPE_TOKEN.match(scope):
            return gettext("Scopes: %(value)s is not a valid scope name.", value=_shown(scope))
    return None


def _claim(label: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        problem = validate_mapping(value)
        return gettext("%(label)s: %(problem)s.", label=label, problem=problem) if problem else None

    return check


def _claim_field(name: str, default: str, label: str, help: str) -> Field:
    """A claim mapping setting: a claim name, dot path or comma-separated fallbacks."""
    return Field(name, "str", default, label, help, "claims", max_length=200, check=_claim(label))


def _ca_bundle(value: str) -> str | None:
    if not os.path.isfile(value):
        return gettext("CA bundle: there is no file at %(path)s on this server.", path=value)
    return None


def _describe_space(char: str) -> str:
    if char == " ":
        return gettext("a space")
    if char == "\t":
        return gettext("a tab")
    if char in "\r\n":
        return gettext("a line break")
    return gettext("a blank character")


# -- the settings ---------------------------------------------------------------------------------

FIELDS: tuple[Field, ...] = (
    # Login Methods
    Field(
        "enabled",
        "bool",
        False,
        lazy_gettext("OIDC Login"),
        lazy_gettext("Show the sign-in button and accept sign-ins through the provider."),
        "login-methods",
    ),
    Field(
        "only_mode",
        "bool",
        False,
        lazy_gettext("OIDC-Only Mode"),
        lazy_gettext(
            "Send everyone straight to the provider; only admins may still sign in locally, through /login?local=true."
        ),
        "login-methods",
    ),
    # Provider
    Field(
        "provider_name",
        "str",
        "OIDC",
        lazy_gettext("Provider Name"),
        lazy_gettext("Shown on the button: “Sign in with {name}”."),
        "provider",
        max_length=100,
        required=lazy_gettext("Provider Name is empty: enter the name shown on the button, e.g. Pocket ID."),
    ),
    Field(
        "client_id",
        "str",
        "",
        lazy_gettext("Client ID"),
        lazy_gettext(
            "The Client ID the provider generated for this app. Changing it signs out everyone signed in through the old client."
        ),
        "provider",
        max_length=255,
        check=_client_id,
        strip=False,
    ),
    Field(
        "client_secret",
        "secret",
        "",
        lazy_gettext("Client Secret"),
        lazy_gettext("Leave empty for a public client (PKCE, no secret)."),
        "provider",
        max_length=1000,
        check=_client_secret,
        strip=False,
    ),
    Field(
        "issuer_uri",
        "str",
        "",
        lazy_gettext("Issuer URI"),
        lazy_gettext(
            "The provider's base URL, e.g. https://pocket-id.example.com. Changing it signs out everyone signed in "
            "through the old provider."
        ),
        "provider",
        max_length=500,
        check=_issuer,
    ),
    Field(
        "scopes",
        "str",
        "",
        lazy_gettext("Scopes"),
        lazy_gettext("Leave empty for automatic: openid profile email, plus groups when the provider offers it."),
        "provider",
        max_length=500,
        check=_scopes,
    ),
    Field(
        "token_auth_method",
        "choice",
        "auto",
        lazy_gettext("Client authentication"),
        lazy_gettext("Automatic: none without a secret, else what the provider advertises."),
        "provider",
        TOKEN_AUTH_METHODS,
        max_length=40,
    ),
    # Claim Mappings
    _claim_field(
        "claim_username",
        "preferred_username",
        lazy_gettext("Username claim"),
        lazy_gettext("Claim holding the username; dot paths and comma-separated fallbacks allowed."),
    ),
    _claim_field(
        "claim_email",
        "email",
        lazy_gettext("Email claim"),
        lazy_gettext("Claim holding the email address."),
    ),
    _claim_field(
        "claim_display_name",
        "name",
        lazy_gettext("Display name claim"),
        lazy_gettext("Claim holding the display name."),
    ),
    _claim_field(
        "claim_groups",
        "groups",
        lazy_gettext("Groups claim"),
        lazy_gettext("Claim holding the groups, e.g. groups or realm_access.roles."),
    ),
    Field(
        "always_userinfo",
        "bool",
        False,
        lazy_gettext("Always call userinfo"),
        lazy_gettext("Fetch userinfo even when the ID token carries every mapped claim."),
        "claims",
    ),
    # Provisioning and Linking
    Field(
        "auto_provision",
        "bool",
        False,
        lazy_gettext("Auto-provision new users"),
        lazy_gettext("Create an account the first time someone signs in."),
        "provisioning",
    ),
    Field(
        "sync_profile",
        "bool",
        True,
        lazy_gettext("Sync profile on sign-in"),
        lazy_gettext("Update email and display name from the provider at each sign-in."),
        "provisioning",
    ),
    Field(
        "link_by_username",
        "bool",
        True,
        lazy_gettext("Link local accounts by username"),
        lazy_gettext("An existing user whose username matches the provider's is linked on first sign-in."),
        "provisioning",
    ),
    Field(
        "username_case_sensitive",
        "bool",
        True,
        lazy_gettext("Usernames are case-sensitive"),
        lazy_gettext("Switch off to link “Alice” to the local user “alice”."),
        "provisioning",
    ),
    Field(
        "link_by_email",
        "bool",
        False,
        lazy_gettext("Link by verified email"),
        lazy_gettext("Link the one local user with the same email, only when the provider says it is verified."),
        "provisioning",
    ),
    Field(
        "allowed_groups",
        "list",
        (),
        lazy_gettext("Allowed groups"),
        lazy_gettext("If set, only members of these groups may sign in (comma-separated)."),
        "provisioning",
    ),
    Field(
        "default_permissions",
        "list",
        (),
        lazy_gettext("Default permissions"),
        lazy_gettext("Given to accounts created on first sign-in."),
        "provisioning",
    ),
    Field(
        "default_libraries",
        "list",
        (),
        lazy_gettext("Default libraries"),
        lazy_gettext("Libraries new accounts can see."),
        "provisioning",
    ),
    Field(
        "group_sync",
        "choice",
        "disabled",
        lazy_gettext("Group sync"),
        lazy_gettext("Disabled, replace (access follows the groups) or additive (groups only grant)."),
        "provisioning",
        GROUP_SYNC_MODES,
        max_length=20,
    ),
    # Session and Advanced
    Field(
        "public_url",
        "str",
        "",
        lazy_gettext("Public URL"),
        lazy_gettext("The address readers use, e.g. https://books.example.com; needed behind a reverse proxy."),
        "advanced",
        max_length=500,
        check=_public_url,
    ),
    Field(
        "http_timeout",
        "float",
        10.0,
        lazy_gettext("HTTP timeout (seconds)"),
        lazy_gettext("How long to wait for the provider."),
        "advanced",
        minimum=0.1,
        maximum=120,
    ),
    Field(
        "ca_bundle",
        "str",
        "",
        lazy_gettext("CA bundle"),
        lazy_gettext("Path to a PEM file for a provider with a private certificate authority."),
        "advanced",
        max_length=500,
        check=_ca_bundle,
    ),
    Field(
        "clock_skew",
        "int",
        60,
        lazy_gettext("Clock skew (seconds)"),
        lazy_gettext("Tolerance for token times when the clocks differ."),
        "advanced",
        minimum=0,
        maximum=600,
    ),
    Field(
        "max_session_age",
        "int",
        0,
        lazy_gettext("Maximum session age (hours)"),
        lazy_gettext("Readers sign in again after this long, however active they are. 0: no limit."),
        "advanced",
        minimum=0,
        maximum=8760,
    ),
    Field(
        "provider_logout",
        "bool",
        True,
        lazy_gettext("Sign out of the provider too"),
        lazy_gettext("On sign-out, also end the session at the provider when it supports it."),
        "advanced",
    ),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}

#: Settings read from ``app.config`` only (not stored in the database), with their defaults.
APP_ONLY_DEFAULTS: dict[str, Any] = {
    PREFIX + "DISCOVERY_TTL": 3600,  # seconds a discovery document or JWKS is trusted
    PREFIX + "JWKS_MIN_REFETCH": 30,  # at most one unknown-kid refetch per this many seconds
    PREFIX + "TRANSACTION_TTL": 600,  # a started sign-in must finish within 10 minutes
    PREFIX + "LOGIN_RECORD_TTL": 31 * 24 * 3600,  # server-side login records are purged after
    # Check a signed-in session's login record at most every N seconds (0: on every request).
    # App-only, not stored: it is read on every host request, where reading the stored settings
    # would cost the very query it exists to save.
    PREFIX + "SESSION_CHECK_INTERVAL": 0,
    # Where an error page's "More about this error" link points: {DOCS_URL}troubleshooting.html#{code}.
    PREFIX + "DOCS_URL": "https://flask-booklore-oidc.readthedocs.io/en/latest/",
}

#: What each key of :data:`APP_ONLY_DEFAULTS` does (the settings reference of the docs shows it).
APP_ONLY_HELP: dict[str, str] = {
    PREFIX
    + "DISCOVERY_TTL": "Seconds a provider's discovery document and signing keys are trusted before they are fetched again.",
    PREFIX + "JWKS_MIN_REFETCH": "At most one refetch of the signing keys for an unknown key id per this many seconds.",
    PREFIX + "TRANSACTION_TTL": "Seconds within which a started sign-in must come back to the Redirect URI.",
    PREFIX
    + "LOGIN_RECORD_TTL": "Seconds after which server-side login records are purged, which also ends the sessions they belonged to.",
    PREFIX
    + "SESSION_CHECK_INTERVAL": "0: every signed-in request checks its login record (one primary-key read). N (up to 86400): at "
    "most once per N seconds per session, remembered in the session cookie; zero queries in between, but a session ended "
    "elsewhere lives up to N seconds longer in a browser that has its cookie. Config-only because it is read on every host "
    "request, where reading the stored settings would cost the very query it exists to save.",
    PREFIX + "DOCS_URL": "Base URL of this documentation; each error page links to "
    "``{DOCS_URL}troubleshooting.html#{code}``. Empty: no link.",
}
assert set(APP_ONLY_HELP) == set(APP_ONLY_DEFAULTS), "every config-only key is explained"


def fields_of(section: Section) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS if f.section == section.anchor)


def field_named(key: str) -> Field:
    """The setting named ``key``: ``client_id``, ``CLIENT_ID``, ``client-id`` or
    ``BOOKLORE_OIDC_CLIENT_ID``. Raises :class:`KeyError` with the list of names."""
    name = key.strip()
    if name.upper().startswith(PREFIX):
        name = name[len(PREFIX) :]
    name = name.lower().replace("-", "_")
    if name not in FIELDS_BY_NAME:
        raise KeyError(f"{key!r} is not a setting; one of: {', '.join(f.name for f in FIELDS)}.")
    return FIELDS_BY_NAME[name]


def is_truthy(raw: str | None) -> bool:
    """``FORCE_DISABLE_OIDC`` and friends: ``true``, ``1``, ``yes`` or ``on``."""
    return raw is not None and raw.strip().lower() in TRUE_WORDS
