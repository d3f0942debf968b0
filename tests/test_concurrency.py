"""Two first sign-ins of one new person at the same moment (SPEC §6), against a file-backed
SQLite database shared by two threads: one user and one identity, both browsers signed in."""

from __future__ import annotations

import threading

import pytest
from conftest import SignIn, identity_count, me, user_count

from example_app.models import User, db

pytestmark = pytest.mark.both_databases


def test_simultaneous_first_signins_create_one_user_and_one_identity(app, op):
    oidc = app.extensions["booklore_oidc"]
    both_decided = threading.Barrier(2, timeout=10)

    @oidc.user_provisioner
    def provision(identity, new_user):
        # Both requests have decided "new account" before either writes: the race is certain.
        both_decided.wait()
        user = User(username=new_user.username, email=new_user.email, display_name=new_user.display_name,
                    permissions=[], libraries=[])
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
        oidc._provisioner = None

    assert results == [302, 302]
    assert user_count(app) == 1 and identity_count(app) == 1
    assert me(clients[0])["username"] == me(clients[1])["username"] == "alice"
