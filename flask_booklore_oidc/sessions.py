"""The server-side login record of a signed-in session: created at sign-in, checked on signed-in
requests, ended by sign-out, logout tokens, unlinking and user deletion, purged when old.

The cookie holds only the record's id (``_booklore_oidc_login``); the record holds the provider
session id (``sid``) and the ID token for the logout hint, encrypted. This module is the only one
that writes :class:`~.models.LoginRecord` rows or our session keys.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from .config import SESSION_KEYS
from .models import LoginRecord, utcnow
from .secretbox import InvalidToken
from .state import AppState, current_state

log = logging.getLogger(__name__)

BROWSER_KEY, LOGIN_KEY, REDIRECTS_KEY, LAST_ERROR_KEY, BACKCHANNEL_KEY, LINK_KEY = SESSION_KEYS


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
    state: AppState, user_id: str, *, issuer: str, subject: str, sid: str | None, id_token: str | None
) -> str:
    """Add the login record of a provider sign-in to the database session (committed with the
    sign-in's other writes); returns its id. Old records are purged now and then."""
    db = state.adapter.session
    now = utcnow()
    if state.purge_due("login_records"):
        ttl = timedelta(seconds=state.seconds("LOGIN_RECORD_TTL"))
        db.execute(delete(LoginRecord).where(LoginRecord.created_at < now - ttl))
    record_id = secrets.token_urlsafe(32)
    db.add(
        LoginRecord(
            id=record_id,
            user_id=user_id,
            issuer=issuer,
            subject=subject,
            sid=sid,
            id_token=state.box.seal(id_token) if id_token else None,
            created_at=now,
        )
    )
    return record_id


def attach(record_id: str, *, backchannel: bool) -> None:
    """Point this (just rotated) browser session at its login record."""
    session[LOGIN_KEY] = record_id
    if backchannel:
        session[BACKCHANNEL_KEY] = True  # logout tokens may end it: checked by check_request


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
    return Ended(record is not None, id_token)


def end_matching(db: Session, issuer: str, *, sid: str | None, subject: str | None) -> int:
    """End the open records of ``issuer`` matching ``sid`` and/or ``subject`` (a logout token);
    returns how many. Does not commit."""
    conditions = [LoginRecord.issuer == issuer, LoginRecord.ended_at.is_(None)]
    if sid:
        conditions.append(LoginRecord.sid == sid)
    if subject:
        conditions.append(LoginRecord.subject == subject)
    result = db.execute(update(LoginRecord).where(*conditions).values(ended_at=utcnow(), id_token=None))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
    result = db.execute(
        update(LoginRecord)
        .where(LoginRecord.user_id == user_id, LoginRecord.ended_at.is_(None))
        .values(ended_at=utcnow(), id_token=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def forget_user(db: Session | Connection, user_id: str) -> None:
    """Remove every record of ``user_id`` (unlinked or deleted user). Does not commit."""
    db.execute(delete(LoginRecord).where(LoginRecord.user_id == user_id))


# -- the check on each request ---------------------------------------------------------------------


def check_request() -> None:
    """App-wide ``before_request``: sign out a session whose login record was ended.

    Costs nothing unless the session signed in through a provider whose logout tokens may end
    it; then one primary-key query. A record that is gone (unlinked, purged) counts as ended.
    """
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    interface = app.session_interface
    if isinstance(interface, SecureCookieSessionInterface) and interface.get_cookie_name(app) not in request.cookies:
        # No session at all; not touching it keeps "Vary: Cookie" off the response.
        return
    if not session.get(BACKCHANNEL_KEY):
        return
    record_id = session.get(LOGIN_KEY)
    if not record_id:
        return
    state = current_state()
    row = state.adapter.session.execute(select(LoginRecord.ended_at).where(LoginRecord.id == record_id)).first()
    if row is not None and row.ended_at is None:
        return
    log.info("Signing out a session the provider ended (back-channel logout).")
    state.adapter.logout_user()
    session.pop(LOGIN_KEY, None)
    session.pop(BACKCHANNEL_KEY, None)
