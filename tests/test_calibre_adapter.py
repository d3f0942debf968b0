"""A Calibre-Web-shaped host app adopts the extension through its own adapter, with no change to
our code: its sign-in, provisioning and group sync work (issue: a second adapter)."""

from __future__ import annotations

import json

import pytest
from calibre_like import (
    ROLE_ADMIN,
    ROLE_DOWNLOAD,
    ROLE_UPLOAD,
    ROLE_VIEWER,
    CalibreUser,
    add_calibre_user,
    create_calibre_app,
)
from helpers import CLIENT_ID, SignIn
from sqlalchemy import select

from flask_booklore_oidc.models import GroupMapping, Identity


@pytest.fixture
def calibre(db_dir, op):
    app = create_calibre_app(f"sqlite:///{db_dir / 'calibre.sqlite'}")
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings({
            "enabled": True, "client_id": CLIENT_ID, "issuer_uri": op.issuer, "provider_name": "Pocket ID",
        })
    yield app
    app.extensions["calibre_engine"].dispose()


def whoami(client):
    response = client.get("/")
    return response.get_json() if response.status_code == 200 else None


def test_existing_calibre_user_is_linked_by_name_and_keeps_their_roles(calibre, op):
    add_calibre_user(calibre, "alice", role=ROLE_DOWNLOAD | ROLE_VIEWER, password=None)
    client = calibre.test_client()
    response = SignIn(client, op)(next="/")
    assert response.headers["Location"] == "/"
    assert whoami(client) == {"name": "alice", "email": "alice@example.test", "role": ROLE_DOWNLOAD | ROLE_VIEWER}
    session = calibre.extensions["calibre_session"]
    assert [i.subject for i in session.scalars(select(Identity))] == ["sub-alice"]
    session.remove()


def test_new_reader_is_provisioned_with_default_permissions_as_role_bits(calibre, op):
    with calibre.test_request_context():
        calibre.extensions["booklore_oidc"].save_settings({"auto_provision": True, "default_permissions": ["download", "viewer"]})
    client = calibre.test_client()
    SignIn(client, op)()
    assert whoami(client)["role"] == ROLE_DOWNLOAD | ROLE_VIEWER


def test_group_sync_sets_role_bits(calibre, op):
    add_calibre_user(calibre, "admin", role=ROLE_ADMIN)
    add_calibre_user(calibre, "alice", role=ROLE_VIEWER, password=None)
    session = calibre.extensions["calibre_session"]
    session.add(GroupMapping(group_value="uploaders", permissions=json.dumps(["upload", "download"]), libraries="[]"))
    session.commit()
    session.remove()
    with calibre.test_request_context():
        calibre.extensions["booklore_oidc"].save_settings({"group_sync": "replace"})
    op.id_token_claims_update = {"groups": ["uploaders"]}
    client = calibre.test_client()
    SignIn(client, op)()
    assert whoami(client)["role"] == ROLE_UPLOAD | ROLE_DOWNLOAD


def test_local_login_goes_through_the_hosts_own_password_check(calibre):
    add_calibre_user(calibre, "bob", password="correct horse")
    calibre.config["WTF_CSRF_ENABLED"] = False
    client = calibre.test_client()
    assert client.post("/login", data={"username": "bob", "password": "wrong"}).status_code == 401
    assert whoami(client) is None
    assert client.post("/login", data={"username": "bob", "password": "correct horse"}).status_code == 302
    assert whoami(client)["name"] == "bob"


def test_deleting_a_calibre_user_removes_its_identity(calibre, op):
    add_calibre_user(calibre, "alice")
    SignIn(calibre.test_client(), op)()
    session = calibre.extensions["calibre_session"]
    session.delete(session.scalars(select(CalibreUser).where(CalibreUser.name == "alice")).one())
    session.commit()
    assert session.scalars(select(Identity)).all() == []
    session.remove()
