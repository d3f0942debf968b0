"""Fixtures for tests that need real servers and a real browser: the example app served on
loopback, the development provider (npm oidc-provider v8) and Debian's Chromium driven by
Playwright. Registered from conftest.py with ``pytest_plugins``."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from example_app import create_app
from example_app.devprovider import DevProvider, DevProviderError

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parent.parent / "docs"
NO_CHROMIUM = (
    "Debian's Chromium is not installed at /usr/bin/chromium: the BROWSER TESTS WERE SKIPPED. "
    "Install it with `apt-get install chromium` (.ci/run does)."
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        terminalreporter.write_sep("!", NO_CHROMIUM, red=True, bold=True)


@dataclass
class LiveApp:
    app: Flask
    url: str
    server: BaseWSGIServer

    def configure(self, **changes: Any) -> None:
        with self.app.test_request_context(base_url=self.url):
            self.app.extensions["booklore_oidc"].save_settings(changes)


def serve(app: Flask) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_port}"


@pytest.fixture
def live_app(db_dir: Path) -> Iterator[LiveApp]:
    """The example app on a real HTTP server on loopback (seeded: admin/admin, demo books)."""
    from example_app.seed import seed_demo

    app = create_app({"SECRET_KEY": "live-secret", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'live.sqlite'}"})
    with app.app_context():
        seed_demo()
    server, url = serve(app)
    yield LiveApp(app, url, server)
    server.shutdown()


def demo_users() -> list[dict[str, Any]]:
    return [
        {"sub": "dev-reader", "username": "reader", "password": "reader", "email": "reader@example.com",
         "email_verified": True, "name": "Rita Reader", "groups": ["readers"]},
        {"sub": "dev-uploader", "username": "uploader", "password": "uploader", "email": "uploader@example.com",
         "email_verified": True, "name": "Uli Uploader", "groups": ["readers", "uploaders"]},
        {"sub": "dev-stranger", "username": "stranger", "password": "stranger", "email": "stranger@example.com",
         "email_verified": True, "name": "Sam Stranger", "groups": []},
    ]


@pytest.fixture
def dev_provider(live_app: LiveApp) -> Callable[..., DevProvider]:
    """Starts the development provider for ``live_app``: ``dev_provider(groups_in_id_token=True)``.
    Registers a public client ``booklore-public`` and a confidential ``booklore-confidential``;
    ``public_client={...}`` adds metadata to the public one (``backchannel_logout_uri``, …)."""
    started: list[DevProvider] = []

    def start(*, groups_in_id_token: bool = True, public_client: dict[str, Any] | None = None) -> DevProvider:
        # A free port can be taken by another process before node binds it: try a few.
        for attempt in range(3):
            try:
                provider = DevProvider(config_for(_free_port(), groups_in_id_token, public_client or {})).start()
            except DevProviderError:
                if attempt == 2:
                    raise
                continue
            started.append(provider)
            return provider
        raise AssertionError("unreachable")

    def config_for(port: int, groups_in_id_token: bool, public_client: dict[str, Any]) -> dict[str, Any]:
        redirect = [f"{live_app.url}/oauth2-callback"]
        post_logout = [f"{live_app.url}/login?logged_out=1"]
        config = {
            "host": "127.0.0.1",
            "port": port,
            "issuer": f"http://localhost:{port}",
            "clients": [
                {"client_id": "booklore-public", "client_secret": None, "token_endpoint_auth_method": "none",
                 "redirect_uris": redirect, "post_logout_redirect_uris": post_logout, **public_client},
                {"client_id": "booklore-confidential", "client_secret": "confidential-secret-123",
                 "token_endpoint_auth_method": "client_secret_basic", "redirect_uris": redirect,
                 "post_logout_redirect_uris": post_logout},
            ],
            "users": demo_users(),
            "groups_in_id_token": groups_in_id_token,
        }
        return config

    yield start  # type: ignore[misc]
    for provider in started:
        provider.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def provider_login(page: Any, username: str, password: str) -> None:
    """Fill the development provider's login form (what a reader does at Pocket ID)."""
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a picture for the README into docs/."""
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / name), full_page=full_page)
