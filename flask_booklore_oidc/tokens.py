"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7, SPEC §5.5), with joserfc.

Plain functions over plain data: nothing here needs a request context. Every failure raises
``OIDCError("invalid_token", …)`` with a message that names the rule that failed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, OctKey
from joserfc.util import urlsafe_b64encode

from .errors import OIDCError

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


def _fail(detail: str) -> OIDCError:
    return OIDCError("invalid_token", detail)


def read_header(token: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(token.encode("ascii")).protected)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise _fail(f"The ID token is not a well-formed signed JWT ({type(exc).__name__}).") from None


def _pick_key(header: dict[str, Any], keys: KeySet) -> list[Key]:
    kid = header.get("kid")
    alg = str(header.get("alg"))
    kty = _KTY_FOR_PREFIX.get(alg[:2])
    candidates = [k for k in keys.keys if k.key_type == kty]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
        if not candidates:
            raise _fail(f"The ID token is signed with key {kid!r}, which the provider does not publish.")
    if not candidates:
        raise _fail(f"The provider publishes no {kty} key for the token's algorithm {alg}.")
    return candidates


def verify_signature(
    token: str, keys_for: Callable[[str | None], KeySet], client_secret: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the signature with the provider's keys only; returns (header, claims).

    ``keys_for(kid)`` returns the provider's key set and may refetch it once when ``kid`` is
    unknown. Keys named inside the token (``jwk``, ``jku``, ``x5u``) are never used.
    """
    header = read_header(token)
    alg = header.get("alg")
    if alg in HMAC_ALGORITHMS:
        if not client_secret:
            raise _fail(f"The ID token uses {alg}, which needs a client secret; this is a public client.")
        candidates: list[Key] = [OctKey.import_key(client_secret.encode())]
    elif alg in ASYMMETRIC_ALGORITHMS:
        kid = header.get("kid")
        candidates = _pick_key(header, keys_for(kid if isinstance(kid, str) else None))
    else:
        raise _fail(f"The ID token's algorithm {alg!r} is not allowed.")
    for key in candidates:
        try:
            token_obj = jwt.decode(token, key, algorithms=[str(alg)])
        except JoseError:
            continue
        return header, dict(token_obj.claims)
    raise _fail("The ID token's signature does not verify with the provider's keys.")


def left_half_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash``: base64url of the left half of the hash named by ``alg``."""
    if alg in ("EdDSA", "Ed25519"):
        digest = hashlib.sha512(value.encode("ascii")).digest()
    else:
        bits = alg[2:]
        digest = hashlib.new({"256": "sha256", "384": "sha384", "512": "sha512"}[bits], value.encode("ascii")).digest()
    return urlsafe_b64encode(digest[: len(digest) // 2]).decode("ascii")


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
        raise _fail(f"The ID token's claims are not valid: {exc.description or exc.error}.") from None
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else list(aud)
    if expected.client_id not in audiences:
        raise _fail("The ID token was issued for another client (aud does not contain our Client ID).")
    if len(audiences) != 1:
        raise _fail("The ID token names other audiences besides this client; it is refused.")
    azp = claims.get("azp")
    if azp is not None and azp != expected.client_id:
        raise _fail("The ID token's authorized party (azp) is another client.")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected.nonce):
        raise _fail("The ID token's nonce does not match this sign-in (a replayed or foreign token).")


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
            raise _fail("The ID token carries an at_hash but no access token came with it.")
        if not hmac.compare_digest(at_hash, left_half_hash(access_token, str(header["alg"]))):
            raise _fail("The ID token's at_hash does not match the access token.")
    return claims
