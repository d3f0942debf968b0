"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0, SPEC §8).

The provider POSTs a signed logout token to ``/oauth2-backchannel-logout``. We validate it
(:func:`~.tokens.validate_logout_token`), refuse a replayed ``jti``, and mark the matching login
records ended. A browser whose session points at an ended record is signed out on its next
request by :func:`~.sessions.check_request`, an app-wide ``before_request`` hook.

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

from flask import Response, current_app, jsonify, request
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from . import sessions
from .errors import OIDCError
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
