"""Back-channel logout (SPEC §8, OpenID Connect Back-Channel Logout 1.0 §2.6): every rule of the
logout token, one bad input per test, each refused with 400 while the session lives on; a valid
token ends the session on its next request; and what the check costs per request."""

from __future__ import annotations

import secrets
import time
from datetime import UTC
from typing import Any

import pytest
from fakeprovider import FakeProvider
from flask import Flask
from flask.testing import FlaskClient
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from helpers import CLIENT_ID, SECRET, add_user, configure, me, refusal_detail, sql_statements
from joserfc.jwk import RSAKey
from sqlalchemy import select

from example_app.models import User, db
from flask_booklore_oidc import BookloreOIDC, OIDCError
from flask_booklore_oidc.models import LoginRecord, LogoutTokenJti

pytestmark = pytest.mark.both_databases

EVENT = "http://schemas.openid.net/event/backchannel-logout"
URL = "/oauth2-backchannel-logout"


def claims_for(op: FakeProvider, **changes: Any) -> dict[str, Any]:
    """A valid logout token's claims for the provider's current session; None removes a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "events": {EVENT: {}},
        "sid": op.session_id,
        "sub": "sub-alice",
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def logout_token(op: FakeProvider, **changes: Any) -> str:
    return op.sign(claims_for(op, **changes), header={"typ": "logout+jwt"})


def deliver(app: Flask, token: str) -> Any:
    """The provider's POST: server to server, so a client without the reader's cookies."""
    return app.test_client().post(URL, data={"logout_token": token})


@pytest.fixture
def alice(app: Flask, client: FlaskClient, signin: Any) -> FlaskClient:
    """A browser signed in as alice through the provider."""
    signin()
    assert me(client)["username"] == "alice"
    return client


def ended(app: Flask) -> list[bool]:
    with app.app_context():
        return [r.ended_at is not None for r in db.session.execute(select(LoginRecord)).scalars()]


def assert_refused(response: Any, words: str) -> None:
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_request"
    assert words in body["error_description"], body["error_description"]
    assert response.headers["Cache-Control"] == "no-store"


# -- a valid token -------------------------------------------------------------------------------


def test_valid_token_by_sid_ends_the_session_on_its_next_request(app, alice, op):
    response = deliver(app, logout_token(op))

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert ended(app) == [True]
    assert me(alice) is None  # anonymous at /api/me
    with alice.session_transaction() as session:
        assert "_booklore_oidc_login" not in session and "_user_id" not in session


def test_valid_token_by_sub_alone_ends_every_session_of_that_subject(app, alice, op):
    response = deliver(app, logout_token(op, sid=None))
    assert response.status_code == 200
    assert me(alice) is None


def test_token_for_another_session_leaves_this_one_alone(app, alice, op):
    response = deliver(app, logout_token(op, sid="another-session"))
    assert response.status_code == 200
    assert ended(app) == [False]
    assert me(alice)["username"] == "alice"


def test_token_for_another_subject_leaves_this_one_alone(app, alice, op):
    response = deliver(app, logout_token(op, sid=None, sub="sub-bob"))
    assert response.status_code == 200
    assert me(alice)["username"] == "alice"


def test_signed_out_reader_can_sign_in_again(app, alice, op, signin):
    deliver(app, logout_token(op))
    assert me(alice) is None
    op.login_as("sub-alice")
    signin()
    assert me(alice)["username"] == "alice"


def test_hs256_token_with_the_client_secret_is_accepted_for_a_confidential_client(app, client, op, signin):
    configure(app, client_id="confidential-basic", client_secret=SECRET, token_auth_method="client_secret_basic")
    signin()
    claims = claims_for(op, aud="confidential-basic")
    response = deliver(app, op.sign(claims, key=SECRET, alg="HS256"))
    assert response.status_code == 200
    assert me(client) is None


# -- each rule of §2.6 -----------------------------------------------------------------------------


def test_bad_signature_is_refused(app, alice, op):
    impostor = RSAKey.generate_key(2048, parameters={"kid": op.signing_key.kid, "use": "sig"})
    response = deliver(app, op.sign(claims_for(op), key=impostor))
    assert_refused(response, "logout token's signature")
    assert me(alice)["username"] == "alice"


def test_unsigned_token_is_refused(app, alice, op):
    response = deliver(app, op.sign(claims_for(op), alg="none"))
    assert_refused(response, "algorithm")
    assert me(alice)["username"] == "alice"


def test_hs256_token_is_refused_for_a_public_client(app, alice, op):
    response = deliver(app, op.sign(claims_for(op), key="guessed-secret", alg="HS256"))
    assert_refused(response, "client secret")
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize("iss", ["http://127.0.0.1:1/other", "{issuer}/", None])
def test_wrong_or_missing_issuer_is_refused(app, alice, op, iss):
    response = deliver(app, logout_token(op, iss=iss.format(issuer=op.issuer) if iss else None))
    assert_refused(response, "iss")
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize(
    ("aud", "words"),
    [("another-client", "another client"), ([CLIENT_ID, "another-client"], "other audiences"), (None, "aud")],
)
def test_wrong_audience_is_refused(app, alice, op, aud, words):
    response = deliver(app, logout_token(op, aud=aud))
    assert_refused(response, words)
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"iat": None}, "iat"),
        ({"iat": int(time.time()) + 3600}, "future"),
        ({"exp": int(time.time()) - 3600}, "exp"),
        ({"exp": None, "iat": int(time.time()) - 3600}, "no exp"),
    ],
)
def test_token_times_are_checked(app, alice, op, changes, words):
    response = deliver(app, logout_token(op, **changes))
    assert_refused(response, words)
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize(
    "events",
    [None, {}, {"http://schemas.openid.net/event/other": {}}, {EVENT: "yes"}, [EVENT], EVENT],
)
def test_missing_or_malformed_events_is_refused(app, alice, op, events):
    changes: dict[str, Any] = {"events": events} if events is not None else {"events": None}
    response = deliver(app, logout_token(op, **changes))
    assert_refused(response, "events")
    assert me(alice)["username"] == "alice"


def test_nonce_is_refused(app, alice, op):
    response = deliver(app, logout_token(op, nonce="n-0S6_WzA2Mj"))
    assert_refused(response, "nonce")
    assert me(alice)["username"] == "alice"


def test_missing_jti_is_refused(app, alice, op):
    response = deliver(app, logout_token(op, jti=None))
    assert_refused(response, "jti")
    assert me(alice)["username"] == "alice"


def test_replayed_jti_is_refused(app, alice, op):
    jti = secrets.token_urlsafe(16)
    assert deliver(app, logout_token(op, jti=jti, sid="some-other-session")).status_code == 200

    response = deliver(app, logout_token(op, jti=jti))

    assert_refused(response, "already used")
    assert ended(app) == [False]
    assert me(alice)["username"] == "alice"


def test_neither_sid_nor_sub_is_refused(app, alice, op):
    response = deliver(app, logout_token(op, sid=None, sub=None))
    assert_refused(response, "neither")
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c.d.e"])
def test_missing_or_malformed_token_is_refused(app, alice, token):
    response = app.test_client().post(URL, data={"logout_token": token} if token else {})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert me(alice)["username"] == "alice"


def test_a_jti_is_remembered_until_its_token_expires_then_purged(app, alice, op):
    token = claims_for(op, sid="x")
    assert deliver(app, op.sign(token)).status_code == 200
    with app.app_context():
        row = db.session.execute(select(LogoutTokenJti)).scalar_one()
        # exp plus the clock skew: until then a replay would pass every other check
        assert abs(row.expires_at.replace(tzinfo=UTC).timestamp() - (token["exp"] + 60)) <= 2
        row.expires_at = row.expires_at.replace(year=2000)
        db.session.commit()

    assert deliver(app, logout_token(op, sid="y")).status_code == 200

    with app.app_context():
        assert len(db.session.execute(select(LogoutTokenJti)).scalars().all()) == 1


def test_not_found_when_oidc_is_off(app, alice, op):
    configure(app, enabled=False)
    response = deliver(app, logout_token(op))
    assert response.status_code == 404
    assert ended(app) == [False]


# -- CSRFProtect in the host app ---------------------------------------------------------------


def test_csrfprotect_set_up_after_the_extension_does_not_block_the_provider(app, client, op, signin):
    CSRFProtect(app)
    signin()
    assert deliver(app, logout_token(op)).status_code == 200
    assert me(client) is None
    assert app.test_client().post("/logout").status_code == 400  # still protects everything else


def test_csrfprotect_set_up_before_the_extension_exempts_its_server_to_server_views(tmp_path):
    app = Flask("host")
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'host.sqlite'}")
    csrf = CSRFProtect(app)
    db.init_app(app)
    LoginManager(app)
    BookloreOIDC(app, db=db, user_model=User)
    assert "flask_booklore_oidc.backchannel.backchannel_logout" in csrf._exempt_views
    assert "flask_booklore_oidc.views.start" in csrf._exempt_views
    with app.app_context():
        db.engine.dispose()


# -- the cost of the check -----------------------------------------------------------------------


def ours(statements: list[str]) -> list[str]:
    return [s for s in statements if "booklore_oidc" in s]


def test_anonymous_requests_make_no_sql_at_all(app, client):
    client.get("/api/me")
    with sql_statements(app) as statements:
        assert client.get("/api/me").status_code == 401
        assert app.test_client().get("/api/me").status_code == 401  # no cookie at all
    assert statements == []


CHECK = "SELECT booklore_oidc_login.ended_at, booklore_oidc_login.expires_at FROM booklore_oidc_login WHERE booklore_oidc_login.id = ?"


def test_local_session_makes_one_primary_key_query(app, client):
    add_user(app, "carol", password="carol-pw")
    app.config["WTF_CSRF_ENABLED"] = False
    client.post("/login", data={"username": "carol", "password": "carol-pw"})
    with sql_statements(app) as statements:
        assert me(client)["username"] == "carol"
    assert [" ".join(s.split()) for s in ours(statements)] == [CHECK]


@pytest.mark.parametrize("advertised", [True, None])
def test_oidc_session_makes_one_primary_key_query_whether_or_not_backchannel_is_advertised(
    app, client, op, signin, advertised
):
    op.metadata_overrides["backchannel_logout_supported"] = advertised
    signin()
    with sql_statements(app) as statements:
        assert me(client)["username"] == "alice"
    assert [" ".join(s.split()) for s in ours(statements)] == [CHECK]


def test_token_from_a_provider_that_does_not_advertise_backchannel_logout_ends_the_session(app, client, op, signin):
    op.metadata_overrides["backchannel_logout_supported"] = None
    signin()
    assert me(client)["username"] == "alice"

    assert deliver(app, logout_token(op)).status_code == 200

    assert client.get("/api/me").status_code == 401


# -- what certified providers send -----------------------------------------------------------------


def test_a_token_signed_with_another_asymmetric_algorithm_than_the_id_tokens_is_accepted():
    # LemonLDAP::NG signs logout tokens with its access-token algorithm (RS256) while its ID
    # tokens are ES256; typ is "JWT" and there is no exp. Any asymmetric key it publishes will do.
    from joserfc import jwt
    from joserfc.jwk import ECKey, KeySet

    from flask_booklore_oidc.tokens import validate_logout_token

    ec_key = ECKey.generate_key("P-256", parameters={"kid": "id-tokens", "alg": "ES256"})
    rsa_key = RSAKey.generate_key(2048, parameters={"kid": "access-tokens", "alg": "RS256"})
    published = KeySet([ec_key, rsa_key])
    now = int(time.time())
    claims = {"iss": "https://auth.example.com", "aud": CLIENT_ID, "iat": now, "jti": "j1", "events": {EVENT: {}}, "sid": "s1"}
    token = jwt.encode({"alg": "RS256", "typ": "JWT", "kid": "access-tokens"}, claims, rsa_key)

    accepted = validate_logout_token(
        token, issuer="https://auth.example.com", client_id=CLIENT_ID, keys_for=lambda kid: published, now=now
    )

    assert accepted["sid"] == "s1"
    unsigned = token.rsplit(".", 1)[0].replace(token.split(".")[0], "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0") + "."
    with pytest.raises(OIDCError):
        validate_logout_token(
            unsigned, issuer="https://auth.example.com", client_id=CLIENT_ID, keys_for=lambda kid: published, now=now
        )


def test_a_session_id_longer_than_the_column_is_refused_as_an_invalid_token(app, client, op, signin):
    op.id_token_claims_update = {"sid": "z" * 300}
    response = signin()
    assert response.status_code == 401
    assert "sid claim is longer than 255" in refusal_detail(app, response.get_data(as_text=True))
    assert me(client) is None
