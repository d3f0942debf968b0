"""A database that goes away (SPEC §14): every request gets a clear 503 page while it is down —
our pages and the host's — and the app recovers by itself when it is back."""

from __future__ import annotations

import pytest
from helpers import me
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

pytestmark = pytest.mark.both_databases


@pytest.fixture
def outage(app):
    """Every new connection fails, and pooled ones are gone: the database server is down."""
    from example_app.models import db

    with app.app_context():
        engine = db.engine
    state = {"down": False}

    def refuse(dialect, conn_rec, cargs, cparams):
        if state["down"]:
            raise OperationalError("connect", {}, ConnectionRefusedError("connection refused"))

    event.listen(engine, "do_connect", refuse)

    def down():
        state["down"] = True
        engine.dispose()

    def up():
        state["down"] = False

    yield down, up
    event.remove(engine, "do_connect", refuse)


def _unavailable(response) -> None:
    assert response.status_code == 503
    assert "cannot reach its database" in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize("path", ["/login", "/login?local=true", "/login/oidc", "/oauth2-callback?state=x&code=y"])
def test_while_the_database_is_down_our_pages_are_a_503_that_says_so(app, client, outage, path):
    down, _ = outage
    down()
    _unavailable(client.get(path))


@pytest.mark.parametrize("path", ["/", "/api/me", "/account", "/settings/oidc"])
def test_while_the_database_is_down_a_signed_in_admin_gets_a_503_on_every_page(app, admin, outage, path):
    down, _ = outage
    down()
    _unavailable(admin.get(path))


def test_a_signed_in_reader_gets_a_503_and_is_signed_in_again_once_the_database_is_back(app, client, signin, outage):
    down, up = outage
    signin()
    assert me(client) is not None
    down()
    assert client.get("/").status_code == 503
    up()
    assert me(client)["username"] == "alice"
    assert client.get("/login").status_code == 302  # already signed in: to the library
