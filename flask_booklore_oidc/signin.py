"""Signing a person in, once the provider's answer is verified or a password was typed: the
services the login views call.

:func:`sign_in_with_provider` decides who a verified identity is (§6, :mod:`.provisioning`),
writes the identity and the login record in one commit, signs the user in through the adapter
and sends the signals; when the account it found links only with proof, it stores a pending link
instead, and :func:`finish_link` ends that sign-in through the same function once the password
was typed. :func:`check_local_sign_in` decides a local sign-in (throttled, :mod:`.throttle`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flask import current_app, request

from . import activity, linking, sessions, signals, throttle
from .adapter import Access, UserAdapter
from .claims import Identity
from .errors import OIDCError
from .flow import Completed, SignInFlow
from .i18n import lazy_gettext
from .mapping import load_rows
from .provisioning import Resolution, Resolver, Rule
from .secretbox import InvalidToken
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


@dataclass(frozen=True)
class ProofNeeded:
    """§6 found an existing account that links only after its password is typed: a pending
    link was stored and this browser's session points at it (the view sends the reader to the
    ``link_account`` page). Nothing else was written and nobody is signed in."""

    user: Any
    #: how the account was found: username or email
    link_by: Rule


@dataclass(frozen=True)
class ProviderLogin:
    """What finishing a provider sign-in needs: from the callback (:meth:`of`), or kept by a
    pending link (:func:`finish_link`)."""

    identity: Identity
    sid: str | None
    #: the ID token, for the provider's logout hint (``None``: sign out without a hint)
    id_token: str | None = field(repr=False)
    next_url: str

    @classmethod
    def of(cls, completed: Completed) -> ProviderLogin:
        return cls(
            completed.identity,
            completed.sid,
            completed.id_token,
            completed.next_url,
        )


def sign_in_with_provider(
    state: AppState, settings: Settings, login: Completed | ProviderLogin, *, proven: str | None = None
) -> SignedIn | ProofNeeded:
    """Resolve the verified identity to a user, write the identity and the login record in one
    commit, and sign the user in. Raises :class:`OIDCError` with nothing written when §6
    refuses or the host considers the account inactive.

    When §6 says the account needs proof, stores a pending link instead and returns
    :class:`ProofNeeded`; ``proven`` is the id of the account whose password the reader typed
    (:func:`finish_link`), which then links."""
    if isinstance(login, Completed):
        login = ProviderLogin.of(login)
    adapter = state.adapter
    identity = login.identity
    record: list[str] = []

    def also(resolution: Resolution) -> None:
        """The sign-in's own rows, in the commit that links or creates the user."""
        user = resolution.user
        if not adapter.is_active(user):
            raise OIDCError(
                "account_inactive",
                lazy_gettext("The account %(user)s is not active here.", user=repr(adapter.get_username(user))),
            )
        record[:] = [
            sessions.add_record(
                state,
                settings,
                adapter.get_id(user),
                issuer=identity.issuer,
                subject=identity.subject,
                sid=login.sid,
                id_token=login.id_token,
            )
        ]
        activity.add(
            adapter.session,
            activity.SIGNED_IN,
            rule=str(resolution.rule),
            username=adapter.get_username(user),
            subject=identity.subject,
            client_address=request.remote_addr,
        )

    # Group rows are read only when group sync or a group mapper hook will use them.
    wants_rows = settings.group_sync != "disabled" or state.hooks.group_mapper is not None
    try:
        resolution = Resolver(
            adapter,
            settings,
            mapping_rows=load_rows(adapter.session) if wants_rows else (),
            provisioner=state.hooks.provisioner,
            group_mapper=state.hooks.group_mapper,
        ).resolve(identity, also=also, proven=proven)

        if resolution.rule == Rule.NEEDS_PROOF:
            assert resolution.link_by is not None
            _store_pending_link(state, login, resolution.user, resolution.link_by)
            return ProofNeeded(resolution.user, resolution.link_by)

        sessions.rotate()
        if not adapter.login_user(resolution.user):
            raise OIDCError(
                "account_inactive",
                lazy_gettext("The account %(user)s was refused.", user=repr(adapter.get_username(resolution.user))),
            )
    except OIDCError as error:
        # For the activity list, written by the error page: who it was.
        error.username, error.subject = identity.username or "", identity.subject
        raise
    sessions.attach(record[0])

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


def _store_pending_link(state: AppState, login: ProviderLogin, user: Any, link_by: Rule) -> None:
    adapter = state.adapter
    link_id = linking.store(
        adapter.session,
        browser_key=sessions.browser_key(),
        user_id=adapter.get_id(user),
        linked_by=str(link_by),
        identity=login.identity,
        sid=login.sid,
        sealed_id_token=state.box.seal(login.id_token) if login.id_token else None,
        next_url=login.next_url,
        purge_expired=state.purge_due("pending_links"),
    )
    sessions.remember_link(link_id)
    log.info(
        "The provider identity %s matches the account %s (by %s), which links only with its password.",
        login.identity.subject,
        adapter.get_username(user),
        link_by,
    )


# -- linking with proof -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingAccount:
    """The account a pending link waits to connect, for the ``link_account`` page."""

    username: str
    link_by: str


def pending_account(state: AppState) -> PendingAccount | None:
    """This browser's pending link's account, or ``None`` when there is none (expired,
    cancelled, used, or the account is gone)."""
    adapter = state.adapter
    row = linking.find(adapter.session, sessions.pending_link_id(), sessions.browser_key())
    if row is None:
        return None
    user = adapter.get_by_id(row.user_id)
    if user is None:
        linking.drop(adapter.session, row)
        return None
    return PendingAccount(adapter.get_username(user), row.linked_by)


def cancel_link(state: AppState) -> None:
    """Drop this browser's pending link: nothing linked, nobody signed in."""
    row = linking.find(state.adapter.session, sessions.pending_link_id(), sessions.browser_key())
    if row is not None:
        linking.drop(state.adapter.session, row)
    sessions.forget_link()


class ProofOutcome(StrEnum):
    SIGNED_IN = "signed_in"
    #: wrong password; attempts are left
    WRONG = "wrong"
    #: too many attempts from this address or for this account: no password was checked
    THROTTLED = "throttled"
    #: no pending link (expired, cancelled, used, or dropped after too many wrong passwords)
    GONE = "gone"


@dataclass(frozen=True)
class Proof:
    outcome: ProofOutcome
    #: seconds to wait when throttled
    wait: int = 0
    #: wrong passwords still allowed
    attempts_left: int = 0
    #: where to go after signing in
    next_url: str = ""


def finish_link(state: AppState, settings: Settings, password: str, address: str | None) -> Proof:
    """Check the password typed for this browser's pending link; when right, link the account
    and sign in through :func:`sign_in_with_provider` (the one path that writes the identity
    and the login record). Throttled like local sign-in, on the same keys."""
    adapter = state.adapter
    db = adapter.session
    row = linking.find(db, sessions.pending_link_id(), sessions.browser_key())
    user = adapter.get_by_id(row.user_id) if row is not None else None
    if row is None or user is None:
        if row is not None:
            linking.drop(db, row)
        sessions.forget_link()
        return Proof(ProofOutcome.GONE)
    username = adapter.get_username(user)
    keys = throttle.keys_for(username, address)
    wait = throttle.wait_seconds(db, keys)
    if wait:
        return Proof(ProofOutcome.THROTTLED, wait=wait)
    if not _password_ok(adapter, user, password):
        throttle.record_failure(db, keys)
        left = linking.count_wrong_password(db, row)
        log.info("A wrong password was typed to link %s to a provider identity.", username)
        if not left:
            sessions.forget_link()
            return Proof(ProofOutcome.GONE)
        return Proof(ProofOutcome.WRONG, attempts_left=left)
    throttle.record_success(db, username)
    id_token = None
    if row.id_token:
        try:
            id_token = state.box.open(row.id_token)
        except InvalidToken:  # SECRET_KEY changed meanwhile: sign out without the hint
            id_token = None
    login = ProviderLogin(linking.identity_of(row), row.sid, id_token, row.next_url)
    proven = row.user_id
    if not linking.take(db, row):
        return Proof(ProofOutcome.GONE)
    sign_in_with_provider(state, settings, login, proven=proven)
    return Proof(ProofOutcome.SIGNED_IN, next_url=login.next_url)


def _password_ok(adapter: UserAdapter, user: Any, password: str) -> bool:
    """Check ``password`` for ``user``, spending the same time whether it has a password or not."""
    if user is not None and adapter.has_password(user):
        return adapter.check_password(user, password)
    adapter.check_dummy_password(password)
    return False


# -- local sign-in ----------------------------------------------------------------------------------


class LocalOutcome(StrEnum):
    SIGNED_IN = "signed_in"
    #: wrong username or password
    INVALID = "invalid"
    #: OIDC-only mode and not an administrator with the right password (one answer for all)
    DISABLED = "disabled"
    #: too many failures for this name or from this address: no password was checked
    THROTTLED = "throttled"


@dataclass(frozen=True)
class LocalSignIn:
    outcome: LocalOutcome
    user: Any = None
    #: seconds to wait when throttled
    wait: int = 0


def check_local_sign_in(
    state: AppState, settings: Settings, username: str, password: str, address: str | None = None
) -> LocalSignIn:
    """Decide a local sign-in (SPEC §8). Throttled per name and per ``address``: while a wait
    is due, no password is checked. Every failure counts against both and costs one password
    check of the stored hashes' cost, so neither the answer nor its timing tells whether the
    account exists or has a password."""
    adapter = state.adapter
    db = adapter.session
    if state.purge_due("throttle", every=3600):
        throttle.purge(db)
        db.commit()
    keys = throttle.keys_for(username, address)
    wait = throttle.wait_seconds(db, keys)
    if wait:
        return LocalSignIn(LocalOutcome.THROTTLED, wait=wait)
    user = adapter.get_by_username(username, case_sensitive=adapter.usernames_case_sensitive)
    password_ok = _password_ok(adapter, user, password)
    if password_ok and not (settings.only_mode_active and not adapter.is_admin(user)):
        throttle.record_success(db, username)
        return LocalSignIn(LocalOutcome.SIGNED_IN, user)
    # A right password of a non-admin in OIDC-only mode counts too: otherwise the throttle
    # would tell right from wrong.
    throttle.record_failure(db, keys)
    if settings.only_mode_active:
        return LocalSignIn(LocalOutcome.DISABLED)
    return LocalSignIn(LocalOutcome.INVALID)


def sign_in_locally(state: AppState, settings: Settings, user: Any) -> bool:
    """Sign ``user`` in after a right password: a fresh session, through the adapter, with a
    login record so the session can be ended (SPEC §8); False when the host refuses."""
    sessions.rotate()
    if not state.adapter.login_user(user):
        return False
    sessions.start_session(state, settings, user)
    note_local_attempt(state, activity.SIGNED_IN, state.adapter.get_username(user))
    return True


def note_local_attempt(state: AppState, result: str, username: str) -> str:
    """Put a local sign-in attempt on the activity list; returns its reference."""
    return activity.record(
        state.adapter.session, result, rule="local", username=username, client_address=request.remote_addr
    )
