"""Apps with their own login page (SPEC §2, host-login mode): our button on the host's page, our
rules on the host's views, our session ended by the host's logout, our pages in the host's theme
— with the documented API only."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from helpers import CLIENT_ID, REDIRECT_URI, local_path
from host_app import THEME_MARK, add_member, create_host_app, db
from sqlalchemy import func, select

from flask_booklore_oidc.models import Identity, LoginRecord


@pytest.fixture
def host(db_dir, op) -> Any:
    app, oidc = create_host_app(f"sqlite:///{db_dir / 'host.sqlite'}")
    with app.test_request_context():
        oidc.save_settings({
            "enabled": True,
            "provider_name": "Pocket ID",
            "client_id": CLIENT_ID,
            "issuer_uri": op.issuer,
            "auto_provision": True,
            "http_timeout": 2.0,
        })
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def _sign_in(client, op) -> Any:
    start = client.get("/login/oidc")
    assert start.status_code == 302, start.get_data(as_text=True)
    return client.get(local_path(op.authorize(start.headers["Location"])))


def test_an_app_with_its_own_login_route_is_told_both_fixes(db_dir):
    from flask_login import LoginManager

    from example_app.models import User
    from example_app.models import db as example_db
    from flask_booklore_oidc import BookloreOIDC

    app = Flask("collides")
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=f"sqlite:///{db_dir / 'c.sqlite'}")
    example_db.init_app(app)
    LoginManager(app)
    app.add_url_rule("/login", "host_login", lambda: "host", methods=["GET", "POST"])
    with pytest.raises(RuntimeError) as refused:
        BookloreOIDC(app, db=example_db, user_model=User)
    assert "login_pages=False" in str(refused.value) and "url_prefix" in str(refused.value)
    assert "host_login" in str(refused.value)


def test_host_login_mode_keeps_the_hosts_login_and_logout_routes(host):
    rules = {rule.rule: rule.endpoint for rule in host.url_map.iter_rules()}
    assert rules["/login"] == "login" and rules["/logout"] == "logout"
    assert rules["/oauth2-callback"] == "booklore_oidc.callback"
    assert "booklore_oidc.login" not in host.view_functions


def test_the_button_appears_on_the_hosts_login_page_and_signs_in_in_the_hosts_terms(host, op):
    client = host.test_client()
    page = client.get("/login?next=/me").get_data(as_text=True)
    assert "Sign in with Pocket ID" in page and "/login/oidc?next=/me" in page
    answer = _sign_in(client, op)
    assert answer.status_code == 302
    assert client.get("/me").get_json()["username"] == "alice"


def test_the_button_is_absent_while_oidc_is_off(host):
    with host.test_request_context():
        host.extensions["booklore_oidc"].save_settings({"enabled": False})
    assert "Sign in with" not in host.test_client().get("/login").get_data(as_text=True)


def test_only_mode_sends_the_hosts_login_page_to_the_provider_but_keeps_the_backdoor(host):
    add_member(host, "root", role="admin")
    with host.test_request_context():
        host.extensions["booklore_oidc"].save_settings({"only_mode": True})
    client = host.test_client()
    assert client.get("/login").headers["Location"].startswith("/login/oidc")
    assert client.get("/login?local=true").status_code == 200


def test_only_mode_refuses_a_non_admin_at_the_hosts_login_before_the_host_sees_it(host):
    add_member(host, "root", role="admin")
    add_member(host, "reader", password="right")
    with host.test_request_context():
        host.extensions["booklore_oidc"].save_settings({"only_mode": True})
    client = host.test_client()
    for name, password in (("reader", "right"), ("reader", "wrong"), ("nobody", "x"), ("root", "wrong")):
        response = client.post("/login?local=true", data={"login": name, "secret": password})
        assert response.status_code == 403
        assert "local_login_disabled" in response.get_data(as_text=True)
    assert host.config["HOST_LOGINS"] == []
    admin = client.post("/login?local=true", data={"login": "root", "secret": "pw"})
    assert admin.status_code == 302 and host.config["HOST_LOGINS"] == ["root"]


def test_the_hosts_guarded_logout_ends_our_session_and_goes_to_the_provider(host, op):
    client = host.test_client()
    _sign_in(client, op)
    response = client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"].startswith(op.issuer)
    assert client.get("/me").status_code == 401
    with host.app_context():
        assert db.session.execute(select(LoginRecord.ended_at)).scalar_one() is not None


def test_the_hosts_own_unguarded_logout_closes_our_login_record_and_clears_our_keys(host, op):
    client = host.test_client()
    _sign_in(client, op)
    assert client.get("/plain-logout").status_code == 200
    with host.app_context():
        assert db.session.execute(select(LoginRecord.ended_at)).scalar_one() is not None
    with client.session_transaction() as session:
        assert not any(key.startswith("_booklore_oidc_login") for key in session)


def test_our_pages_render_through_the_hosts_theme_layer(host):
    response = host.test_client().get("/oauth2-callback?state=forged&code=x")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert page.startswith(THEME_MARK)
    # ...and our error page links back to the host's login page, not to a /login of ours.
    assert 'href="/login?error=invalid_state"' in page


def test_an_account_the_host_considers_inactive_ends_on_a_page_with_nothing_written(host, op):
    add_member(host, "alice", password=None, active=False)
    client = host.test_client()
    answer = _sign_in(client, op)
    assert answer.status_code == 403
    assert "not active" in answer.get_data(as_text=True)
    assert client.get("/me").status_code == 401
    assert _count(host, Identity) == 0 and _count(host, LoginRecord) == 0


def test_admin_rights_said_by_a_callable_open_the_settings_page(host, op):
    add_member(host, "root", role="admin")
    client = host.test_client()
    client.post("/login", data={"login": "root", "secret": "pw"})
    assert client.get("/settings/oidc").status_code == 200


def test_a_read_only_permissions_property_is_read_but_never_written(host, op):
    with host.test_request_context():
        host.extensions["booklore_oidc"].save_settings({"group_sync": "replace", "default_permissions": ["manage"]})
    client = host.test_client()
    assert _sign_in(client, op).status_code == 302  # apply_access skipped the property: no 500
    assert client.get("/me").get_json()["role"] == "reader"


def test_the_cli_group_can_be_attached_to_the_hosts_own_group(host):
    import click

    oidc = host.extensions["booklore_oidc"]
    group = click.Group("host")
    group.add_command(oidc.cli)
    assert "booklore-oidc" in group.commands


def test_redirect_uri_is_unchanged_in_host_login_mode(host):
    with host.test_request_context():
        from flask import url_for

        assert url_for("booklore_oidc.callback", _external=True) == REDIRECT_URI
