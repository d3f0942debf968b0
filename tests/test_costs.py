"""What the extension costs (SPEC §12), counted rather than timed.

Routes that are not ours must cost nothing: the SQL a host route sends is compared statement by
statement with a twin of the example app built without the extension (``benchmarks.apps``), and
outbound requests are counted at both ends (our transport and the fake provider). A warm
sign-in costs one request, two with userinfo; the provider's metadata and keys are fetched once
per TTL, and a flood of unknown key ids cannot turn into a flood of JWKS requests. Time is a
fake clock handed to the provider cache, so nothing here sleeps.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import add_user, me, sql_statements
from sqlalchemy import select

from benchmarks.apps import create_twin_app
from example_app.models import User, db
from flask_booklore_oidc.discovery import ProviderCache

#: what the provider serves to the browser, not to us
BROWSER_ENDPOINTS = {"authorize"}


def transport_sent(app: Flask) -> Counter[str]:
    return Counter(app.extensions["booklore_oidc"].state_for(app).transport.sent)


def provider_calls(op: Any) -> Counter[str]:
    """Requests the relying party made to the provider (the browser's visits left out)."""
    return Counter({k: v for k, v in op.calls.items() if k not in BROWSER_ENDPOINTS and v})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Flask) -> FakeClock:
    """Puts the app's provider cache on a clock the test moves by hand."""
    fake = FakeClock()
    state = app.extensions["booklore_oidc"].state_for(app)
    state.cache = ProviderCache(
        state.transport,
        ttl=float(app.config["BOOKLORE_OIDC_DISCOVERY_TTL"]),
        min_refetch=float(app.config["BOOKLORE_OIDC_JWKS_MIN_REFETCH"]),
        clock=fake,
    )
    return fake


@pytest.fixture
def twin(app: Flask) -> Iterator[Flask]:
    """The example app without the extension, on the same database (same users and books)."""
    twin = create_twin_app(
        {"SECRET_KEY": app.config["SECRET_KEY"], "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}
    )
    yield twin
    with twin.app_context():
        db.session.remove()
        db.engine.dispose()


def sign_in_alice(app: Flask, client: FlaskClient, signin: Any) -> int:
    response = signin()
    assert response.status_code == 302, response.get_data(as_text=True)
    assert me(client)["username"] == "alice"
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == "alice"))


def twin_client_as(twin: Flask, user_id: int) -> FlaskClient:
    client = twin.test_client()
    assert client.get(f"/twin-sign-in/{user_id}").status_code == 200
    return client


# -- routes that are not ours ------------------------------------------------------------------


def assert_same_sql_as_without_the_extension(
    app: Flask, client: FlaskClient, twin: Flask, twin_client: FlaskClient, path: str
) -> None:
    assert client.get(path).status_code == twin_client.get(path).status_code == 200  # warm both

    with sql_statements(app) as ours:
        ours_response = client.get(path)
    with sql_statements(twin) as without:
        twin_response = twin_client.get(path)

    assert ours_response.status_code == twin_response.status_code == 200
    assert ours_response.get_data() == twin_response.get_data()  # the twin is the same page
    assert len(without) >= 1  # the host's own user_loader SELECT: the counter does see statements
    assert ours == without
    assert not [s for s in ours if "booklore_oidc_" in s]


LOGIN_CHECK = (
    "SELECT booklore_oidc_login.ended_at, booklore_oidc_login.expires_at FROM booklore_oidc_login "
    "WHERE booklore_oidc_login.id = ?"
)


def extra_sql(app: Flask, client: FlaskClient, twin: Flask, twin_client: FlaskClient, path: str) -> list[str]:
    """What a signed-in request to ``path`` sends beyond the twin's SQL (both warmed first)."""
    assert client.get(path).status_code == twin_client.get(path).status_code == 200
    with sql_statements(app) as ours:
        ours_response = client.get(path)
    with sql_statements(twin) as without:
        twin_response = twin_client.get(path)
    assert ours_response.status_code == twin_response.status_code == 200
    assert ours_response.get_data() == twin_response.get_data()  # the twin is the same page
    assert len(without) >= 1  # the host's own user_loader SELECT: the counter does see statements
    assert [s for s in ours if s != LOGIN_CHECK] == without  # the host's SQL, untouched
    return [s for s in ours if s not in without]


@pytest.mark.parametrize("advertised", [True, False])
@pytest.mark.parametrize("path", ["/api/me", "/"])
def test_signed_in_host_route_adds_exactly_one_login_record_read(app, client, op, signin, twin, path, advertised):
    # SPEC §8: every signed-in session can be ended, so each signed-in request reads its login
    # record by primary key, once; whether the provider advertised back-channel logout or not.
    op.metadata_overrides = {"backchannel_logout_supported": advertised}
    twin_client = twin_client_as(twin, sign_in_alice(app, client, signin))

    assert extra_sql(app, client, twin, twin_client, path) == [LOGIN_CHECK]


def test_a_local_session_adds_exactly_one_login_record_read(app, client, twin, no_csrf):
    user_id = add_user(app, "carol", password="carol-pw")
    assert client.post("/login", data={"username": "carol", "password": "carol-pw"}).status_code == 302

    assert extra_sql(app, client, twin, twin_client_as(twin, user_id), "/api/me") == [LOGIN_CHECK]


def test_with_a_check_interval_a_host_route_sends_exactly_the_sql_of_the_app_without_the_extension(
    app, client, op, signin, twin
):
    app.extensions["booklore_oidc"].state_for(app).check_interval = 60
    twin_client = twin_client_as(twin, sign_in_alice(app, client, signin))

    assert extra_sql(app, client, twin, twin_client, "/") == []


@pytest.mark.parametrize(("path", "status"), [("/", 302), ("/api/me", 401)])
def test_anonymous_host_route_sends_no_sql(app, client, twin, path, status):
    client.get(path)
    with sql_statements(app) as ours:
        response = client.get(path)
    with sql_statements(twin) as without:
        twin.test_client().get(path)

    assert response.status_code == status
    assert ours == without == []


def test_host_routes_make_no_outbound_requests(app, client, op, signin):
    anonymous = app.test_client()
    sign_in_alice(app, client, signin)
    sent, calls = transport_sent(app), provider_calls(op)

    for path in ("/", "/account", "/api/me", "/admin/users"):
        client.get(path)
        anonymous.get(path)

    assert transport_sent(app) == sent
    assert provider_calls(op) == calls


# -- the sign-in -------------------------------------------------------------------------------


def test_warm_signin_makes_one_outbound_request_when_the_id_token_has_every_mapped_claim(app, client, op, signin):
    sign_in_alice(app, client, signin)  # cold: discovery, keys, token
    sent, calls = transport_sent(app), provider_calls(op)

    sign_in_alice(app, client, signin)

    assert transport_sent(app) - sent == Counter({"POST": 1})
    assert provider_calls(op) - calls == Counter({"token": 1})


def test_warm_signin_makes_two_outbound_requests_when_userinfo_is_needed(app, client, op, signin):
    op.claims_in_id_token = False  # preferred_username, email, name, groups only from userinfo
    sign_in_alice(app, client, signin)
    sent, calls = transport_sent(app), provider_calls(op)

    sign_in_alice(app, client, signin)

    assert transport_sent(app) - sent == Counter({"POST": 1, "GET": 1})
    assert provider_calls(op) - calls == Counter({"token": 1, "userinfo": 1})


def test_discovery_and_jwks_are_fetched_once_per_ttl(app, client, op, signin, clock):
    """Keys once per TTL; discovery once per TTL, except that the start of a sign-in checks it
    once a minute (views.RECHECK_PROVIDER_AFTER), to notice a provider that stopped."""
    from flask_booklore_oidc.views import RECHECK_PROVIDER_AFTER

    ttl = float(app.config["BOOKLORE_OIDC_DISCOVERY_TTL"])
    for _ in range(3):
        sign_in_alice(app, client, signin)
    assert (op.calls["discovery"], op.calls["jwks"]) == (1, 1)

    clock.now += RECHECK_PROVIDER_AFTER - 1
    sign_in_alice(app, client, signin)
    assert (op.calls["discovery"], op.calls["jwks"]) == (1, 1)

    clock.now += 2  # the start of a sign-in checks discovery again; the keys stay cached
    sign_in_alice(app, client, signin)
    assert (op.calls["discovery"], op.calls["jwks"]) == (2, 1)

    clock.now += ttl  # the cached document and keys are now older than the TTL
    sign_in_alice(app, client, signin)
    sign_in_alice(app, client, signin)
    assert (op.calls["discovery"], op.calls["jwks"]) == (3, 2)
    assert op.calls["token"] == 7


def test_a_hundred_signins_with_unknown_key_ids_cause_bounded_jwks_fetches(app, client, op, signin, clock):
    sign_in_alice(app, client, signin)
    assert op.calls["jwks"] == 1
    min_refetch = float(app.config["BOOKLORE_OIDC_JWKS_MIN_REFETCH"])

    for n in range(100):  # one per second, each with a key id the provider never published
        op.id_token_header_update = {"kid": f"made-up-{n}"}
        response = signin()
        assert response.status_code == 401
        assert "invalid_token" in response.get_data(as_text=True)
        clock.now += 1

    assert op.calls["token"] == 101
    refetches = op.calls["jwks"] - 1
    # The first unknown kid refetches once; then at most once per JWKS_MIN_REFETCH seconds.
    assert 1 <= refetches <= math.ceil(100 / min_refetch)
