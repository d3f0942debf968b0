"""The security contract of the sign-in (SPEC §5), one bad input per test, against the fake provider.

Every refusal is checked against the whole of §10: the reader is not signed in, nothing was
written, the right status and error code, a page that says why, and, where §5 says to stop
before the token request (state problems, a provider error, iss problems), no token request.
The few tolerated cases (one trailing slash, no ``kid``, key rotation, ...) are positive tests.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from fakeprovider import FakeProvider, b64url
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from helpers import CLIENT_ID, SignIn, configure, identity_count, me, refusal_detail, user_count
from joserfc.jwk import ECKey, RSAKey
from werkzeug.serving import make_server

from example_app.models import db
from flask_booklore_oidc.models import Identity, Transaction

pytestmark = pytest.mark.both_databases

BROWSER_KEY = "_booklore_oidc_browser"  # the session key binding pending sign-ins to a browser
EVIL = "http://evil.example"  # only ever a string in a document or a URL; never contacted


# -- helpers ------------------------------------------------------------------------------------


def whoami(client: FlaskClient) -> dict[str, Any] | None:
    """``me(client)``, but never a stale answer: pytest-flask keeps one app context (and ``g``)
    for the whole test, and Flask-Login caches the current user in ``g._login_user``, so after a
    sign-in every later request, from any client, would otherwise look signed in."""
    if has_app_context():
        g.pop("_login_user", None)
    return me(client)


def page_text(response: Any) -> str:
    """The response body with HTML entities decoded, so details quoting values read as written."""
    return html.unescape(response.get_data(as_text=True))


def assert_refused(
    app: Flask, client: FlaskClient, response: Any, status: int, code: str, detail: str, *, users: int = 0
) -> None:
    """SPEC §10: an error page with the status, the code and why; nobody signed in; nothing
    written (``users`` users and identities exist, i.e. those of earlier, legitimate sign-ins)."""
    text = page_text(response)
    assert response.status_code == status, text
    assert code in text
    assert detail in refusal_detail(app, text), text
    assert whoami(client) is None
    assert user_count(app) == users
    assert identity_count(app) == users


def assert_signed_in(client: FlaskClient, response: Any, location: str = "/") -> None:
    assert response.status_code == 302, page_text(response)
    assert response.headers["Location"] == location
    assert whoami(client)["username"] == "alice"


def callback_path(signin: SignIn, next: str | None = None) -> str:
    """Start a sign-in and let the provider answer; returns our callback path with its query."""
    return signin.provider_answer(signin.start(next))


def with_query(path: str, **changes: str | None) -> str:
    """``path`` with query parameters replaced (a value of None removes the parameter)."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in changes]
    query += [(k, v) for k, v in changes.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def transaction_count(app: Flask) -> int:
    with app.app_context():
        return db.session.query(Transaction).count()


def browser_key(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return str(session[BROWSER_KEY])


def now() -> int:
    return int(time.time())


@pytest.fixture
def keys_restored(op: FakeProvider) -> Iterator[None]:
    """For tests that sign with a key the JWKS does not publish: the provider lives for the
    whole session, so publish every key again afterwards."""
    yield
    op.publish_all_keys()


@dataclass
class AttackerSite:
    """An attacker's RSA key pair, with the kid of the provider's signing key, and a loopback
    web server offering its public JWKS (which a ``jku`` header would point at)."""

    key: RSAKey
    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture
def attacker_site(op: FakeProvider) -> Iterator[AttackerSite]:
    key = RSAKey.generate_key(2048, parameters={"kid": op.signing_key.kid, "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [key.as_dict(private=False)]}).encode()
    hits: list[str] = []

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        hits.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield AttackerSite(key, f"http://127.0.0.1:{server.server_port}/jwks.json", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- §5.1 discovery -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reported",
    [
        pytest.param(EVIL, id="another-host"),
        pytest.param("{issuer}/realms/other", id="extra-path"),
        pytest.param("{issuer}//", id="two-trailing-slashes"),
    ],
)
def test_start_refuses_discovery_issuer_mismatch(app, client, op, reported):
    op.metadata_overrides = {"issuer": reported.format(issuer=op.issuer)}

    response = client.get("/login/oidc")

    assert "Location" not in response.headers  # stopped before any redirect
    assert_refused(app, client, response, 502, "issuer_mismatch", "The provider reports the issuer")
    assert op.calls["discovery"] == 1
    assert op.calls["authorize"] == 0 and op.calls["token"] == 0
    assert transaction_count(app) == 0


@pytest.mark.parametrize("slash_on", ["document", "configuration"])
def test_discovery_issuer_differing_by_one_trailing_slash_is_accepted(app, client, op, signin, slash_on):
    if slash_on == "document":
        # A provider whose issuer ends in "/" says so everywhere: discovery, iss parameter, ID token.
        issuer = op.issuer + "/"
        op.metadata_overrides = {"issuer": issuer}
        op.iss_value = issuer
        op.id_token_claims_update = {"iss": issuer}
    else:
        issuer = op.issuer
        configure(app, issuer_uri=op.issuer + "/")

    response = signin()

    assert_signed_in(client, response)
    with app.app_context():  # from then on the document's issuer is the exact value used
        assert [i.issuer for i in db.session.query(Identity)] == [issuer]


# -- §5.2 authorization request -----------------------------------------------------------------


def test_authorization_request_uses_pkce_s256_with_the_verifier_sent_to_the_token_endpoint(client, op, signin):
    authorize_url = signin.start()
    query = parse_qs(urlsplit(authorize_url).query)

    response = client.get(signin.provider_answer(authorize_url))

    assert_signed_in(client, response)
    verifier = op.last_token_request["code_verifier"]
    assert 43 <= len(verifier) <= 128  # RFC 7636 §4.1
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [b64url(hashlib.sha256(verifier.encode("ascii")).digest())]
    assert query["code_challenge"] != [verifier]  # never plain
    assert verifier not in authorize_url


# -- §5.3 callback: the provider's answer -------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [pytest.param(EVIL, id="another-issuer"), pytest.param("{issuer}/", id="issuer-with-trailing-slash")],
)
def test_callback_rejects_wrong_iss_parameter(app, client, op, signin, iss):
    op.iss_value = iss.format(issuer=op.issuer)

    response = signin()

    assert_refused(app, client, response, 502, "issuer_mismatch", "The answer came from the issuer")
    assert op.calls["token"] == 0


def test_callback_rejects_missing_iss_parameter_when_advertised(app, client, op, signin):
    op.iss_value = ""  # advertised in discovery, but left out of the answer

    response = signin()

    assert_refused(app, client, response, 502, "issuer_mismatch", "promises an iss parameter")
    assert op.calls["token"] == 0


def test_callback_accepts_absent_iss_parameter_when_not_advertised(client, op, signin):
    op.iss_parameter = False
    callback = callback_path(signin)
    assert "iss" not in parse_qs(urlsplit(callback).query)

    response = client.get(callback)

    assert_signed_in(client, response)


def test_callback_rejects_missing_state(app, client, op, signin):
    response = client.get(with_query(callback_path(signin), state=None))

    assert_refused(app, client, response, 400, "invalid_state", "carries no state parameter")
    assert op.calls["token"] == 0


def test_callback_rejects_unknown_state(app, client, op, signin):
    response = client.get(with_query(callback_path(signin), state=secrets.token_urlsafe(32)))

    assert_refused(app, client, response, 400, "invalid_state", "The sign-in is unknown")
    assert op.calls["token"] == 0


def test_callback_rejects_expired_state(app, client, op, signin):
    app.config["BOOKLORE_OIDC_TRANSACTION_TTL"] = -1  # the transaction is stored already expired

    response = client.get(callback_path(signin))

    assert_refused(app, client, response, 400, "invalid_state", "The sign-in expired")
    assert op.calls["token"] == 0


def test_callback_rejects_replayed_state(app, client, op, signin):
    authorize_url = signin.start()
    key = browser_key(client)
    callback = signin.provider_answer(authorize_url)
    assert_signed_in(client, client.get(callback))
    # The reader signs out but keeps the browser that started the sign-in.
    with client.session_transaction() as session:
        session.clear()
        session[BROWSER_KEY] = key

    response = client.get(callback)

    assert_refused(app, client, response, 400, "invalid_state", "already used", users=1)
    assert op.calls["token"] == 1  # only the first use reached the token endpoint


@pytest.mark.parametrize(
    ("other_started_own_sign_in", "detail"),
    [
        pytest.param(False, "This browser did not start a sign-in", id="fresh-browser"),
        pytest.param(True, "started in another browser session", id="browser-with-its-own-sign-in"),
    ],
)
def test_callback_rejects_state_from_another_browser_session(
    app, client, op, signin, other_started_own_sign_in, detail
):
    callback = callback_path(signin)
    other = app.test_client()
    if other_started_own_sign_in:
        SignIn(other, op).start()

    response = other.get(callback)

    assert_refused(app, other, response, 400, "invalid_state", detail)
    assert whoami(client) is None
    assert op.calls["token"] == 0


def test_callback_shows_provider_error_description(app, client, op, signin):
    op.authorize_error = ("access_denied", "The reader declined the consent screen")

    response = signin()

    assert_refused(
        app, client, response, 400, "provider_error", "access_denied: The reader declined the consent screen"
    )
    assert op.calls["token"] == 0


# -- §5.4 token request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_error", "code", "detail"),
    [
        pytest.param(
            (401, {"error": "invalid_client"}), "invalid_client", "rejected the client credentials", id="invalid_client"
        ),
        pytest.param(
            (400, {"error": "invalid_grant", "error_description": "The code has expired"}),
            "token_exchange_failed",
            "invalid_grant: The code has expired",
            id="invalid_grant",
        ),
        pytest.param((500, {}), "token_exchange_failed", "answered HTTP 500", id="http-500"),
    ],
)
def test_callback_reports_token_endpoint_error(app, client, op, signin, token_error, code, detail):
    op.token_error = token_error

    response = signin()

    assert_refused(app, client, response, 502, code, detail)
    assert op.calls["token"] == 1


def test_callback_reports_token_endpoint_timeout(app, client, op, signin):
    configure(app, http_timeout=0.3)
    op.token_delay = 1.0

    response = signin()

    assert_refused(app, client, response, 502, "token_exchange_failed", "did not answer in time")
    # Let the slow answer finish, so that it cannot land in the next test's observations.
    deadline = time.monotonic() + 5
    while not op.issued and time.monotonic() < deadline:
        time.sleep(0.05)


# -- §5.5 ID token: presence and signature ------------------------------------------------------


def test_callback_rejects_token_response_without_id_token(app, client, op, signin):
    op.omit_id_token = True

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "has no ID token")


def test_callback_rejects_id_token_with_alg_none(app, client, op, signin):
    op.id_token_alg = "none"

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "algorithm 'none' is not allowed")


def test_callback_rejects_hs256_id_token_for_public_client(app, client, op, signin):
    # The classic confusion attack: HMAC keyed with the provider's public key, which anyone has.
    op.id_token_alg = "HS256"
    op.id_token_signing_key = op.signing_key.as_pem(private=False)

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "needs a client secret; this is a public client")


def test_callback_rejects_id_token_with_corrupted_signature(app, client, op, signin):
    op.corrupt_signature = True

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "signature does not verify")


def test_callback_rejects_id_token_signed_by_key_behind_jku_header(app, client, op, signin, attacker_site):
    op.id_token_signing_key = attacker_site.key  # its kid is the provider's
    op.id_token_header_update = {"jku": attacker_site.url}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "signature does not verify")
    assert attacker_site.hits == []  # the jku was never fetched


def test_callback_rejects_id_token_signed_by_key_embedded_in_jwk_header(app, client, op, signin):
    # An RSA-2048 jwk does not fit joserfc's 512-byte header limit (such a token is refused as
    # malformed before any key is chosen), so the attacker embeds a small EC P-256 key.
    key = ECKey.generate_key("P-256")
    op.id_token_alg = "ES256"
    op.id_token_signing_key = key
    op.id_token_header_update = {"kid": op.signing_key.kid, "jwk": key.as_dict(private=False)}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "which the provider does not publish")


def test_callback_accepts_id_token_without_kid_when_one_key_is_published(client, op, signin):
    op.rotate_keys(keep_old=False)
    assert len(op.jwks()["keys"]) == 1
    op.id_token_header_update = {"kid": None}

    response = signin()

    assert_signed_in(client, response)


def test_callback_accepts_rotated_key_after_one_jwks_refetch(client, op, signin):
    assert_signed_in(client, signin())
    fetched = op.calls["jwks"]
    assert fetched == 1
    op.rotate_keys()  # the provider signs with a new key, now published

    response = signin()

    assert_signed_in(client, response)
    assert op.calls["jwks"] == fetched + 1


@pytest.mark.usefixtures("keys_restored")
def test_callback_rejects_unknown_kid_with_bounded_jwks_refetches(app, client, op, signin):
    op.rotate_keys(publish_new=False)  # signs with a key that never appears in the JWKS

    for _ in range(20):
        response = signin()
        assert_refused(app, client, response, 401, "invalid_token", "which the provider does not publish")

    assert op.calls["token"] == 20
    # One fetch to fill the cache, then at most one refetch per BOOKLORE_OIDC_JWKS_MIN_REFETCH (30 s).
    assert op.calls["jwks"] <= 2


# -- §5.5 ID token: claims ----------------------------------------------------------------------


def timed(claims: dict[str, int | None]) -> dict[str, int | None]:
    """Claims given as offsets from now (seconds) made absolute; None (remove) is kept."""
    return {name: None if offset is None else now() + offset for name, offset in claims.items()}


def test_callback_rejects_id_token_iss_with_added_trailing_slash(app, client, op, signin):
    op.id_token_claims_update = {"iss": op.issuer + "/"}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "Invalid claim: 'iss'")


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"aud": "other"}, "issued for another client", id="aud-wrong"),
        pytest.param({"aud": None}, "Missing claim: 'aud'", id="aud-missing"),
        pytest.param({"aud": [CLIENT_ID, "other"]}, "other audiences", id="aud-extra-audience"),
        pytest.param({"aud": "other", "azp": CLIENT_ID}, "issued for another client", id="aud-other-with-our-azp"),
        pytest.param({"azp": "other"}, "authorized party (azp) is another client", id="azp-wrong"),
    ],
)
def test_callback_rejects_id_token_for_another_audience(app, client, op, signin, claims, detail):
    op.id_token_claims_update = claims

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", detail)


@pytest.mark.parametrize(
    ("claims", "detail"),
    [  # offsets from now, in seconds; the clock skew is 60 s
        pytest.param({"exp": -120}, "The token is expired", id="exp-in-the-past"),
        pytest.param({"iat": None}, "Missing claim: 'iat'", id="iat-missing"),
        pytest.param({"iat": 600}, "issued in the future", id="iat-in-the-future"),
        pytest.param({"nbf": 600}, "not yet valid", id="nbf-in-the-future"),
    ],
)
def test_callback_rejects_id_token_outside_its_validity(app, client, op, signin, claims, detail):
    op.id_token_claims_update = timed(claims)

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", detail)


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"nonce": None}, "Missing claim: 'nonce'", id="nonce-missing"),
        pytest.param({"nonce": "not-the-nonce-we-sent"}, "nonce does not match", id="nonce-wrong"),
    ],
)
def test_callback_rejects_id_token_with_bad_nonce(app, client, op, signin, claims, detail):
    op.id_token_claims_update = claims

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", detail)


def test_callback_rejects_nonce_replayed_from_an_earlier_sign_in(app, op):
    earlier = app.test_client()
    assert_signed_in(earlier, SignIn(earlier, op)())
    op.id_token_claims_update = {"nonce": op.issued[-1]["id_token_claims"]["nonce"]}
    client = app.test_client()

    response = SignIn(client, op)()

    assert_refused(app, client, response, 401, "invalid_token", "nonce does not match", users=1)


def test_callback_rejects_id_token_without_sub(app, client, op, signin):
    op.id_token_claims_update = {"sub": None}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "Missing claim: 'sub'")


def test_callback_rejects_id_token_with_bad_at_hash(app, client, op, signin):
    op.id_token_claims_update = {"at_hash": b64url(b"sixteen bytes!!!")}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "at_hash does not match")


# -- §5.6 userinfo ------------------------------------------------------------------------------


def test_callback_rejects_userinfo_about_another_subject(app, client, op, signin):
    op.claims_in_id_token = False  # the mapped claims must come from userinfo
    op.userinfo_update = {"sub": "someone-else"}

    response = signin()

    assert_refused(app, client, response, 401, "invalid_token", "about another subject")
    assert op.calls["userinfo"] == 1


# -- §5.8 where the browser goes afterwards -----------------------------------------------------


@pytest.mark.parametrize(
    "next_url",
    [
        pytest.param("https://evil.example", id="absolute-url"),
        pytest.param("//evil.example", id="scheme-relative"),
        pytest.param("/\\evil.example", id="backslash"),
        pytest.param("javascript:alert(1)", id="javascript-scheme"),
    ],
)
def test_callback_ignores_next_pointing_off_site(client, signin, next_url):
    response = signin(next=next_url)

    assert_signed_in(client, response, location="/")


# -- several tabs (§5.2: a transaction per state) -----------------------------------------------


def test_two_sign_ins_in_one_browser_finish_in_reverse_order(app, client, op, signin):
    first_tab = signin.provider_answer(signin.start(next="/account"))
    second_tab = signin.provider_answer(signin.start(next="/"))

    assert_signed_in(client, client.get(second_tab), location="/")
    response = client.get(first_tab)

    assert_signed_in(client, response, location="/account")
    assert user_count(app) == 1 and identity_count(app) == 1
    assert op.calls["token"] == 2
