"""Test Connection (SPEC §9): what an admin needs to know before the first sign-in.

Plain functions over plain data: :func:`run_checks` takes a :class:`~.settings.Settings` (the
unsaved form values merged over the saved ones), a :class:`~.transport.Transport` and the
Redirect URI, and returns one :class:`CheckResult` per check, in a fixed order. Nothing is saved
and nothing is cached. Every request is bounded by the HTTP timeout and all of them together by
a total deadline; redirects are never followed. When discovery or the issuer check fails, no
further request is sent (one SKIP line says so).

Messages are in our words: nothing of a provider's answer body is quoted except structured
facts — status codes, an OAuth error code that is a plain token, addresses reduced to scheme,
host and path (SPEC §5.10).

::

    results = run_checks(settings, transport, "https://books.example.com/oauth2-callback")
    ok = all(r.status != Status.FAIL for r in results)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .discovery import ProviderMetadata, discovery_url, issuers_match, shown_url, usable_keys
from .errors import error_code, secret_forms
from .flow import client_auth, requested_scopes, token_auth_method
from .i18n import gettext, lazy_gettext
from .settings import Settings
from .transport import TooLarge, Transport

#: seconds all requests of one Test Connection may take together
TOTAL_BUDGET = 30.0


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class CheckResult:
    """One line of the Test Connection report. ``message`` says what was found and, when it is
    not a pass, what to change."""

    key: str
    label: str
    status: Status
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "label": str(self.label), "status": str(self.status), "message": str(self.message)}


#: every check, in the order it runs and is shown
CHECKS: tuple[tuple[str, str], ...] = (
    ("discovery", lazy_gettext("Discovery document reachable")),
    ("issuer", lazy_gettext("Issuer matches")),
    ("endpoints", lazy_gettext("Authorization, token and JWKS endpoints")),
    ("jwks", lazy_gettext("Signing keys (JWKS)")),
    ("response_type", lazy_gettext("Authorization code flow (response type code)")),
    ("pkce", lazy_gettext("PKCE with S256")),
    ("scopes", lazy_gettext("Requested scopes supported")),
    ("client_auth", lazy_gettext("Client authentication")),
    ("authorize", lazy_gettext("Client ID and Redirect URI accepted")),
    ("end_session", lazy_gettext("Sign-out at the provider (end-session endpoint)")),
    ("backchannel", lazy_gettext("Back-channel logout")),
    ("frontchannel", lazy_gettext("Front-channel logout")),
    ("clock", lazy_gettext("Clock drift")),
)
LABELS = dict(CHECKS)
#: the one line that stands for every check not run after discovery or the issuer failed
REMAINING = ("remaining", lazy_gettext("Remaining checks"))
LABELS[REMAINING[0]] = REMAINING[1]

REACH_ADVICE = lazy_gettext(
    "If both run in Docker, make sure they share a network or that the provider's external URL is "
    "reachable from this app's container; check DNS resolution and the firewall between them."
)

#: what stops working when the provider does not offer a scope
SCOPE_CONSEQUENCES = {
    "openid": lazy_gettext("nobody can sign in: without openid there is no ID token"),
    "profile": lazy_gettext("usernames and display names may be missing"),
    "email": lazy_gettext("email addresses are missing, so linking by email and email sync will not work"),
    "groups": lazy_gettext("group mapping and allowed groups will not work"),
}

#: authorization errors that mean "the client and Redirect URI are fine, nobody is signed in"
_INTERACTION_ERRORS = frozenset(
    {"login_required", "consent_required", "interaction_required", "account_selection_required"}
)


def ok(results: list[CheckResult]) -> bool:
    """True when no check failed (warnings and skips are allowed)."""
    return all(r.status != Status.FAIL for r in results)


class _OutOfTime(Exception):
    pass


class _Run:
    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        redirect_uri: str,
        *,
        budget: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.redirect_uri = redirect_uri
        self.clock = clock
        self.wall_clock = wall_clock
        self.deadline = clock() + budget
        self.budget = budget
        self.results: dict[str, CheckResult] = {}
        self.document: dict[str, Any] | None = None
        self.metadata: ProviderMetadata | None = None
        self.date_header: str | None = None
        self.discovery_midpoint = 0.0
        #: what must be fixed before the other checks mean anything (set when one fails early)
        self.blocked_by: str | None = None
        self.last_timeout = settings.http_timeout

    # -- plumbing ----------------------------------------------------------------------------

    def result(self, key: str, status: Status, message: str) -> None:
        self.results[key] = CheckResult(key, str(LABELS[key]), status, self.scrub(str(message)))

    def scrub(self, text: str) -> str:
        """Messages quote no provider text, but should one slip in (an address the provider
        chose, say), the secret is not shown in any encoding."""
        for form in secret_forms(self.settings.client_secret, self.settings.client_id):
            text = text.replace(form, "[secret]")
        return text

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise _OutOfTime
        # The transport makes this the whole request's deadline, so the budget holds too.
        kwargs["timeout"] = self.last_timeout = min(self.settings.http_timeout, remaining)
        kwargs["allow_redirects"] = False
        return self.transport.request(method, url, self.settings, **kwargs)

    def network_problem(self, exc: requests.RequestException) -> str:
        if isinstance(exc, requests.Timeout):
            return gettext("no answer within %(seconds)s s", seconds=f"{round(self.last_timeout, 1):g}")
        if isinstance(exc, TooLarge):
            return gettext("it answered with more than 1 MiB, which is not accepted")
        if isinstance(exc, requests.exceptions.SSLError):
            return gettext(
                "its TLS certificate was not accepted (for a private certificate authority, set CA bundle "
                "under Session and Advanced)"
            )
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
            return gettext("the address is not a valid URL")
        text = str(exc)
        if re.search(r"Name or service not known|nodename nor servname|name resolution|getaddrinfo failed", text):
            return gettext("the host name does not resolve (DNS)")
        match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
        if match:
            return match.group(1).strip().rstrip(".").lower()
        return type(exc).__name__

    # -- the checks --------------------------------------------------------------------------

    def discovery(self) -> None:
        issuer = self.settings.issuer_uri
        if not issuer:
            self.result(
                "discovery",
                Status.FAIL,
                gettext("Enter the Issuer URI: the provider's base URL, e.g. https://pocket-id.example.com."),
            )
            return
        url = discovery_url(issuer)
        started = self.clock()
        before = self.wall_clock()
        try:
            response = self.send("GET", url, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            self.result(
                "discovery",
                Status.FAIL,
                gettext("Cannot reach %(url)s: %(problem)s.", url=url, problem=self.network_problem(exc))
                + " "
                + str(REACH_ADVICE),
            )
            return
        elapsed = round((self.clock() - started) * 1000)
        self.discovery_midpoint = (before + self.wall_clock()) / 2
        self.date_header = response.headers.get("Date")
        status = response.status_code
        if status in (301, 302, 303, 307, 308):
            location = shown_url(urljoin(url, response.headers.get("Location", "")))
            self.result(
                "discovery",
                Status.FAIL,
                gettext(
                    "%(url)s redirects to %(location)s (%(elapsed)s ms). Redirects are not followed: "
                    "enter the provider's own address as the Issuer URI.",
                    url=url,
                    location=location or gettext("another address"),
                    elapsed=elapsed,
                ),
            )
            return
        if status == 404:
            self.result(
                "discovery",
                Status.FAIL,
                gettext(
                    "%(url)s answered HTTP 404 (%(elapsed)s ms): there is no discovery document there. Check the "
                    "Issuer URI: it is the provider's base URL (for Keycloak including /realms/<realm>, for "
                    "Authentik /application/o/<slug>/).",
                    url=url,
                    elapsed=elapsed,
                ),
            )
            return
        if status != 200:
            self.result(
                "discovery",
                Status.FAIL,
                gettext("%(url)s answered HTTP %(status)s (%(elapsed)s ms).", url=url, status=status, elapsed=elapsed),
            )
            return
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            self.result(
                "discovery",
                Status.FAIL,
                gettext(
                    "%(url)s answered (%(elapsed)s ms) but not with a JSON discovery document; is the Issuer URI "
                    "the provider's address, and not the address of its web interface or of this app?",
                    url=url,
                    elapsed=elapsed,
                ),
            )
            return
        self.document = document
        self.result("discovery", Status.PASS, gettext("Fetched %(url)s in %(elapsed)s ms.", url=url, elapsed=elapsed))

    def issuer(self) -> None:
        assert self.document is not None
        configured = self.settings.issuer_uri
        reported = self.document.get("issuer")
        if not isinstance(reported, str) or not reported:
            self.result(
                "issuer",
                Status.FAIL,
                gettext("The discovery document names no issuer; this is not an OpenID provider."),
            )
            return
        shown = shown_url(reported)
        if reported == configured:
            self.result(
                "issuer",
                Status.PASS,
                gettext("The provider's issuer is exactly the Issuer URI, %(issuer)s.", issuer=reported),
            )
        elif issuers_match(configured, reported):
            self.result(
                "issuer",
                Status.PASS,
                gettext(
                    "The provider calls itself %(reported)s; the Issuer URI %(configured)s differs only by a "
                    "trailing slash, which is tolerated. Tokens are checked against %(reported)s exactly.",
                    reported=reported,
                    configured=configured,
                ),
            )
        elif shown != reported:
            self.result(
                "issuer",
                Status.FAIL,
                gettext(
                    "The provider names an issuer that is not a plain https or http address, and not the Issuer "
                    "URI %(configured)s. Every sign-in would be refused: check that the Issuer URI is the "
                    "provider's address.",
                    configured=configured,
                ),
            )
        else:
            self.result(
                "issuer",
                Status.FAIL,
                gettext(
                    "The provider calls itself %(reported)s, but the Issuer URI is %(configured)s. Every sign-in "
                    "would be refused: set the Issuer URI to %(reported)s (scheme, host, port and path must match; "
                    "only a trailing slash may differ).",
                    reported=reported,
                    configured=configured,
                ),
            )

    def endpoints(self) -> None:
        assert self.document is not None
        document = self.document
        missing = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(document.get(name), str) or not document.get(name)
        ]
        if missing:
            self.result(
                "endpoints",
                Status.FAIL,
                gettext(
                    "The discovery document lacks %(missing)s; sign-in cannot work with this provider.",
                    missing=", ".join(missing),
                ),
            )
            return
        reported = document.get("issuer")

        def optional(name: str) -> str | None:
            value = document.get(name)
            return value if isinstance(value, str) and value else None

        self.metadata = ProviderMetadata(
            issuer=reported if isinstance(reported, str) else "",
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            userinfo_endpoint=optional("userinfo_endpoint"),
            end_session_endpoint=optional("end_session_endpoint"),
            raw=document,
        )
        if self.metadata.userinfo_endpoint:
            self.result(
                "endpoints",
                Status.PASS,
                gettext("The provider lists its authorization, token and JWKS endpoints, and a userinfo endpoint."),
            )
        else:
            self.result(
                "endpoints",
                Status.PASS,
                gettext(
                    "The provider lists its authorization, token and JWKS endpoints. It has no userinfo endpoint, "
                    "so every mapped claim must be in the ID token."
                ),
            )

    def jwks(self) -> None:
        assert self.metadata is not None
        url = shown_url(self.metadata.jwks_uri) or gettext("the address in jwks_uri")
        try:
            response = self.send("GET", self.metadata.jwks_uri, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            self.result(
                "jwks",
                Status.FAIL,
                gettext(
                    "Cannot fetch the signing keys from %(url)s: %(problem)s.",
                    url=url,
                    problem=self.network_problem(exc),
                ),
            )
            return
        if response.status_code != 200:
            self.result(
                "jwks",
                Status.FAIL,
                gettext(
                    "The JWKS at %(url)s answered HTTP %(status)s; ID tokens cannot be verified.",
                    url=url,
                    status=response.status_code,
                ),
            )
            return
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            self.result(
                "jwks", Status.FAIL, gettext("The JWKS at %(url)s is not a JSON key set with a 'keys' list.", url=url)
            )
            return
        usable = usable_keys(document)
        if not usable:
            self.result(
                "jwks",
                Status.FAIL,
                gettext(
                    "The JWKS at %(url)s holds %(count)s key(s), none usable for signatures (RSA, EC or OKP with use "
                    "'sig'): ID tokens cannot be verified. Check the provider's signing key settings.",
                    url=url,
                    count=len(document["keys"]),
                ),
            )
            return
        try:
            KeySet.import_key_set({"keys": usable})
        except (JoseError, ValueError, TypeError) as exc:
            self.result(
                "jwks",
                Status.FAIL,
                gettext(
                    "The JWKS at %(url)s holds a key that cannot be read (%(error)s).",
                    url=url,
                    error=type(exc).__name__,
                ),
            )
            return
        kinds = sorted(
            {f"{k.get('kty')}" + (f" {error_code(k.get('alg'))}" if error_code(k.get("alg")) else "") for k in usable}
        )
        self.result(
            "jwks",
            Status.PASS,
            gettext(
                "%(count)s signing key(s) (%(kinds)s) at %(url)s.", count=len(usable), kinds=", ".join(kinds), url=url
            ),
        )

    def response_type(self) -> None:
        assert self.document is not None
        types = self.document.get("response_types_supported")
        if not isinstance(types, list):
            self.result(
                "response_type",
                Status.WARN,
                gettext("The provider does not list response_types_supported; this app uses response_type=code."),
            )
        elif "code" in types:
            self.result("response_type", Status.PASS, gettext("The provider supports the authorization code flow."))
        else:
            self.result(
                "response_type",
                Status.FAIL,
                gettext(
                    "The provider does not offer response_type=code (it lists %(listed)s); this app needs the "
                    "authorization code flow.",
                    listed=_listed(types),
                ),
            )

    def pkce(self) -> None:
        assert self.document is not None
        methods = self.document.get("code_challenge_methods_supported")
        public = self.settings.is_public_client
        if isinstance(methods, list) and "S256" in methods:
            self.result("pkce", Status.PASS, gettext("The provider supports PKCE with S256, which every sign-in uses."))
        elif isinstance(methods, list):
            listed = _listed(methods)
            if public:
                self.result(
                    "pkce",
                    Status.FAIL,
                    gettext(
                        "The provider lists only %(listed)s for PKCE, not S256. A public client (no secret) depends "
                        "on PKCE S256: enable it at the provider, or use a confidential client with a secret.",
                        listed=listed,
                    ),
                )
            else:
                self.result(
                    "pkce",
                    Status.WARN,
                    gettext(
                        "The provider lists only %(listed)s for PKCE, not S256. Every sign-in sends an S256 "
                        "challenge; the provider may ignore it, and then only the client secret protects the code.",
                        listed=listed,
                    ),
                )
        else:
            self.result(
                "pkce",
                Status.WARN,
                gettext(
                    "The provider does not say whether it supports PKCE (no code_challenge_methods_supported). "
                    "Every sign-in sends an S256 challenge; most providers accept it without listing it, but a "
                    "public client depends on it: use Test sign-in to confirm."
                )
                if public
                else gettext(
                    "The provider does not say whether it supports PKCE (no code_challenge_methods_supported). "
                    "Every sign-in sends an S256 challenge; most providers accept it without listing it."
                ),
            )

    def scopes(self) -> None:
        assert self.metadata is not None
        requested = requested_scopes(self.settings, self.metadata)
        supported = self.metadata.scopes_supported
        shown = " ".join(requested)
        if supported is None:
            self.result(
                "scopes",
                Status.SKIP,
                gettext(
                    "The provider does not list its scopes, so this cannot be checked; requesting %(scopes)s.",
                    scopes=shown,
                ),
            )
            return
        missing = [s for s in requested if s not in supported]
        if "openid" in missing:
            self.result(
                "scopes",
                Status.FAIL,
                gettext(
                    "The provider does not list the openid scope: %(consequence)s.",
                    consequence=SCOPE_CONSEQUENCES["openid"],
                ),
            )
            return
        if missing:
            effects = "; ".join(
                f"{s}: {SCOPE_CONSEQUENCES.get(s) or gettext('the provider may refuse the sign-in')}" for s in missing
            )
            self.result(
                "scopes",
                Status.WARN,
                gettext(
                    "Requesting %(scopes)s, but the provider does not list %(missing)s (%(effects)s). Remove them "
                    "from Scopes (or leave Scopes empty for automatic) unless the provider accepts them anyway.",
                    scopes=shown,
                    missing=", ".join(missing),
                    effects=effects,
                ),
            )
            return
        if "groups" not in requested and "groups" not in supported:
            uses_groups = self.settings.group_sync != "disabled" or bool(self.settings.allowed_groups)
            note = gettext(
                "Requesting %(scopes)s; the provider offers no groups scope, so %(consequence)s unless it puts a "
                "groups claim into the tokens anyway (Test sign-in shows the claims).",
                scopes=shown,
                consequence=SCOPE_CONSEQUENCES["groups"],
            )
            self.result("scopes", Status.WARN if uses_groups else Status.PASS, note)
            return
        self.result(
            "scopes", Status.PASS, gettext("Requesting %(scopes)s; the provider supports all of them.", scopes=shown)
        )

    def client_auth(self) -> None:
        assert self.metadata is not None
        settings = self.settings
        if not settings.client_id:
            self.result("client_auth", Status.SKIP, gettext("Enter the Client ID first."))
            return
        if settings.secret_unreadable and not settings.client_secret:
            self.result(
                "client_auth",
                Status.FAIL,
                gettext("The stored Client Secret cannot be decrypted (the app's SECRET_KEY changed): enter it again."),
            )
            return
        method = token_auth_method(settings, self.metadata)
        advertised = self.metadata.token_auth_methods
        note = ""
        if "token_endpoint_auth_methods_supported" in self.metadata.raw and method not in advertised:
            note = " " + gettext(
                "Note: the provider lists %(advertised)s, not %(method)s.",
                advertised=", ".join(advertised),
                method=method,
            )
        data = {
            "grant_type": "authorization_code",
            "code": "booklore-oidc-test-connection-" + generate_token(16),
            "redirect_uri": self.redirect_uri,
            "code_verifier": generate_token(64),
        }
        try:
            response = self.send(
                "POST",
                self.metadata.token_endpoint,
                data=data,
                auth=client_auth(settings, method),
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            self.result(
                "client_auth",
                Status.FAIL,
                gettext(
                    "Cannot reach the token endpoint %(url)s: %(problem)s.",
                    url=shown_url(self.metadata.token_endpoint),
                    problem=self.network_problem(exc),
                ),
            )
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        # Only the error code is repeated, never error_description: it is the provider's text.
        error = error_code(body.get("error"))
        said = f"{error}, HTTP {response.status_code}" if error else f"HTTP {response.status_code}"
        public = settings.is_public_client
        if error == "invalid_client" or (error is None and response.status_code == 401):
            if public:
                message = gettext(
                    "The provider refused the Client ID without a secret (%(said)s). If this is a public client, "
                    "switch Public Client on at the provider; otherwise enter the Client Secret. Also copy the "
                    "Client ID fresh from the provider.",
                    said=said,
                )
            else:
                message = gettext(
                    "The provider refused the Client ID or the Client Secret (%(said)s). Either one is wrong (copy "
                    "both fresh from the provider), or the client authentication does not match: this app sends the "
                    "secret with %(method)s, and a client the provider registered as public (no secret) refuses any "
                    "secret. For a public client, clear the Client Secret here; otherwise set Client authentication "
                    "to the method the provider expects.",
                    said=said,
                    method=method,
                )
            self.result("client_auth", Status.FAIL, message + note)
        elif error == "invalid_grant":
            accepted = (
                gettext(
                    "The token endpoint accepted the client as a public client (PKCE, no secret); it refused the "
                    "made-up code (invalid_grant), as expected."
                )
                if public
                else gettext(
                    "The token endpoint accepted the client with the secret (%(method)s); it refused the made-up "
                    "code (invalid_grant), as expected.",
                    method=method,
                )
            )
            self.result("client_auth", Status.PASS, accepted + note)
        elif error == "unauthorized_client":
            cause = (
                ""
                if public
                else " "
                + gettext(
                    "This is also what a provider answers when it registered the client as public (no secret) and "
                    "this app sends a secret (%(method)s): then clear the Client Secret here, or make the client "
                    "confidential at the provider.",
                    method=method,
                )
            )
            self.result(
                "client_auth",
                Status.FAIL,
                gettext(
                    "The provider does not let this client use the authorization code grant (%(said)s); enable it "
                    "for the client at the provider.",
                    said=said,
                )
                + cause
                + note,
            )
        else:
            self.result(
                "client_auth",
                Status.WARN,
                gettext(
                    "The token endpoint answered %(said)s to a made-up code, so it is unclear whether it accepts "
                    "the client; use Test sign-in to be sure.",
                    said=said,
                )
                + note,
            )

    def authorize(self) -> None:
        assert self.metadata is not None
        settings = self.settings
        if not settings.client_id:
            self.result("authorize", Status.SKIP, gettext("Enter the Client ID first."))
            return
        params = [
            ("response_type", "code"),
            ("client_id", settings.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", " ".join(requested_scopes(settings, self.metadata))),
            ("state", "booklore-oidc-test-" + generate_token(16)),
            ("nonce", generate_token(24)),
            ("code_challenge", create_s256_code_challenge(generate_token(64))),
            ("code_challenge_method", "S256"),
            ("prompt", "none"),
        ]
        url = add_params_to_uri(self.metadata.authorization_endpoint, params)
        try:
            response = self.send("GET", url, headers={"Accept": "text/html"})
        except requests.RequestException as exc:
            self.result(
                "authorize",
                Status.FAIL,
                gettext(
                    "Cannot reach the authorization endpoint %(url)s: %(problem)s.",
                    url=shown_url(self.metadata.authorization_endpoint),
                    problem=self.network_problem(exc),
                ),
            )
            return
        status = response.status_code
        redirect = self.redirect_uri
        if status in (301, 302, 303, 307, 308):
            location = urljoin(self.metadata.authorization_endpoint, response.headers.get("Location", ""))
            if _same_endpoint(location, redirect):
                answer = _answer(location)
                error = answer.get("error")
                if error is not None:
                    error = error_code(error) or "an error"
                if error is None or error in _INTERACTION_ERRORS:
                    said = (
                        gettext("it answered %(error)s, as expected without a signed-in browser", error=error)
                        if error
                        else gettext("it issued a code")
                    )
                    self.result(
                        "authorize",
                        Status.PASS,
                        gettext(
                            "The provider accepts the Client ID and sends browsers back to %(redirect)s (%(said)s).",
                            redirect=redirect,
                            said=said,
                        ),
                    )
                else:
                    self.result(
                        "authorize",
                        Status.WARN,
                        gettext(
                            "The provider accepts the Client ID and the Redirect URI, but answered %(error)s.",
                            error=error,
                        )
                        + " "
                        + _authorize_advice(error),
                    )
                return
            self.result(
                "authorize",
                Status.WARN,
                gettext(
                    "The provider sent the browser to %(location)s instead of back to %(redirect)s; it may be "
                    "showing an error there. If sign-in fails, compare the Callback URL registered at the provider "
                    "with the Redirect URI in the reference panel.",
                    location=shown_url(location) or gettext("another address"),
                    redirect=redirect,
                ),
            )
            return
        if 400 <= status < 500:
            # The error page is the provider's text, possibly much more than an error: not quoted.
            self.result(
                "authorize",
                Status.FAIL,
                gettext(
                    "The provider refused the Client ID or the Redirect URI (HTTP %(status)s). Register exactly "
                    "%(redirect)s as a Callback URL at the provider, and copy the Client ID fresh from it; the "
                    "provider's own log or admin page says which of the two it refused.",
                    status=status,
                    redirect=redirect,
                ),
            )
            return
        if status >= 500:
            self.result(
                "authorize",
                Status.FAIL,
                gettext("The authorization endpoint answered HTTP %(status)s (a provider error).", status=status),
            )
            return
        self.result(
            "authorize",
            Status.WARN,
            gettext(
                "The authorization endpoint answered HTTP %(status)s with a page instead of a redirect, so it did "
                "not say whether it accepts the Client ID and the Redirect URI. Use Test sign-in to be sure.",
                status=status,
            ),
        )

    def end_session(self) -> None:
        assert self.metadata is not None
        if self.metadata.end_session_endpoint:
            self.result(
                "end_session",
                Status.PASS,
                gettext("The provider has an end-session endpoint: signing out here also signs out there.")
                if self.settings.provider_logout
                else gettext(
                    "The provider has an end-session endpoint; switch on “Sign out of the provider too” to use it."
                ),
            )
        else:
            self.result(
                "end_session",
                Status.WARN,
                gettext(
                    "The provider has no end-session endpoint: signing out here leaves readers signed in at the "
                    "provider, so the next sign-in may not ask for a password."
                ),
            )

    def backchannel(self) -> None:
        assert self.document is not None
        if self.document.get("backchannel_logout_supported") is True:
            sid = self.document.get("backchannel_logout_session_supported") is True
            self.result(
                "backchannel",
                Status.PASS,
                gettext(
                    "The provider supports back-channel logout with session ids: register the Back-channel Logout "
                    "URI from the reference panel there."
                )
                if sid
                else gettext(
                    "The provider supports back-channel logout: register the Back-channel Logout URI from the "
                    "reference panel there."
                ),
            )
        else:
            self.result(
                "backchannel",
                Status.WARN,
                gettext(
                    "The provider does not advertise back-channel logout. Logout tokens it sends anyway are "
                    "accepted, but it may send none: then signing out at the provider ends sessions here only "
                    "through front-channel logout (below), or when they expire or the reader signs out here."
                ),
            )

    def frontchannel(self) -> None:
        assert self.document is not None
        document = self.document
        supported = document.get("frontchannel_logout_supported") is True
        with_sid = document.get("frontchannel_logout_session_supported") is True
        backchannel = document.get("backchannel_logout_supported") is True
        if supported and with_sid:
            status = Status.PASS
            message = gettext(
                "The provider supports front-channel logout with session ids: register the Front-channel Logout "
                "URI from the reference panel there, and ask for the session id (sid) if it is an option."
            )
        elif supported:
            status = Status.WARN
            message = gettext(
                "The provider supports front-channel logout but does not say it sends the session id (sid) with "
                "it; without one this app cannot tell which sessions to end, and ignores the request."
            )
        elif backchannel:
            status = Status.PASS
            message = gettext(
                "The provider does not advertise front-channel logout; back-channel logout (above) does its job."
            )
        else:
            status = Status.WARN
            message = gettext("The provider does not advertise front-channel logout either.")
        if not with_sid and document.get("backchannel_logout_session_supported") is not True:
            status = Status.WARN
            message += " " + gettext(
                "It does not say its ID tokens carry a session id (sid), so a logout started at the provider "
                "cannot reach sessions here by sid; only a back-channel logout token naming the user (sub) can."
            )
        self.result("frontchannel", status, message)

    def clock_drift(self) -> None:
        if not self.date_header:
            self.result(
                "clock", Status.SKIP, gettext("The provider sent no Date header, so its clock cannot be compared.")
            )
            return
        try:
            provider_time = parsedate_to_datetime(self.date_header).timestamp()
        except (TypeError, ValueError):
            self.result("clock", Status.SKIP, gettext("The provider's Date header cannot be read."))
            return
        drift = provider_time - self.discovery_midpoint
        seconds = abs(round(drift))
        skew = self.settings.clock_skew
        if abs(drift) > skew:
            drifted = (
                gettext(
                    "The provider's clock is about %(seconds)s s ahead of this server's; Clock skew allows %(skew)s s.",
                    seconds=seconds,
                    skew=skew,
                )
                if drift > 0
                else gettext(
                    "The provider's clock is about %(seconds)s s behind this server's; Clock skew allows %(skew)s s.",
                    seconds=seconds,
                    skew=skew,
                )
            )
            self.result(
                "clock",
                Status.WARN,
                drifted
                + " "
                + gettext(
                    "Tokens may be refused as expired or not yet valid: fix the time (NTP) on the machine that is "
                    "off, or raise Clock skew."
                ),
            )
        else:
            self.result(
                "clock",
                Status.PASS,
                gettext(
                    "The clocks agree within %(seconds)s s (Clock skew allows %(skew)s s).",
                    seconds=max(seconds, 1),
                    skew=skew,
                ),
            )

    # -- the order ---------------------------------------------------------------------------

    def run(self) -> list[CheckResult]:
        steps: list[tuple[str, Callable[[], None], Callable[[], bool]]] = [
            ("discovery", self.discovery, lambda: True),
            ("issuer", self.issuer, lambda: self.document is not None),
            ("endpoints", self.endpoints, lambda: self.document is not None),
            ("jwks", self.jwks, lambda: self.metadata is not None),
            ("response_type", self.response_type, lambda: self.document is not None),
            ("pkce", self.pkce, lambda: self.document is not None),
            ("scopes", self.scopes, lambda: self.metadata is not None),
            ("client_auth", self.client_auth, lambda: self.metadata is not None),
            ("authorize", self.authorize, lambda: self.metadata is not None),
            ("end_session", self.end_session, lambda: self.metadata is not None),
            ("backchannel", self.backchannel, lambda: self.document is not None),
            ("frontchannel", self.frontchannel, lambda: self.document is not None),
            ("clock", self.clock_drift, lambda: self.document is not None),
        ]
        for key, check, possible in steps:
            if self.blocked_by is not None:
                break
            if not possible():
                needs = (
                    gettext("Not checked: needs the discovery document.")
                    if self.document is None
                    else gettext("Not checked: needs the endpoints.")
                )
                self.result(key, Status.SKIP, needs)
                continue
            try:
                check()
            except _OutOfTime:
                self.result(
                    key,
                    Status.SKIP,
                    gettext(
                        "Not checked: Test Connection stops after %(seconds)s s in total.", seconds=f"{self.budget:g}"
                    ),
                )
            if key in ("discovery", "issuer") and self.results[key].status == Status.FAIL:
                # Nothing the provider says can be trusted yet, and nothing more is sent to it.
                self.blocked_by = key
        results = [self.results[key] for key, _ in CHECKS if key in self.results]
        if self.blocked_by is not None:
            skipped = (
                gettext(
                    "Remaining checks skipped: fix the discovery check above first. Nothing more was sent to the "
                    "provider."
                )
                if self.blocked_by == "discovery"
                else gettext("Remaining checks skipped: fix the issuer first. Nothing more was sent to the provider.")
            )
            results.append(CheckResult(REMAINING[0], str(REMAINING[1]), Status.SKIP, skipped))
        return results


def run_checks(
    settings: Settings,
    transport: Transport,
    redirect_uri: str,
    *,
    budget: float = TOTAL_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> list[CheckResult]:
    """Run every check of SPEC §9 against ``settings``; one result per entry of :data:`CHECKS`."""
    return _Run(settings, transport, redirect_uri, budget=budget, clock=clock, wall_clock=wall_clock).run()


def _same_endpoint(url: str, redirect_uri: str) -> bool:
    a, b = urlsplit(url), urlsplit(redirect_uri)
    return (a.scheme.lower(), a.netloc.lower(), a.path) == (b.scheme.lower(), b.netloc.lower(), b.path)


def _answer(location: str) -> Mapping[str, str]:
    """The parameters of the provider's answer, from the query or (form_post aside) the fragment."""
    parts = urlsplit(location)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if not params.get("error") and not params.get("code"):
        params.update({k: v[0] for k, v in parse_qs(parts.fragment).items()})
    return params


def _authorize_advice(error: str) -> str:
    if error == "invalid_scope":
        return gettext(
            "A requested scope is not allowed for this client: adjust Scopes, or allow them at the provider."
        )
    if error == "unauthorized_client":
        return gettext("The client may not use the authorization code flow: enable it at the provider.")
    if error == "unsupported_response_type":
        return gettext("The provider does not allow response_type=code for this client.")
    if error == "access_denied":
        return gettext("The provider denied access; check which users and groups may use this client there.")
    return gettext("Use Test sign-in to see whether a real sign-in works.")


def _listed(values: list[Any]) -> str:
    """A provider's list of names, for a message: plain tokens only, at most ten."""
    names = [name for name in map(error_code, values) if name]
    more = len(values) - len(names[:10])
    if not values:
        return gettext("nothing")
    shown = ", ".join(names[:10])
    return gettext("%(names)s and %(count)s more", names=shown, count=more) if more else shown


def site_checks(settings: Settings, *, session_cookie_secure: bool, secret_withheld: bool) -> list[CheckResult]:
    """Checks of this app's own side, shown after the provider's: the session cookie behind
    https, and a stored secret left out because the Issuer URI changed (SPEC §5.10, §5.12)."""
    results = []
    if secret_withheld:
        results.append(
            CheckResult(
                "secret",
                gettext("Client Secret"),
                Status.WARN,
                gettext(
                    "The Issuer URI differs from the saved one, so the stored Client Secret was not sent: it goes "
                    "only to the provider it was saved for. The checks ran as for a public client; type the secret "
                    "again to test a confidential client."
                ),
            )
        )
    if settings.public_url.startswith("https://") and not session_cookie_secure:
        results.append(
            CheckResult(
                "cookie",
                gettext("Session cookie over HTTPS"),
                Status.WARN,
                gettext(
                    "The Public URL is https, but the session cookie is not marked Secure: set "
                    "SESSION_COOKIE_SECURE = True (and REMEMBER_COOKIE_SECURE = True) in the app's configuration."
                ),
            )
        )
    return results
