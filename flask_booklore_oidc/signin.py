"""Signing a person in, once the provider's answer is verified or a password was typed: the
services the login views call.

:func:`sign_in_with_provider` decides who a verified identity is (§6, :mod:`.provisioning`),
writes the identity and the login record in one commit, signs the user in through the adapter
and sends the signals. :func:`check_local_sign_in` decides a local sign-in without writing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from flask import current_app, request
from werkzeug.security import check_password_hash, generate_password_hash

from . import activity, sessions, signals
from .adapter import Access
from .errors import OIDCError
from .flow import Completed, SignInFlow
from .mapping import load_rows
from .provisioning import Resolver, Rule
from .settings import Settings
from .state import AppState

log = logging.getLogger(__name__)


def flow_for(state: AppState, settings: Settings) -> SignInFlow:
    """The sign-in flow of ``settings`` over the app's cache, transport and database."""
    return SignInFlow(
        settings,
        state.cache,
        state.transport,
        state.adapter.session,
        transaction_ttl=state.seconds("TRANSACTION_TTL"),
    )


@dataclass(frozen=True)
class SignedIn:
    user: Any
    #: the §6 rule that picked the user
    rule: Rule
    #: the access group sync applied, if it ran
    access: Access | None


def sign_in_with_provider(state: AppState, settings: Settings, completed: Completed) -> SignedIn:
    """Resolve ``completed``'s identity to a user, write the identity and the login record in
    one commit, and sign the user in. Raises :class:`OIDCError` with nothing written when §6
    refuses or the host considers the account inactive."""
    adapter = state.adapter
    record: list[str] = []

    def also(user: Any) -> None:
        if not adapter.is_active(user):
            raise OIDCError("account_inactive", f"The account {adapter.get_username(user)!r} is not active here.")
        record[:] = [sessions.add_record(state, adapter.get_id(user), completed)]

    # Group rows are read only when group sync or a group mapper hook will use them.
    wants_rows = settings.group_sync != "disabled" or state.hooks.group_mapper is not None
    identity = completed.identity
    try:
        resolution = Resolver(
            adapter,
            settings,
            mapping_rows=load_rows(adapter.session) if wants_rows else (),
            provisioner=state.hooks.provisioner,
            group_mapper=state.hooks.group_mapper,
        ).resolve(identity, also=also)
        sessions.rotate()
        if not adapter.login_user(resolution.user):
            raise OIDCError("account_inactive", f"The account {adapter.get_username(resolution.user)!r} was refused.")
    except OIDCError as error:
        # For the activity list, written by the error page: who it was.
        error.username, error.subject = identity.username or "", identity.subject
        raise
    sessions.attach(record[0], backchannel=completed.metadata.backchannel_logout_supported)

    activity.record(
        adapter.session,
        activity.SIGNED_IN,
        rule=str(resolution.rule),
        username=adapter.get_username(resolution.user),
        subject=identity.subject,
        client_address=request.remote_addr,
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if resolution.rule == Rule.PROVISIONED:
        signals.user_provisioned.send(app, user=resolution.user, identity=identity)
    elif resolution.rule in (Rule.USERNAME, Rule.EMAIL):
        signals.account_linked.send(app, user=resolution.user, identity=identity, by=str(resolution.rule))
    if resolution.access is not None:
        signals.access_synced.send(app, user=resolution.user, access=resolution.access, groups=identity.groups or [])
    signals.login_succeeded.send(app, user=resolution.user, identity=identity, rule=str(resolution.rule))
    log.info("%s signed in through the provider (%s).", adapter.get_username(resolution.user), resolution.rule)
    return SignedIn(resolution.user, resolution.rule, resolution.access)


# -- local sign-in ----------------------------------------------------------------------------------


class LocalOutcome(StrEnum):
    SIGNED_IN = "signed_in"
    #: wrong username or password
    INVALID = "invalid"
    #: OIDC-only mode and not an administrator with the right password (one answer for all)
    DISABLED = "disabled"


@cache
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def check_local_sign_in(state: AppState, settings: Settings, username: str, password: str) -> tuple[LocalOutcome, Any]:
    """Decide a local sign-in: (outcome, user). Reads only. The time taken does not depend on
    whether the username exists."""
    adapter = state.adapter
    user = adapter.get_by_username(username)
    if user is None:
        # Spend the time a real check would, so timing does not tell whether a username exists.
        check_password_hash(_dummy_password_hash(), password)
        password_ok = False
    else:
        password_ok = adapter.check_password(user, password)
    if settings.only_mode_active and not (password_ok and adapter.is_admin(user)):
        return LocalOutcome.DISABLED, None
    if not password_ok:
        return LocalOutcome.INVALID, None
    return LocalOutcome.SIGNED_IN, user


def sign_in_locally(state: AppState, user: Any) -> bool:
    """Sign ``user`` in after a right password: a fresh session, through the adapter."""
    sessions.rotate()
    signed_in = state.adapter.login_user(user)
    if signed_in:
        note_local_attempt(state, activity.SIGNED_IN, state.adapter.get_username(user))
    return signed_in


def note_local_attempt(state: AppState, result: str, username: str) -> str:
    """Put a local sign-in attempt on the activity list; returns its reference."""
    return activity.record(
        state.adapter.session, result, rule="local", username=username, client_address=request.remote_addr
    )
