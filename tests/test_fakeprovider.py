"""Fast tests of the fake OpenID Connect provider itself."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import pytest
import requests
from fakeprovider import FakeProvider, at_hash, b64url
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, OctKey

REDIRECT = "http://127.0.0.1:9/callback"

# Never route loopback traffic through a proxy from the environment.
http = requests.Session()
http.trust_env = False


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        fake.add_client("public", redirect_uris=[REDIRECT])
        fake.add_client("basic", secret="s3cr:t/+&x", auth_method="client_secret_basic", redirect_uris=[REDIRECT])
        fake.add_client("post", secret="p0st-secret", auth_method="client_secret_post", redirect_uris=[REDIRECT])
        fake.add_user("u1", preferred_username="alice", email="alice@example.test",
                      email_verified=True, name="Alice", groups=["admins"])
        fake.login_as("u1")
        yield fake


@pytest.fixture(autouse=True)
def _reset(provider: FakeProvider) -> None:
    provider.reset()


def basic_header(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 2.3.1: form-urlencode id and secret, then HTTP Basic."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def start_login(fake: FakeProvider, client_id: str = "public", pkce: bool = True) -> dict[str, str]:
    """Run the browser leg; returns the callback params plus the verifier and nonce used."""
    verifier = secrets.token_urlsafe(48)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email", "state": "st-1", "nonce": "n-1"}
    if pkce:
        params["code_challenge"] = b64url(hashlib.sha256(verifier.encode()).digest())
        params["code_challenge_method"] = "S256"
    location = fake.authorize(f"{fake.url('authorize')}?{urlencode(params)}")
    assert location.startswith(REDIRECT)
    got = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return {**got, "verifier": verifier, "nonce": "n-1"}


def redeem(fake: FakeProvider, code: str, verifier: str | None, *, client_id: str = "public",
           headers: dict[str, str] | None = None, **extra: str) -> requests.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if client_id:
        form["client_id"] = client_id
    if verifier is not None:
        form["code_verifier"] = verifier
    return http.post(fake.url("token"), data=form, headers=headers or {}, timeout=10)


def full_login(fake: FakeProvider) -> dict[str, Any]:
    cb = start_login(fake)
    resp = redeem(fake, cb["code"], cb["verifier"])
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_discovery_served_and_overridable(provider: FakeProvider) -> None:
    resp = http.get(provider.url("discovery"), timeout=10)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["issuer"] == provider.issuer
    assert doc["token_endpoint"] == provider.base_url + "/token"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert resp.headers["Date"].count(",") == 1  # exactly one Date header (duplicates get joined)

    provider.metadata_overrides = {"issuer": "http://evil.test", "jwks_uri": None}
    provider.date_offset = 3600
    resp = http.get(provider.url("discovery"), timeout=10)
    assert resp.json()["issuer"] == "http://evil.test"
    assert "jwks_uri" not in resp.json()
    skew = parsedate_to_datetime(resp.headers["Date"]).timestamp() - time.time()
    assert 3590 < skew < 3610
    provider.discovery_status = 503
    assert http.get(provider.url("discovery"), timeout=10).status_code == 503
    assert provider.calls["discovery"] == 3


def test_authorize_rejects_unknown_client_and_redirect_uri(provider: FakeProvider) -> None:
    bad_client = http.get(provider.url("authorize"), params={"client_id": "nope"}, allow_redirects=False, timeout=10)
    assert bad_client.status_code == 400 and "unknown client" in bad_client.text
    bad_uri = http.get(provider.url("authorize"), params={"client_id": "public", "redirect_uri": REDIRECT + "x"},
                       allow_redirects=False, timeout=10)
    assert bad_uri.status_code == 400 and "redirect_uri mismatch" in bad_uri.text


def test_pkce_enforced(provider: FakeProvider) -> None:
    cb = start_login(provider, pkce=False)
    assert cb["error"] == "invalid_request" and cb["state"] == "st-1" and cb["iss"] == provider.issuer

    cb = start_login(provider)
    assert redeem(provider, cb["code"], "wrong-verifier-" + "x" * 40).json()["error"] == "invalid_grant"
    cb = start_login(provider)
    assert redeem(provider, cb["code"], None).json()["error"] == "invalid_grant"
    cb = start_login(provider)
    assert redeem(provider, cb["code"], cb["verifier"]).status_code == 200


@pytest.mark.parametrize("client_id", ["basic", "post"])
def test_invalid_client_for_wrong_secret(provider: FakeProvider, client_id: str) -> None:
    secret = {"basic": "s3cr:t/+&x", "post": "p0st-secret"}[client_id]

    def attempt(sec: str) -> requests.Response:
        cb = start_login(provider, client_id)
        if client_id == "basic":
            return redeem(provider, cb["code"], cb["verifier"], client_id="", headers=basic_header("basic", sec))
        return redeem(provider, cb["code"], cb["verifier"], client_id="post", client_secret=sec)

    bad = attempt("wrong")
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    assert provider.last_token_request["auth_method_used"] == f"client_secret_{client_id}"
    good = attempt(secret)
    assert good.status_code == 200, good.text

    # The right secret through the wrong method is rejected too.
    cb = start_login(provider, client_id)
    if client_id == "basic":
        wrong_method = redeem(provider, cb["code"], cb["verifier"], client_id="basic", client_secret=secret)
    else:
        wrong_method = redeem(provider, cb["code"], cb["verifier"], client_id="", headers=basic_header("post", secret))
    assert wrong_method.status_code == 401


def test_code_is_single_use(provider: FakeProvider) -> None:
    cb = start_login(provider)
    assert redeem(provider, cb["code"], cb["verifier"]).status_code == 200
    again = redeem(provider, cb["code"], cb["verifier"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert len(provider.issued) == 1


def test_id_token_verifies_against_served_jwks(provider: FakeProvider) -> None:
    body = full_login(provider)
    jwks = KeySet.import_key_set(http.get(provider.url("jwks"), timeout=10).json())
    token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    assert token.header["kid"] == provider.signing_key.kid and token.header["typ"] == "JWT"
    claims = token.claims
    assert claims["iss"] == provider.issuer and claims["aud"] == "public" and claims["sub"] == "u1"
    assert claims["nonce"] == "n-1" and claims["preferred_username"] == "alice"
    assert claims["at_hash"] == at_hash(body["access_token"], "RS256")
    assert claims["sid"] == provider.session_id
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": provider.issuer}).validate(claims)
    assert provider.issued[-1]["id_token_claims"] == claims

    provider.corrupt_signature = True
    with pytest.raises(BadSignatureError):
        jwt.decode(full_login(provider)["id_token"], jwks, algorithms=["RS256"])


def test_id_token_knobs(provider: FakeProvider) -> None:
    provider.id_token_alg = "none"
    provider.id_token_claims_update = {"nonce": None, "aud": "other"}
    _header, _payload, sig = full_login(provider)["id_token"].split(".")
    assert sig == ""
    claims = provider.issued[-1]["id_token_claims"]
    assert "nonce" not in claims and claims["aud"] == "other"

    provider.reset()
    key = OctKey.generate_key(256)
    provider.id_token_alg = "HS256"
    provider.id_token_signing_key = key
    provider.id_token_header_update = {"kid": "nope"}
    token = jwt.decode(full_login(provider)["id_token"], key, algorithms=["HS256"])
    assert token.header == {"alg": "HS256", "typ": "JWT", "kid": "nope"}

    provider.reset()
    provider.omit_id_token = True
    assert "id_token" not in full_login(provider)


def test_rotate_keys_publish_behaviour() -> None:
    with FakeProvider(issuer_suffix="/realms/test") as fake:
        fake.add_client("public", redirect_uris=[REDIRECT])
        fake.add_user("u1", email="u1@example.test")
        fake.login_as("u1")
        assert fake.issuer.endswith("/realms/test")
        assert http.get(fake.url("discovery"), timeout=10).json()["jwks_uri"] == fake.issuer + "/jwks"
        first = fake.signing_key.kid

        def served_kids() -> list[str]:
            return [k["kid"] for k in http.get(fake.url("jwks"), timeout=10).json()["keys"]]

        hidden = fake.rotate_keys(publish_new=False)
        assert served_kids() == [first]
        assert jwt.decode(full_login(fake)["id_token"], fake.signing_key).header["kid"] == hidden
        fake.publish_all_keys()
        assert served_kids() == [first, hidden]

        newest = fake.rotate_keys()
        assert served_kids() == [first, hidden, newest]
        only = fake.rotate_keys(keep_old=False)
        assert served_kids() == [only]
        assert fake.calls["jwks"] == 4


def test_claims_in_id_token_false_moves_claims_to_userinfo(provider: FakeProvider) -> None:
    provider.claims_in_id_token = False
    body = full_login(provider)
    claims = provider.issued[-1]["id_token_claims"]
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "nonce", "auth_time", "at_hash", "sid"}

    auth = {"Authorization": f"Bearer {body['access_token']}"}
    info = http.get(provider.url("userinfo"), headers=auth, timeout=10).json()
    assert info == {"sub": "u1", "preferred_username": "alice", "email": "alice@example.test",
                    "email_verified": True, "name": "Alice", "groups": ["admins"]}
    provider.userinfo_update = {"sub": "someone-else", "email": None}
    info = http.get(provider.url("userinfo"), headers=auth, timeout=10).json()
    assert info["sub"] == "someone-else" and "email" not in info
    bad = http.get(provider.url("userinfo"), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401


def test_errors_iss_and_end_session(provider: FakeProvider) -> None:
    provider.authorize_error = ("access_denied", "user said no")
    cb = start_login(provider)
    assert (cb["error"], cb["error_description"], cb["state"]) == ("access_denied", "user said no", "st-1")

    provider.reset()
    provider.iss_value = "http://wrong.test"
    assert start_login(provider)["iss"] == "http://wrong.test"
    provider.iss_value = ""
    assert "iss" not in start_login(provider)
    provider.iss_value = None
    provider.iss_parameter = False
    assert "iss" not in start_login(provider)

    provider.reset()
    provider.token_error = (401, {"error": "invalid_client"})
    cb = start_login(provider)
    assert redeem(provider, cb["code"], cb["verifier"]).status_code == 401
    provider.token_error = None
    # token_error does not consume the code; the public client may also use Basic.
    resp = redeem(provider, cb["code"], cb["verifier"], headers=basic_header("public", ""))
    assert resp.status_code == 200
    assert provider.last_token_request["auth_method_used"] == "client_secret_basic"

    resp = http.get(provider.url("end_session"), params={"id_token_hint": "x", "state": "s"}, timeout=10)
    assert resp.status_code == 200 and "signed out" in resp.text
    assert provider.last_end_session == {"id_token_hint": "x", "state": "s"}
    assert provider.calls["end_session"] == 1
