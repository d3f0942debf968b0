"""Real Calibre-Web with the extension attached (SPEC §15): readers sign in through Calibre-Web's
own login page and are signed in *in Calibre-Web's terms*; existing accounts link with proof and
keep their id and shelves; local sign-in, OIDC-only mode, sign-out and user deletion work.

Calibre-Web allows one app per process: the session fixture ``calibreweb`` starts it with the
extension attached, as ``calibre-web-oidc`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from calibreweb_support import (
    ADMIN,
    ADMIN_PASSWORD,
    CalibreWebHost,
    needs_calibreweb,
)
from fakeprovider import FakeProvider
from helpers import CLIENT_ID, local_path
from sqlalchemy import delete, func, select
from werkzeug.security import generate_password_hash

from flask_booklore_oidc import MappingRow
from flask_booklore_oidc.models import Identity, LoginRecord, Throttle

pytestmark = needs_calibreweb


@pytest.fixture
def attached(calibreweb: CalibreWebHost) -> Any:
    return calibreweb.app.extensions["booklore_oidc"]


@pytest.fixture
def cw(calibreweb: CalibreWebHost, attached: Any, op: FakeProvider) -> Iterator[CalibreWebHost]:
    """Calibre-Web configured for the fake provider's public client, group sync on; every
    account the test made, and everything of ours, removed afterwards."""
    ub = calibreweb.ub
    with calibreweb.request_context():
        attached.save_settings({
            "enabled": True,
            "only_mode": False,
            "provider_name": "Pocket ID",
            "client_id": CLIENT_ID,
            "issuer_uri": op.issuer,
            "auto_provision": True,
            "group_sync": "replace",
            "default_permissions": ["download"],
            "http_timeout": 2.0,
        })
        for row in attached.group_mappings():
            attached.delete_group_mapping(row.id)
        attached.save_group_mapping(MappingRow("readers", "Readers", False, frozenset({"edit_shelfs", "viewer"})))
    yield calibreweb
    with calibreweb.app.app_context():
        ub.session.rollback()
        keep = ub.session.query(ub.User.id).filter(ub.User.name.in_([ADMIN, "Guest"]))
        ub.session.query(ub.Shelf).filter(ub.Shelf.user_id.notin_(keep)).delete(synchronize_session=False)
        ub.session.query(ub.User_Sessions).delete()
        ub.session.query(ub.User).filter(ub.User.name.notin_([ADMIN, "Guest"])).delete(synchronize_session=False)
        for model in (Identity, LoginRecord, Throttle):
            ub.session.execute(delete(model))
        ub.session.commit()
        attached.save_settings({"only_mode": False})


def _sign_in(client: Any, op: FakeProvider) -> Any:
    start = client.get("/login/oidc")
    assert start.status_code == 302, start.get_data(as_text=True)
    return client.get(local_path(op.authorize(start.headers["Location"])))


def _me(client: Any) -> str | None:
    """The signed-in user's name as Calibre-Web's own profile page shows it, or None."""
    response = client.get("/me")
    if response.status_code != 200:
        return None
    match = re.search(r'name="name"[^>]*value="([^"]*)"', response.get_data(as_text=True))
    match = match or re.search(r'id="name"[^>]*value="([^"]*)"', response.get_data(as_text=True))
    return match.group(1) if match else "(signed in)"


def _user(cw: CalibreWebHost, name: str) -> Any:
    with cw.app.app_context():
        user = cw.ub.session.query(cw.ub.User).filter(cw.ub.User.name == name).one_or_none()
        cw.ub.session.expunge_all()
        return user


def _identities(cw: CalibreWebHost) -> int:
    with cw.app.app_context():
        return int(cw.ub.session.execute(select(func.count()).select_from(Identity)).scalar_one())


def test_the_sign_in_button_is_on_calibre_webs_own_login_page(cw):
    page = cw.client().get("/login").get_data(as_text=True)
    assert "Sign in with Pocket ID" in page and 'name="username"' in page


def test_a_first_sign_in_creates_a_calibre_web_user_with_role_bits_from_groups(cw, op):
    client = cw.client()
    answer = _sign_in(client, op)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert _me(client) is not None
    user = _user(cw, "alice")
    constants = cw.constants
    assert user.role & constants.ROLE_DOWNLOAD and user.role & constants.ROLE_EDIT_SHELFS
    assert user.role & constants.ROLE_VIEWER and not user.role & constants.ROLE_ADMIN
    assert user.email == "alice@example.test" and not user.password


def test_an_existing_calibre_web_user_links_with_proof_and_keeps_its_id_and_shelves(cw, op):
    ub = cw.ub
    with cw.app.app_context():
        bob = ub.User(name="bob", email="bob@example.test", role=cw.constants.ROLE_DOWNLOAD, locale="en",
                      default_language="all", password=generate_password_hash("bobs-own"))
        ub.session.add(bob)
        ub.session.commit()
        ub.session.add(ub.Shelf(name="Bob's shelf", is_public=0, user_id=bob.id))
        ub.session.commit()
        bob_id = bob.id
    op.login_as("sub-bob")
    client = cw.client()
    answer = _sign_in(client, op)
    assert answer.status_code == 302 and "/login/link" in answer.headers["Location"]
    page = client.get("/login/link").get_data(as_text=True)
    assert "bob" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    wrong = client.post("/login/link", data={"password": "guess", "csrf_token": token})
    assert wrong.status_code == 401 and _identities(cw) == 0
    right = client.post("/login/link", data={"password": "bobs-own", "csrf_token": token})
    assert right.status_code == 302, right.get_data(as_text=True)
    assert _me(client) is not None
    assert _user(cw, "bob").id == bob_id
    with cw.app.app_context():
        assert ub.session.query(ub.Shelf).filter(ub.Shelf.user_id == bob_id).count() == 1
    assert _identities(cw) == 1


def test_local_sign_in_on_calibre_webs_form_still_works(cw):
    client = cw.client()
    response = cw.local_login(client, ADMIN, ADMIN_PASSWORD)
    assert response.status_code == 302
    assert _me(client) is not None


def test_oidc_only_mode_sends_calibre_webs_login_to_the_provider_and_keeps_the_backdoor(cw, attached, op):
    with cw.request_context():
        attached.save_settings({"only_mode": True})
    client = cw.client()
    assert client.get("/login").headers["Location"].startswith("/login/oidc")
    assert "Sign in with Pocket ID" in client.get("/login?local=true").get_data(as_text=True)


def test_oidc_only_mode_refuses_a_non_admins_local_password_before_calibre_web_sees_it(cw, attached):
    ub = cw.ub
    with cw.app.app_context():
        ub.session.add(ub.User(name="carol", email="carol@example.test", role=0, locale="en",
                               default_language="all", password=generate_password_hash("carols")))
        ub.session.commit()
    with cw.request_context():
        attached.save_settings({"only_mode": True})
    client = cw.client()
    page = client.get("/login?local=true").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = client.post("/login", data={"username": "carol", "password": "carols", "csrf_token": token})
    assert refused.status_code == 403
    assert "local_login_disabled" in refused.get_data(as_text=True)
    assert _me(client) is None


def test_calibre_webs_logout_ends_our_session_and_the_providers(cw, op):
    client = cw.client()
    _sign_in(client, op)
    response = client.get("/logout")
    assert response.status_code == 302 and response.headers["Location"].startswith(op.issuer)
    assert _me(client) is None
    with cw.app.app_context():
        assert cw.ub.session.execute(select(LoginRecord.ended_at)).scalar_one() is not None


def test_deleting_users_from_calibre_webs_admin_leaves_no_identities(cw, op):
    reader = cw.client()
    _sign_in(reader, op)
    assert _identities(cw) == 1
    alice_id = _user(cw, "alice").id
    admin = cw.client()
    cw.local_login(admin, ADMIN, ADMIN_PASSWORD)
    page = admin.get("/admin/view").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    headers = {"X-CSRFToken": token.group(1)} if token else {}
    response = admin.post("/ajax/deleteuser", json={"userid": [alice_id]}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _user(cw, "alice") is None
    assert _identities(cw) == 0


def test_the_oidc_settings_are_linked_from_calibre_webs_admin_page(cw):
    admin = cw.client()
    cw.local_login(admin, ADMIN, ADMIN_PASSWORD)
    assert "/settings/oidc" in admin.get("/admin/view").get_data(as_text=True)
    assert admin.get("/settings/oidc").status_code == 200
