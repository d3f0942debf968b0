"""A light OpenID Connect provider for benchmarks, served over HTTP on loopback in a thread.

Unlike ``tests/fakeprovider.py`` it keeps no history: an authorization code is removed when it
is redeemed and access tokens live in a bounded map, so the process's memory over 10,000
sign-ins measures the relying party, not the provider. It signs RS256 ID tokens (with
``at_hash``, ``nonce``, ``sid``), requires PKCE S256 and answers with the RFC 9207 ``iss``
parameter, like Pocket ID. The authorize endpoint approves :attr:`LightProvider.current_user`
at once (no login page), or the user a ``login_as`` query parameter names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Request, Response

#: access tokens remembered for the userinfo endpoint; older ones are forgotten
MAX_TOKENS = 512


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _Grant:
    client_id: str
    redirect_uri: str
    sub: str
    nonce: str | None
    challenge: str


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LightProvider:
    def __init__(self, *, client_id: str, redirect_uris: list[str], host: str = "127.0.0.1") -> None:
        self.host = host
        self.client_id = client_id
        self.redirect_uris = set(redirect_uris)
        self.users: dict[str, dict[str, Any]] = {}
        self.current_user = ""
        #: advertise back-channel logout (the relying party then checks sessions on each request)
        self.backchannel_logout = False
        self.issuer = ""
        self._key = RSAKey.generate_key(2048, parameters={"kid": "bench-1", "use": "sig", "alg": "RS256"})
        self._jwks = KeySet([self._key]).as_dict(private=False)
        self._codes: dict[str, _Grant] = {}
        self._tokens: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def add_user(self, sub: str, **claims: Any) -> None:
        self.users[sub] = claims

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        server = make_server(self.host, 0, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self._server = server
        self.issuer = f"http://{self.host}:{server.server_port}"
        self._thread = threading.Thread(target=server.serve_forever, name="bench-provider", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def outstanding(self) -> int:
        """Codes issued and not redeemed (a benchmark that leaves many behind is broken)."""
        return len(self._codes)

    # -- endpoints ---------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path
        handler = {
            "/.well-known/openid-configuration": self._discovery,
            "/jwks": self._jwks_endpoint,
            "/authorize": self._authorize,
            "/token": self._token,
            "/userinfo": self._userinfo,
        }.get(path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status, mimetype="application/json", headers={"Cache-Control": "no-store"})

    def _discovery(self, request: Request) -> Response:
        return self._json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "userinfo_endpoint": self.issuer + "/userinfo",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "groups"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code"],
                "authorization_response_iss_parameter_supported": True,
                "backchannel_logout_supported": self.backchannel_logout,
                "backchannel_logout_session_supported": self.backchannel_logout,
            }
        )

    def _jwks_endpoint(self, request: Request) -> Response:
        return self._json(self._jwks)

    def _authorize(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != self.client_id or args.get("redirect_uri") not in self.redirect_uris:
            return Response("unknown client or redirect_uri", 400)
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return Response("PKCE S256 required", 400)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                self.client_id,
                args["redirect_uri"],
                # A browser may name who signs in (many people at once); else the current user.
                args["login_as"] if args.get("login_as") in self.users else self.current_user,
                args.get("nonce"),
                args["code_challenge"],
            )
        query = urlencode({"code": code, "state": args.get("state", ""), "iss": self.issuer})
        return Response("", 302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def _token(self, request: Request) -> Response:
        form = request.form
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or form.get("client_id") != grant.client_id:
            return self._json({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        computed = _b64url(hashlib.sha256(verifier.encode()).digest())
        if form.get("redirect_uri") != grant.redirect_uri or not hmac.compare_digest(computed, grant.challenge):
            return self._json({"error": "invalid_grant"}, 400)
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[access_token] = grant.sub
            while len(self._tokens) > MAX_TOKENS:
                self._tokens.popitem(last=False)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": grant.sub,
            "aud": grant.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "sid": secrets.token_urlsafe(12),
            "at_hash": _b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
            **self.users[grant.sub],
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        id_token = jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims, self._key)
        return self._json(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        )

    def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            sub = self._tokens.get(token)
        if sub is None:
            return self._json({"error": "invalid_token"}, 401)
        return self._json({"sub": sub, **self.users[sub]})


class InProcessAdapter(BaseAdapter):
    """A :mod:`requests` transport that hands each request to a WSGI app in the calling
    thread: no socket, no server thread. Mounted on the provider's URL, it leaves the relying
    party's own work as the only work, which is what a memory series of 10,000 sign-ins needs
    to finish in reasonable time."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")}
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        environ = EnvironBuilder(
            method=request.method,
            base_url=f"{parts.scheme}://{parts.netloc}",
            path=parts.path,
            query_string=parts.query,
            headers=headers,
            content_type=request.headers.get("Content-Type"),
            data=body,
        ).get_environ()
        app_iter, status, response_headers = run_wsgi_app(self.app, environ, buffered=True)
        response = requests.Response()
        response.status_code = int(status.split(" ", 1)[0])
        response.reason = status.split(" ", 1)[1]
        response.headers = CaseInsensitiveDict(response_headers.items())
        response._content = b"".join(app_iter)
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass
