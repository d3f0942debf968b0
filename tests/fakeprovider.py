"""A programmable fake OpenID Connect provider for tests.

It runs a real HTTP server (werkzeug, threaded) on a loopback address with an
OS-chosen port in a daemon thread.  The authorize endpoint auto-approves the
"current" user (see :meth:`FakeProvider.login_as`); there is no login page.
Every knob is a plain attribute; :meth:`FakeProvider.reset` restores defaults
while keeping clients, users and keys.

Keys and signatures use joserfc.  Tokens are serialized by hand (base64url
header/payload + joserfc's algorithm implementation for the signature) so that
tests can put anything into the header or claims, including values a strict
JOSE library would refuse to produce (e.g. ``alg: none``).
"""

from __future__ import annotations

import base64
import collections
import copy
import dataclasses
import hashlib
import hmac
import json
import secrets
import threading
import time
from email.utils import formatdate
from typing import Any, Self
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import requests
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import JWSRegistry
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

__all__ = ["FakeProvider"]

#: Claims that are protocol claims, i.e. stay in the ID token when
#: ``claims_in_id_token`` is False.
PROTOCOL_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nonce", "auth_time", "at_hash", "azp", "sid"}
)
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


def b64url(data: bytes) -> str:
    """Base64url-encode without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_b64(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated with ``update``; a value of None removes the key."""
    out = dict(base)
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _hash_for_alg(alg: str) -> Any:
    """The hash function matching a JWS alg (OIDC Core 3.1.3.6); SHA-256 for "none"."""
    if alg == "EdDSA" or alg.endswith("512"):
        return hashlib.sha512
    if alg.endswith("384"):
        return hashlib.sha384
    return hashlib.sha256


def at_hash(access_token: str, alg: str) -> str:
    """``at_hash`` per OIDC Core 3.1.3.6: base64url of the left half of the hash."""
    digest = _hash_for_alg(alg)(access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


@dataclasses.dataclass
class _Client:
    client_id: str
    secret: str | None
    auth_method: str
    redirect_uris: list[str]
    require_pkce: bool


@dataclasses.dataclass
class _Grant:
    """What an authorization code is bound to."""

    client_id: str
    redirect_uri: str
    sub: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    auth_time: int
    sid: str
    used: bool = False


class _Handler(WSGIRequestHandler):
    """Request handler that shifts the Date header and keeps the log quiet."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """Date header value: now + the provider's ``date_offset``."""
        provider: FakeProvider = self.server.fake_provider  # type: ignore[attr-defined]
        return formatdate(time.time() + provider.date_offset, usegmt=True)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Do not log every request (errors are still logged)."""


class FakeProvider:
    """A fake OpenID Connect provider served over real HTTP on loopback."""

    def __init__(self, *, host: str = "127.0.0.1", issuer_suffix: str = "") -> None:
        """Prepare the provider (one RSA key, no clients or users); call :meth:`start`."""
        self.host = host
        self.issuer_suffix = issuer_suffix
        self.issuer = ""
        self.base_url = ""
        self._prefix = issuer_suffix.rstrip("/")
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, _Client] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._current: tuple[str, str, int] | None = None  # (sub, sid, auth_time)
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[str, str, str]] = {}  # access_token -> (sub, client_id, scope)
        self._keys: dict[str, RSAKey] = {}
        self._published: list[str] = []
        self._signing_kid = ""
        self.rotate_keys()
        self._url_map = Map(
            [
                Rule(f"{self._prefix}/.well-known/openid-configuration", endpoint="discovery"),
                Rule(f"{self._prefix}/jwks", endpoint="jwks"),
                Rule(f"{self._prefix}/authorize", endpoint="authorize", methods=["GET", "POST"]),
                Rule(f"{self._prefix}/token", endpoint="token", methods=["POST"]),
                Rule(f"{self._prefix}/userinfo", endpoint="userinfo", methods=["GET", "POST"]),
                Rule(f"{self._prefix}/end_session", endpoint="end_session", methods=["GET", "POST"]),
            ],
            strict_slashes=False,
        )
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind an OS-chosen port and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        server = make_server(self.host, 0, self._wsgi, threaded=True, request_handler=_Handler)
        server.fake_provider = self  # type: ignore[attr-defined]
        self._server = server
        self.base_url = f"http://{self.host}:{server.server_port}"
        self.issuer = f"{self.base_url}{self.issuer_suffix}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-oidc-provider", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        """Start the provider."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the provider."""
        self.stop()

    def url(self, endpoint: str) -> str:
        """Absolute URL of an endpoint, e.g. ``url("token")``."""
        if endpoint == "discovery":
            return self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        return f"{self.base_url}{self._prefix}/{endpoint}"

    # ------------------------------------------------------------ clients, users

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        auth_method: str = "none",
        redirect_uris: list[str],
        require_pkce: bool = True,
    ) -> None:
        """Register a client.  ``auth_method`` is the only accepted token endpoint auth."""
        if auth_method not in AUTH_METHODS:
            raise ValueError(f"auth_method must be one of {AUTH_METHODS}")
        if auth_method != "none" and not secret:
            raise ValueError(f"{auth_method} needs a secret")
        self._clients[client_id] = _Client(
            client_id, secret, auth_method, list(redirect_uris), require_pkce
        )

    def add_user(self, sub: str, **claims: Any) -> None:
        """Register a user with the claims released in the ID token / userinfo."""
        self._users[sub] = dict(claims)

    def login_as(self, sub: str) -> None:
        """Make ``sub`` the user the authorize endpoint approves; starts a new session (new sid)."""
        if sub not in self._users:
            raise KeyError(f"unknown user {sub!r}")
        self._current = (sub, secrets.token_urlsafe(16), int(time.time()))

    @property
    def session_id(self) -> str | None:
        """The ``sid`` of the current login session (for back-channel logout tests)."""
        return self._current[1] if self._current else None

    # ------------------------------------------------------------------- state

    def reset(self) -> None:
        """Restore behaviour knobs and observations to defaults; keeps clients, users, keys."""
        self.metadata_overrides: dict[str, Any] = {}
        self.discovery_status = 200
        self.jwks_status = 200
        self.iss_parameter = True
        self.iss_value: str | None = None
        self.authorize_error: tuple[str, str] | None = None
        self.token_error: tuple[int, dict[str, Any]] | None = None
        self.token_delay = 0.0
        self.id_token_claims_update: dict[str, Any] = {}
        self.id_token_header_update: dict[str, Any] = {}
        self.id_token_alg = "RS256"
        self.id_token_signing_key: Any = None
        self.corrupt_signature = False
        self.omit_id_token = False
        self.claims_in_id_token = True
        self.userinfo_update: dict[str, Any] = {}
        self.userinfo_status = 200
        self.date_offset = 0.0
        self.calls: collections.Counter[str] = collections.Counter()
        self.last_authorize: dict[str, str] = {}
        self.last_token_request: dict[str, Any] = {}
        self.last_end_session: dict[str, str] = {}
        self.issued: list[dict[str, Any]] = []

    # -------------------------------------------------------------------- keys

    def rotate_keys(self, *, publish_new: bool = True, keep_old: bool = True) -> str:
        """Generate a new RSA-2048 signing key with a new kid and return the kid.

        ``publish_new=False`` signs with a key that is not (yet) in the JWKS;
        ``keep_old=False`` removes the previously published keys from the JWKS.
        """
        kid = f"key-{len(self._keys) + 1}-{secrets.token_hex(4)}"
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
        with self._lock:
            self._keys[kid] = key
            if not keep_old:
                self._published.clear()
            if publish_new:
                self._published.append(kid)
            self._signing_kid = kid
        return kid

    def publish_all_keys(self) -> None:
        """Put every key ever generated into the JWKS."""
        with self._lock:
            self._published = list(self._keys)

    @property
    def signing_key(self) -> RSAKey:
        """The current (private) signing key."""
        return self._keys[self._signing_kid]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS as served at ``/jwks``."""
        with self._lock:
            keys = [self._keys[kid] for kid in self._published]
        return dict(KeySet(list(keys)).as_dict(private=False))

    # ----------------------------------------------------------------- crafting

    def sign(
        self,
        claims: dict[str, Any],
        *,
        header: dict[str, Any] | None = None,
        key: Any = None,
        alg: str = "RS256",
    ) -> str:
        """Craft a compact JWS with arbitrary header/claims.

        ``header`` is merged over ``{"alg", "kid", "typ": "JWT"}`` (None removes a
        key).  ``key`` defaults to the current signing key; for HS* it may be a
        joserfc ``OctKey`` or a raw ``str``/``bytes`` secret.  ``alg="none"``
        produces ``header.payload.`` with an empty signature.
        """
        if key is None and not alg.startswith("HS"):
            key = self.signing_key
        base: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        kid = getattr(key, "kid", None)
        if kid and alg != "none":
            base["kid"] = kid
        full_header = _merge(base, header or {})
        signing_input = f"{_json_b64(full_header)}.{_json_b64(claims)}".encode("ascii")
        if alg == "none":
            return signing_input.decode() + "."
        if isinstance(key, (str, bytes)):
            # Raw HMAC secret: done directly because joserfc warns on short oct keys.
            secret = key.encode() if isinstance(key, str) else key
            signature = hmac.new(secret, signing_input, _hash_for_alg(alg)).digest()
        else:
            if key is None:
                raise ValueError(f"{alg} needs a key")
            signature = JWSRegistry(algorithms=[alg]).get_alg(alg).sign(signing_input, key)
        return f"{signing_input.decode()}.{b64url(signature)}"

    # --------------------------------------------------------------- convenience

    def authorize(self, url: str) -> str:
        """GET the authorize URL like a browser would and return the Location header."""
        with requests.Session() as session:
            session.trust_env = False  # never send loopback traffic to a proxy
            resp = session.get(url, allow_redirects=False, timeout=10)
        if resp.status_code not in (301, 302, 303, 307, 308):
            raise AssertionError(f"authorize answered {resp.status_code}: {resp.text[:200]}")
        return resp.headers["Location"]

    # ------------------------------------------------------------------- server

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        adapter = self._url_map.bind_to_environ(environ)
        try:
            endpoint, _ = adapter.match()
            with self._lock:
                self.calls[endpoint] += 1
            response = getattr(self, f"_ep_{endpoint}")(request)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    @staticmethod
    def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        response.headers.update(headers or {})
        return response

    @staticmethod
    def _html(text: str, status: int = 200) -> Response:
        return Response(f"<!doctype html><title>{text}</title><p>{text}</p>", status, mimetype="text/html")

    def _ep_discovery(self, request: Request) -> Response:
        if self.discovery_status != 200:
            return self._json({"error": "discovery unavailable"}, self.discovery_status)
        doc: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("authorize"),
            "token_endpoint": self.url("token"),
            "userinfo_endpoint": self.url("userinfo"),
            "jwks_uri": self.url("jwks"),
            "end_session_endpoint": self.url("end_session"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": sorted(
                PROTOCOL_CLAIMS
                | {"name", "preferred_username", "email", "email_verified", "groups"}
            ),
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "authorization_response_iss_parameter_supported": self.iss_parameter,
        }
        return self._json(_merge(doc, self.metadata_overrides))

    def _ep_jwks(self, request: Request) -> Response:
        if self.jwks_status != 200:
            return self._json({"error": "jwks unavailable"}, self.jwks_status)
        return self._json(self.jwks())

    def _redirect(self, redirect_uri: str, params: dict[str, str]) -> Response:
        if self.iss_value is not None:
            if self.iss_value:
                params["iss"] = self.iss_value
        elif self.iss_parameter:
            params["iss"] = self.issuer
        parts = urlsplit(redirect_uri)
        query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
        location = urlunsplit(parts._replace(query=urlencode(query)))
        return Response("", status=302, headers={"Location": location})

    def _ep_authorize(self, request: Request) -> Response:
        params = {k: v for k, v in request.values.items()}
        self.last_authorize = params
        client = self._clients.get(params.get("client_id", ""))
        if client is None:
            return self._html("unknown client", 400)
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return self._html("redirect_uri mismatch", 400)

        def error(code: str, description: str) -> Response:
            out = {"error": code, "error_description": description}
            if "state" in params:
                out["state"] = params["state"]
            return self._redirect(redirect_uri, out)

        if self.authorize_error is not None:
            return error(*self.authorize_error)
        if params.get("response_type") != "code":
            return error("unsupported_response_type", "only response_type=code is supported")
        if "openid" not in params.get("scope", "").split():
            return error("invalid_scope", "the openid scope is required")
        challenge = params.get("code_challenge")
        if client.require_pkce and not challenge:
            return error("invalid_request", "code_challenge required")
        if challenge and params.get("code_challenge_method") != "S256":
            return error("invalid_request", "code_challenge_method must be S256")
        current = self._current
        if params.get("login_as") in self._users:
            # The browser names who signs in at the provider: many people at once (a storm
            # of first sign-ins) each get a session of their own, whatever login_as() says.
            current = (params["login_as"], secrets.token_urlsafe(16), int(time.time()))
        if current is None:
            return error("login_required", "no user is logged in")
        sub, sid, auth_time = current
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                client.client_id, redirect_uri, sub, params.get("scope", ""),
                params.get("nonce"), challenge, auth_time, sid,
            )
        out = {"code": code}
        if "state" in params:
            out["state"] = params["state"]
        return self._redirect(redirect_uri, out)

    def _authenticate(self, request: Request) -> tuple[_Client | None, str]:
        """Identify and authenticate the client; returns (client or None, method used)."""
        form = request.form
        basic: tuple[str, str] | None = None
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                raw_id, _, raw_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
                basic = (unquote_plus(raw_id), unquote_plus(raw_secret))  # RFC 6749 2.3.1
            except ValueError:
                return None, "client_secret_basic"
        if basic is not None:
            used = "client_secret_basic"
        elif "client_secret" in form:
            used = "client_secret_post"
        else:
            used = "none"
        client_id = basic[0] if basic else form.get("client_id", "")
        if basic and "client_id" in form and form["client_id"] != basic[0]:
            return None, used
        client = self._clients.get(client_id)
        if client is None:
            return None, used
        if client.auth_method == "none":
            # Public client: a client_id is enough (it may come via Basic with an
            # empty password, alongside form client_id); a non-empty secret is refused.
            ok = not form.get("client_secret") and not (basic and basic[1])
            return (client if ok else None), used
        if basic and "client_secret" in form:
            return None, used  # RFC 6749 2.3: only one authentication method per request
        if used != client.auth_method:
            return None, used
        presented = basic[1] if basic else form.get("client_secret", "")
        ok = hmac.compare_digest(presented.encode(), (client.secret or "").encode())
        return (client if ok else None), used

    def _ep_token(self, request: Request) -> Response:
        client, used = self._authenticate(request)
        wanted = ("Authorization", "Content-Type", "Accept", "User-Agent")
        self.last_token_request = {
            **request.form.to_dict(),
            "auth_method_used": used,
            "headers": {h: request.headers[h] for h in wanted if h in request.headers},
        }
        if self.token_delay:
            time.sleep(self.token_delay)
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if self.token_error is not None:
            status, body = self.token_error
            return self._json(body, status, no_store)
        if client is None:
            return self._json(
                {"error": "invalid_client"}, 401, {**no_store, "WWW-Authenticate": 'Basic realm="fake-oidc"'}
            )

        def invalid_grant(description: str) -> Response:
            return self._json({"error": "invalid_grant", "error_description": description}, 400, no_store)

        if request.form.get("grant_type") != "authorization_code":
            return self._json({"error": "unsupported_grant_type"}, 400, no_store)
        code = request.form.get("code", "")
        with self._lock:
            grant = self._codes.get(code)
            if grant is None or grant.used:
                return invalid_grant("unknown or already used code")
            grant.used = True  # any redemption attempt consumes the code
        if grant.client_id != client.client_id:
            return invalid_grant("code was issued to another client")
        if request.form.get("redirect_uri") != grant.redirect_uri:
            return invalid_grant("redirect_uri does not match")
        verifier = request.form.get("code_verifier")
        if grant.code_challenge is not None:
            expected = b64url(hashlib.sha256((verifier or "").encode("ascii", "replace")).digest())
            if not verifier or not hmac.compare_digest(expected, grant.code_challenge):
                return invalid_grant("PKCE verification failed")
        elif verifier:
            return invalid_grant("code_verifier sent but no code_challenge was")

        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[access_token] = (grant.sub, client.client_id, grant.scope)
        claims, id_token = self._make_id_token(grant, client, access_token)
        response: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": grant.scope,
        }
        if not self.omit_id_token:
            response["id_token"] = id_token
        self.issued.append({
            "code": code, "client_id": client.client_id, "access_token": access_token,
            "id_token": response.get("id_token"), "id_token_claims": claims,
        })
        return self._json(response, headers=no_store)

    def _make_id_token(self, grant: _Grant, client: _Client, access_token: str) -> tuple[dict[str, Any], str]:
        now = int(time.time())
        alg = self.id_token_alg
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": grant.sub, "aud": client.client_id,
            "exp": now + 300, "iat": now, "auth_time": grant.auth_time,
            "at_hash": at_hash(access_token, alg), "sid": grant.sid,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if self.claims_in_id_token:
            user = self._users.get(grant.sub, {})
            claims.update({k: v for k, v in user.items() if k not in PROTOCOL_CLAIMS})
        claims = _merge(claims, self.id_token_claims_update)
        key = self.id_token_signing_key
        if key is None:
            key = client.secret if alg.startswith("HS") else self.signing_key
        if key is None:
            raise ValueError(f"id_token_alg={alg} needs a client secret or id_token_signing_key")
        token = self.sign(claims, header=self.id_token_header_update, key=key, alg=alg)
        if self.corrupt_signature and alg != "none":
            head, payload, sig = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            raw[0] ^= 0x01
            token = f"{head}.{payload}.{b64url(bytes(raw))}"
        return copy.deepcopy(claims), token

    def _ep_userinfo(self, request: Request) -> Response:
        if self.userinfo_status != 200:
            return self._json({"error": "server_error"}, self.userinfo_status)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        entry = self._tokens.get(token)
        if entry is None:
            return self._json(
                {"error": "invalid_token"}, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        sub = entry[0]
        body = {"sub": sub, **{k: v for k, v in self._users.get(sub, {}).items() if k != "sub"}}
        return self._json(_merge(body, self.userinfo_update))

    def _ep_end_session(self, request: Request) -> Response:
        self.last_end_session = {k: v for k, v in request.values.items()}
        return self._html("signed out")

