"""The server-side login record of every signed-in session: created at sign-in (local or
through the provider), checked on signed-in requests, ended by sign-out, logout from the
provider (back- and front-channel), unlinking, user deletion, an admin, a change of client, or
its maximum age; purged when old (SPEC §8).

The cookie holds only the record's id (``_booklore_oidc_login``); the record holds the provider
session id (``sid``) and the ID token for the logout hint, encrypted. This module is the only one
that writes :class:`~.models.LoginRecord` rows or our session keys.

A signed-in session *without* a record id (signed in before this version, or by a host login
view that does not call :meth:`~.extension.BookloreOIDC.start_session`) is left alone: we cannot
tell an old session from the host's own, and ending every such session at upgrade would sign
everyone out. Such sessions end as they always did (sign-out, the cookie's own expiry).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.orm import Session

from .config import SESSION_KEYS
from .discovery import issuers_match
from .models import LoginRecord, utcnow
from .secretbox import InvalidToken
from .settings import Settings
from .state import AppState, current_state

log = logging.getLogger(__name__)

(
    BROWSER_KEY,
    LOGIN_KEY,
    REDIRECTS_KEY,
    LAST_ERROR_KEY,
    LINK_KEY,
    CHECKED_KEY,
    LOGOUT_STATE_KEY,
    SIGNED_OUT_KEY,
) = SESSION_KEYS

_table = LoginRecord.__table__
_records = _table.c
#: The one read on a signed-in request: a Core statement built once, so each request skips the
#: ORM's compile and identity-map work and hits the compiled cache.
_CHECK = select(_records.ended_at, _records.expires_at).where(_records.id == bindparam("id"))


def browser_key() -> str:
    """The random value binding pending sign-ins to this browser (made on first use)."""
    key = session.get(BROWSER_KEY)
    if not isinstance(key, str) or not key:
        key = session[BROWSER_KEY] = secrets.token_urlsafe(32)
    return key


def rotate() -> None:
    """Start a new session at every sign-in, so a planted session id is worthless. The browser
    binding survives, so sign-ins still pending in other tabs can finish (SPEC §5.2), and so does
    the loop breaker's count."""
    kept = {key: session[key] for key in (BROWSER_KEY, REDIRECTS_KEY) if session.get(key)}
    session.clear()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):  # Flask-Session's server-side sessions
        regenerate(session)
    session.update(kept)


def remember_link(link_id: str) -> None:
    """Keep the id of this browser's pending link (only its hash is stored server-side)."""
    session[LINK_KEY] = link_id


def pending_link_id() -> str | None:
    link_id = session.get(LINK_KEY)
    return link_id if isinstance(link_id, str) and link_id else None


def forget_link() -> None:
    session.pop(LINK_KEY, None)


def clear() -> None:
    """Remove every key of ours from the session."""
    for key in SESSION_KEYS:
        session.pop(key, None)


# -- the record's life ------------------------------------------------------------------------------


def add_record(
    state: AppState,
    settings: Settings,
    user_id: str,
    *,
    issuer: str | None = None,
    subject: str | None = None,
    sid: str | None = None,
    id_token: str | None = None,
) -> str:
    """Add the login record of a sign-in to the database session (committed with the sign-in's
    other writes): through the provider when ``issuer`` and ``subject`` are given, else local.
    Returns its id. Old records are purged now and then."""
    db = state.adapter.session
    now = utcnow()
    if state.purge_due("login_records"):
        ttl = timedelta(seconds=state.seconds("LOGIN_RECORD_TTL"))
        db.execute(delete(LoginRecord).where(LoginRecord.created_at < now - ttl))
    record_id = secrets.token_urlsafe(32)
    record = LoginRecord(
        id=record_id,
        user_id=user_id,
        created_at=now,
        expires_at=now + timedelta(hours=settings.max_session_age) if settings.max_session_age else None,
    )
    if issuer is not None:
        record.issuer = issuer
        record.subject = subject
        record.client_id = settings.client_id
        record.sid = sid
        record.id_token = state.box.seal(id_token) if id_token else None
    db.add(record)
    return record_id


def attach(record_id: str) -> None:
    """Point this browser session at its login record (checked by :func:`check_request`)."""
    session[LOGIN_KEY] = record_id
    session[CHECKED_KEY] = int(time.time())


def start_session(state: AppState, settings: Settings, user: Any) -> str:
    """Give the session of ``user``, just signed in by the host's own login view, a login
    record, so it can be ended like ours; commits and returns the record's id."""
    record_id = add_record(state, settings, state.adapter.get_id(user))
    state.adapter.session.commit()
    attach(record_id)
    return record_id


@dataclass(frozen=True)
class Ended:
    """What sign-out needs to know about the record it ended."""

    with_provider: bool
    id_token: str | None


def end_current(state: AppState) -> Ended:
    """End this browser's login record (the ID token goes with it); commits."""
    record_id = session.get(LOGIN_KEY)
    if not record_id:
        return Ended(False, None)
    db = state.adapter.session
    record = db.get(LoginRecord, record_id)
    id_token = None
    if record is not None and record.id_token:
        try:
            id_token = state.box.open(record.id_token)
        except InvalidToken:  # SECRET_KEY changed since: sign out without the hint
            id_token = None
    db.execute(update(LoginRecord).where(LoginRecord.id == record_id).values(ended_at=utcnow(), id_token=None))
    db.commit()
    return Ended(record is not None and record.issuer is not None, id_token)


def end_matching(db: Session, issuer: str, *, sid: str | None, subject: str | None) -> int:
    """End the open records of ``issuer`` matching ``sid`` and/or ``subject`` (a logout token,
    a front-channel logout); returns how many. Does not commit. Ends nothing without either."""
    if not sid and not subject:
        return 0
    conditions = [LoginRecord.issuer == issuer, LoginRecord.ended_at.is_(None)]
    if sid:
        conditions.append(LoginRecord.sid == sid)
    if subject:
        conditions.append(LoginRecord.subject == subject)
    result = db.execute(update(LoginRecord).where(*conditions).values(ended_at=utcnow(), id_token=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _end(db: Session, *conditions: Any) -> int:
    result = db.execute(
        update(LoginRecord).where(LoginRecord.ended_at.is_(None), *conditions).values(ended_at=utcnow(), id_token=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_other_clients(db: Session, settings: Settings) -> int:
    """End the open provider sign-ins made with another Client ID or issuer than ``settings``'
    (just changed on the settings page or the CLI); returns how many. Does not commit.

    The record's issuer is the provider's exact one and the setting may differ from it by a
    trailing slash, so issuers are compared as sign-in compares them."""
    pairs = db.execute(
        select(LoginRecord.issuer, LoginRecord.client_id)
        .where(LoginRecord.ended_at.is_(None), LoginRecord.issuer.is_not(None))
        .distinct()
    ).all()
    ended = 0
    for issuer, client_id in pairs:
        if client_id == settings.client_id and issuers_match(settings.issuer_uri, issuer or ""):
            continue
        same_client = LoginRecord.client_id.is_(None) if client_id is None else LoginRecord.client_id == client_id
        ended += _end(db, LoginRecord.issuer == issuer, same_client)
    return ended


def apply_max_age(db: Session, hours: int) -> None:
    """Give every open record the Maximum session age ``hours`` (0: none), counted from its
    sign-in; the next request of a session older than that ends it. Does not commit."""
    if not hours:
        db.execute(update(LoginRecord).where(LoginRecord.ended_at.is_(None)).values(expires_at=None))
        return
    rows = db.execute(select(LoginRecord.id, LoginRecord.created_at).where(LoginRecord.ended_at.is_(None))).all()
    if rows:
        db.execute(
            update(_table).where(_records.id == bindparam("record_id")),  # type: ignore[arg-type]
            [{"record_id": rid, "expires_at": created + timedelta(hours=hours)} for rid, created in rows],
        )


#: settings whose change ends or shortens existing sessions
SESSION_SETTINGS = frozenset({"client_id", "issuer_uri", "max_session_age"})


def settings_saved(db: Session, settings: Settings, changed: set[str]) -> int:
    """Apply a settings change to the open sessions: a new Client ID or issuer ends the
    sessions of the old one, a new Maximum session age applies to every session. Commits;
    returns how many sessions were ended."""
    if not changed & SESSION_SETTINGS:
        return 0
    ended = 0
    if changed & {"client_id", "issuer_uri"}:
        ended = end_other_clients(db, settings)
        if ended:
            log.info("%d session(s) signed in through the old client were ended.", ended)
    if "max_session_age" in changed:
        apply_max_age(db, settings.max_session_age)
    db.commit()
    return ended


def forget_identity(db: Session, user_id: str, issuer: str, subject: str) -> None:
    """Remove the records of sign-ins ``user_id`` made as (issuer, subject): the identity is
    being unlinked. Does not commit."""
    db.execute(
        delete(LoginRecord).where(
            LoginRecord.user_id == user_id, LoginRecord.issuer == issuer, LoginRecord.subject == subject
        )
    )


def end_for_user(db: Session, user_id: str) -> int:
    """End every open record of ``user_id`` (signed out everywhere); returns how many. Does not
    commit."""
    return _end(db, LoginRecord.user_id == user_id)


def forget_user(db: Session | Connection, user_id: str, *, provider_only: bool = False) -> None:
    """Remove every record of ``user_id`` (a deleted user), or only those of its provider
    sign-ins (``provider_only``: its identities were unlinked). Does not commit."""
    query = delete(LoginRecord).where(LoginRecord.user_id == user_id)
    if provider_only:
        query = query.where(LoginRecord.issuer.is_not(None))
    db.execute(query)


# -- the check on each request ---------------------------------------------------------------------


def check_request() -> None:
    """App-wide ``before_request``: sign out a session whose login record was ended, is gone
    (unlinked, purged, user deleted) or is past its Maximum session age.

    Costs nothing for anonymous requests and sessions without a record id (see the module's
    docstring); one primary-key read (:data:`_CHECK`) for every other signed-in request, or at
    most one every ``BOOKLORE_OIDC_SESSION_CHECK_INTERVAL`` seconds per session when set.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interface = app.session_interface
    if isinstance(interface, SecureCookieSessionInterface) and interface.get_cookie_name(app) not in request.cookies:
        # No session at all; not touching it keeps "Vary: Cookie" off the response.
        return
    record_id = session.get(LOGIN_KEY)
    if not record_id:
        return
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return
    state = current_state()
    interval = state.check_interval
    if interval:
        now = int(time.time())
        checked = session.get(CHECKED_KEY)
        if isinstance(checked, int) and 0 <= now - checked < interval:
            return
    row = state.adapter.session.connection().execute(_CHECK, {"id": record_id}).first()
    if row is not None and row[0] is None and (row[1] is None or row[1] > utcnow()):
        if interval:
            session[CHECKED_KEY] = now
        return
    log.info("Signing out a session whose login record was ended.")
    state.adapter.logout_user()
    session.pop(LOGIN_KEY, None)
    session.pop(CHECKED_KEY, None)
