"""The group mapping table and the linked identities list on the settings page (issue 4)."""

from __future__ import annotations

import json

import pytest
from helpers import SignIn, configure, identity_count
from settings_helpers import create_user, csrf_token, sign_in
from sqlalchemy import select

from example_app.models import db
from flask_booklore_oidc.models import GroupMapping

pytestmark = pytest.mark.both_databases


def rows(app):
    with app.app_context():
        return [
            (r.group_value, r.description, r.grant_admin, json.loads(r.permissions), json.loads(r.libraries))
            for r in db.session.scalars(select(GroupMapping).order_by(GroupMapping.id))
        ]


def token(client):
    return csrf_token(client.get("/settings/oidc").get_data(as_text=True))


def add(client, **fields):
    data = {"group-new-csrf_token": token(client), "group-new-group_value": "uploaders",
            "group-new-description": "May upload", "group-new-permissions": ["upload", "read"]}
    data.update({f"group-new-{k}": v for k, v in fields.items()})
    return client.post("/settings/oidc/groups", data=data)


def test_admin_adds_a_group_mapping_row_from_the_catalogue(app, admin):
    response = add(admin, grant_admin="y")
    assert response.status_code == 302 and response.headers["Location"].endswith("groups=added#group-mappings")
    assert rows(app) == [("uploaders", "May upload", True, ["read", "upload"], [])]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Group mapping added." in page and "<code>uploaders</code>" in page and "Upload books" in page


def test_group_value_with_surrounding_spaces_is_refused_and_nothing_is_written(app, admin):
    response = add(admin, group_value=" uploaders")
    assert response.status_code == 400
    assert "spaces at the start or end" in response.get_data(as_text=True)
    assert rows(app) == []


def test_admin_edits_and_deletes_a_row(app, admin):
    from example_app.models import Library

    add(admin)
    with app.app_context():
        db.session.add(Library(id=1, name="Fiction"))
        db.session.commit()
        row_id = db.session.scalar(select(GroupMapping.id))
    edit = admin.post(f"/settings/oidc/groups/{row_id}", data={
        f"group-{row_id}-csrf_token": token(admin), f"group-{row_id}-group_value": "writers",
        f"group-{row_id}-description": "", f"group-{row_id}-libraries": ["1"],
    })
    assert edit.status_code == 302
    assert rows(app) == [("writers", "", False, [], ["1"])]
    asked = admin.post(f"/settings/oidc/groups/{row_id}/delete", data={"csrf_token": token(admin)})
    assert asked.status_code == 200 and "Delete the row for writers?" in asked.get_data(as_text=True)
    assert len(rows(app)) == 1
    deleted = admin.post(f"/settings/oidc/groups/{row_id}/delete", data={"csrf_token": token(admin), "confirm": "yes"})
    assert deleted.status_code == 302 and rows(app) == []


def test_group_mapping_actions_need_csrf(app, admin):
    app.config["WTF_CSRF_ENABLED"] = True
    assert admin.post("/settings/oidc/groups", data={"group-new-group_value": "x"}).status_code == 400
    assert rows(app) == []


def test_readers_cannot_change_group_mappings(app):
    create_user(app, "reader", "pw")
    client = app.test_client()
    sign_in(client, "reader", "pw")
    assert client.post("/settings/oidc/groups", data={"group-new-group_value": "x"}).status_code == 403
    assert rows(app) == []


def test_linked_identities_are_listed_and_unlinked(app, admin, op):
    SignIn(app.test_client(), op)()
    page = admin.get("/settings/oidc").get_data(as_text=True)
    assert "<code>sub-alice</code>" in page and op.issuer in page
    with app.app_context():
        from flask_booklore_oidc.models import Identity

        identity_id = db.session.scalar(select(Identity.id))
    asked = admin.post(f"/settings/oidc/identities/{identity_id}/unlink", data={"csrf_token": token(admin)})
    assert asked.status_code == 200 and identity_count(app) == 1
    assert "identity? They can no longer sign in" in asked.get_data(as_text=True)
    response = admin.post(f"/settings/oidc/identities/{identity_id}/unlink",
                          data={"csrf_token": token(admin), "confirm": "yes"})
    assert response.status_code == 302 and identity_count(app) == 0
    after = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "No linked identities." in after and "nobody has signed in" not in after


def test_unlinking_a_user_with_no_other_way_in_asks_first(app, admin, op):
    SignIn(app.test_client(), op)()  # alice is provisioned: no local password
    configure(app, link_by_username=False)
    with app.app_context():
        from flask_booklore_oidc.models import Identity

        identity_id = db.session.scalar(select(Identity.id))
    first = admin.post(f"/settings/oidc/identities/{identity_id}/unlink", data={"csrf_token": token(admin)})
    assert first.status_code == 400
    assert "has no local password" in first.get_data(as_text=True)
    assert identity_count(app) == 1
    confirmed = admin.post(f"/settings/oidc/identities/{identity_id}/unlink",
                           data={"csrf_token": token(admin), "confirm": "yes"})
    assert confirmed.status_code == 302 and identity_count(app) == 0


def test_a_page_redrawn_after_a_group_row_post_keeps_the_settings_switches(app, admin):
    from settings_helpers import read_form

    configure(app, auto_provision=True)
    refused = admin.post("/settings/oidc/groups", data={"group-new-csrf_token": token(admin), "group-new-group_value": ""})
    assert refused.status_code == 400
    form = read_form(refused.get_data(as_text=True))
    assert form.get("enabled") == "y" and form.get("auto_provision") == "y"
    assert form.get("client_id") == "booklore-test"
