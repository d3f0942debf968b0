"""Who gets signed in (SPEC §6): each rule, each toggle, each conflict, through real sign-ins."""

from __future__ import annotations

import pytest
from helpers import SignIn, add_user, configure, identity_count, me, refusal_detail, user_count
from sqlalchemy import select

from example_app.models import User, db
from flask_booklore_oidc import signals
from flask_booklore_oidc.models import Identity

pytestmark = pytest.mark.both_databases


def linked_user_ids(app):
    with app.app_context():
        return [(i.subject, i.user_id, i.linked_by) for i in db.session.scalars(select(Identity))]


def get_user(app, username):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


# -- rule 2: an identity already linked --------------------------------------------------------


def test_existing_identity_signs_in_the_linked_user_even_after_a_rename(app, client, op, signin):
    signin()
    with app.app_context():
        db.session.scalar(select(User).where(User.username == "alice")).username = "alice-renamed"
        db.session.commit()
    client.get("/logout")
    fresh = app.test_client()
    SignIn(fresh, op)()
    assert me(fresh)["username"] == "alice-renamed"
    assert user_count(app) == 1 and identity_count(app) == 1


def test_profile_sync_updates_email_and_display_name(app, client, op, signin):
    signin()
    op.id_token_claims_update = {"email": "new@example.test", "name": "Alice L."}
    second = app.test_client()
    SignIn(second, op)()
    data = me(second)
    assert data["email"] == "new@example.test" and data["display_name"] == "Alice L."


def test_profile_sync_off_leaves_the_profile_alone(app, client, op, signin):
    add_user(app, "alice", email="old@example.test", display_name="Old Name", password=None)
    configure(app, sync_profile=False)
    signin()
    assert me(client)["email"] == "old@example.test"
    assert me(client)["display_name"] == "Old Name"


def test_profile_sync_skips_an_email_that_belongs_to_another_account(app, client, op, signin):
    add_user(app, "alice", email="mine@example.test", password=None)
    add_user(app, "carol", email="alice@example.test")
    signin()
    assert me(client)["email"] == "mine@example.test"


# -- rule 3: link by username ------------------------------------------------------------------


def test_links_an_existing_local_user_by_exact_username_and_keeps_their_data(app, client, signin):
    user_id = add_user(app, "alice", permissions=["read", "upload"], password=None)
    configure(app, auto_provision=False)
    received = []
    with signals.account_linked.connected_to(lambda sender, **kw: received.append(kw), app):
        signin()
    assert me(client)["permissions"] == ["read", "upload"]
    assert linked_user_ids(app) == [("sub-alice", str(user_id), "username")]
    assert received[0]["by"] == "username" and received[0]["identity"].subject == "sub-alice"


def test_username_linking_is_case_sensitive_by_default(app, client, signin):
    add_user(app, "Alice")
    configure(app, auto_provision=False)
    response = signin()
    assert response.status_code == 403 and b"user_not_provisioned" in response.data
    assert identity_count(app) == 0


def test_username_linking_can_ignore_case(app, client, signin):
    add_user(app, "Alice", password=None)
    configure(app, auto_provision=False, username_case_sensitive=False)
    signin()
    assert me(client)["username"] == "Alice"


def test_username_linking_off_does_not_link(app, client, signin):
    add_user(app, "alice")
    configure(app, link_by_username=False, auto_provision=False)
    response = signin()
    assert response.status_code == 403 and b"user_not_provisioned" in response.data


def test_user_already_linked_to_another_subject_is_an_account_conflict(app, client, op, signin):
    user_id = add_user(app, "alice")
    with app.app_context():
        db.session.add(Identity(issuer=op.issuer, subject="sub-somebody-else", user_id=str(user_id), linked_by="admin"))
        db.session.commit()
    response = signin()
    assert response.status_code == 409 and b"account_conflict" in response.data
    assert "already linked" in refusal_detail(app, response.get_data(as_text=True))
    assert me(client) is None and identity_count(app) == 1


# -- rule 4: link by verified email ------------------------------------------------------------


def test_links_by_verified_email_when_on(app, client, signin):
    user_id = add_user(app, "alice.local", email="ALICE@example.test", password=None)
    configure(app, link_by_email=True, auto_provision=False)
    signin()
    assert me(client)["username"] == "alice.local"
    assert linked_user_ids(app) == [("sub-alice", str(user_id), "email")]


def test_does_not_link_by_unverified_email(app, client, op, signin):
    add_user(app, "alice.local", email="alice@example.test")
    configure(app, link_by_email=True, auto_provision=False)
    op.id_token_claims_update = {"email_verified": False}
    response = signin()
    assert response.status_code == 403 and b"user_not_provisioned" in response.data


def test_does_not_link_when_two_accounts_share_the_email(app, client, signin):
    add_user(app, "alice.one", email="alice@example.test")
    add_user(app, "alice.two", email="alice@example.test")
    configure(app, link_by_email=True, auto_provision=False)
    response = signin()
    assert response.status_code == 403 and identity_count(app) == 0


def test_email_linking_is_off_by_default(app, client, signin):
    add_user(app, "alice.local", email="alice@example.test")
    configure(app, auto_provision=False)
    assert signin().status_code == 403


# -- rule 5: auto-provisioning -----------------------------------------------------------------


def test_auto_provisioning_creates_the_user_with_defaults(app, client, signin):
    configure(app, default_permissions=["read", "download"], default_libraries=["1"])
    received = []
    with signals.user_provisioned.connected_to(lambda sender, **kw: received.append(kw), app):
        signin()
    data = me(client)
    assert data == {
        "username": "alice", "email": "alice@example.test", "display_name": "Alice Liddell",
        "is_admin": False, "permissions": ["download", "read"], "libraries": ["1"],
    }
    assert received[0]["user"].username == "alice"


def test_display_name_falls_back_to_the_username(app, client, op, signin):
    op.id_token_claims_update = {"name": None}
    op.userinfo_update = {"name": None}
    signin()
    assert me(client)["display_name"] == "alice"


def test_provisioning_refuses_a_username_taken_case_insensitively(app, client, signin):
    add_user(app, "ALICE")
    response = signin()
    assert response.status_code == 409 and b"account_conflict" in response.data
    assert user_count(app) == 1 and identity_count(app) == 0


def test_provisioning_refuses_an_email_that_is_taken(app, client, signin):
    add_user(app, "someone", email="alice@example.test")
    response = signin()
    assert response.status_code == 409
    assert "alice@example.test" in refusal_detail(app, response.get_data(as_text=True))
    assert user_count(app) == 1 and identity_count(app) == 0


def test_provisioning_without_a_username_claim_is_refused(app, client, op, signin):
    op.id_token_claims_update = {"preferred_username": None}
    op.userinfo_update = {"preferred_username": None}
    response = signin()
    assert response.status_code == 403
    assert "no username" in refusal_detail(app, response.get_data(as_text=True))
    assert user_count(app) == 0


# -- rule 6 and the gate -----------------------------------------------------------------------


def test_user_not_provisioned_tells_the_reader_to_ask_the_administrator(app, client, signin):
    configure(app, auto_provision=False)
    response = signin()
    assert response.status_code == 403
    assert b"user_not_provisioned" in response.data
    assert b"There is no account here for you yet. Please ask your administrator" in response.data
    assert b"create a user here whose username exactly matches" not in response.data  # the admins' advice
    assert me(client) is None and user_count(app) == 0


@pytest.mark.parametrize("groups", [["strangers"], [], None], ids=["other-group", "no-groups", "claim-missing"])
def test_allowed_groups_refuse_non_members_before_anything_is_written(app, client, op, signin, groups):
    add_user(app, "alice")
    configure(app, allowed_groups=["readers", "admins"])
    op.id_token_claims_update = {"groups": groups}
    op.userinfo_update = {"groups": groups}
    response = signin()
    assert response.status_code == 403 and b"access_denied_group" in response.data
    assert me(client) is None and identity_count(app) == 0 and user_count(app) == 1


def test_allowed_groups_let_members_in(app, client, signin):
    configure(app, allowed_groups=["readers"])
    signin()
    assert me(client)["username"] == "alice"


# -- deletion --------------------------------------------------------------------------------


def test_deleting_a_user_removes_its_identities_and_a_reused_id_inherits_nothing(app, client, op, signin):
    signin()
    with app.app_context():
        alice = db.session.scalar(select(User).where(User.username == "alice"))
        old_id = alice.id
        db.session.delete(alice)
        db.session.commit()
        assert db.session.scalars(select(Identity)).all() == []
        # SQLite hands the same id to the next row once the highest one is gone.
        mallory = User(id=old_id, username="mallory", permissions=[], libraries=[])
        db.session.add(mallory)
        db.session.commit()
    configure(app, auto_provision=False, link_by_username=False)
    fresh = app.test_client()
    response = SignIn(fresh, op)()
    assert response.status_code == 403 and me(fresh) is None


# -- values only PostgreSQL refuses (SQLite keeps strings of any length, NUL bytes included) ------


def _refused(app, client, response, status, code, words):
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert code in text and words in refusal_detail(app, text)
    assert me(client) is None
    assert user_count(app) == 0 and identity_count(app) == 0


def test_a_subject_longer_than_255_characters_is_refused_as_an_invalid_token(app, client, op, signin):
    op.add_user("s" * 300, preferred_username="long-subject", email="long@example.test", email_verified=True)
    op.login_as("s" * 300)
    _refused(app, client, signin(), 401, "invalid_token", "longer than 255 characters")


def test_a_nul_byte_in_the_username_claim_is_refused_before_the_database(app, client, op, signin):
    op.add_user("sub-nul", preferred_username="bad\x00name", email="nul@example.test", email_verified=True)
    op.login_as("sub-nul")
    _refused(app, client, signin(), 403, "invalid_username", "control character U+0000")


def test_a_username_claim_longer_than_the_hosts_column_is_refused(app, client, op, signin):
    op.add_user("sub-long-name", preferred_username="u" * 300, email="name@example.test", email_verified=True)
    op.login_as("sub-long-name")
    _refused(app, client, signin(), 403, "invalid_username", "longer than the 100 characters")
