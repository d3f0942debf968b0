"""Logout started at the provider (SPEC §8): back-channel (OpenID Connect Back-Channel Logout
1.0) and front-channel (OpenID Connect Front-Channel Logout 1.0).

Back-channel: the provider POSTs a signed logout token to ``/oauth2-backchannel-logout``. We
validate it (:func:`~.tokens.validate_logout_token`), refuse a replayed ``jti``, and mark the
matching login records ended, whether or not the provider advertised
``backchannel_logout_supported`` (a 200 tells it the sessions will end, §2.8).

Front-channel: the provider's logout page loads ``/oauth2-frontchannel-logout?iss=…&sid=…`` in
an iframe. Browsers no longer send cookies into third-party iframes, so the session is found
server-side by ``sid``, like a logout token's; ``iss`` must be the provider's exact issuer.

Either way a browser whose session points at an ended record is signed out on its next request
by :func:`~.sessions.check_request`, an app-wide ``before_request`` hook.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, jsonify, render_template, request
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from . import sessions
from .discovery import ProviderMetadata
from .errors import OIDCError
from .i18n import gettext
from .models import LogoutTokenJti, utcnow
from .state import current_settings, current_state
from .tokens import logout_token_expiry, validate_logout_token

log = logging.getLogger(__name__)


def _answer(status: int, description: str | None = None) -> tuple[Response, int]:
    if description is None:
        response = current_app.response_class(status=status)
    else:
        response = jsonify(error="invalid_request", error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, status


def backchannel_logout() -> Any:
    """The provider's logout token (a form POST, server to server): 200 when it is valid, also
    when no session matched; 400 with a JSON error saying what is wrong otherwise."""
    settings = current_settings()
    if not settings.oidc_active:
        return _answer(404, "Single sign-on is not enabled on this app (oidc_disabled).")
    token = request.form.get("logout_token")
    if not token:
        return _answer(400, "The request carries no logout_token.")
    state = current_state()
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

    ended = sessions.end_matching(db, metadata.issuer, sid=claims.get("sid"), subject=claims.get("sub"))
    db.commit()
    log.info("Back-channel logout: %d session(s) ended.", ended)
    return _answer(200)


#: a ``sid`` longer than the column holding it cannot name one of our sessions
MAX_SID_LENGTH = 255


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _frontchannel_page(message: str, status: int, metadata: ProviderMetadata | None) -> tuple[Response, int]:
    """The small page the provider's logout iframe shows. Only this route may be framed, and
    only by the provider: ``frame-ancestors`` names the origins of its issuer and end-session
    endpoint (where its logout page with the iframes is served). Front-Channel Logout 1.0
    leaves the framing policy to us; a list of the provider's origins is the narrowest that
    lets its page load ours (``'none'`` while the provider is unknown)."""
    response = current_app.make_response(
        (render_template("booklore_oidc/frontchannel.html", message=message, status=status), status)
    )
    origins = sorted(
        {o for o in (_origin(metadata.issuer), _origin(metadata.end_session_endpoint)) if o} if metadata else set()
    )
    response.headers["Content-Security-Policy"] = "frame-ancestors " + (" ".join(origins) or "'none'")
    response.headers["Cache-Control"] = "no-store"
    return response, status


def frontchannel_logout() -> Any:
    """Front-channel logout (``GET ?iss=…&sid=…``): end the sessions of that provider session.

    400 with nothing ended when ``iss`` or ``sid`` is missing or ``iss`` is not the provider's
    exact issuer; 200 when they are right, also when no session matched (it may have ended
    already)."""
    settings = current_settings()
    if not settings.oidc_active:
        return _frontchannel_page(gettext("Single sign-on is not enabled on this app."), 404, None)
    iss, sid = request.args.get("iss", ""), request.args.get("sid", "")
    if not iss or not sid or len(sid) > MAX_SID_LENGTH:
        log.warning("Refused a front-channel logout without iss and sid.")
        return _frontchannel_page(
            gettext("This logout request must name the provider (iss) and the session (sid)."), 400, None
        )
    state = current_state()
    try:
        metadata = state.cache.metadata(settings)
    except OIDCError as exc:
        log.warning("Cannot check a front-channel logout: %s", exc)
        return _frontchannel_page(gettext("The provider cannot be reached to check this logout request."), 502, None)
    if iss != metadata.issuer:
        log.warning("Refused a front-channel logout for another issuer.")
        return _frontchannel_page(gettext("This logout request is for another provider."), 400, metadata)
    db = state.adapter.session
    ended = sessions.end_matching(db, metadata.issuer, sid=sid, subject=None)
    db.commit()
    log.info("Front-channel logout: %d session(s) ended.", ended)
    return _frontchannel_page(gettext("You are signed out of this app."), 200, metadata)
