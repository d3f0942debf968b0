"""The rules that keep an admin from locking anyone out, written once for every surface (the
settings page, Test sign-in, the CLI, group sync). Plain functions over plain values: each
returns why something may not happen, in words an admin can act on, or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .adapter import Access
from .i18n import gettext, lazy_gettext
from .settings import Settings

#: what the settings page says when a changed Issuer URI needs the secret typed again
SECRET_STAYS_HOME = lazy_gettext(
    "The Issuer URI differs from the saved one, so the stored Client Secret was not used: it is sent only to "
    "the provider it was saved for. Type the Client Secret again (or remove it, for a public client)."
)


def enabled_problem(settings: Settings) -> str | None:
    """Why OIDC Login may not be on with these settings, or ``None``."""
    if not settings.enabled:
        return None
    if not (settings.client_id and settings.issuer_uri):
        if not settings.client_id and not settings.issuer_uri:
            return gettext(
                "OIDC Login needs the Client ID (client_id) and the Issuer URI (issuer_uri): fill them in under "
                "Provider, or switch OIDC Login off."
            )
        if not settings.client_id:
            return gettext(
                "OIDC Login needs the Client ID (client_id): fill them in under Provider, or switch OIDC Login off."
            )
        return gettext(
            "OIDC Login needs the Issuer URI (issuer_uri): fill them in under Provider, or switch OIDC Login off."
        )
    if settings.secret_unreadable:
        return gettext("OIDC Login needs a readable Client Secret: the stored one cannot be decrypted; enter it again.")
    return None


def only_mode_problem(settings: Settings, admins: int) -> str | None:
    """Why OIDC-Only Mode may not be on with these settings (SPEC §8), or ``None``: OIDC Login
    on, the provider configured, and at least one administrator who can still sign in locally."""
    if not settings.only_mode:
        return None
    if not settings.enabled:
        return gettext("OIDC-Only Mode needs OIDC Login switched on: switch OIDC Login on, or OIDC-Only Mode off.")
    if not (settings.client_id and settings.issuer_uri):
        return gettext(
            "OIDC-Only Mode needs a configured provider: enter the Client ID and the Issuer URI (and run "
            "Test Connection) first."
        )
    if settings.secret_unreadable:
        return gettext(
            "OIDC-Only Mode needs a readable Client Secret: the stored one cannot be decrypted; enter it again."
        )
    if admins < 1:
        return gettext(
            "OIDC-Only Mode would lock everyone out: no administrator account exists that could still sign in "
            "locally at /login?local=true. Make an account an administrator first."
        )
    return None


def preview_problem(settings: Settings) -> str | None:
    """Why a Test sign-in cannot start with these settings, or ``None``."""
    if settings.force_disabled:
        return gettext("Test sign-in is off while FORCE_DISABLE_OIDC is set.")
    if not (settings.client_id and settings.issuer_uri):
        return gettext("Test sign-in needs the Client ID and the Issuer URI.")
    if settings.secret_unreadable:
        return gettext("Test sign-in needs the Client Secret: the stored one cannot be decrypted; enter it again.")
    return None


def keep_last_admin(current: Access, planned: Access, admins: int) -> Access:
    """``planned``, except that the last administrator is never demoted (SPEC §7)."""
    if current.is_admin and not planned.is_admin and admins <= 1:
        return Access(True, planned.permissions, planned.libraries)
    return planned


def for_unsaved(saved: Settings, changes: Mapping[str, Any], *, remove_secret: bool) -> tuple[Settings, bool]:
    """The settings a test (Test Connection, Test sign-in) or a save runs with: ``saved`` with
    the unsaved ``changes``, and whether the stored secret was withheld (SPEC §5.10).

    The stored secret, or one set by configuration, goes only to the saved issuer: against a
    changed Issuer URI it is left out unless the secret is typed again."""
    merged = saved.with_changes(changes, remove_secret=remove_secret)
    if merged.issuer_uri != saved.issuer_uri and merged.client_secret and not changes.get("client_secret"):
        return replace(merged, client_secret=""), True
    return merged, False
