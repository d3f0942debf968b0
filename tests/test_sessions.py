"""Every session can be ended (SPEC §8): each signed-in session, local or through the provider,
has a server-side login record checked on every signed-in request, so a copied cookie stops
working as soon as sign-out, a logout from the provider (back- or front-channel), unlinking,
user deletion, ``end_sessions``, an admin, a change of client or the maximum age ends it."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fakeprovider import FakeProvider
from flask import Flask
from flask.testing import FlaskClient
from flask_login import login_user
from helpers import CLIENT_ID, add_user, configure, me, sql_statements
from settings_helpers import csrf_token
from sqlalchemy import select, update

from example_app.models import User, db
from flask_booklore_oidc.models import Identity, LoginRecord, utcnow

FRONT = "/oauth2-frontchannel-logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def sign_out(client: FlaskClient) -> Any:
    token = csrf_token(client.get("/logout").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def sign_in_locally(client: FlaskClient, username: str, password: str) -> None:
    token = csrf_token(client.get("/login?local=true").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


def records(app: Flask) -> list[LoginRecord]:
    with app.app_context():
        rows = list(db.session.execute(select(LoginRecord).order_by(LoginRecord.created_at)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


def open_records(app: Flask) -> int:
    return sum(1 for record in records(app) if record.ended_at is None)


def user_named(app: Flask, username: str) -> User:
    with app.app_context():
        user = db.session.execute(select(User).where(User.username == username)).scalar_one()
        db.session.expunge(user)
        return user


@pytest.fixture
def carol(app: Flask, client: FlaskClient) -> FlaskClient:
    """A browser signed in locally as carol."""
    add_user(app, "carol", password="carol-pw")
    sign_in_locally(client, "carol", "carol-pw")
    assert me(client)["username"] == "carol"
    return client


@pytest.fixture
def alice(app: Flask, client: FlaskClient, signin: Any) -> FlaskClient:
    """A browser signed in as alice through the provider, which does not advertise back-channel
    logout."""
    signin.op.metadata_overrides["backchannel_logout_supported"] = None
    assert signin().status_code == 302
    assert me(client)["username"] == "alice"
    return client


# -- a copied cookie after sign-out -----------------------------------------------------------------


def test_a_local_sign_in_gets_a_login_record_without_provider_details(app, carol):
    [record] = records(app)
    assert record.user_id == str(user_named(app, "carol").id)
    assert (record.issuer, record.subject, record.client_id, record.sid, record.id_token) == (None,) * 5
    assert record.ended_at is None


def test_copied_cookie_of_a_local_session_is_anonymous_after_sign_out(app, carol):
    thief = copy_of(app, carol)
    assert me(thief)["username"] == "carol"

    sign_out(carol)

    assert me(thief) is None
    assert me(carol) is None


def test_copied_cookie_of_a_provider_session_is_anonymous_after_sign_out(app, alice):
    thief = copy_of(app, alice)
    assert me(thief)["username"] == "alice"

    sign_out(alice)

    assert me(thief) is None


def test_copied_cookie_of_a_session_from_a_backchannel_provider_is_anonymous_after_sign_out(
    app, client, op, signin
):
    op.metadata_overrides["backchannel_logout_supported"] = True
    signin()
    thief = copy_of(app, client)
    assert me(thief)["username"] == "alice"

    sign_out(client)

    assert me(thief) is None


def test_a_session_without_a_record_id_is_left_alone(app, client):
    # Signed in before this version, or by a host login view that does not call start_session.
    user_id = add_user(app, "dave")

    @app.get("/host-login")
    def host_login() -> str:
        login_user(db.session.get(User, user_id))
        return "ok"

    client.get("/host-login")
    with sql_statements(app) as statements:
        assert me(client)["username"] == "dave"
    assert not [s for s in statements if "booklore_oidc_" in s]


def test_start_session_gives_a_host_login_a_record_that_can_be_ended(app, client):
    user_id = add_user(app, "dave")
    oidc = app.extensions["booklore_oidc"]

    @app.get("/host-login")
    def host_login() -> str:
        user = db.session.get(User, user_id)
        login_user(user)
        oidc.start_session(user)
        return "ok"

    client.get("/host-login")
    assert me(client)["username"] == "dave"
    with app.test_request_context():
        assert oidc.end_sessions(db.session.get(User, user_id)) == 1

    assert me(client) is None


def test_anonymous_requests_make_no_queries(app, client):
    client.get("/api/me")
    with sql_statements(app) as statements:
        assert client.get("/api/me").status_code == 401
        client.get("/")
    assert statements == []


# -- ended by the app -------------------------------------------------------------------------------


def test_end_sessions_signs_the_user_out_of_every_browser(app, carol):
    other = app.test_client()
    sign_in_locally(other, "carol", "carol-pw")
    oidc = app.extensions["booklore_oidc"]

    with app.test_request_context():
        assert oidc.end_sessions(user_named(app, "carol")) == 2

    assert me(carol) is None and me(other) is None


def test_the_cli_ends_a_users_sessions(app, carol, run):
    result = run("end-sessions", "carol")

    assert result.exit_code == 0, result.output
    assert "Ended 1 session of carol." in result.output
    assert me(carol) is None


def test_the_cli_refuses_an_unknown_user(run):
    result = run("end-sessions", "nobody")
    assert result.exit_code != 0


def test_the_admin_ends_the_sessions_of_a_linked_user_from_the_settings_page(app, alice, admin_browser):
    thief = copy_of(app, alice)
    page = admin_browser.get("/settings/oidc").get_data(as_text=True)
    with app.app_context():
        identity = db.session.execute(select(Identity.id)).scalar_one()
    assert 'aria-label="End sessions of alice"' in page

    response = admin_browser.post(
        f"/settings/oidc/identities/{identity}/end-sessions", data={"csrf_token": csrf_token(page)}
    )

    assert response.status_code == 302
    assert "identities=ended" in response.headers["Location"]
    assert "Sessions ended: 1." in admin_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert me(alice) is None and me(thief) is None
    assert me(admin_browser)["username"] == "admin"


def test_unlinking_an_identity_ends_its_sessions(app, alice, admin_browser):
    thief = copy_of(app, alice)
    page = admin_browser.get("/settings/oidc").get_data(as_text=True)

    with app.app_context():
        identity = db.session.execute(select(Identity.id)).scalar_one()

    response = admin_browser.post(
        f"/settings/oidc/identities/{identity}/unlink", data={"csrf_token": csrf_token(page), "confirm": "yes"}
    )

    assert response.status_code == 302
    assert me(alice) is None and me(thief) is None


def test_unlinking_through_the_api_ends_provider_sessions_but_not_local_ones(app, alice, carol_too):
    oidc = app.extensions["booklore_oidc"]
    with app.test_request_context():
        assert oidc.unlink_identities(user_named(app, "alice")) == 1

    assert me(alice) is None
    assert me(carol_too)["username"] == "carol"


def test_deleting_a_user_ends_their_sessions(app, carol):
    thief = copy_of(app, carol)
    with app.app_context():
        db.session.delete(db.session.execute(select(User).where(User.username == "carol")).scalar_one())
        db.session.commit()

    assert records(app) == []
    assert me(carol) is None and me(thief) is None


# -- ended by the provider --------------------------------------------------------------------------


def logout_token(op: FakeProvider, **claims: Any) -> str:
    now = int(time.time())
    base = {
        "iss": op.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "events": {EVENT: {}},
        "sid": op.session_id,
    }
    return op.sign({**base, **claims})


def test_a_backchannel_token_from_a_provider_without_the_advertisement_ends_the_session(app, alice, op):
    thief = copy_of(app, alice)

    response = app.test_client().post("/oauth2-backchannel-logout", data={"logout_token": logout_token(op)})

    assert response.status_code == 200
    assert me(alice) is None and me(thief) is None


def test_a_backchannel_token_with_typ_jwt_and_no_exp_is_accepted(app, alice, op):
    token = op.sign(
        {
            "iss": op.issuer,
            "aud": CLIENT_ID,
            "iat": int(time.time()),
            "jti": "lemonldap-1",
            "events": {EVENT: {}},
            "sid": op.session_id,
        },
        header={"typ": "JWT"},
    )

    assert app.test_client().post("/oauth2-backchannel-logout", data={"logout_token": token}).status_code == 200
    assert me(alice) is None


def front(app: Flask, **params: str) -> Any:
    """The provider's logout page's iframe: a browser without the reader's cookies."""
    return app.test_client().get(FRONT, query_string=params)


def test_frontchannel_logout_with_our_issuer_and_the_sid_ends_the_session(app, alice, op):
    thief = copy_of(app, alice)

    response = front(app, iss=op.issuer, sid=op.session_id)

    assert response.status_code == 200
    assert "signed out" in response.get_data(as_text=True)
    assert me(alice) is None and me(thief) is None


def test_frontchannel_logout_may_be_framed_by_the_provider_only_and_is_not_cached(app, alice, op):
    response = front(app, iss=op.issuer, sid=op.session_id)

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(op.issuer))
    assert response.headers["Content-Security-Policy"] == f"frame-ancestors {origin}"
    assert response.headers["Cache-Control"] == "no-store"
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("iss", ["http://127.0.0.1:1/other", "{issuer}/", "{issuer}x"])
def test_frontchannel_logout_for_another_issuer_ends_nothing(app, alice, op, iss):
    response = front(app, iss=iss.format(issuer=op.issuer), sid=op.session_id)

    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert me(alice)["username"] == "alice"


@pytest.mark.parametrize("params", [{}, {"iss": "{issuer}"}, {"sid": "{sid}"}, {"iss": "", "sid": "{sid}"}])
def test_frontchannel_logout_without_iss_or_sid_ends_nothing(app, alice, op, params):
    filled = {k: v.format(issuer=op.issuer, sid=op.session_id) for k, v in params.items()}

    response = front(app, **filled)

    assert response.status_code == 400
    assert me(alice)["username"] == "alice"


def test_frontchannel_logout_for_an_unknown_sid_ends_nothing(app, alice, op):
    response = front(app, iss=op.issuer, sid="some-other-session")

    assert response.status_code == 200
    assert me(alice)["username"] == "alice"


# -- RP-initiated logout: the state comes back ---------------------------------------------------


def back_from_provider(client: FlaskClient) -> tuple[str, str]:
    """Sign out, then follow the provider's redirect back: (post_logout_redirect_uri, state)."""
    location = sign_out(client).headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return query["post_logout_redirect_uri"], query["state"]


def test_the_right_state_confirms_the_sign_out_at_the_provider_and_leaves_the_url(app, alice):
    back, state = back_from_provider(alice)

    response = alice.get(back + "&state=" + state)

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?logged_out=1"
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "You are signed out, here and at Pocket ID." in page
    assert state not in page
    assert "at Pocket ID" not in alice.get("/login?logged_out=1").get_data(as_text=True)  # shown once


def test_a_wrong_state_confirms_nothing_and_leaves_the_url(app, alice, caplog):
    back, _state = back_from_provider(alice)

    response = alice.get(back + "&state=forged")

    assert response.status_code == 302
    assert response.headers["Location"] == "/login?logged_out=1"
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "at Pocket ID" not in page
    assert "state this browser did not send" in caplog.text


def test_a_state_without_a_sign_out_confirms_nothing(client):
    response = client.get("/login?logged_out=1&state=whatever")

    assert response.headers["Location"] == "/login?logged_out=1"
    assert "at Pocket ID" not in client.get("/login?logged_out=1").get_data(as_text=True)


# -- a change of client, the maximum age ---------------------------------------------------------


def test_changing_the_client_id_ends_the_sessions_of_the_old_client(app, alice, carol_too, admin_browser):
    configure_page = admin_browser.get("/settings/oidc").get_data(as_text=True)
    assert "Changing it signs out everyone signed in through the old client." in configure_page
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings({"client_id": "another-client"})

    assert me(alice) is None
    assert me(carol_too)["username"] == "carol"  # a local session has no client


def test_saving_a_new_client_id_on_the_settings_page_says_how_many_sessions_ended(app, alice, admin_browser):
    from settings_helpers import settings_form

    form = settings_form(admin_browser, client_id="another-client")
    form["confirm"] = "yes"  # the provider does not know that client: Test Connection would ask first
    response = admin_browser.post("/settings/oidc", data=form)

    assert response.status_code == 302, response.get_data(as_text=True)
    page = admin_browser.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 session signed in through the old client was ended." in page
    assert me(alice) is None


def test_saving_the_same_client_ends_nothing(app, alice):
    configure(app, client_id=CLIENT_ID, provider_name="Renamed")
    assert me(alice)["username"] == "alice"


def test_a_session_older_than_the_maximum_age_ends_at_its_next_request(app, carol):
    configure(app, max_session_age=1)
    assert me(carol)["username"] == "carol"

    with app.app_context():
        db.session.execute(update(LoginRecord).values(created_at=utcnow() - timedelta(hours=2, seconds=1)))
        db.session.commit()
    configure(app, max_session_age=2)  # counted from the sign-in, just over 2 h ago
    assert me(carol) is None

    sign_in_locally(carol, "carol", "carol-pw")
    assert me(carol)["username"] == "carol"
    [*_, latest] = records(app)
    assert latest.expires_at is not None and latest.expires_at - latest.created_at == timedelta(hours=2)


def test_maximum_age_zero_means_no_limit(app, carol):
    configure(app, max_session_age=0)
    assert [r.expires_at for r in records(app)] == [None]
    assert me(carol)["username"] == "carol"


def test_maximum_age_is_bounded(app):
    with pytest.raises(ValueError, match="between 0 and 8760"):
        configure(app, max_session_age=8761)


# -- the check interval -------------------------------------------------------------------------


def test_with_a_check_interval_an_ended_session_lives_until_the_next_check(app, carol, monkeypatch):
    state = app.extensions["booklore_oidc"].state_for(app)
    state.check_interval = 60
    thief = copy_of(app, carol)
    me(thief)  # checked now
    sign_out(carol)

    assert me(thief)["username"] == "carol"  # within the interval: not checked

    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert me(thief) is None


def test_the_check_interval_is_validated_at_start_up(restart):
    with pytest.raises(ValueError, match="SESSION_CHECK_INTERVAL"):
        restart(BOOKLORE_OIDC_SESSION_CHECK_INTERVAL="soon")


# -- fixtures that need the ones above ------------------------------------------------------------


@pytest.fixture
def carol_too(app: Flask) -> FlaskClient:
    """Another browser, signed in locally as carol."""
    browser = app.test_client()
    add_user(app, "carol", password="carol-pw")
    sign_in_locally(browser, "carol", "carol-pw")
    return browser


@pytest.fixture
def admin_browser(app: Flask) -> FlaskClient:
    """A third browser, signed in locally as an administrator."""
    browser = app.test_client()
    add_user(app, "admin", password="admin-pw", is_admin=True)
    sign_in_locally(browser, "admin", "admin-pw")
    return browser


def test_setting_a_new_client_id_from_the_cli_ends_the_sessions_of_the_old_client(app, alice, run):
    result = run("set", "client_id", "another-client")

    assert result.exit_code == 0, result.output
    assert "1 session signed in through the old client was ended." in result.output
    assert me(alice) is None
