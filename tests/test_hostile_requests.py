"""Hostile requests and an admin's typo (SPEC §5 rules 10–12, issue 13): the secret goes only to
the saved provider, every value is bounded before the database, a caller's mistake is a 4xx that
does not repeat their text, and our pages carry the headers that keep them out of caches and
frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeprovider import FakeProvider
from helpers import REDIRECT_URI, configure, me
from settings_helpers import page_text, settings_form
from sqlalchemy import select

from example_app.models import db
from flask_booklore_oidc.models import SettingsRow, Transaction
from flask_booklore_oidc.rules import SECRET_STAYS_HOME

pytestmark = pytest.mark.both_databases

CANARY = "Stay-Home&<secret>+/%!"
CLIENT = "stays-home"


@pytest.fixture
def confidential(app, admin, op):
    """The saved provider is ``op``, with a confidential client whose secret is stored."""
    op.add_client(CLIENT, secret=CANARY, auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI])
    response = admin.post("/settings/oidc", data=settings_form(admin, client_id=CLIENT, client_secret=CANARY))
    assert response.status_code == 302
    return admin


@pytest.fixture
def elsewhere():
    """Another provider, that would gladly collect the secret."""
    with FakeProvider() as other:
        other.add_client(CLIENT, secret=CANARY, auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI])
        yield other


def _heard(provider: FakeProvider) -> str:
    return json.dumps(provider.last_token_request)


def test_test_connection_against_a_changed_issuer_does_not_send_the_stored_secret(app, confidential, elsewhere):
    response = confidential.post(
        "/settings/oidc/test",
        data=settings_form(confidential, issuer_uri=elsewhere.issuer),
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert "Authorization" not in _heard(elsewhere) and "Stay-Home" not in _heard(elsewhere)
    messages = {r["key"]: r for r in response.get_json()["checks"]}
    assert messages["secret"]["status"] == "WARN"
    assert "sent only" in messages["secret"]["message"] or "goes only" in messages["secret"]["message"]


def test_test_connection_against_a_changed_issuer_sends_a_secret_typed_again(app, confidential, elsewhere):
    confidential.post(
        "/settings/oidc/test",
        data=settings_form(confidential, issuer_uri=elsewhere.issuer, client_secret=CANARY),
        headers={"Accept": "application/json"},
    )
    assert "Authorization" in _heard(elsewhere)


def test_a_secret_set_by_configuration_stays_home_too(db_dir, op, elsewhere):
    from settings_helpers import ADMIN, create_user, sign_in

    from example_app import create_app

    op.add_client(CLIENT, secret=CANARY, auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI])
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "k",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'cfg.sqlite'}",
            "BOOKLORE_OIDC_CLIENT_SECRET": CANARY,
        }
    )
    configure(app, client_id=CLIENT, issuer_uri=op.issuer)
    create_user(app, *ADMIN, is_admin=True)
    client = app.test_client()
    sign_in(client, *ADMIN)
    client.post("/settings/oidc/test", data=settings_form(client, issuer_uri=elsewhere.issuer))
    assert "Authorization" not in _heard(elsewhere)


def test_test_sign_in_against_a_changed_issuer_asks_for_the_secret(app, confidential, elsewhere):
    response = confidential.post(
        "/settings/oidc/preview", data=settings_form(confidential, issuer_uri=elsewhere.issuer)
    )
    assert response.status_code == 409
    assert SECRET_STAYS_HOME in page_text(response)
    assert elsewhere.calls["authorize"] == 0


def test_saving_a_changed_issuer_needs_the_stored_secret_typed_again(app, confidential, elsewhere):
    before = _version(app)
    response = confidential.post("/settings/oidc", data=settings_form(confidential, issuer_uri=elsewhere.issuer))
    assert response.status_code == 400
    assert SECRET_STAYS_HOME in page_text(response)
    assert _version(app) == before
    again = confidential.post(
        "/settings/oidc", data=settings_form(confidential, issuer_uri=elsewhere.issuer, client_secret=CANARY)
    )
    assert again.status_code == 302


def _version(app) -> int:
    with app.app_context():
        return int(db.session.execute(select(SettingsRow.__table__.c.version)).scalar_one())


# -- bounded input ----------------------------------------------------------------------------------


def _transactions(app) -> list[Any]:
    with app.app_context():
        return list(db.session.execute(select(Transaction.next_url)).scalars())


def test_an_over_long_next_is_dropped_not_stored(app, client):
    response = client.post("/login/oidc", data={"next": "/" + "a" * 450_000})
    assert response.status_code == 302
    assert _transactions(app) == [""]


def test_a_next_just_within_the_bound_is_kept(app, client):
    client.get("/login/oidc", query_string={"next": "/" + "a" * 1999})
    assert _transactions(app) == ["/" + "a" * 1999]


@pytest.mark.parametrize("target", ["http://[::1", "http://[", "https://localhost:notaport/x"])
def test_a_broken_target_link_uri_lands_on_the_index(app, client, op, target):
    response = client.get("/login/oidc", query_string={"iss": op.issuer, "target_link_uri": target})
    assert response.status_code == 302
    assert _transactions(app) == [""]


def test_a_control_character_in_the_login_hint_is_not_passed_on(app, client, op):
    response = client.get("/login/oidc", query_string={"iss": op.issuer, "login_hint": "alice\x00\r\nX: y"})
    assert response.status_code == 302
    assert "login_hint" not in response.headers["Location"]


def test_a_nul_byte_in_a_local_username_is_a_400_not_a_500(app, client):
    from settings_helpers import csrf_token

    page = client.get("/login?local=true").get_data(as_text=True)
    response = client.post("/login", data={"username": "ad\x00min", "password": "x", "csrf_token": csrf_token(page)})
    assert response.status_code == 400
    assert "control character" in page_text(response)
    assert me(client) is None


# -- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/logout", "/settings/oidc", "/oauth2-callback?state=forged&code=x", "/login?local=true"]
)
def test_our_pages_are_never_cached_or_framed(app, admin, path):
    response = admin.get(path)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_callback_sends_no_referrer(app, client):
    response = client.get("/oauth2-callback?state=forged&code=x")
    assert response.status_code == 400
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_session_cookie_defaults_to_samesite_lax(app, client, signin):
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = signin()
    assert "SameSite=Lax" in response.headers["Set-Cookie"]


def test_a_host_choice_of_samesite_is_kept(db_dir):
    from example_app import create_app

    app = create_app(
        {
            "SECRET_KEY": "k",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'strict.sqlite'}",
            "SESSION_COOKIE_SAMESITE": "Strict",
        }
    )
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"


def test_test_connection_warns_when_the_public_url_is_https_but_the_cookie_is_not_secure(app, admin):
    response = admin.post(
        "/settings/oidc/test",
        data=settings_form(admin, public_url="https://books.example.com"),
        headers={"Accept": "application/json"},
    )
    cookie = {r["key"]: r for r in response.get_json()["checks"]}["cookie"]
    assert cookie["status"] == "WARN" and "SESSION_COOKIE_SECURE" in cookie["message"]


def test_the_example_apps_account_page_is_not_cached(app, client, signin):
    signin()
    assert client.get("/account").headers["Cache-Control"] == "no-store"
    assert client.get("/api/me").headers["Cache-Control"] == "no-store"
