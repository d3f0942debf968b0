"""Bad input gets a clear page or message, never a 500 (anonymous, reader and admin alike)."""

from __future__ import annotations

import pytest
from helpers import configure
from settings_helpers import ADMIN, create_user, sign_in

pytestmark = pytest.mark.both_databases

ODD_REQUESTS = [
    ("GET", "/oauth2-callback"),
    ("GET", "/oauth2-callback?state=&code="),
    ("GET", "/oauth2-callback?state=%00%ff&code=x&iss=" + "a" * 5000),
    ("GET", "/oauth2-callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C/script%3E"),
    ("GET", "/login?next=%0d%0aSet-Cookie:x=1"),
    ("GET", "/login?error=not_a_code"),
    ("GET", "/login?error=" + "x" * 3000),
    ("GET", "/login/oidc?next=//evil.example&login_hint=" + "h" * 3000),
    ("GET", "/login/oidc?iss=%ff%fe&target_link_uri=http://[::1"),
    ("POST", "/login/oidc"),
    ("POST", "/login"),
    ("GET", "/logout"),
    ("POST", "/logout"),
    ("POST", "/oauth2-backchannel-logout"),
    ("POST", "/oauth2-backchannel-logout?logout_token=a.b.c"),
    ("GET", "/settings/oidc?saved=%ff"),
    ("POST", "/settings/oidc"),
    ("POST", "/settings/oidc/test"),
    ("GET", "/settings/oidc/preview"),
    ("POST", "/settings/oidc/groups/999999"),
    ("POST", "/settings/oidc/groups/999999/delete"),
    ("POST", "/settings/oidc/identities/999999/unlink"),
]


@pytest.fixture(params=["anonymous", "admin"])
def visitor(request, app):
    client = app.test_client()
    if request.param == "admin":
        create_user(app, *ADMIN, is_admin=True)
        sign_in(client, *ADMIN)
    return client


@pytest.mark.parametrize(("method", "path"), ODD_REQUESTS, ids=[f"{m} {p[:40]}" for m, p in ODD_REQUESTS])
def test_odd_requests_never_end_in_a_server_error(app, visitor, method, path):
    response = visitor.open(path, method=method, data={"logout_token": "x.y.z", "username": "", "issuer_uri": "::"})
    # 502 is a designed page (a provider problem, SPEC §10); 500 would be a bug of ours.
    assert response.status_code != 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 500:
        assert b"Back to sign-in" in response.data
    assert b"Traceback" not in response.data


def test_a_provider_that_is_down_ends_on_the_unreachable_page(app, client):
    configure(app, issuer_uri="http://127.0.0.1:9")  # nothing listens on the discard port
    response = client.get("/login/oidc")
    assert response.status_code == 502
    assert b"provider_unreachable" in response.data and b"Try again in a few minutes" in response.data
    assert b"Check DNS resolution" not in response.data and b"ConnectionError" not in response.data  # admins' text


def test_a_provider_that_answers_garbage_ends_on_the_unreachable_page(app, client, op):
    op.discovery_status = 500
    response = client.get("/login/oidc")
    assert response.status_code == 502 and b"provider_unreachable" in response.data
