"""The settings of SPEC §4: their names, types and defaults, and the session keys we own.

Every setting ``X`` can be given as ``BOOKLORE_OIDC_X`` in the environment (wins), in
``app.config``, or stored in the database from the settings page, in that order of precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PREFIX = "BOOKLORE_OIDC_"

#: Session keys set by this extension; an app that purges its session can remove them all.
SESSION_KEYS = (
    "_booklore_oidc_browser",  # random value binding pending sign-ins to this browser
    "_booklore_oidc_login",  # id of the server-side login record (no tokens in the cookie)
    "_booklore_oidc_redirects",  # automatic redirects in a row, for the loop breaker
    "_booklore_oidc_last_error",  # code of the last error page shown, for the loop breaker
    "_booklore_oidc_backchannel",  # the provider may end this sign-in by back-channel logout
)

Kind = Literal["bool", "str", "int", "float", "list", "choice", "secret"]

TOKEN_AUTH_METHODS = ("auto", "none", "client_secret_basic", "client_secret_post")
GROUP_SYNC_MODES = ("disabled", "replace", "additive")


@dataclass(frozen=True)
class Field:
    name: str  # lower-case attribute name; the config key is PREFIX + name.upper()
    kind: Kind
    default: Any
    label: str
    help: str
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return PREFIX + self.name.upper()


FIELDS: tuple[Field, ...] = (
    Field("enabled", "bool", False, "OIDC Login", "Show the sign-in button and accept sign-ins through the provider."),
    Field(
        "only_mode",
        "bool",
        False,
        "OIDC-Only Mode",
        "Send everyone straight to the provider; only admins may still sign in locally, through /login?local=true.",
    ),
    Field("provider_name", "str", "OIDC", "Provider Name", "Shown on the button: “Sign in with {name}”."),
    Field("client_id", "str", "", "Client ID", "The Client ID the provider generated for this app."),
    Field("client_secret", "secret", "", "Client Secret", "Leave empty for a public client (PKCE, no secret)."),
    Field("issuer_uri", "str", "", "Issuer URI", "The provider's base URL, e.g. https://pocket-id.example.com."),
    Field(
        "scopes",
        "str",
        "",
        "Scopes",
        "Leave empty for automatic: openid profile email, plus groups when the provider offers it.",
    ),
    Field(
        "token_auth_method",
        "choice",
        "auto",
        "Client authentication",
        "Automatic: none without a secret, else what the provider advertises.",
        TOKEN_AUTH_METHODS,
    ),
    Field(
        "claim_username",
        "str",
        "preferred_username",
        "Username claim",
        "Claim holding the username; dot paths and comma-separated fallbacks allowed.",
    ),
    Field("claim_email", "str", "email", "Email claim", "Claim holding the email address."),
    Field("claim_display_name", "str", "name", "Display name claim", "Claim holding the display name."),
    Field(
        "claim_groups", "str", "groups", "Groups claim", "Claim holding the groups, e.g. groups or realm_access.roles."
    ),
    Field(
        "always_userinfo",
        "bool",
        False,
        "Always call userinfo",
        "Fetch userinfo even when the ID token carries every mapped claim.",
    ),
    Field(
        "auto_provision",
        "bool",
        False,
        "Auto-provision new users",
        "Create an account the first time someone signs in.",
    ),
    Field(
        "sync_profile",
        "bool",
        True,
        "Sync profile on sign-in",
        "Update email and display name from the provider at each sign-in.",
    ),
    Field(
        "link_by_username",
        "bool",
        True,
        "Link local accounts by username",
        "An existing user whose username matches the provider's is linked on first sign-in.",
    ),
    Field(
        "username_case_sensitive",
        "bool",
        True,
        "Usernames are case-sensitive",
        "Switch off to link “Alice” to the local user “alice”.",
    ),
    Field(
        "link_by_email",
        "bool",
        False,
        "Link by verified email",
        "Link the one local user with the same email, only when the provider says it is verified.",
    ),
    Field(
        "allowed_groups",
        "list",
        [],
        "Allowed groups",
        "If set, only members of these groups may sign in (comma-separated).",
    ),
    Field("default_permissions", "list", [], "Default permissions", "Given to accounts created on first sign-in."),
    Field("default_libraries", "list", [], "Default libraries", "Libraries new accounts can see."),
    Field(
        "group_sync",
        "choice",
        "disabled",
        "Group sync",
        "Disabled, replace (access follows the groups) or additive (groups only grant).",
        GROUP_SYNC_MODES,
    ),
    Field(
        "provider_logout",
        "bool",
        True,
        "Sign out of the provider too",
        "On sign-out, also end the session at the provider when it supports it.",
    ),
    Field(
        "public_url",
        "str",
        "",
        "Public URL",
        "The address readers use, e.g. https://books.example.com; needed behind a reverse proxy.",
    ),
    Field("http_timeout", "float", 10.0, "HTTP timeout (seconds)", "How long to wait for the provider."),
    Field(
        "ca_bundle", "str", "", "CA bundle", "Path to a PEM file for a provider with a private certificate authority."
    ),
    Field("clock_skew", "int", 60, "Clock skew (seconds)", "Tolerance for token times when the clocks differ."),
)

FIELDS_BY_NAME = {f.name: f for f in FIELDS}

#: Settings read from ``app.config`` only (not stored in the database), with their defaults.
APP_ONLY_DEFAULTS: dict[str, Any] = {
    PREFIX + "DISCOVERY_TTL": 3600,  # seconds a discovery document or JWKS is trusted
    PREFIX + "JWKS_MIN_REFETCH": 30,  # at most one unknown-kid refetch per this many seconds
    PREFIX + "TRANSACTION_TTL": 600,  # a started sign-in must finish within 10 minutes
    PREFIX + "LOGIN_RECORD_TTL": 31 * 24 * 3600,  # server-side login records are purged after
}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


def parse_value(field: Field, raw: Any) -> Any:
    """Turn a raw value (from the environment, config or a form) into the field's type.

    Raises :class:`ValueError` with a message that names the problem.
    """
    if field.kind == "bool":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(f"{field.label}: expected true or false, got {raw!r}")
    if field.kind == "list":
        if isinstance(raw, (list, tuple, set, frozenset)):
            items = [str(v).strip() for v in raw]
        else:
            items = [v.strip() for v in str(raw).split(",")]
        return [v for v in items if v]
    if field.kind == "int":
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{field.label}: expected a whole number, got {raw!r}") from None
    if field.kind == "float":
        try:
            number = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"{field.label}: expected a number, got {raw!r}") from None
        if not number > 0:
            raise ValueError(f"{field.label}: must be greater than zero")
        return number
    if field.kind == "choice":
        choice = str(raw).strip()
        if choice not in field.choices:
            raise ValueError(f"{field.label}: must be one of {', '.join(field.choices)}")
        return choice
    return "" if raw is None else str(raw)


def is_truthy(raw: str | None) -> bool:
    """``FORCE_DISABLE_OIDC`` and friends: ``true``, ``1``, ``yes`` or ``on``."""
    return raw is not None and raw.strip().lower() in TRUE_WORDS
