"""Login methods and the way back in (SPEC §8): OIDC-only mode and its exceptions, the loop
breaker, local sign-in for admins only, the admin backdoor, FORCE_DISABLE_OIDC, and the Client
Launch URL (third-party initiated login, OpenID Connect Core §4)."""

from __future__ import annotations

import html
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from helpers import CLIENT_ID, add_user, configure, local_path, me, refusal_detail
from sqlalchemy import select

from example_app.models import db
from flask_booklore_oidc.models import SettingsRow, Transaction

pytestmark = pytest.mark.both_databases

REDIRECTS_KEY = "_booklore_oidc_redirects"


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def has_local_form(response: Any) -> bool:
    return 'name="password"' in response.get_data(as_text=True)


@pytest.fixture
def only_mode(app: Flask) -> None:
    add_user(app, "root", password="root-pw", is_admin=True)
    add_user(app, "carol", password="carol-pw")
    configure(app, only_mode=True)


# -- OIDC-only mode: straight to the provider, with its exceptions -------------------------------


def test_only_mode_login_redirects_to_the_provider_keeping_next(client, op, only_mode):
    response = client.get("/login", query_string={"next": "/account"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/oidc?next=/account"

    authorize = client.get(response.headers["Location"]).headers["Location"]
    assert authorize.startswith(op.url("authorize"))
    # the sign-in completes and lands on next
    answer = client.get(local_path(op.authorize(authorize)))
    assert answer.headers["Location"] == "/account"
    assert me(client)["username"] == "alice"


def test_only_mode_sends_a_visitor_of_a_protected_page_to_the_provider(client, only_mode):
    first = client.get("/")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login")
    assert client.get(local_path(first.headers["Location"])).headers["Location"].startswith("/login/oidc")


def test_without_only_mode_login_shows_button_and_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "Sign in with Pocket ID" in text(response)
    assert has_local_form(response)


def test_only_mode_backdoor_shows_the_local_form(client, only_mode):
    response = client.get("/login?local=true")
    assert response.status_code == 200
    assert has_local_form(response)
    assert "Sign in with Pocket ID" in text(response)


def test_only_mode_stays_on_the_page_after_an_error(client, only_mode):
    response = client.get("/login?error=provider_error")
    assert response.status_code == 200
    assert "The provider did not sign you in" in text(response)
    assert not has_local_form(response)
    assert 'href="/login?local=true"' in text(response)


def test_only_mode_stays_on_the_page_right_after_logout(client, only_mode):
    response = client.get("/login?logged_out=1")
    assert response.status_code == 200
    assert "You are signed out" in text(response)
    assert 'href="/login?local=true"' in text(response)


@pytest.mark.parametrize("mode", ["only", "normal"])
def test_error_page_links_back_to_a_sign_in_page_that_does_not_redirect(app, client, mode):
    if mode == "only":
        add_user(app, "root", password="root-pw", is_admin=True)
        configure(app, only_mode=True)
    error_page = client.get("/oauth2-callback?state=made-up&code=x")
    assert error_page.status_code == 400
    back = html.unescape(error_page.get_data(as_text=True)).split('href="')[-1].split('"')[0]
    assert back.startswith("/login?")

    response = client.get(back)
    assert response.status_code == 200


# -- the loop breaker ----------------------------------------------------------------------------


def test_loop_breaker_stops_after_three_automatic_redirects_and_shows_the_last_error(client, only_mode):
    client.get("/oauth2-callback?state=made-up&code=x")  # an error page: invalid_state
    for _ in range(3):
        assert client.get("/login").status_code == 302

    response = client.get("/login")

    assert response.status_code == 200
    page = text(response)
    assert "did not finish after 3 attempts in a row" in page
    assert "This sign-in link has expired or was already used" in page  # the last error
    assert 'href="/login?local=true"' in page  # sign in locally
    assert "Sign in with Pocket ID" in page
    assert client.get("/login").status_code == 200  # and it stays there


def test_loop_breaker_catches_a_sign_in_that_does_not_stick(client, op, only_mode):
    """The provider signs the reader in, but the app does not keep them signed in (here: the
    user id vanishes from the session, as with a user loader that refuses the user)."""
    for _ in range(3):
        start = client.get("/login")
        assert start.status_code == 302
        authorize = client.get(start.headers["Location"]).headers["Location"]
        assert client.get(local_path(op.authorize(authorize))).status_code == 302
        with client.session_transaction() as session:
            session.pop("_user_id")

    response = client.get("/login")

    assert response.status_code == 200
    assert "did not finish after 3 attempts in a row" in text(response)


def test_loop_breaker_count_lapses_after_a_quiet_while(client, only_mode):
    with client.session_transaction() as session:
        session[REDIRECTS_KEY] = [3, int(time.time()) - 301]
    assert client.get("/login").status_code == 302


# -- local sign-in in OIDC-only mode: admins only, one answer for everyone else ----------------


def test_only_mode_refuses_local_sign_in_with_one_identical_answer(client, only_mode, no_csrf):
    attempts = {
        "unknown user": ("nobody", "whatever"),
        "wrong password": ("carol", "not-her-password"),
        "non-admin, right password": ("carol", "carol-pw"),
        "admin, wrong password": ("root", "not-root-pw"),
    }
    answers = {}
    for name, (username, password) in attempts.items():
        response = client.post("/login", data={"username": username, "password": password})
        answers[name] = (response.status_code, response.get_data())
        assert me(client) is None, name

    assert {status for status, _ in answers.values()} == {403}
    assert len({body for _, body in answers.values()}) == 1, "the answers differ"
    body = next(iter(answers.values()))[1].decode()
    assert "for administrators only" in body
    assert "carol" not in body and "nobody" not in body and "root" not in body


def test_only_mode_identical_answer_holds_with_csrf_on(client, only_mode):
    def token() -> str:
        page = client.get("/login?local=true").get_data(as_text=True)
        return page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]

    bodies = set()
    for username, password in (("nobody", "x"), ("carol", "carol-pw"), ("carol", "bad")):
        csrf = token()
        response = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
        assert response.status_code == 403
        page = response.get_data(as_text=True)
        bodies.add(page.replace(page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0], "TOKEN"))
    assert len(bodies) == 1


def test_only_mode_lets_an_admin_sign_in_locally(client, only_mode, no_csrf):
    response = client.post("/login", data={"username": "root", "password": "root-pw", "next": "/account"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert me(client)["username"] == "root"


def test_local_sign_in_is_open_to_everyone_without_only_mode(app, client, no_csrf):
    add_user(app, "carol", password="carol-pw")
    response = client.post("/login", data={"username": "carol", "password": "carol-pw"})
    assert response.status_code == 302
    assert me(client)["username"] == "carol"


def test_wrong_password_without_only_mode_is_401(app, client, no_csrf):
    add_user(app, "carol", password="carol-pw")
    response = client.post("/login", data={"username": "carol", "password": "nope"})
    assert response.status_code == 401
    assert "Invalid username or password" in text(response)


def test_backdoor_shows_the_local_form_whatever_the_mode(app, client):
    assert has_local_form(client.get("/login?local=true"))
    configure(app, enabled=False)
    assert has_local_form(client.get("/login?local=true"))


# -- FORCE_DISABLE_OIDC --------------------------------------------------------------------------


def settings_row(app: Flask) -> dict[str, Any]:
    with app.app_context():
        row = db.session.execute(select(SettingsRow)).scalar_one()
        return {c.name: getattr(row, c.name) for c in SettingsRow.__table__.columns}


@pytest.mark.parametrize("word", ["true", "1", "yes"])
def test_force_disable_overrides_a_database_that_says_oidc_only(
    app, client, op, only_mode, signin, restart, monkeypatch, word
):
    signin()  # alice signed in through the provider before the switch
    cookie = client.get_cookie("session").value
    before = settings_row(app)
    assert before["enabled"] is True and before["only_mode"] is True

    monkeypatch.setenv("FORCE_DISABLE_OIDC", word)
    killed = restart(WTF_CSRF_ENABLED=False)
    browser = killed.test_client()

    login = browser.get("/login")
    assert login.status_code == 200  # OIDC-only ignored: no redirect
    assert "Sign in with" not in text(login)  # button hidden
    assert has_local_form(login)
    for path in ("/login/oidc", "/oauth2-callback?state=x&code=y", f"/login/oidc?iss={op.issuer}"):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "oidc_disabled" in text(response)
    assert browser.post("/oauth2-backchannel-logout", data={"logout_token": "x"}).status_code == 404

    # local login is open to every user
    response = browser.post("/login", data={"username": "carol", "password": "carol-pw"})
    assert response.status_code == 302
    assert me(browser)["username"] == "carol"

    # provider logout skipped for the session that signed in through the provider
    alice = killed.test_client()
    alice.set_cookie("session", cookie)
    assert me(alice)["username"] == "alice"
    response = alice.post("/logout")
    assert response.headers["Location"] == "/login?logged_out=1"
    assert op.last_end_session == {}

    assert settings_row(killed) == before  # the database is untouched


# -- the Client Launch URL: third-party initiated login -----------------------------------------


def test_launch_url_with_our_issuer_signs_in_and_lands_on_target(client, op):
    response = client.get(
        "/login/oidc",
        query_string={"iss": op.issuer, "target_link_uri": "http://localhost/account?tab=1", "login_hint": "alice"},
    )
    assert response.status_code == 302
    authorize = response.headers["Location"]
    assert parse_qs(urlsplit(authorize).query)["login_hint"] == ["alice"]

    answer = client.get(local_path(op.authorize(authorize)))

    assert answer.headers["Location"] == "/account?tab=1"
    assert me(client)["username"] == "alice"


def test_launch_url_tolerates_a_trailing_slash_on_iss(client, op):
    response = client.get("/login/oidc", query_string={"iss": op.issuer + "/"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith(op.url("authorize"))


def test_launch_url_accepts_a_post(client, op):
    response = client.post("/login/oidc", data={"iss": op.issuer, "target_link_uri": "/account"})
    assert response.status_code == 302
    answer = client.get(local_path(op.authorize(response.headers["Location"])))
    assert answer.headers["Location"] == "/account"


def test_launch_url_with_a_foreign_issuer_is_refused_as_the_callers_error_without_echoing_it(app, client, op):
    response = client.get(
        "/login/oidc", query_string={"iss": "Your account is locked, call +1 555 0100", "target_link_uri": "/"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "invalid_request" in page and "names another issuer" in refusal_detail(app, page)
    assert "call +1 555 0100" not in page
    assert op.calls["authorize"] == 0
    with app.app_context():
        assert db.session.execute(select(Transaction)).first() is None


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/account",
        "https://localhost/account",  # another scheme is another origin
        "http://localhost:8080/account",
        "http://localhost@evil.example/account",
        "//evil.example/account",
        "javascript:alert(1)",
    ],
)
def test_launch_url_with_a_foreign_target_lands_on_the_index(client, op, target):
    response = client.get("/login/oidc", query_string={"iss": op.issuer, "target_link_uri": target})
    answer = client.get(local_path(op.authorize(response.headers["Location"])))
    assert answer.headers["Location"] == "/"
    assert me(client)["username"] == "alice"


def test_launch_url_target_on_the_public_url_is_kept_as_a_path(app, client, op):
    configure(app, public_url="https://books.example.com")
    response = client.get(
        "/login/oidc", query_string={"iss": op.issuer, "target_link_uri": "https://books.example.com/account"}
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://books.example.com/oauth2-callback"]
    assert query["client_id"] == [CLIENT_ID]
    with app.app_context():
        assert db.session.execute(select(Transaction.next_url)).scalar_one() == "/account"


def test_launch_url_without_oidc_is_the_oidc_disabled_page(app, client, op):
    configure(app, enabled=False)
    response = client.get("/login/oidc", query_string={"iss": op.issuer})
    assert response.status_code == 404
    assert "oidc_disabled" in text(response)


def test_an_incomplete_local_form_is_refused_plainly_when_the_app_turns_csrf_off(app, client):
    # Some hosts set WTF_CSRF_ENABLED = False (behind their own CSRF protection): the form then
    # has no token, and a missing password must still end on the form, not on a 500.
    app.config["WTF_CSRF_ENABLED"] = False
    response = client.post("/login", data={"username": "alice", "password": ""})
    assert response.status_code == 400
    assert b'name="password"' in response.data


def test_oidc_only_mode_with_a_stopped_provider_ends_on_our_page_not_the_browsers(app, client, op, monkeypatch):
    from flask_booklore_oidc import views

    configure(app, only_mode=True)
    assert client.get("/login").status_code == 302  # discovery is warm now
    op.discovery_status = 503  # the provider stopped
    monkeypatch.setattr(views, "RECHECK_PROVIDER_AFTER", 0)
    response = client.get("/login/oidc")
    assert response.status_code == 502 and b"provider_unreachable" in response.data
    assert b"Sign-in is not available right now" in response.data
