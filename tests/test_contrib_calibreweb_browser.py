"""A reader signs in to the real Calibre-Web through its own login page, in Chromium, with the
development provider (npm oidc-provider) — what a Calibre-Web admin's readers do (SPEC §15)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from calibreweb_support import CalibreWebHost, needs_calibreweb
from livesupport import demo_users, provider_login, serve

from example_app.devprovider import DevProvider
from flask_booklore_oidc.models import Identity, LoginRecord

pytestmark = needs_calibreweb


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(calibreweb: CalibreWebHost) -> Iterator[str]:
    server, url = serve(calibreweb.app)
    yield url
    server.shutdown()


@pytest.fixture
def provider(calibreweb: CalibreWebHost, served: str) -> Iterator[DevProvider]:
    port = _free_port()
    config = {
        "host": "127.0.0.1",
        "port": port,
        "issuer": f"http://localhost:{port}",
        "clients": [
            {"client_id": "calibre-web", "client_secret": None, "token_endpoint_auth_method": "none",
             "redirect_uris": [f"{served}/oauth2-callback"],
             "post_logout_redirect_uris": [f"{served}/login?logged_out=1"]},
        ],
        "users": demo_users(),
        "groups_in_id_token": True,
    }  # fmt: skip
    started = DevProvider(config).start()
    oidc = calibreweb.app.extensions["booklore_oidc"]
    with calibreweb.request_context(base_url=served):
        oidc.save_settings({
            "enabled": True,
            "only_mode": False,
            "provider_name": "Pocket ID",
            "client_id": "calibre-web",
            "issuer_uri": started.issuer,
            "auto_provision": True,
            "group_sync": "disabled",
        })
    yield started
    started.stop()
    ub = calibreweb.ub
    with calibreweb.app.app_context():
        ub.session.query(ub.User_Sessions).delete()
        ub.session.query(ub.User).filter(ub.User.name == "reader").delete()
        ub.session.query(Identity).delete()
        ub.session.query(LoginRecord).delete()
        ub.session.commit()


def test_a_reader_signs_in_through_calibre_webs_login_page_with_the_provider(page: Any, served: str, provider: Any):
    page.goto(served + "/login")
    button = page.locator("a.booklore-oidc-button")
    assert button.inner_text().strip() == "Sign in with Pocket ID"
    assert page.locator("input[name=username]").count() == 1  # Calibre-Web's own form stays
    button.click()
    provider_login(page, "reader", "reader")
    page.wait_for_url(served + "/**")
    page.goto(served + "/me")
    assert page.url.startswith(served + "/me")  # Calibre-Web's profile page, not its login
    assert page.locator("#top_user").inner_text().strip() == "reader"  # Calibre-Web's own menu says who
    assert page.locator("#logout").count() == 1
