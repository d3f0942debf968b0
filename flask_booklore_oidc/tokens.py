"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7, SPEC §5.5) and logout token validation
(Back-Channel Logout 1.0 §2.6, SPEC §8), with joserfc.

Plain functions over plain data: nothing here needs a request context. Every failure raises
``OIDCError("invalid_token", …)`` with a message that names the rule that failed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, OctKey
from joserfc.util import urlsafe_b64encode

from .errors import OIDCError
from .i18n import lazy_gettext

#: Asymmetric algorithms we accept; never "none". HS* only when the client has a secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_KTY_FOR_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


@dataclass(frozen=True)
class Expectations:
    """What a valid ID token must say, fixed when the sign-in started."""

    issuer: str  # the discovery document's exact issuer string
    client_id: str
    nonce: str
    client_secret: str = ""
    clock_skew: int = 60


#: what the messages call the two kinds of token (lazy: a failure is shown in the reader's language)
ID_TOKEN = lazy_gettext("ID token")
LOGOUT_TOKEN = lazy_gettext("logout token")


def _fail(detail: str) -> OIDCError:
    return OIDCError("invalid_token", detail)


#: header members that, when present, must be strings
_STRING_HEADERS = ("alg", "kid", "typ", "cty")
#: the latest time we accept in a token, 3000-01-01T00:00:00Z; later ones are not dates worth storing
_MAX_TIME = 32_503_680_000
#: claims that are times (seconds since the epoch), when present
_TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")


def read_header(token: str, what: str = ID_TOKEN) -> dict[str, Any]:
    """The token's protected header; every member we look at has the type it must have, so a
    malformed token is refused with ``invalid_token`` rather than failing later (SPEC §5.11)."""
    try:
        header = dict(jws.extract_compact(token.encode("ascii")).protected)
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise _fail(
            lazy_gettext(
                "The %(what)s is not a well-formed signed JWT (%(error)s).", what=what, error=type(exc).__name__
            )
        ) from None
    for name in _STRING_HEADERS:
        if name in header and not isinstance(header[name], str):
            raise _fail(lazy_gettext("The %(what)s's header member %(name)s is not a string.", what=what, name=name))
    crit = header.get("crit")
    if crit is not None and not (isinstance(crit, list) and all(isinstance(c, str) for c in crit)):
        raise _fail(lazy_gettext("The %(what)s's header member crit is not a list of names.", what=what))
    return header


def _check_types(claims: dict[str, Any], what: str) -> None:
    """Times are numbers of seconds within years 1970 to 9999; ``iss``, ``sub``, ``jti``, ``sid``
    and ``nonce`` strings; ``aud`` a string or a list of strings. Checked before anything
    compares or computes with them."""
    for name in _TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(lazy_gettext("The %(what)s's %(name)s claim is not a number.", what=what, name=name))
        if not math.isfinite(value) or not 0 <= value <= _MAX_TIME:
            raise _fail(lazy_gettext("The %(what)s's %(name)s claim is not a plausible time.", what=what, name=name))
    for name in ("iss", "sub", "jti", "sid", "nonce"):
        if name in claims and not isinstance(claims[name], str):
            raise _fail(lazy_gettext("The %(what)s's %(name)s claim is not a string.", what=what, name=name))
    # OpenID Connect Core §2: a sub is at most 255 ASCII characters; a sid we keep is no longer.
    for name in ("sub", "sid"):
        if len(claims.get(name) or "") > MAX_IDENTIFIER:
            raise _fail(
                lazy_gettext(
                    "The %(what)s's %(name)s claim is longer than %(count)s characters.",
                    what=what,
                    name=name,
                    count=MAX_IDENTIFIER,
                )
            )
    aud = claims.get("aud")
    if aud is not None and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise _fail(lazy_gettext("The %(what)s's aud claim is neither a string nor a list of strings.", what=what))


#: the longest ``sub`` (OpenID Connect Core §2) or ``sid`` accepted
MAX_IDENTIFIER = 255


def _pick_key(header: dict[str, Any], keys: KeySet, what: str) -> list[Key]:
    kid = header.get("kid")
    alg = str(header.get("alg"))
    kty = _KTY_FOR_PREFIX.get(alg[:2])
    candidates = [k for k in keys.keys if k.key_type == kty]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
        if not candidates:
            raise _fail(
                lazy_gettext(
                    "The %(what)s is signed with key %(kid)s, which the provider does not publish.",
                    what=what,
                    kid=repr(kid),
                )
            )
    if not candidates:
        raise _fail(
            lazy_gettext("The provider publishes no %(kty)s key for the token's algorithm %(alg)s.", kty=kty, alg=alg)
        )
    return candidates


def verify_signature(
    token: str, keys_for: Callable[[str | None], KeySet], client_secret: str, *, what: str = ID_TOKEN
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the signature with the provider's keys only; returns (header, claims).

    ``keys_for(kid)`` returns the provider's key set and may refetch it once when ``kid`` is
    unknown. Keys named inside the token (``jwk``, ``jku``, ``x5u``) are never used.
    """
    header = read_header(token, what)
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _fail(lazy_gettext("The %(what)s names no signing algorithm.", what=what))
    if alg in HMAC_ALGORITHMS:
        if not client_secret:
            raise _fail(
                lazy_gettext(
                    "The %(what)s uses %(alg)s, which needs a client secret; this is a public client.",
                    what=what,
                    alg=alg,
                )
            )
        candidates: list[Key] = [OctKey.import_key(client_secret.encode())]
    elif alg in ASYMMETRIC_ALGORITHMS:
        kid = header.get("kid")
        candidates = _pick_key(header, keys_for(kid if isinstance(kid, str) else None), what)
    else:
        raise _fail(lazy_gettext("The %(what)s's algorithm %(alg)s is not allowed.", what=what, alg=repr(alg)))
    for key in candidates:
        try:
            token_obj = jwt.decode(token, key, algorithms=[alg])
        except JoseError:
            continue
        except (ValueError, TypeError) as exc:
            # joserfc checks the signature only after parsing; a malformed part ends here.
            raise _fail(
                lazy_gettext(
                    "The %(what)s is not a well-formed signed JWT (%(error)s).", what=what, error=type(exc).__name__
                )
            ) from None
        claims = token_obj.claims
        if not isinstance(claims, dict):
            raise _fail(lazy_gettext("The %(what)s's payload is not a JSON object.", what=what))
        _check_types(claims, what)
        return header, dict(claims)
    raise _fail(lazy_gettext("The %(what)s's signature does not verify with the provider's keys.", what=what))


def left_half_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash``: base64url of the left half of the hash named by ``alg``."""
    if alg in ("EdDSA", "Ed25519"):
        digest = hashlib.sha512(value.encode("ascii")).digest()
    else:
        bits = alg[2:]
        digest = hashlib.new({"256": "sha256", "384": "sha384", "512": "sha512"}[bits], value.encode("ascii")).digest()
    return urlsafe_b64encode(digest[: len(digest) // 2]).decode("ascii")


def _check_audience(claims: dict[str, Any], client_id: str, what: str) -> None:
    """``aud`` names this client and nobody else (no trusted extra audiences here)."""
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else list(aud)
    if client_id not in audiences:
        raise _fail(
            lazy_gettext("The %(what)s was issued for another client (aud does not contain our Client ID).", what=what)
        )
    if len(audiences) != 1:
        raise _fail(lazy_gettext("The %(what)s names other audiences besides this client; it is refused.", what=what))


def validate_claims(claims: dict[str, Any], expected: Expectations, *, now: int | None = None) -> None:
    """Issuer, audience, authorized party, times and nonce (Core §3.1.3.7 steps 2–11)."""
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=expected.clock_skew,
        iss={"essential": True, "value": expected.issuer},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        aud={"essential": True},
        nonce={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise _fail(
            lazy_gettext("The ID token's claims are not valid: %(problem)s.", problem=exc.description or exc.error)
        ) from None
    _check_audience(claims, expected.client_id, ID_TOKEN)
    azp = claims.get("azp")
    if azp is not None and azp != expected.client_id:
        raise _fail(lazy_gettext("The ID token's authorized party (azp) is another client."))
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected.nonce):
        raise _fail(lazy_gettext("The ID token's nonce does not match this sign-in (a replayed or foreign token)."))


def validate_id_token(
    token: str,
    expected: Expectations,
    keys_for: Callable[[str | None], KeySet],
    *,
    access_token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """Verify an ID token completely and return its claims."""
    header, claims = verify_signature(token, keys_for, expected.client_secret)
    validate_claims(claims, expected, now=now)
    at_hash = claims.get("at_hash")
    if at_hash is not None:
        if not access_token or not isinstance(at_hash, str):
            raise _fail(lazy_gettext("The ID token carries an at_hash but no access token came with it."))
        if not hmac.compare_digest(at_hash, left_half_hash(access_token, str(header["alg"]))):
            raise _fail(lazy_gettext("The ID token's at_hash does not match the access token."))
    return claims


# -- back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6) -----------

#: The member of ``events`` that makes a JWT a logout token.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

#: How long after its ``iat`` a logout token without ``exp`` is accepted. Replay protection keeps
#: each ``jti`` for as long as its token would be accepted, so acceptance has to end somewhere.
LOGOUT_TOKEN_MAX_AGE = 600


def validate_logout_token(
    token: str,
    *,
    issuer: str,
    client_id: str,
    keys_for: Callable[[str | None], KeySet],
    client_secret: str = "",
    clock_skew: int = 60,
    now: int | None = None,
) -> dict[str, Any]:
    """Verify a back-channel logout token and return its claims (Back-Channel Logout 1.0 §2.6).

    Checked here: the signature with the provider's keys only (as for an ID token), ``iss``
    exactly ``issuer``, ``aud`` this client and no other, ``iat`` present and not in the future
    (and ``exp``, ``nbf`` when present) within ``clock_skew``, the back-channel logout event,
    no ``nonce``, a ``jti``, and ``sid`` or ``sub``. Not checked here: ``jti`` replay, which
    needs storage (see :func:`logout_token_expiry`). Raises ``OIDCError("invalid_token", …)``.
    """
    _header, claims = verify_signature(token, keys_for, client_secret, what=LOGOUT_TOKEN)
    current = int(time.time()) if now is None else now
    registry = jwt.JWTClaimsRegistry(
        now=current,
        leeway=clock_skew,
        iss={"essential": True, "value": issuer},
        aud={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise _fail(
            lazy_gettext("The logout token's claims are not valid: %(problem)s.", problem=exc.description or exc.error)
        ) from None
    _check_audience(claims, client_id, LOGOUT_TOKEN)
    if "exp" not in claims and claims["iat"] < current - LOGOUT_TOKEN_MAX_AGE - clock_skew:
        raise _fail(
            lazy_gettext(
                "The logout token has no exp and was issued more than %(seconds)s seconds ago.",
                seconds=LOGOUT_TOKEN_MAX_AGE,
            )
        )
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise _fail(
            lazy_gettext(
                "The logout token's events claim does not hold the member %(event)s.", event=BACKCHANNEL_LOGOUT_EVENT
            )
        )
    if "nonce" in claims:
        raise _fail(
            lazy_gettext("The logout token carries a nonce, which a logout token must not (is it an ID token?).")
        )
    sid = claims.get("sid")
    if sid is not None and not isinstance(sid, str):
        raise _fail(lazy_gettext("The logout token's sid is not a string."))
    if not sid and not claims.get("sub"):
        raise _fail(lazy_gettext("The logout token names neither a session (sid) nor a subject (sub)."))
    return claims


def logout_token_expiry(claims: dict[str, Any], clock_skew: int = 60) -> int:
    """Until when (epoch seconds) :func:`validate_logout_token` would accept a token with these
    claims: its ``jti`` must be remembered that long to refuse every replay."""
    end = claims["exp"] if "exp" in claims else claims["iat"] + LOGOUT_TOKEN_MAX_AGE
    return int(end) + clock_skew + 1
