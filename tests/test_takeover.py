"""Accounts can't be taken over (issue 11, SPEC §6): a provider user links to an existing
account only with proof, names are compared exactly, look-alike names are not provisioned,
unverified emails are not synced, and the example app needs a real SECRET_KEY."""

from __future__ import annotations

import pytest
from helpers import add_user, configure, identity_count, me, refusal_detail, sql_statements, user_count
from settings_helpers import csrf_token
from sqlalchemy import func, select

from example_app.models import User, db
from flask_booklore_oidc import signals
from flask_booklore_oidc.models import Identity, PendingLink

LINK = "/login/link"


def page_text(response):
    """What a reader sees: the page without its tags, whitespace collapsed."""
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def provider_username(op, name):
    op.id_token_claims_update = {"preferred_username": name}
    op.userinfo_update = {"preferred_username": name}


def linked(app):
    with app.app_context():
        return [(i.subject, i.user_id, i.linked_by) for i in db.session.scalars(select(Identity))]


def pending_links(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(PendingLink))


def email_of(app, username):
    with app.app_context():
        return db.session.scalar(select(User.email).where(User.username == username))


def reach_link_page(client, signin):
    """Sign in at the provider; expect to be sent to the password page, and open it."""
    response = signin(next="/account")
    assert response.status_code == 302 and response.headers["Location"] == LINK
    page = client.get(LINK)
    assert page.status_code == 200
    return page


def prove(client, page, **data):
    form = {"csrf_token": csrf_token(page.get_data(as_text=True)), "submit": "Connect and sign in"}
    form.update(data)
    return client.post(LINK, data=form)


def assert_nothing_written(app, client, *, users=1):
    assert me(client) is None
    assert identity_count(app) == 0
    assert user_count(app) == users


# -- linking with proof -------------------------------------------------------------------------


def test_provider_user_named_like_a_local_admin_with_a_password_must_type_that_password(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    text = page_text(page)
    assert "We found an existing account named admin" in text
    assert "enter its password to connect it to your Pocket ID sign-in" in text
    assert_nothing_written(app, client)
    assert pending_links(app) == 1


def test_a_passwordless_admin_account_is_never_linked_automatically(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password=None)
    provider_username(op, "admin")
    response = signin()
    assert response.status_code == 409
    text = page_text(response)
    assert "account_conflict" in text and "an administrator must link it" in refusal_detail(app, text)
    assert_nothing_written(app, client)
    assert pending_links(app) == 0


def test_a_passwordless_admin_account_links_when_an_administrator_links_it(app, client, op, signin, run):
    add_user(app, "admin", is_admin=True, password=None)
    provider_username(op, "admin")
    assert run("link", "admin", "sub-alice").exit_code == 0
    signin()
    assert me(client)["username"] == "admin"


def test_provider_user_named_like_a_local_password_account_must_type_its_password(app, client, op, signin):
    add_user(app, "alice", password="alice-pw")
    page = reach_link_page(client, signin)
    assert "We found an existing account named alice" in page_text(page)
    assert_nothing_written(app, client)


def test_an_account_made_for_single_sign_on_links_at_once(app, client, signin):
    user_id = add_user(app, "alice", password=None)
    response = signin(next="/account")
    assert response.headers["Location"] == "/account"
    assert me(client)["username"] == "alice"
    assert linked(app) == [("sub-alice", str(user_id), "username")]


def test_an_account_found_by_verified_email_with_a_password_needs_proof_too(app, client, op, signin):
    user_id = add_user(app, "alice.local", email="alice@example.test", password="alice-pw")
    configure(app, link_by_email=True, auto_provision=False)
    page = reach_link_page(client, signin)
    assert "named alice.local" in page_text(page)
    response = prove(client, page, password="alice-pw")
    assert response.status_code == 302
    assert linked(app) == [("sub-alice", str(user_id), "email")]


def test_right_proof_password_links_and_signs_in(app, client, op, signin, sent):
    user_id = add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    linked_sends = sent(signals.account_linked)
    page = reach_link_page(client, signin)
    response = prove(client, page, password="admin-pw")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    assert me(client)["username"] == "admin"
    assert linked(app) == [("sub-alice", str(user_id), "username")]
    assert [call["by"] for call in linked_sends] == ["username"]
    assert pending_links(app) == 0
    # The next sign-in through the provider finds the identity: no password asked again.
    other = app.test_client()
    from helpers import SignIn

    assert SignIn(other, op)().headers["Location"] == "/"
    assert me(other)["username"] == "admin"


def test_wrong_proof_password_links_nothing(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    response = prove(client, page, password="guess")
    assert response.status_code == 401
    assert "Wrong password. 4 attempts left." in page_text(response)
    assert_nothing_written(app, client)
    assert pending_links(app) == 1


def test_five_wrong_proof_passwords_drop_the_pending_link(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    for _ in range(4):
        assert prove(client, page, password="guess").status_code == 401
    last = prove(client, page, password="guess")
    assert last.status_code == 400 and "too many wrong passwords" in refusal_detail(app, page_text(last))
    assert pending_links(app) == 0
    assert client.get(LINK).status_code == 400
    assert_nothing_written(app, client)


def test_an_expired_pending_link_is_gone(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    with app.app_context():
        for row in db.session.scalars(select(PendingLink)):
            row.expires_at = row.created_at.replace(year=2000)
        db.session.commit()
    response = prove(client, page, password="admin-pw")
    assert response.status_code == 400 and "expired" in page_text(response)
    assert pending_links(app) == 0
    assert_nothing_written(app, client)


def test_proof_with_a_foreign_csrf_token_is_refused(app, client, op, signin):
    app.config["WTF_CSRF_ENABLED"] = True
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    reach_link_page(client, signin)
    foreign = app.test_client().get("/login")  # another browser's token
    response = client.post(
        LINK, data={"csrf_token": csrf_token(foreign.get_data(as_text=True)), "password": "admin-pw"}
    )
    assert response.status_code == 400 and "The form expired" in page_text(response)
    assert_nothing_written(app, client)
    assert pending_links(app) == 1


def test_proof_with_a_stale_csrf_token_is_refused(app, client, op, signin, monkeypatch):
    app.config["WTF_CSRF_ENABLED"] = True
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    import itsdangerous.timed

    issued = itsdangerous.timed.TimestampSigner.get_timestamp
    # Two hours later: past Flask-WTF's one-hour limit.
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: issued(self) + 7200)
    response = prove(client, page, password="admin-pw")
    assert response.status_code == 400 and "The form expired" in page_text(response)
    assert_nothing_written(app, client)


def test_cancel_drops_the_pending_link_and_signs_nobody_in(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    page = reach_link_page(client, signin)
    response = client.post(LINK, data={"csrf_token": csrf_token(page.get_data(as_text=True)), "cancel": "Cancel"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert pending_links(app) == 0
    assert client.get(LINK).status_code == 400
    assert_nothing_written(app, client)


def test_the_pending_link_belongs_to_the_browser_that_signed_in(app, client, op, signin):
    add_user(app, "admin", is_admin=True, password="admin-pw")
    provider_username(op, "admin")
    reach_link_page(client, signin)
    stranger = app.test_client()
    assert stranger.get(LINK).status_code == 400
    assert pending_links(app) == 1


# -- exact names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [" admin", "admin ", "ad\tmin", "admin\n", "ad\u200bmin"])
@pytest.mark.parametrize("password", [None, "admin-pw"])
def test_padded_or_control_character_usernames_are_refused(app, client, op, signin, name, password):
    add_user(app, "admin", is_admin=True, password=password)
    provider_username(op, name)
    with sql_statements(app) as statements:
        response = signin()
    assert response.status_code == 403
    text = page_text(response)
    assert "invalid_username" in text and "compared exactly" in refusal_detail(app, text)
    assert_nothing_written(app, client)
    assert pending_links(app) == 0
    assert not any("booklore_oidc_identity" in s or 'FROM "user"' in s or "FROM user" in s for s in statements)


@pytest.mark.parametrize("name", ["\u0430dmin", "adm\u0456n"])  # Cyrillic a, Ukrainian i
def test_a_username_that_looks_like_an_existing_one_is_not_provisioned(app, client, op, signin, name):
    add_user(app, "admin", is_admin=True)
    provider_username(op, name)
    response = signin()
    assert response.status_code == 409
    assert "looks like the name of an existing account" in refusal_detail(app, page_text(response))
    assert_nothing_written(app, client)


def test_an_unrelated_new_username_is_still_provisioned(app, client, op, signin):
    add_user(app, "admin", is_admin=True)
    signin()
    assert me(client)["username"] == "alice" and user_count(app) == 2


def test_case_insensitive_matching_folds_unicode_case_after_nfkc(app, client, op, signin):
    add_user(app, "Stra\u00dfe", password=None)
    configure(app, auto_provision=False, username_case_sensitive=False)
    provider_username(op, "STRASSE")
    signin()
    assert me(client)["username"] == "Stra\u00dfe"


def test_case_insensitive_matching_folds_fullwidth_letters(app, client, op, signin):
    add_user(app, "alice", password=None)
    configure(app, auto_provision=False, username_case_sensitive=False)
    provider_username(op, "\uff21\uff2c\uff29\uff23\uff25")  # ALICE in fullwidth letters
    signin()
    assert me(client)["username"] == "alice"


# -- profile sync ---------------------------------------------------------------------------------


def test_profile_sync_never_writes_an_unverified_email(app, client, op, signin):
    add_user(app, "alice", email="mine@example.test", password=None)
    op.id_token_claims_update = {"email": "attacker@example.test", "email_verified": False}
    op.userinfo_update = {"email": "attacker@example.test", "email_verified": False}
    signin()
    assert me(client)["username"] == "alice"
    assert email_of(app, "alice") == "mine@example.test"


def test_profile_sync_writes_a_verified_email(app, client, op, signin):
    add_user(app, "alice", email="mine@example.test", password=None)
    op.id_token_claims_update = {"email": "new@example.test", "email_verified": True}
    signin()
    assert email_of(app, "alice") == "new@example.test"


# -- the example app's SECRET_KEY -----------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "dev-only-change-me", "change-me", ""])
def test_the_example_app_refuses_to_start_without_a_real_secret_key(db_dir, monkeypatch, key):
    from example_app import MissingSecretKey, create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'k.sqlite'}"}
    if key is not None:
        config["SECRET_KEY"] = key
    with pytest.raises(MissingSecretKey, match="SECRET_KEY"):
        create_app(config)


def test_the_example_app_takes_its_secret_key_from_the_environment(db_dir, monkeypatch):
    from example_app import create_app

    monkeypatch.setenv("SECRET_KEY", "a-real-random-value-from-the-environment")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'k.sqlite'}"})
    assert app.config["SECRET_KEY"] == "a-real-random-value-from-the-environment"
    with app.app_context():
        db.engine.dispose()
