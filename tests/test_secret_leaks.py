"""The client secret is write-only (SPEC §4, STYLE rule 5): with a distinctive secret stored, drive
every page and endpoint (the settings page, Test Connection as HTML, fragment and JSON, the test
sign-in, the login page, sign-ins of a confidential client, their error pages, sign-out, the CLI)
and scan every response body and header, the session cookie's contents and every log record
for the secret in any of the forms it could take."""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from fakeprovider import FakeProvider
from flask import Flask
from flask.testing import FlaskClient
from helpers import REDIRECT_URI, configure, local_path
from settings_helpers import ADMIN, create_user, csrf_token, settings_form, sign_in

from example_app import create_app

#: distinctive, and with characters that change under URL, HTML and Basic encoding
CANARY = "Leak-Canary&<7Q>+/x%!=z9"
CLIENT = "leak-check-basic"
POST_CLIENT = "leak-check-post"


def forms_of(secret: str) -> set[str]:
    """The secret as it would appear after the encodings a page, URL, header or log could apply."""
    return {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(secret.encode()).decode().rstrip("="),
        base64.b64encode(f"{quote_plus(CLIENT)}:{quote_plus(secret, safe='')}".encode()).decode(),
    }


NEEDLES = forms_of(CANARY)


@pytest.fixture
def provider_clients(op: FakeProvider) -> FakeProvider:
    op.add_client(CLIENT, secret=CANARY, auth_method="client_secret_basic", redirect_uris=[REDIRECT_URI])
    op.add_client(POST_CLIENT, secret=CANARY, auth_method="client_secret_post", redirect_uris=[REDIRECT_URI])
    return op


class Seen:
    """Everything this test's clients received, plus the captured log records."""

    def __init__(self, app: Flask, caplog: pytest.LogCaptureFixture) -> None:
        self.app = app
        self.caplog = caplog
        self.responses: list[Any] = []
        self.texts: list[tuple[str, str]] = []

    def client(self, app: Flask | None = None) -> FlaskClient:
        seen = self
        target = app or self.app

        class Recording(FlaskClient):
            def open(self, *args: Any, **kwargs: Any) -> Any:
                response = super().open(*args, **kwargs)
                seen.record(target, response)
                return response

        return Recording(target, target.response_class, use_cookies=True)

    def record(self, app: Flask, response: Any) -> None:
        self.responses.append(response)
        where = f"{response.request.method} {response.request.path} -> {response.status_code}"
        self.texts.append((where + " body", response.get_data(as_text=True)))
        self.texts.append((where + " headers", str(response.headers)))
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        for cookie in response.headers.getlist("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            if name == app.config["SESSION_COOKIE_NAME"] and rest.split(";")[0]:
                contents = serializer.loads(rest.split(";")[0])
                self.texts.append((where + " session", json.dumps(contents)))

    def text(self, where: str, text: str) -> None:
        self.texts.append((where, text))

    def assert_no_leak(self, *, at_least: int) -> None:
        assert len(self.responses) >= at_least, "the scenario did not run"
        for record in self.caplog.records:
            self.texts.append((f"log {record.name}", record.getMessage() + (record.exc_text or "")))
        leaks = [(where, needle) for where, text in self.texts for needle in NEEDLES if needle in text]
        assert leaks == []


@pytest.fixture
def seen(app: Flask, caplog: pytest.LogCaptureFixture, provider_clients: FakeProvider) -> Iterator[Seen]:
    caplog.set_level(logging.DEBUG)
    yield Seen(app, caplog)


@pytest.fixture
def admin(app: Flask, seen: Seen) -> FlaskClient:
    create_user(app, *ADMIN, is_admin=True)
    client = seen.client()
    sign_in(client, *ADMIN)
    return client


def store_confidential_client(admin: FlaskClient, client_id: str = CLIENT, **changes: Any) -> None:
    response = admin.post(
        "/settings/oidc", data=settings_form(admin, client_id=client_id, client_secret=CANARY, **changes)
    )
    assert response.status_code == 302


def json_post(client: FlaskClient, url: str, data: Any) -> Any:
    return client.post(url, data=data, headers={"Accept": "application/json"})


# -- the settings page ---------------------------------------------------------------------------


def test_the_settings_page_and_test_connection_never_show_the_secret(app, admin, seen, op):
    store_confidential_client(admin)
    admin.get("/settings/oidc")
    admin.get("/settings/oidc?saved=1")
    # refused forms with the secret typed in
    admin.post("/settings/oidc", data=settings_form(admin, client_secret=CANARY, client_id="a b"))
    admin.post("/settings/oidc", data=settings_form(admin, client_secret=CANARY, remove_secret=True))
    # saving with the field blank (keeps the secret)
    admin.post("/settings/oidc", data=settings_form(admin, provider_name="Leak Check"))
    # Test Connection in all three forms, with the stored and with a typed secret
    for data in (settings_form(admin), settings_form(admin, client_secret=CANARY)):
        admin.post("/settings/oidc/test", data=data)
        admin.post("/settings/oidc/test", data=data, headers={"X-Requested-With": "fetch"})
        assert json_post(admin, "/settings/oidc/test", data).get_json()["ok"] is True
    # ... also when the provider echoes the secret back
    op.token_error = (401, {"error": "invalid_client", "error_description": f"bad secret {CANARY}"})
    body = json_post(admin, "/settings/oidc/test", settings_form(admin)).get_json()
    assert body["ok"] is False
    admin.post("/settings/oidc/test", data=settings_form(admin))
    op.token_error = None
    # a post-encoded client
    store_confidential_client(admin, POST_CLIENT, token_auth_method="client_secret_post")
    assert json_post(admin, "/settings/oidc/test", settings_form(admin)).get_json()["ok"] is True
    # and the secret removed again
    admin.post("/settings/oidc", data=settings_form(admin, remove_secret=True))
    seen.assert_no_leak(at_least=20)


def test_a_secret_the_app_cannot_decrypt_is_not_shown_either(app, admin, seen):
    store_confidential_client(admin)
    rotated = create_app({**{k: app.config[k] for k in ("TESTING", "SQLALCHEMY_DATABASE_URI")}, "SECRET_KEY": "new"})
    client = seen.client(rotated)
    sign_in(client, *ADMIN)
    assert "cannot be decrypted" in client.get("/settings/oidc").get_data(as_text=True)
    json_post(client, "/settings/oidc/test", settings_form(client))
    seen.assert_no_leak(at_least=5)


# -- test sign-in --------------------------------------------------------------------------------


def test_test_sign_in_never_shows_the_secret(app, admin, seen, op):
    store_confidential_client(admin, auto_provision=True)
    # with the saved settings
    start = admin.get("/settings/oidc/preview")
    admin.get(local_path(op.authorize(start.headers["Location"])))
    # with unsaved settings holding a typed secret
    start = admin.post("/settings/oidc/preview", data=settings_form(admin, client_secret=CANARY, provider_name="X"))
    admin.get(local_path(op.authorize(start.headers["Location"])))
    # a provider error, and an echoed secret at the token endpoint
    op.token_error = (401, {"error": "invalid_client", "error_description": f"bad secret {CANARY}"})
    start = admin.get("/settings/oidc/preview")
    admin.get(local_path(op.authorize(start.headers["Location"])))
    op.token_error = None
    op.authorize_error = ("access_denied", "no")
    start = admin.get("/settings/oidc/preview")
    admin.get(local_path(op.authorize(start.headers["Location"])))
    seen.assert_no_leak(at_least=12)


# -- sign-in, its errors and sign-out with a confidential client -----------------------------------


def sign_in_with_provider(client: FlaskClient, op: FakeProvider) -> Any:
    start = client.get("/login/oidc")
    assert start.status_code == 302
    return client.get(local_path(op.authorize(start.headers["Location"])))


def test_sign_in_and_its_error_pages_never_show_the_secret(app, seen, op):
    configure(app, client_id=CLIENT, client_secret=CANARY, auto_provision=True)
    reader = seen.client()
    reader.get("/login")
    reader.get("/login?local=true")
    assert sign_in_with_provider(reader, op).status_code == 302
    reader.get("/")
    reader.get("/account")
    reader.get("/api/me")
    page = reader.get("/logout").get_data(as_text=True)
    reader.post("/logout", data={"csrf_token": csrf_token(page)})

    # the provider refuses the client, echoing the secret
    op.token_error = (401, {"error": "invalid_client", "error_description": f"bad secret {CANARY}"})
    assert sign_in_with_provider(seen.client(), op).status_code == 502
    op.token_error = (400, {"error": "invalid_grant", "error_description": f"nope {CANARY}"})
    sign_in_with_provider(seen.client(), op)
    op.token_error = None
    # an ID token signed with the secret (HS256) but tampered with
    op.id_token_alg = "HS256"
    op.corrupt_signature = True
    assert sign_in_with_provider(seen.client(), op).status_code == 401
    op.id_token_alg, op.corrupt_signature = "RS256", False
    # state problems and a provider error
    stranger = seen.client()
    stranger.get("/oauth2-callback?state=made-up&code=x")
    op.authorize_error = ("access_denied", "no")
    sign_in_with_provider(seen.client(), op)
    op.authorize_error = None
    # the post-encoded client, and a wrong local password
    configure(app, client_id=POST_CLIENT, token_auth_method="client_secret_post")
    assert sign_in_with_provider(seen.client(), op).status_code == 302
    login = seen.client()
    page = login.get("/login?local=true").get_data(as_text=True)
    login.post("/login", data={"username": "alice", "password": CANARY, "csrf_token": csrf_token(page)})
    seen.assert_no_leak(at_least=20)


def test_the_cli_never_prints_the_secret(app, seen):
    configure(app, client_id=CLIENT, client_secret=CANARY)
    commands = app.cli.get_command(None, "booklore-oidc")  # type: ignore[arg-type]
    if commands is None:
        pytest.skip("the booklore-oidc CLI is not part of this checkout")
    runner = app.test_cli_runner()
    outputs = [runner.invoke(args=["booklore-oidc", name]).output for name in ("status", "test")]
    assert any(CLIENT in output for output in outputs)  # the commands did run
    for output in outputs:
        seen.text("cli", output)
    seen.responses.append(None)  # nothing to request; the texts are what is scanned
    seen.assert_no_leak(at_least=1)


def test_the_scanner_finds_a_leak(seen):
    """The scan itself can fail: a response that carries the secret, encoded, is caught."""
    seen.text("a page", f"<p>{html.escape(CANARY)}</p>")
    seen.responses.append(None)
    with pytest.raises(AssertionError):
        seen.assert_no_leak(at_least=1)
