"""A real PostgreSQL restart (SPEC §14): the example app (``pool_pre_ping``) on a server of the
test's own that is stopped and started again with ``pg_ctl``. While it is down every page is the
503 page; once it is back the very next request succeeds — no 500 from a pooled connection the
restart killed — and the reader is still signed in."""

from __future__ import annotations

import pytest
from helpers import SignIn, me, settings_for

from example_app import create_app
from example_app.models import db


@pytest.fixture
def restartable(own_postgresql_server, op):
    """(server, app): the example app on a PostgreSQL server the test may stop and start."""
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": own_postgresql_server.url()
    })
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings(settings_for(op))
    yield own_postgresql_server, app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _unavailable(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert "cannot reach its database" in response.get_data(as_text=True)


def test_while_postgresql_is_stopped_pages_are_a_503_and_the_next_request_after_it_starts_succeeds(restartable, op):
    server, app = restartable
    client = app.test_client()
    assert SignIn(client, op)().status_code == 302
    assert me(client)["username"] == "alice"

    server.down()
    _unavailable(client.get("/login"))
    _unavailable(client.get("/"))
    server.up()

    response = client.get("/")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert me(client)["username"] == "alice"


def test_after_a_restart_nobody_had_a_request_during_the_pooled_connections_are_replaced(restartable, op):
    server, app = restartable
    client = app.test_client()
    assert SignIn(client, op)().status_code == 302
    with app.app_context():
        pooled = db.engine.pool.checkedin()
    assert pooled >= 1  # the connections the restart kills are in the pool

    server.restart()

    assert client.get("/").status_code == 200
    assert client.get("/login").status_code == 302  # still signed in: to the library
    assert me(client)["username"] == "alice"


def test_a_process_that_starts_while_postgresql_is_stopped_answers_503_then_signs_in_once_it_is_back(restartable, op):
    server, app = restartable
    server.down()
    # gunicorn replacing a worker during the restart: a worker that fails to start stops them all
    late = create_app(dict(app.config))
    client = late.test_client()
    _unavailable(client.get("/login"))
    _unavailable(client.get("/login/oidc"))
    server.up()

    assert client.get("/login").status_code == 200
    assert SignIn(client, op)().status_code == 302
    assert me(client)["username"] == "alice"
    with late.app_context():
        db.session.remove()
        db.engine.dispose()
