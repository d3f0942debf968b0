"""Test sign-in from the settings page (issue 3, SPEC §6, §7): a real sign-in at the provider that
signs nobody in, writes nothing, and shows the claims and what the settings would decide."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeprovider import FakeProvider
from flask import Flask
from flask.testing import FlaskClient
from helpers import SECRET, add_user, configure, identity_count, local_path, me, user_count
from settings_helpers import ADMIN, create_user, page_text, settings_form, sign_in
from sqlalchemy import func, select

from example_app.models import User, db
from flask_booklore_oidc import signals
from flask_booklore_oidc.models import GroupMapping, LoginRecord, Transaction


def login_records(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(LoginRecord)).scalar_one())


def finish(client: FlaskClient, op: FakeProvider, response: Any) -> Any:
    """Follow the test sign-in: to the provider, and back to our callback."""
    assert response.status_code == 302, page_text(response)
    authorize_url = response.headers["Location"]
    assert authorize_url.startswith(op.issuer)
    return client.get(local_path(op.authorize(authorize_url)))


def preview_saved(client: FlaskClient, op: FakeProvider) -> Any:
    return finish(client, op, client.get("/settings/oidc/preview"))


def session_user(client: FlaskClient) -> Any:
    with client.session_transaction() as session:
        return session.get("_user_id")


# -- nobody signed in, nothing written -----------------------------------------------------------


def test_preview_signs_nobody_in_and_writes_nothing(app, admin, op):
    configure(app, auto_provision=True)
    me_before, user_before = me(admin), session_user(admin)
    users, records = user_count(app), login_records(app)
    succeeded: list[Any] = []
    signals.login_succeeded.connect(succeeded.append)
    try:
        response = preview_saved(admin, op)
    finally:
        signals.login_succeeded.disconnect(succeeded.append)
    assert response.status_code == 200, page_text(response)
    assert "Creates the new account alice and signs in." in page_text(response)
    assert user_count(app) == users and identity_count(app) == 0 and login_records(app) == records
    assert me(admin) == me_before and me_before["username"] == "admin"
    assert session_user(admin) == user_before
    assert succeeded == []


def test_preview_uses_a_real_sign_in_with_pkce_and_purpose_preview(app, admin, op):
    response = admin.get("/settings/oidc/preview")
    with app.app_context():
        purposes = db.session.execute(select(Transaction.purpose)).scalars().all()
    assert purposes == ["preview"]
    assert "code_challenge=" in response.headers["Location"]
    finish(admin, op, response)
    assert op.calls["token"] == 1
    with app.app_context():  # used once, like every sign-in
        assert db.session.execute(select(func.count()).select_from(Transaction)).scalar_one() == 0


# -- what the page shows -------------------------------------------------------------------------


def test_preview_shows_merged_claims_but_no_tokens(app, admin, op):
    op.claims_in_id_token = False  # mapped claims come from userinfo
    text = page_text(preview_saved(admin, op))
    assert "preferred_username" in text and '"alice"' in text and '"alice@example.test"' in text
    assert "userinfo" in text and "ID token" in text
    issued = op.issued[-1]
    assert issued["access_token"] not in text and issued["id_token"] not in text
    assert issued["id_token"].split(".")[1] not in text


def test_preview_shows_what_each_claim_mapping_resolved_to(app, admin, op):
    configure(app, claim_display_name="nickname,name")
    text = page_text(preview_saved(admin, op))
    assert "<code>nickname,name</code>" in text and "Alice Liddell" in text
    assert "<code>groups</code>" in text and '<span class="bo-chip">readers</span>' in text


def test_a_missing_claim_is_marked_missing(app, admin, op):
    configure(app, claim_email="mail")
    assert "missing" in page_text(preview_saved(admin, op))


@pytest.mark.parametrize(
    ("setup", "summary"),
    [
        ({}, "Nobody is signed in: User not provisioned (user_not_provisioned)"),
        ({"auto_provision": True}, "Creates the new account alice and signs in."),
        ({"allowed_groups": ["staff"]}, "Nobody is signed in: Your account is not allowed to use this app"),
    ],
)
def test_preview_names_the_rule_that_would_decide(app, admin, op, setup, summary):
    configure(app, **{"auto_provision": False, **setup})
    assert summary in page_text(preview_saved(admin, op))


def test_preview_finds_a_local_user_by_username(app, admin, op):
    configure(app, auto_provision=False)
    add_user(app, "alice", password=None)
    text = page_text(preview_saved(admin, op))
    assert "Links the existing account alice (same username) to this identity and signs in." in text
    assert identity_count(app) == 0  # still not linked


def test_preview_says_an_account_with_a_password_links_only_with_that_password(app, admin, op):
    configure(app, auto_provision=False)
    create_user(app, "alice", "pw")
    text = page_text(preview_saved(admin, op))
    assert "Asks for the local password of the existing account alice (same username)" in text
    assert "Nothing is linked and nobody is signed in until then." in text
    assert identity_count(app) == 0


def test_preview_shows_matching_group_rows_and_the_resulting_access(app, admin, op):
    configure(app, auto_provision=True, group_sync="replace", default_permissions=["read"])
    with app.app_context():
        db.session.add_all(
            [
                GroupMapping(group_value="readers", description="Book club", permissions=json.dumps(["download"])),
                GroupMapping(group_value="staff", grant_admin=True, permissions=json.dumps(["upload"])),
            ]
        )
        db.session.commit()
    text = page_text(preview_saved(admin, op))
    assert "Book club" in text and "<code>staff</code>" not in text
    assert '<span class="bo-chip">Download books</span>' in text and '<span class="bo-chip">Read books</span>' in text
    assert "Upload books" not in text


def test_preview_compares_an_existing_users_access_now_and_after(app, admin, op):
    configure(app, group_sync="replace")
    create_user(app, "alice", "pw", permissions=["upload"])
    with app.app_context():
        db.session.add(GroupMapping(group_value="readers", permissions=json.dumps(["read"])))
        db.session.commit()
    text = page_text(preview_saved(admin, op))
    assert "<h4>Now</h4>" in text and "<h4>After this sign-in</h4>" in text
    with app.app_context():  # and the preview did not apply it
        assert db.session.execute(select(User.permissions).where(User.username == "alice")).scalar_one() == ["upload"]


# -- unsaved values ------------------------------------------------------------------------------


def test_preview_from_the_form_uses_the_unsaved_values_and_saves_nothing(app, admin, op):
    version = None
    with app.test_request_context():
        version = app.extensions["booklore_oidc"].settings().version
    data = settings_form(
        admin, client_id="confidential-basic", client_secret=SECRET, claim_username="email", auto_provision=True
    )
    response = admin.post("/settings/oidc/preview", data=data)
    assert "client_id=confidential-basic" in response.headers["Location"]
    with app.app_context():  # the unsaved values travel encrypted with the transaction
        sealed = db.session.execute(select(Transaction.settings_override)).scalar_one()
    assert sealed and SECRET not in sealed and "confidential-basic" not in sealed

    text = page_text(finish(admin, op, response))
    assert "Creates the new account alice@example.test and signs in." in text
    assert op.last_token_request["auth_method_used"] == "client_secret_basic"
    with app.test_request_context():
        settings = app.extensions["booklore_oidc"].settings()
    assert settings.version == version and settings.client_id == "booklore-test" and not settings.client_secret


def test_preview_works_before_oidc_login_is_switched_on(app, admin, op):
    configure(app, enabled=False)
    response = preview_saved(admin, op)
    assert response.status_code == 200 and "Test sign-in" in page_text(response)
    assert admin.get("/login/oidc").status_code == 404  # readers still cannot sign in


def test_preview_form_with_invalid_values_is_refused(app, admin, op):
    response = admin.post("/settings/oidc/preview", data=settings_form(admin, issuer_uri="http://id.example.test"))
    assert response.status_code == 400 and "Issuer URI must be an https:// URL" in page_text(response)
    assert op.calls["authorize"] == 0


def test_preview_needs_a_configured_provider(app, admin):
    configure(app, client_id="")
    response = admin.get("/settings/oidc/preview")
    assert response.status_code == 409 and "Test sign-in needs the Client ID and the Issuer URI." in page_text(response)


def test_preview_is_off_while_force_disabled(app, admin, monkeypatch):
    monkeypatch.setenv("FORCE_DISABLE_OIDC", "true")
    from example_app import create_app

    fresh = create_app({k: app.config[k] for k in ("TESTING", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI")})
    client = fresh.test_client()
    sign_in(client, *ADMIN)
    response = client.get("/settings/oidc/preview")
    assert response.status_code == 409 and "FORCE_DISABLE_OIDC" in page_text(response)


def test_a_provider_that_cannot_be_reached_is_reported_on_the_settings_page(app, admin, op):
    op.discovery_status = 500
    response = admin.get("/settings/oidc/preview")
    assert response.status_code == 502 and "Test sign-in could not start" in page_text(response)


# -- errors and who may finish -------------------------------------------------------------------


def test_a_provider_error_is_shown_on_the_preview_page_and_the_admin_stays_signed_in(app, admin, op):
    op.authorize_error = ("access_denied", "The user said no")
    failed: list[Any] = []
    signals.login_failed.connect(failed.append)
    try:
        response = preview_saved(admin, op)
    finally:
        signals.login_failed.disconnect(failed.append)
    text = page_text(response)
    assert response.status_code == 400 and "The user said no" in text and "Test sign-in" in text
    assert me(admin)["username"] == "admin"
    assert failed == []  # a test sign-in is not a failed sign-in


def test_only_admins_may_finish_a_preview(app, admin, op):
    response = admin.get("/settings/oidc/preview")
    callback = local_path(op.authorize(response.headers["Location"]))
    with app.app_context():  # the admin is demoted while at the provider
        db.session.execute(User.__table__.update().where(User.username == "admin").values(is_admin=False))
        db.session.commit()
    refused = admin.get(callback)
    assert refused.status_code == 403 and "Administrators only" in page_text(refused)
    assert op.calls["token"] == 0
    assert user_count(app) == 1 and identity_count(app) == 0


def test_an_anonymous_visitor_cannot_finish_a_preview(app, admin, op):
    response = admin.get("/settings/oidc/preview")
    callback = local_path(op.authorize(response.headers["Location"]))
    anonymous = app.test_client()
    refused = anonymous.get(callback)
    # Another browser: the transaction is bound to the admin's, so it is refused as such.
    assert refused.status_code == 400 and b"invalid_state" in refused.data
    assert op.calls["token"] == 0 and me(anonymous) is None


def test_ordinary_sign_ins_still_work_after_a_preview(app, admin, op, signin):
    configure(app, auto_provision=True)
    preview_saved(admin, op)
    other = app.test_client()
    location = local_path(op.authorize(other.get("/login/oidc").headers["Location"]))
    assert other.get(location).status_code == 302
    assert me(other)["username"] == "alice" and identity_count(app) == 1


# -- the way back, reloads, another user (issue 16) -------------------------------------------------


def test_back_to_the_settings_restores_the_unsaved_values_but_never_the_secret(app, admin, op):
    form = settings_form(admin, provider_name="Typed, not saved", client_secret=SECRET)
    report = finish(admin, op, admin.post("/settings/oidc/preview", data=form))
    text = report.get_data(as_text=True)  # the provider refuses a secret for its public client: fine
    assert 'href="/settings/oidc?restore=1"' in text
    back = admin.get("/settings/oidc?restore=1").get_data(as_text=True)
    assert 'value="Typed, not saved"' in back and "Your unsaved values are back" in back
    assert "type it again before saving" in back and SECRET not in back
    with admin.session_transaction() as session:
        assert SECRET not in json.dumps(session.get("_booklore_oidc_restore"))


def test_a_saved_settings_test_sign_in_goes_back_to_the_saved_settings(app, admin, op):
    report = preview_saved(admin, op).get_data(as_text=True)
    assert 'href="/settings/oidc"' in report and "restore=1" not in report


def test_reloading_a_test_sign_in_report_is_no_invalid_state(app, admin, op):
    authorize_url = admin.get("/settings/oidc/preview").headers["Location"]
    callback = local_path(op.authorize(authorize_url))
    assert admin.get(callback).status_code == 200
    again = admin.get(callback)
    assert again.status_code == 200
    text = page_text(again)
    assert "This test sign-in was already shown" in text and "invalid_state" not in text


def test_test_sign_in_as_another_user_asks_the_provider_to_sign_in_afresh(app, admin, op):
    form = settings_form(admin)
    form["another_user"] = "1"
    location = admin.post("/settings/oidc/preview", data=form).headers["Location"]
    assert "prompt=login" in location and "max_age=0" in location
    assert "prompt=" not in admin.get("/settings/oidc/preview").headers["Location"]


def test_test_sign_in_shows_labels_of_permissions_and_libraries(app, admin, op):
    configure(app, group_sync="replace", auto_provision=True)
    from example_app.models import Library

    with app.app_context():
        library = Library(name="Fiction")
        db.session.add(library)
        db.session.flush()
        db.session.add(GroupMapping(group_value="readers", permissions='["download"]', libraries=f'["{library.id}"]'))
        db.session.commit()
    text = page_text(preview_saved(admin, op))
    matching = text[text.find("Matching group-mapping rows") :]
    assert "<td>Download books</td><td>Fiction</td>" in matching
    assert '<span class="bo-chip">Fiction</span>' in matching
