"""Provider metadata (OpenID Connect Discovery 1.0) and signing keys, cached with a TTL.

SPEC §5.1: discovery happens on the server, its ``issuer`` must equal the configured Issuer URI
up to one trailing slash, and from then on the document's own ``issuer`` string is the exact
value every later comparison uses. Keys are refetched once, bounded, when a token names an
unknown ``kid``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .errors import OIDCError
from .i18n import lazy_gettext
from .settings import Settings
from .transport import TooLarge, Transport

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/openid-configuration"


def discovery_url(issuer_uri: str) -> str:
    return issuer_uri.rstrip("/") + WELL_KNOWN


def shown_url(value: object) -> str:
    """An address from the provider reduced to what we may show: an http(s) URL's scheme, host
    and path, without control characters or spaces and at most 200 characters; "" otherwise."""
    if not isinstance(value, str) or len(value) > 2000 or not value.isprintable() or " " in value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return ""
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return shown if len(shown) <= 200 else ""


def issuers_match(configured: str, reported: str) -> bool:
    """Equal, or equal but for one trailing slash on either side."""
    return reported in (configured, configured + "/") or configured == reported + "/"


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the discovery document we use; ``raw`` keeps the whole document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def iss_parameter_supported(self) -> bool:
        return self.raw.get("authorization_response_iss_parameter_supported") is True

    @property
    def backchannel_logout_supported(self) -> bool:
        return self.raw.get("backchannel_logout_supported") is True

    @property
    def scopes_supported(self) -> list[str] | None:
        value = self.raw.get("scopes_supported")
        return [str(v) for v in value] if isinstance(value, list) else None

    @property
    def token_auth_methods(self) -> list[str]:
        value = self.raw.get("token_endpoint_auth_methods_supported")
        # OpenID Connect Discovery: when omitted, the default is client_secret_basic.
        return [str(v) for v in value] if isinstance(value, list) else ["client_secret_basic"]

    @classmethod
    def parse(cls, document: Any, configured_issuer: str) -> ProviderMetadata:
        """Validate a discovery document; raises :class:`OIDCError` saying what is wrong."""
        if not isinstance(document, dict):
            raise OIDCError("provider_unreachable", lazy_gettext("The discovery document is not a JSON object."))
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not issuers_match(configured_issuer, issuer):
            # Only a plain address is repeated: the document is the provider's text.
            if shown_url(issuer) == issuer:
                detail = lazy_gettext(
                    "The provider reports the issuer %(reported)s, but the configured Issuer URI is %(configured)s.",
                    reported=repr(issuer),
                    configured=repr(configured_issuer),
                )
            else:
                detail = lazy_gettext(
                    "The provider reports another issuer, but the configured Issuer URI is %(configured)s.",
                    configured=repr(configured_issuer),
                )
            raise OIDCError("issuer_mismatch", detail)
        missing = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(document.get(name), str) or not document.get(name)
        ]
        if missing:
            raise OIDCError(
                "provider_unreachable",
                lazy_gettext("The discovery document lacks %(missing)s.", missing=", ".join(missing)),
            )

        def optional(name: str) -> str | None:
            value = document.get(name)
            return value if isinstance(value, str) and value else None

        return cls(
            issuer=issuer,
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            userinfo_endpoint=optional("userinfo_endpoint"),
            end_session_endpoint=optional("end_session_endpoint"),
            raw=document,
        )


def fetch_json(transport: Transport, url: str, settings: Settings, what: str) -> Any:
    """GET ``url`` and decode JSON, turning every failure into ``provider_unreachable``.
    ``what`` names the address in the messages (a lazy text: the failure is cached)."""
    try:
        response = transport.get(url, settings, headers={"Accept": "application/json"})
    except requests.Timeout:
        raise OIDCError(
            "provider_unreachable", lazy_gettext("The %(what)s at %(url)s did not answer in time.", what=what, url=url)
        ) from None
    except TooLarge:
        raise OIDCError(
            "provider_unreachable",
            lazy_gettext("The %(what)s at %(url)s answered with more than 1 MiB.", what=what, url=url),
        ) from None
    except requests.RequestException as exc:
        raise OIDCError(
            "provider_unreachable",
            lazy_gettext(
                "Cannot reach the %(what)s at %(url)s: %(error)s.", what=what, url=url, error=type(exc).__name__
            ),
        ) from None
    if response.status_code != 200:
        raise OIDCError(
            "provider_unreachable",
            lazy_gettext(
                "The %(what)s at %(url)s answered HTTP %(status)s.", what=what, url=url, status=response.status_code
            ),
        )
    try:
        return response.json()
    except ValueError:
        raise OIDCError(
            "provider_unreachable", lazy_gettext("The %(what)s at %(url)s did not return JSON.", what=what, url=url)
        ) from None


def usable_keys(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The keys of a JWKS document that may verify a signature: ``use`` absent or ``sig``, and
    an asymmetric key type (shared by sign-in and Test Connection)."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        return []
    return [
        k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig" and k.get("kty") in ("RSA", "EC", "OKP")
    ]


@dataclass
class _Keys:
    keys: KeySet
    fetched_at: float


#: seconds a failed discovery is remembered (and raised again without a request)
FAILURE_TTL = 30.0


class ProviderCache:
    """Per-process cache of discovery documents and key sets, keyed by URL.

    A failed discovery (unreachable, too slow, not a valid document) is remembered for
    ``failure_ttl`` seconds and raised again without a request: a provider that is down or hangs
    costs one request per interval, not one per sign-in attempt (SPEC §5.9)."""

    def __init__(
        self,
        transport: Transport,
        *,
        ttl: float,
        min_refetch: float,
        failure_ttl: float = FAILURE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._min_refetch = min_refetch
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, tuple[ProviderMetadata, float]] = {}
        self._failed: dict[str, tuple[OIDCError, float]] = {}
        self._keys: dict[str, _Keys] = {}
        self._last_forced: dict[str, float] = {}

    def metadata(self, settings: Settings, *, max_age: float | None = None) -> ProviderMetadata:
        """The provider's metadata for the configured issuer, fetched at most once per TTL, or
        once per ``max_age`` seconds when that is shorter: the start of a sign-in uses it to
        notice a provider that stopped before it sends the browser there."""
        issuer = settings.issuer_uri
        now = self._clock()
        fresh_for = self._ttl if max_age is None else min(self._ttl, max_age)
        with self._lock:
            cached = self._metadata.get(issuer)
            failed = self._failed.get(issuer)
        if cached is not None and now - cached[1] < fresh_for:
            return cached[0]
        if failed is not None and now - failed[1] < self._failure_ttl:
            error = failed[0]
            # A fresh exception each time: one instance raised in many threads would share its traceback.
            raise OIDCError(error.error_code, error.detail)
        try:
            document = fetch_json(self._transport, discovery_url(issuer), settings, lazy_gettext("discovery endpoint"))
            metadata = ProviderMetadata.parse(document, issuer)
        except OIDCError as exc:
            with self._lock:
                self._failed[issuer] = (exc, self._clock())
            raise
        with self._lock:
            self._metadata[issuer] = (metadata, now)
            self._failed.pop(issuer, None)
        return metadata

    def keys(self, metadata: ProviderMetadata, settings: Settings, *, kid: str | None = None) -> KeySet:
        """The provider's signing keys. When ``kid`` is not among them, refetch once, but no
        more often than once per ``min_refetch`` seconds per provider, so a flood of tokens
        with made-up key ids costs at most one request per interval."""
        url = metadata.jwks_uri
        now = self._clock()
        with self._lock:
            cached = self._keys.get(url)
        if cached is None or now - cached.fetched_at >= self._ttl:
            cached = self._fetch_keys(url, settings, now)
        if kid is not None and not _has_kid(cached.keys, kid):
            with self._lock:
                last = self._last_forced.get(url)
                allowed = last is None or now - last >= self._min_refetch
                if allowed:
                    self._last_forced[url] = now
            if allowed:
                log.info("Unknown signing key %r; fetching the provider's keys again.", kid)
                cached = self._fetch_keys(url, settings, now)
        return cached.keys

    def _fetch_keys(self, url: str, settings: Settings, now: float) -> _Keys:
        document = fetch_json(self._transport, url, settings, lazy_gettext("JWKS endpoint"))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise OIDCError("provider_unreachable", lazy_gettext("The JWKS at %(url)s has no 'keys' list.", url=url))
        usable = usable_keys(document)
        try:
            keys = KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError) as exc:
            raise OIDCError(
                "provider_unreachable",
                lazy_gettext(
                    "The JWKS at %(url)s holds a key that cannot be read (%(error)s).",
                    url=url,
                    error=type(exc).__name__,
                ),
            ) from None
        entry = _Keys(keys, now)
        with self._lock:
            self._keys[url] = entry
        return entry

    def cached(self, issuer: str) -> ProviderMetadata | None:
        """The metadata of ``issuer`` if a fresh copy is cached; never fetches (for pages that
        must not wait for the provider)."""
        with self._lock:
            cached = self._metadata.get(issuer)
        if cached is None or self._clock() - cached[1] >= self._ttl:
            return None
        return cached[0]

    def forget(self) -> None:
        with self._lock:
            self._metadata.clear()
            self._failed.clear()
            self._keys.clear()
            self._last_forced.clear()


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
