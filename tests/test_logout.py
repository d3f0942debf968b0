"""Signing out (SPEC §8): a POST with CSRF ends the local session and, when the provider has an
end-session endpoint and provider logout is on, continues there; the way back lands on
``/login?logged_out=1``, which never sends the reader to the provider again."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import CLIENT_ID, add_user, configure, me
from sqlalchemy import select

from example_app.models import db
from flask_booklore_oidc import signals
from flask_booklore_oidc.models import LoginRecord

pytestmark = pytest.mark.both_databases

TOKEN_MARK = 'name="csrf_token" type="hidden" value="'


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/logout").get_data(as_text=True)
    return page.split(TOKEN_MARK)[1].split('"')[0]


def sign_out(client: FlaskClient) -> Any:
    return client.post("/logout", data={"csrf_token": csrf_token(client)})


def login_record(app: Flask) -> LoginRecord:
    with app.app_context():
        record = db.session.execute(select(LoginRecord)).scalar_one()
        db.session.expunge(record)
        return record


@pytest.fixture
def logouts(app: Flask) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def receive(sender: Flask, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.logged_out.connect(receive, app)
    yield seen
    signals.logged_out.disconnect(receive, app)


def test_get_shows_a_confirm_button_and_signs_nobody_out(client, signin):
    signin()
    response = client.get("/logout")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<form method="post" action="/logout"' in page and TOKEN_MARK in page
    assert me(client)["username"] == "alice"


def test_post_without_csrf_token_is_refused(client, signin):
    signin()
    response = client.post("/logout")
    assert response.status_code == 400
    assert "expired" in html.unescape(response.get_data(as_text=True))
    assert me(client)["username"] == "alice"


def test_sign_out_continues_at_the_end_session_endpoint(app, client, op, signin, logouts):
    signin()
    issued_id_token = op.issued[-1]["id_token"]

    response = sign_out(client)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == op.url("end_session")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["id_token_hint"] == issued_id_token
    assert query["client_id"] == CLIENT_ID
    assert query["post_logout_redirect_uri"] == "http://localhost/login?logged_out=1"
    assert len(query["state"]) >= 22
    assert me(client) is None
    record = login_record(app)
    assert record.ended_at is not None and record.id_token is None  # the stored token is gone
    assert logouts[-1]["provider_logout"] is True


def test_the_way_back_from_the_provider_does_not_redirect_again_in_only_mode(app, client, op, signin):
    add_user(app, "root", is_admin=True)
    configure(app, only_mode=True)
    signin()
    location = sign_out(client).headers["Location"]
    back = parse_qs(urlsplit(location).query)["post_logout_redirect_uri"][0]

    response = client.get(back)

    assert response.status_code == 200
    assert "You are signed out" in response.get_data(as_text=True)
    assert me(client) is None


def test_sign_out_without_end_session_endpoint_stays_here(app, client, op, signin, logouts):
    op.metadata_overrides["end_session_endpoint"] = None
    signin()
    response = sign_out(client)
    assert response.headers["Location"] == "/login?logged_out=1"
    assert me(client) is None
    assert login_record(app).ended_at is not None
    assert logouts[-1]["provider_logout"] is False


def test_sign_out_with_provider_logout_off_stays_here(app, client, op, signin):
    configure(app, provider_logout=False)
    signin()
    response = sign_out(client)
    assert response.headers["Location"] == "/login?logged_out=1"
    assert me(client) is None
    assert op.calls["end_session"] == 0


def test_local_user_signs_out_here_only(app, client):
    add_user(app, "carol", password="carol-pw")
    page = client.get("/login").get_data(as_text=True)
    token = page.split(TOKEN_MARK)[1].split('"')[0]
    client.post("/login", data={"username": "carol", "password": "carol-pw", "csrf_token": token})
    assert me(client)["username"] == "carol"

    response = sign_out(client)

    assert response.headers["Location"] == "/login?logged_out=1"
    assert me(client) is None


def test_a_copy_of_the_signed_out_cookie_is_signed_out_too(client, signin):
    """With back-channel logout in use (the fake provider advertises it), each request checks
    the login record, which sign-out ended: a cookie saved before signing out is worthless."""
    signin()
    old_cookie = client.get_cookie("session").value
    sign_out(client)
    assert me(client) is None
    client.set_cookie("session", old_cookie)
    assert me(client) is None


def test_the_way_back_from_the_providers_sign_out_drops_state_from_the_address(client):
    response = client.get("/login?logged_out=1&state=abc123")
    assert response.status_code == 302 and response.headers["Location"] == "/login?logged_out=1"


def test_the_sign_out_page_has_cancel_for_the_signed_in(app, client, signin):
    signin()
    page = client.get("/logout", headers={"Referer": "http://localhost/account"}).get_data(as_text=True)
    assert '<a href="/account">Cancel</a>' in page and "Sign out?" in page


def test_the_sign_out_page_tells_a_signed_out_visitor_so(client):
    page = client.get("/logout").get_data(as_text=True)
    assert "You are signed out" in page and 'href="/login"' in page
    assert "<button" not in page
