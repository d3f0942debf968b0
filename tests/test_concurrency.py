"""Two first sign-ins of one new person at the same moment (SPEC §6): one user and one identity,
both browsers signed in — a person's own concurrent sign-in is never an ``account_conflict``."""

from __future__ import annotations

import threading

import pytest
from helpers import SignIn, identity_count, me, user_count

from example_app.models import User, db

pytestmark = pytest.mark.both_databases


def test_simultaneous_first_signins_create_one_user_and_one_identity(app, op):
    oidc = app.extensions["booklore_oidc"]
    both_decided = threading.Barrier(2, timeout=10)

    @oidc.user_provisioner
    def provision(identity, new_user):
        # Both requests have decided "new account" before either writes: the race is certain.
        both_decided.wait()
        user = User(
            username=new_user.username,
            email=new_user.email,
            display_name=new_user.display_name,
            permissions=[],
            libraries=[],
        )
        db.session.add(user)
        return user

    clients = [app.test_client(), app.test_client()]
    callbacks = [SignIn(c, op).provider_answer(SignIn(c, op).start()) for c in clients]
    results: list[int] = []

    def finish(client, url):
        results.append(client.get(url).status_code)

    threads = [threading.Thread(target=finish, args=pair) for pair in zip(clients, callbacks, strict=True)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    finally:
        oidc.reset_hooks()

    assert results == [302, 302]
    assert user_count(app) == 1 and identity_count(app) == 1
    assert me(clients[0])["username"] == me(clients[1])["username"] == "alice"


def _another_signin_commits_first(app, monkeypatch, *, issuer, username="alice", subject="sub-alice"):
    """Make a parallel first sign-in of the same person commit its user and identity between
    this sign-in's identity lookup and its username lookup (the race, made certain)."""
    from sqlalchemy import insert

    from flask_booklore_oidc.models import Identity

    with app.app_context():
        adapter = app.extensions["booklore_oidc"].state_for(app).adapter
        engine = db.engine
    original = adapter.get_by_username
    fired = []

    def interleaved(name, *, case_sensitive=True):
        if not fired:
            fired.append(True)
            with engine.begin() as conn:
                user_id = conn.execute(
                    insert(User).values(username=username, permissions=[], libraries=[], is_admin=False)
                ).inserted_primary_key[0]
                conn.execute(
                    insert(Identity).values(
                        issuer=issuer, subject=subject, user_id=str(user_id), linked_by="provisioned"
                    )
                )
        return original(name, case_sensitive=case_sensitive)

    monkeypatch.setattr(adapter, "get_by_username", interleaved)
    return fired


@pytest.mark.parametrize("link_by_username", [True, False], ids=["linking-by-username", "provisioning"])
def test_a_parallel_first_signin_that_committed_first_is_no_conflict(app, op, monkeypatch, link_by_username):
    from helpers import configure

    configure(app, link_by_username=link_by_username)
    fired = _another_signin_commits_first(app, monkeypatch, issuer=op.issuer)
    client = app.test_client()
    response = SignIn(client, op)()
    assert fired and response.status_code == 302, response.get_data(as_text=True)
    assert user_count(app) == 1 and identity_count(app) == 1
    assert me(client)["username"] == "alice"
