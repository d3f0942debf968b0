"""The authorization code flow with PKCE (SPEC §5 steps 1–6), without Flask request context.

:meth:`SignInFlow.begin` builds the authorization URL and stores the transaction;
:meth:`SignInFlow.complete` turns the provider's redirect into a verified :class:`Completed`.
Deciding *who* that is (§6) is :mod:`.provisioning`'s job.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.requests_client.oauth2_session import OAuth2ClientAuth
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import Row, Table, delete, select
from sqlalchemy.orm import Session

from .claims import ClaimMapping, Identity
from .discovery import ProviderCache, ProviderMetadata
from .errors import OIDCError, error_code, scrub
from .i18n import lazy_gettext
from .models import Transaction, utcnow
from .settings import Settings
from .tokens import Expectations, validate_id_token
from .transport import TooLarge, Transport

log = logging.getLogger(__name__)

#: the longest ``next`` URL a sign-in keeps (the length of ``booklore_oidc_transaction.next_url``)
NEXT_URL_MAX: int = Transaction.__table__.c.next_url.type.length  # type: ignore[attr-defined]

BASE_SCOPES = ("openid", "profile", "email")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def requested_scopes(settings: Settings, metadata: ProviderMetadata | None) -> list[str]:
    """Configured scopes (always with ``openid``), or automatic: openid profile email, plus
    groups when the provider advertises it."""
    if settings.scopes.strip():
        scopes = settings.scopes.replace(",", " ").split()
        return scopes if "openid" in scopes else ["openid", *scopes]
    scopes = list(BASE_SCOPES)
    supported = metadata.scopes_supported if metadata else None
    if supported and "groups" in supported:
        scopes.append("groups")
    return scopes


def token_auth_method(settings: Settings, metadata: ProviderMetadata | None) -> str:
    """``none`` for a public client; otherwise the configured or advertised method."""
    if not settings.client_secret:
        return "none"
    if settings.token_auth_method not in ("auto", "none"):
        return settings.token_auth_method
    advertised = metadata.token_auth_methods if metadata else ["client_secret_basic"]
    if "client_secret_basic" in advertised:
        return "client_secret_basic"
    if "client_secret_post" in advertised:
        return "client_secret_post"
    return "client_secret_basic"


def client_auth(settings: Settings, method: str) -> OAuth2ClientAuth:
    if method == "client_secret_basic":
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and encoded.
        return OAuth2ClientAuth(
            quote_plus(settings.client_id, safe=""), quote_plus(settings.client_secret, safe=""), method
        )
    return OAuth2ClientAuth(settings.client_id, settings.client_secret or None, method)


@dataclass(frozen=True)
class Completed:
    """A verified sign-in: who, and what the provider said."""

    identity: Identity
    id_token: str = field(repr=False)
    id_claims: Mapping[str, Any] = field(repr=False)
    userinfo: Mapping[str, Any] | None = field(repr=False)
    next_url: str
    purpose: str
    #: the provider metadata the sign-in used (so nobody asks the cache again)
    metadata: ProviderMetadata = field(repr=False)

    @property
    def sid(self) -> str | None:
        sid = self.id_claims.get("sid")
        return sid if isinstance(sid, str) else None


class SignInFlow:
    def __init__(
        self,
        settings: Settings,
        cache: ProviderCache,
        transport: Transport,
        session: Session,
        *,
        transaction_ttl: int = 600,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.transport = transport
        self.session = session
        self.transaction_ttl = transaction_ttl

    # -- step 2 --------------------------------------------------------------------------------

    def begin(
        self,
        *,
        redirect_uri: str,
        browser_key: str,
        next_url: str = "",
        purpose: str = "login",
        login_hint: str | None = None,
        prompt: str | None = None,
        settings_override: str | None = None,
        purge_expired: bool = True,
    ) -> str:
        """Store a fresh transaction and return the provider URL to send the browser to.

        ``settings_override`` is kept with the transaction, opaque (the settings page's test
        sign-in stores its unsaved settings there, encrypted). ``purge_expired`` deletes the
        expired transactions first; the caller decides how often that is worth a statement.
        ``prompt="login"`` asks the provider to sign in afresh (with ``max_age=0``), so someone
        else can sign in there: the settings page's "Sign in as another user"."""
        metadata = self.cache.metadata(self.settings)
        state = secrets.token_urlsafe(32)  # 256 bits
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43-128
        now = utcnow()
        # Expired transactions are purged here, so the table stays as small as the number of
        # sign-ins started in the last ten minutes (plus the purge interval).
        if purge_expired:
            self.session.execute(delete(Transaction).where(Transaction.expires_at < now))
        if len(next_url) > NEXT_URL_MAX:
            # PostgreSQL refuses a value longer than the column; the reader lands on the
            # default page instead of an error page.
            log.info("Not keeping a next URL of %d characters (at most %d).", len(next_url), NEXT_URL_MAX)
            next_url = ""
        self.session.add(
            Transaction(
                state_hash=digest(state),
                browser_hash=digest(browser_key),
                nonce=nonce,
                code_verifier=verifier,
                issuer=metadata.issuer,
                redirect_uri=redirect_uri,
                next_url=next_url,
                purpose=purpose,
                settings_override=settings_override,
                expires_at=now + timedelta(seconds=self.transaction_ttl),
            )
        )
        self.session.commit()
        params = [
            ("response_type", "code"),
            ("client_id", self.settings.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", " ".join(requested_scopes(self.settings, metadata))),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(verifier)),
            ("code_challenge_method", "S256"),
        ]
        if login_hint:
            params.append(("login_hint", login_hint))
        if prompt:
            params.append(("prompt", prompt))
            if prompt == "login":
                params.append(("max_age", "0"))
        return str(add_params_to_uri(metadata.authorization_endpoint, params))

    # -- step 3 --------------------------------------------------------------------------------

    def consume(self, state: str | None, browser_key: str | None) -> Row[Any]:
        """Take the transaction of ``state`` for this browser, once: it is deleted (and the
        deletion committed) before anything else happens, so a replay finds nothing."""
        if not state:
            raise OIDCError("invalid_state", lazy_gettext("The provider's answer carries no state parameter."))
        if not browser_key:
            raise OIDCError(
                "invalid_state", lazy_gettext("This browser did not start a sign-in (its session cookie is missing).")
            )
        table = Transaction.__table__
        assert isinstance(table, Table)
        state_hash, browser_hash = digest(state), digest(browser_key)
        # Taking the row is one DELETE that must match both the state and this browser: only the
        # request whose DELETE removed it goes on, so the transaction is single-use across
        # processes. Where the database cannot return deleted rows, read, then delete.
        taken = delete(table).where(table.c.state_hash == state_hash, table.c.browser_hash == browser_hash)
        row: Row[Any] | None
        if self.session.get_bind().dialect.delete_returning:
            row = self.session.execute(taken.returning(*table.c)).one_or_none()  # type: ignore[assignment, unused-ignore]
        else:
            row = self.session.execute(
                select(table).where(table.c.state_hash == state_hash, table.c.browser_hash == browser_hash)
            ).one_or_none()
            if row is not None and self.session.execute(taken).rowcount != 1:  # type: ignore[attr-defined]
                row = None
        self.session.commit()
        if row is None:
            other_browser = self.session.execute(
                select(table.c.browser_hash).where(table.c.state_hash == state_hash)
            ).scalar_one_or_none()
            if other_browser is not None:
                # Left in place: the browser that started it may still finish it.
                raise OIDCError("invalid_state", lazy_gettext("The sign-in was started in another browser session."))
            raise OIDCError("invalid_state", lazy_gettext("The sign-in is unknown, or was already used."))
        if row.expires_at < utcnow():
            raise OIDCError(
                "invalid_state", lazy_gettext("The sign-in expired; it must be finished within 10 minutes.")
            )
        return row

    def complete(
        self, params: Mapping[str, str], *, browser_key: str | None = None, transaction: Row[Any] | None = None
    ) -> Completed:
        """Verify the provider's redirect to the callback, exchange the code and validate.

        ``transaction`` is the one :meth:`consume` already took for these ``params``; without it
        the transaction is taken here."""
        if transaction is None:
            transaction = self.consume(params.get("state"), browser_key)
        if params.get("error"):
            said = error_code(params["error"])
            raise OIDCError(
                "provider_error",
                lazy_gettext(
                    "The provider answered %(error)s%(description)s", error=said, description=self._description(params)
                )
                if said
                else lazy_gettext(
                    "The provider answered an error%(description)s", description=self._description(params)
                ),
            )
        metadata = self.cache.metadata(self.settings)
        if metadata.issuer != transaction.issuer:
            raise OIDCError(
                "issuer_mismatch", lazy_gettext("The provider changed while this sign-in was in progress; start again.")
            )
        iss = params.get("iss")
        if iss is not None and iss != metadata.issuer:
            raise OIDCError(
                "issuer_mismatch",
                lazy_gettext(
                    "The answer came from the issuer %(iss)s, not %(issuer)s (RFC 9207).",
                    iss=repr(iss),
                    issuer=repr(metadata.issuer),
                ),
            )
        if iss is None and metadata.iss_parameter_supported:
            raise OIDCError(
                "issuer_mismatch",
                lazy_gettext("The provider promises an iss parameter in its answer (RFC 9207) but sent none."),
            )
        code = params.get("code")
        if not code:
            raise OIDCError(
                "provider_error", lazy_gettext("The provider's answer carries neither a code nor an error.")
            )

        token = self._exchange(metadata, code, transaction)
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OIDCError(
                "invalid_token",
                lazy_gettext(
                    "The provider's token response has no ID token; is the openid scope allowed for this client?"
                ),
            )
        access_token = token.get("access_token") if isinstance(token.get("access_token"), str) else None
        expected = Expectations(
            issuer=metadata.issuer,
            client_id=self.settings.client_id,
            nonce=transaction.nonce,
            client_secret=self.settings.client_secret,
            clock_skew=self.settings.clock_skew,
        )
        claims = validate_id_token(
            id_token, expected, lambda kid: self.cache.keys(metadata, self.settings, kid=kid), access_token=access_token
        )
        mapping = ClaimMapping(
            self.settings.claim_username,
            self.settings.claim_email,
            self.settings.claim_display_name,
            self.settings.claim_groups,
        )
        userinfo = None
        if (
            metadata.userinfo_endpoint
            and access_token
            and (self.settings.always_userinfo or mapping.missing_from(claims))
        ):
            userinfo = self._userinfo(metadata, access_token, claims["sub"])
        return Completed(
            identity=mapping.identity(metadata.issuer, claims, userinfo),
            id_token=id_token,
            id_claims=claims,
            userinfo=userinfo,
            next_url=transaction.next_url,
            purpose=transaction.purpose,
            metadata=metadata,
        )

    # -- steps 4 and 6 ---------------------------------------------------------------------------

    def _exchange(self, metadata: ProviderMetadata, code: str, transaction: Row[Any]) -> dict[str, Any]:
        method = token_auth_method(self.settings, metadata)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": transaction.redirect_uri,
            "code_verifier": transaction.code_verifier,
        }
        try:
            response = self.transport.post(
                metadata.token_endpoint,
                self.settings,
                data=data,
                auth=client_auth(self.settings, method),
                headers={"Accept": "application/json"},
            )
        except requests.Timeout:
            raise OIDCError(
                "token_exchange_failed", lazy_gettext("The provider's token endpoint did not answer in time.")
            ) from None
        except TooLarge:
            raise OIDCError(
                "token_exchange_failed", lazy_gettext("The token endpoint answered with more than 1 MiB.")
            ) from None
        except requests.RequestException as exc:
            raise OIDCError(
                "token_exchange_failed",
                lazy_gettext("Cannot reach the token endpoint: %(error)s.", error=type(exc).__name__),
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise OIDCError(
                "token_exchange_failed",
                lazy_gettext(
                    "The token endpoint answered HTTP %(status)s without a JSON body.", status=response.status_code
                ),
            )
        error = body.get("error")
        if error == "invalid_client" or (response.status_code == 401 and error is None):
            raise OIDCError("invalid_client", self._client_refused("invalid_client", method))
        if error == "unauthorized_client" and not self.settings.is_public_client:
            raise OIDCError("invalid_client", self._client_refused("unauthorized_client", method))
        if error or response.status_code != 200:
            said = error_code(error) or f"HTTP {response.status_code}"
            raise OIDCError(
                "token_exchange_failed",
                lazy_gettext(
                    "The token endpoint answered %(error)s%(description)s",
                    error=said,
                    description=self._description(body),
                ),
            )
        return body

    def _client_refused(self, error: str, method: str) -> str:
        """Why the token endpoint refused the client, naming the likely cause: with a secret,
        a client the provider registered as public (no secret) refuses any secret."""
        if self.settings.is_public_client:
            return lazy_gettext(
                "The provider rejected the client credentials (%(error)s): this app sends no secret (a public "
                "client), and the provider expects one. Switch Public Client on at the provider, or enter the "
                "Client Secret here; also copy the Client ID fresh.",
                error=error,
            )
        return lazy_gettext(
            "The provider rejected the client credentials (%(error)s): the Client ID or Client Secret is wrong, "
            "or the client authentication method does not match: this app sends a secret (%(method)s), and a "
            "client the provider registered as public (no secret) refuses any secret. For a public client, "
            "remove the Client Secret here; for a confidential one, copy both fresh from the provider.",
            error=error,
            method=method,
        )

    def _description(self, answer: Mapping[str, Any]) -> str:
        """``: <error_description>`` of a provider's error answer (or ``.``), fit to show and log:
        scrubbed of the secret in every encoding, of control characters, and capped."""
        description = answer.get("error_description")
        if isinstance(description, str):
            # A provider that echoes our request must not make us show or log the secret.
            description = scrub(description, self.settings.client_secret, self.settings.client_id)
        return f": {description}" if description else "."

    def _userinfo(self, metadata: ProviderMetadata, access_token: str, subject: str) -> dict[str, Any]:
        assert metadata.userinfo_endpoint
        try:
            response = self.transport.get(
                metadata.userinfo_endpoint,
                self.settings,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            )
        except TooLarge:
            raise OIDCError(
                "provider_unreachable", lazy_gettext("The userinfo endpoint answered with more than 1 MiB.")
            ) from None
        except requests.RequestException as exc:
            raise OIDCError(
                "provider_unreachable",
                lazy_gettext("Cannot reach the userinfo endpoint: %(error)s.", error=type(exc).__name__),
            ) from None
        if response.status_code != 200:
            raise OIDCError(
                "token_exchange_failed",
                lazy_gettext("The userinfo endpoint answered HTTP %(status)s.", status=response.status_code),
            )
        try:
            body = response.json()
        except ValueError:
            raise OIDCError(
                "invalid_token", lazy_gettext("The userinfo response is not JSON (signed userinfo is not supported).")
            ) from None
        if not isinstance(body, dict) or body.get("sub") != subject:
            raise OIDCError(
                "invalid_token", lazy_gettext("The userinfo response is about another subject than the ID token.")
            )
        return body
