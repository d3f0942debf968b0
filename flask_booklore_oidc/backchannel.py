"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0, SPEC §8).

The provider POSTs a signed logout token to ``/oauth2-backchannel-logout``. We validate it
(:func:`~.tokens.validate_logout_token`), refuse a replayed ``jti``, and mark the matching login
records ended. A browser whose session points at an ended record is signed out on its next
request by :func:`end_ended_session`, an app-wide ``before_request`` hook.

When is back-channel logout *in use* for a session? When the provider advertised
``backchannel_logout_supported: true`` in its discovery document at the moment that session
signed in: the callback then puts a flag in the session (``_booklore_oidc_backchannel``). The
decision thus travels with the request itself: no I/O and no per-process state on the request
path, the same answer in every process, and no cost at all for anonymous visitors, local
sign-ins, or sessions from a provider without back-channel logout. Such a session costs one
primary-key query per request (``SELECT ended_at FROM booklore_oidc_login WHERE id = ?``).
A provider that starts advertising support covers sessions from their next sign-in.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, current_app, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import logout_user
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .errors import OIDCError
from .models import LoginRecord, LogoutTokenJti, utcnow
from .tokens import logout_token_expiry, validate_logout_token
from .views import BACKCHANNEL_KEY, LOGIN_KEY, _ext, _settings, blueprint, start

log = logging.getLogger(__name__)


def _answer(status: int, description: str | None = None) -> tuple[Response, int]:
    if description is None:
        response = current_app.response_class(status=status)
    else:
        response = jsonify(error="invalid_request", error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@blueprint.route("/oauth2-backchannel-logout", methods=["POST"])
def backchannel_logout() -> Any:
    """The provider's logout token (a form POST, server to server): 200 when it is valid, also
    when no session matched; 400 with a JSON error saying what is wrong otherwise."""
    settings = _settings()
    if not settings.oidc_active:
        return _answer(404, "Single sign-on is not enabled on this app (oidc_disabled).")
    token = request.form.get("logout_token")
    if not token:
        return _answer(400, "The request carries no logout_token.")
    state = _ext()._state()
    try:
        metadata = state.cache.metadata(settings)
        claims = validate_logout_token(
            token,
            issuer=metadata.issuer,
            client_id=settings.client_id,
            keys_for=lambda kid: state.cache.keys(metadata, settings, kid=kid),
            client_secret=settings.client_secret,
            clock_skew=settings.clock_skew,
        )
    except OIDCError as exc:
        log.warning("Refused a back-channel logout token: %s", exc)
        return _answer(400, exc.detail or exc.title)

    db = state.adapter.session
    now = utcnow()
    expires = datetime.fromtimestamp(logout_token_expiry(claims, settings.clock_skew), UTC).replace(tzinfo=None)
    jti_hash = hashlib.sha256(f"{metadata.issuer}\0{claims['jti']}".encode()).hexdigest()
    db.execute(delete(LogoutTokenJti).where(LogoutTokenJti.expires_at < now))
    try:
        # The primary key makes "first one wins" hold across processes.
        db.execute(insert(LogoutTokenJti).values(jti_hash=jti_hash, expires_at=expires))
    except IntegrityError:
        db.rollback()
        log.warning("Refused a replayed back-channel logout token.")
        return _answer(400, "This logout token was already used (its jti was seen before).")

    conditions = [LoginRecord.issuer == metadata.issuer, LoginRecord.ended_at.is_(None)]
    if claims.get("sid"):
        conditions.append(LoginRecord.sid == claims["sid"])
    if claims.get("sub"):
        conditions.append(LoginRecord.subject == claims["sub"])
    result = db.execute(update(LoginRecord).where(*conditions).values(ended_at=now, id_token=None))
    db.commit()
    log.info("Back-channel logout: %d session(s) ended.", result.rowcount)  # type: ignore[attr-defined]
    return _answer(200)


def end_ended_session() -> None:
    """App-wide ``before_request``: sign out a session whose login record was ended.

    Costs nothing unless the session signed in through the provider with back-channel logout
    in use (see the module docstring); then one primary-key query. A record that is gone
    (unlinked, purged) counts as ended.
    """
    endpoint = request.endpoint or ""
    if endpoint in _CSRF_EXEMPT_ENDPOINTS:
        # For a CSRFProtect set up after us; its hook runs after this one.
        exempt_from_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
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
    db = _ext()._state().adapter.session
    row = db.execute(select(LoginRecord.ended_at).where(LoginRecord.id == record_id)).first()
    if row is not None and row.ended_at is None:
        return
    log.info("Signing out a session the provider ended (back-channel logout).")
    logout_user()
    session.pop(LOGIN_KEY, None)
    session.pop(BACKCHANNEL_KEY, None)


#: Views that other servers POST to without our CSRF token: the provider's logout token, and a
#: third-party initiated login (OpenID Connect Core §4) may come as a form POST too.
_CSRF_EXEMPT_VIEWS = (backchannel_logout, start)
_CSRF_EXEMPT_ENDPOINTS = frozenset(f"{blueprint.name}.{view.__name__}" for view in _CSRF_EXEMPT_VIEWS)


def exempt_from_csrf(app: Flask) -> None:
    """Exempt those views from Flask-WTF's ``CSRFProtect``, when the app uses it."""
    csrf = app.extensions.get("csrf")
    exempt = getattr(csrf, "exempt", None)
    if callable(exempt):
        for view in _CSRF_EXEMPT_VIEWS:
            exempt(view)
