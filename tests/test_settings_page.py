"""The admin settings page (SPEC §3, §4, §8, §9): access, saving, validation, locked values,
the write-only secret, the reference panel, Test Connection through the page, and settings
that take effect in every process without a restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from helpers import CLIENT_ID, REDIRECT_URI, SECRET
from settings_helpers import ADMIN, create_user, page_text, settings_form, sign_in
from sqlalchemy import select

from example_app import create_app, oidc
from example_app.models import db
from flask_booklore_oidc import signals
from flask_booklore_oidc.config import FIELDS
from flask_booklore_oidc.models import SettingsRow

pytestmark = pytest.mark.both_databases


def saved(app: Flask) -> Any:
    with app.test_request_context():
        return app.extensions["booklore_oidc"].settings()


def make_app(database_url: str, **config: Any) -> Flask:
    return create_app(
        {"TESTING": True, "SECRET_KEY": "test-secret-key", "SQLALCHEMY_DATABASE_URI": database_url, **config}
    )


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    """Apps made by make_app() in a test; their databases are closed afterwards."""
    made: list[Flask] = []
    yield made
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# -- who may open it -----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client):
    response = client.get("/settings/oidc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/settings/oidc"


def test_anonymous_posts_change_nothing(app, client):
    response = client.post("/settings/oidc", data={"provider_name": "Hacked"})
    assert response.status_code == 302
    assert saved(app).provider_name == "Pocket ID"


def test_anonymous_test_connection_as_json_answers_401(client):
    response = client.post("/settings/oidc/test", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.get_json()["error"] == "not_signed_in"


def test_non_admins_get_a_403_page(app, client):
    create_user(app, "reader", "pw")
    sign_in(client, "reader", "pw")
    for response in (
        client.get("/settings/oidc"),
        client.post("/settings/oidc/test"),
        client.get("/settings/oidc/preview"),
    ):
        assert response.status_code == 403
        assert "Administrators only" in response.get_data(as_text=True)


def _add_library(app: Flask, name: str) -> None:
    from example_app.models import Library, db

    with app.app_context():
        db.session.add(Library(name=name))
        db.session.commit()


def test_admins_see_every_section_and_every_help_text(app, admin):
    _add_library(app, "Fiction")
    text = page_text(admin.get("/settings/oidc"))
    for heading in ("Login Methods", "Provider", "Claim Mappings", "Provisioning and Linking", "Session and Advanced"):
        assert f">{heading}</h2>" in text
    for field in FIELDS:
        assert field.label in text
        assert field.help in text, field.name


def test_a_catalogue_the_app_does_not_offer_is_not_shown(app, admin):
    text = page_text(admin.get("/settings/oidc"))
    assert "Default permissions" in text
    assert "Default libraries" not in text and "<th>Libraries</th>" not in text
    _add_library(app, "Fiction")
    assert "Default libraries" in page_text(admin.get("/settings/oidc"))


def test_the_settings_access_hook_decides_who_may_open_the_page(app, client, monkeypatch):
    monkeypatch.setattr(oidc.hooks, "settings_access", None)
    oidc.settings_access(lambda user: user.username == "librarian")
    create_user(app, "librarian", "pw")
    sign_in(client, "librarian", "pw")
    assert client.get("/settings/oidc").status_code == 200


def test_the_example_app_links_admins_to_the_settings(admin):
    assert 'href="/settings/oidc">OIDC settings</a>' in admin.get("/").get_data(as_text=True)


# -- saving --------------------------------------------------------------------------------------


def test_saving_stores_the_values_and_sends_settings_changed(app, admin):
    received: list[Any] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs["changed"])

    signals.settings_changed.connect(listener)
    try:
        response = admin.post(
            "/settings/oidc",
            data=settings_form(
                admin, provider_name="Pocket ID Home", default_permissions=["read", "download"], link_by_email=True
            ),
        )
    finally:
        signals.settings_changed.disconnect(listener)
    assert response.status_code == 302 and response.headers["Location"] == "/settings/oidc?saved=1"
    settings = saved(app)
    assert settings.provider_name == "Pocket ID Home"
    assert settings.default_permissions == ("read", "download")  # in the catalogue's order
    assert settings.link_by_email is True
    assert received == [{"provider_name", "default_permissions", "link_by_email"}]
    assert "Settings saved." in page_text(admin.get(response.headers["Location"]))


def test_saving_the_form_unchanged_changes_nothing(app, admin):
    version = saved(app).version
    response = admin.post("/settings/oidc", data=settings_form(admin))
    assert response.headers["Location"] == "/settings/oidc?saved=0"
    assert saved(app).version == version


def test_the_new_provider_name_is_on_the_login_button_at_once(app, admin):
    admin.post("/settings/oidc", data=settings_form(admin, provider_name="Authelia"))
    other = app.test_client()
    assert "Sign in with Authelia" in other.get("/login").get_data(as_text=True)


def test_a_post_without_csrf_token_is_refused_with_400(app, admin):
    app.config["WTF_CSRF_ENABLED"] = True  # Flask-WTF's default; stated here because it matters
    data = settings_form(admin, provider_name="No Token")
    data.pop("csrf_token")
    response = admin.post("/settings/oidc", data=data)
    assert response.status_code == 400
    assert "form expired" in page_text(response)
    assert saved(app).provider_name == "Pocket ID"


def test_test_connection_without_csrf_token_is_refused_with_400(app, admin):
    app.config["WTF_CSRF_ENABLED"] = True
    data = settings_form(admin)
    data.pop("csrf_token")
    assert admin.post("/settings/oidc/test", data=data).status_code == 400
    json_response = admin.post("/settings/oidc/test", data=data, headers={"Accept": "application/json"})
    assert json_response.status_code == 400 and json_response.get_json()["error"] == "csrf"
    assert admin.post("/settings/oidc/preview", data=data).status_code == 400


# -- validation ----------------------------------------------------------------------------------


def refused(app: Flask, client: FlaskClient, expected: str, **changes: Any) -> str:
    before = saved(app).version
    response = client.post("/settings/oidc", data=settings_form(client, **changes))
    text = page_text(response)
    assert response.status_code == 400, text
    assert "Nothing was saved" in text
    assert expected in text, text
    assert saved(app).version == before
    return text


@pytest.mark.parametrize(
    ("value", "where"),
    [(" booklore", "a space at the start"), ("booklore ", "a space at the end"), ("book\tlore", "a tab inside it")],
)
def test_whitespace_in_the_client_id_is_named(app, admin, value, where):
    refused(app, admin, f"Client ID contains whitespace ({where})", client_id=value)


@pytest.mark.parametrize(
    "issuer",
    ["http://id.example.test", "ftp://id.example.test", "id.example.test", "https://id.example.test/?realm=x"],
)
def test_an_issuer_that_is_not_an_https_url_is_refused(app, admin, issuer):
    refused(app, admin, "Issuer URI must", issuer_uri=issuer)


@pytest.mark.parametrize("issuer", ["http://localhost:9000", "http://127.0.0.1:8080/realms/x", "http://[::1]:9000"])
def test_http_issuers_are_allowed_on_loopback(app, admin, issuer):
    # Nothing answers there, so Test Connection fails and the save asks first: confirm.
    response = admin.post("/settings/oidc", data=confirmed(settings_form(admin, issuer_uri=issuer)))
    assert response.status_code == 302, page_text(response)
    assert saved(app).issuer_uri == issuer


def test_the_discovery_url_is_refused_as_issuer(app, admin):
    refused(
        app,
        admin,
        "without /.well-known/openid-configuration",
        issuer_uri="https://id.example.test/.well-known/openid-configuration",
    )


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("claim_groups", "groups,,roles", "Groups claim: has an empty alternative"),
        ("claim_username", "preferred username", "Username claim: claim name 'preferred username' contains whitespace"),
        ("claim_email", "realm_access..email", "Email claim: dot path 'realm_access..email' has an empty segment"),
    ],
)
def test_unknown_claim_syntax_is_named(app, admin, field, value, expected):
    refused(app, admin, expected, **{field: value})


@pytest.mark.parametrize("value", ["books.example.com", "/library", "https://books.example.com/?x=1"])
def test_a_public_url_that_is_not_absolute_is_refused(app, admin, value):
    refused(app, admin, "Public URL must", public_url=value)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("http_timeout", "soon", "HTTP timeout (seconds): expected a number"),
        ("http_timeout", "0", "HTTP timeout (seconds) must be between 0.1 and 120"),
        ("clock_skew", "a minute", "Clock skew (seconds): expected a whole number"),
        ("clock_skew", "9999", "Clock skew (seconds) must be between 0 and 600"),
        ("ca_bundle", "/nonexistent/ca.pem", "CA bundle: there is no file at /nonexistent/ca.pem"),
        ("scopes", 'openid "groups"', "Scopes: '\"groups\"' is not a valid scope name"),
        ("provider_name", "", "Provider Name is empty"),
    ],
)
def test_other_invalid_values_are_named(app, admin, field, value, expected):
    refused(app, admin, expected, **{field: value})


def test_errors_are_listed_at_the_top_and_next_to_their_field(app, admin):
    text = refused(app, admin, "Client ID contains whitespace", client_id="a b")
    assert text.count("Client ID contains whitespace") == 2
    assert 'href="#field-client_id"' in text


def test_an_invalid_form_keeps_what_was_typed(app, admin):
    response = admin.post("/settings/oidc", data=settings_form(admin, client_id="a b", provider_name="Kanidm"))
    assert 'value="Kanidm"' in response.get_data(as_text=True)


# -- OIDC-Only Mode ------------------------------------------------------------------------------


def test_oidc_login_is_refused_without_client_id_and_issuer(app, admin):
    refused(app, admin, "OIDC Login needs the Issuer URI (issuer_uri)", issuer_uri="")


def test_a_provider_can_be_cleared_once_oidc_login_is_off(app, admin):
    response = admin.post("/settings/oidc", data=settings_form(admin, enabled=False, client_id="", issuer_uri=""))
    assert response.status_code == 302
    assert not saved(app).configured


def test_only_mode_is_refused_while_oidc_login_is_off(app, admin):
    refused(app, admin, "OIDC-Only Mode needs OIDC Login switched on", only_mode=True, enabled=False)


def test_only_mode_is_refused_without_a_configured_provider(app, admin):
    refused(app, admin, "OIDC-Only Mode needs a configured provider", only_mode=True, client_id="")


def test_only_mode_is_refused_when_no_admin_could_still_sign_in(app, client, monkeypatch):
    monkeypatch.setattr(oidc.hooks, "settings_access", None)
    oidc.settings_access(lambda user: user.username == "librarian")
    create_user(app, "librarian", "pw")  # may open the page, but is no administrator
    sign_in(client, "librarian", "pw")
    refused(app, client, "OIDC-Only Mode would lock everyone out", only_mode=True)


def test_only_mode_is_saved_when_oidc_is_on_configured_and_an_admin_exists(app, admin):
    response = admin.post("/settings/oidc", data=settings_form(admin, only_mode=True))
    assert response.status_code == 302
    assert saved(app).only_mode_active


def test_switching_oidc_login_off_while_only_mode_is_on_is_refused(app, admin):
    admin.post("/settings/oidc", data=settings_form(admin, only_mode=True))
    refused(app, admin, "OIDC-Only Mode needs OIDC Login switched on", enabled=False)


# -- values set by configuration -----------------------------------------------------------------


def test_values_set_in_app_config_are_read_only_and_ignored_on_save(apps, database_url, op):
    app = make_app(database_url, BOOKLORE_OIDC_CLIENT_ID=CLIENT_ID, BOOKLORE_OIDC_AUTO_PROVISION=True)
    apps.append(app)
    create_user(app, *ADMIN, is_admin=True)
    client = app.test_client()
    sign_in(client, *ADMIN)
    html = client.get("/settings/oidc").get_data(as_text=True)
    assert "BOOKLORE_OIDC_CLIENT_ID in the app configuration; change it there." in html
    assert re.search(rf'<input [^>]*disabled [^>]*id="client_id" [^>]*value="{CLIENT_ID}"', html)

    data = settings_form(client, issuer_uri=op.issuer)
    assert "client_id" not in data and "auto_provision" not in data  # browsers skip disabled fields
    data["client_id"] = "forged"  # and a forged value is ignored
    response = client.post("/settings/oidc", data=data)
    assert response.status_code == 302, page_text(response)
    settings = saved(app)
    assert settings.client_id == CLIENT_ID and settings.auto_provision is True
    assert settings.issuer_uri == op.issuer
    with app.app_context():
        row = db.session.get(SettingsRow, 1)
        assert row.client_id is None and row.auto_provision is None


def test_values_set_in_the_environment_say_so(app, admin, monkeypatch):
    monkeypatch.setenv("BOOKLORE_OIDC_PROVIDER_NAME", "From The Environment")
    monkeypatch.setenv("BOOKLORE_OIDC_CLIENT_SECRET", SECRET)
    fresh = make_app_from(app)
    client = fresh.test_client()
    sign_in(client, *ADMIN)
    text = page_text(client.get("/settings/oidc"))
    assert "BOOKLORE_OIDC_PROVIDER_NAME in the environment; change it there." in text
    assert 'value="From The Environment"' in text
    assert "BOOKLORE_OIDC_CLIENT_SECRET in the environment" in text
    assert "Remove the stored secret" not in text
    assert SECRET not in text


def make_app_from(app: Flask) -> Flask:
    """A second app on the database of ``app`` (another process, as far as settings go)."""
    return create_app({key: app.config[key] for key in ("TESTING", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI")})


def test_force_disabled_shows_the_banner_and_keeps_the_values(app, admin, monkeypatch):
    monkeypatch.setenv("FORCE_DISABLE_OIDC", "true")
    fresh = make_app_from(app)
    client = fresh.test_client()
    sign_in(client, *ADMIN)
    text = page_text(client.get("/settings/oidc"))
    assert "FORCE_DISABLE_OIDC is set: OIDC is off everywhere until it is removed; the values below are kept" in text
    assert f'value="{CLIENT_ID}"' in text


def confirmed(form: Any) -> Any:
    """``form`` with "Save anyway" pressed: the save Test Connection would hold back goes ahead."""
    form["confirm"] = "yes"
    return form


# -- the client secret ---------------------------------------------------------------------------


def store_secret(app: Flask, client: FlaskClient, secret: str = SECRET) -> None:
    response = client.post(
        "/settings/oidc",
        data=confirmed(settings_form(client, client_id="confidential-basic", client_secret=secret)),
    )
    assert response.status_code == 302, page_text(response)


def test_a_stored_secret_is_never_shown_only_announced(app, admin):
    store_secret(app, admin)
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert SECRET not in html
    assert 'placeholder="A secret is stored — leave blank to keep it"' in html
    assert "Remove the stored secret" in html
    assert saved(app).client_secret == SECRET


def test_the_secret_is_encrypted_at_rest(app, admin):
    store_secret(app, admin)
    with app.app_context():
        stored = db.session.execute(select(SettingsRow.client_secret)).scalar_one()
    assert stored and SECRET not in stored


def test_a_blank_secret_field_keeps_the_stored_secret(app, admin):
    store_secret(app, admin)
    admin.post("/settings/oidc", data=settings_form(admin, provider_name="Keeps", client_secret=""))
    assert saved(app).client_secret == SECRET and saved(app).provider_name == "Keeps"


def test_a_new_secret_replaces_the_stored_one(app, admin):
    store_secret(app, admin)
    store_secret(app, admin, "another-secret")
    assert saved(app).client_secret == "another-secret"


def test_the_remove_control_deletes_the_secret(app, admin):
    store_secret(app, admin)
    response = admin.post("/settings/oidc", data=settings_form(admin, remove_secret=True))
    assert response.status_code == 302
    assert saved(app).client_secret == "" and saved(app).is_public_client
    assert "Remove the stored secret" not in admin.get("/settings/oidc").get_data(as_text=True)


def test_removing_and_entering_a_secret_at_once_is_refused(app, admin):
    store_secret(app, admin)
    refused(
        app, admin, "Either enter a new Client Secret or remove the stored one", remove_secret=True, client_secret="x"
    )


def test_a_typed_secret_is_not_echoed_when_the_form_is_refused(app, admin):
    response = admin.post("/settings/oidc", data=settings_form(admin, client_secret=SECRET, client_id="a b"))
    assert response.status_code == 400
    assert SECRET not in response.get_data(as_text=True)


def test_an_undecryptable_secret_asks_to_enter_it_again(app, admin):
    store_secret(app, admin)
    other = create_app({**{k: app.config[k] for k in ("TESTING", "SQLALCHEMY_DATABASE_URI")}, "SECRET_KEY": "rotated"})
    client = other.test_client()
    sign_in(client, *ADMIN)
    text = page_text(client.get("/settings/oidc"))
    assert "The stored secret cannot be decrypted" in text and "Enter the secret again" in text
    assert "Re-enter the secret under Provider and save" in text
    response = client.post("/settings/oidc", data=settings_form(client, client_secret=SECRET))
    assert response.status_code == 302
    assert "cannot be decrypted" not in page_text(client.get("/settings/oidc"))


# -- the reference panel -------------------------------------------------------------------------


def reference(html: str, key: str) -> str:
    match = re.search(rf'<code id="ref-{key}">(.*?)</code>', html)
    assert match, key
    return match.group(1).replace("<wbr>", "").replace("&amp;", "&")


def test_the_reference_panel_follows_the_public_url(app, admin):
    admin.post("/settings/oidc", data=confirmed(settings_form(admin, public_url="https://books.example.com")))
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert reference(html, "redirect_uri") == "https://books.example.com/oauth2-callback"
    assert reference(html, "post_logout_redirect_uri") == "https://books.example.com/login?logged_out=1"
    assert reference(html, "launch_url") == "https://books.example.com/login/oidc"
    assert reference(html, "backchannel_logout_uri") == "https://books.example.com/oauth2-backchannel-logout"
    assert reference(html, "frontchannel_logout_uri") == "https://books.example.com/oauth2-frontchannel-logout"
    assert reference(html, "scopes") == "openid profile email"
    assert reference(html, "pkce") == "S256"
    assert reference(html, "grant_type") == "Authorization Code"
    assert reference(html, "client_type") == "Public"
    assert html.count("data-copy-target=") == 6  # not for the constants (PKCE, grant type, client type)


def test_the_reference_names_the_automatic_scopes_once_the_provider_is_known(app, admin, op):
    assert reference(admin.get("/settings/oidc").get_data(as_text=True), "scopes") == "openid profile email"
    with app.test_request_context():  # as any sign-in does, which never waits for the settings page
        state = app.extensions["booklore_oidc"].state_for(app)
        state.cache.metadata(app.extensions["booklore_oidc"].settings())
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert reference(html, "scopes") == "openid profile email groups"


def test_without_a_public_url_the_reference_uses_the_request(admin):
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert reference(html, "redirect_uri") == REDIRECT_URI


def test_the_reference_says_confidential_with_a_secret(app, admin):
    store_secret(app, admin)
    assert reference(admin.get("/settings/oidc").get_data(as_text=True), "client_type") == "Confidential"


# -- Test Connection through the page ------------------------------------------------------------


def test_test_connection_as_json_runs_on_unsaved_values_and_saves_nothing(app, admin, op):
    version = saved(app).version
    data = settings_form(admin, issuer_uri=op.issuer + "/", provider_name="Unsaved")
    response = admin.post("/settings/oidc/test", data=data, headers={"Accept": "application/json"})
    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] is True
    assert [c["status"] for c in body["checks"]] == ["PASS"] * 13
    issuer = next(c for c in body["checks"] if c["key"] == "issuer")
    assert "trailing slash" in issuer["message"]  # the unsaved issuer was used
    assert saved(app).version == version and saved(app).provider_name == "Pocket ID"


def test_test_connection_as_a_plain_form_post_renders_the_page_with_results(app, admin, op):
    op.metadata_overrides = {"end_session_endpoint": None}
    response = admin.post("/settings/oidc/test", data=settings_form(admin, provider_name="Typed"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>OIDC settings</h1>" in html
    assert 'data-check="end_session"' in html and "bo-badge-warn" in html
    assert 'value="Typed"' in html  # the unsaved values stay in the form
    assert "Ready, with 1 warning." in html


def test_test_connection_for_the_script_returns_a_fragment(admin):
    response = admin.post("/settings/oidc/test", data=settings_form(admin), headers={"X-Requested-With": "fetch"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html and "All checks passed." in html
    assert html.count('class="bo-check ') == 13


def test_test_connection_reports_form_errors_instead_of_testing(app, admin, op):
    calls = sum(op.calls.values())
    response = admin.post(
        "/settings/oidc/test", data=settings_form(admin, client_id="a b"), headers={"Accept": "application/json"}
    )
    body = response.get_json()
    assert response.status_code == 400 and body["ok"] is False
    assert body["checks"][0]["key"] == "form" and "Client ID contains whitespace" in body["checks"][0]["message"]
    assert "client_id" in body["errors"]
    assert sum(op.calls.values()) == calls


def test_test_connection_uses_the_stored_secret_when_the_field_is_blank(app, admin, op):
    store_secret(app, admin)
    data = settings_form(admin)
    assert data["client_secret"] == ""
    body = admin.post("/settings/oidc/test", data=data, headers={"Accept": "application/json"}).get_json()
    client_auth = next(c for c in body["checks"] if c["key"] == "client_auth")
    assert client_auth["status"] == "PASS", client_auth
    assert op.last_token_request["auth_method_used"] == "client_secret_basic"


def test_test_connection_with_remove_secret_tests_a_public_client(app, admin, op):
    store_secret(app, admin)
    data = settings_form(admin, client_id=CLIENT_ID, remove_secret=True)
    body = admin.post("/settings/oidc/test", data=data, headers={"Accept": "application/json"}).get_json()
    assert body["ok"] is True
    assert op.last_token_request["auth_method_used"] == "none"
    assert saved(app).client_secret == SECRET  # nothing saved


def test_test_connection_failure_makes_ok_false(app, admin, op):
    body = admin.post(
        "/settings/oidc/test",
        data=settings_form(admin, client_id="confidential-basic", client_secret="wrong"),
        headers={"Accept": "application/json"},
    ).get_json()
    assert body["ok"] is False
    assert next(c for c in body["checks"] if c["key"] == "client_auth")["status"] == "FAIL"


# -- every process, no restart -------------------------------------------------------------------


def test_two_app_instances_on_one_database_see_each_others_saved_settings(apps, database_url, op):
    first, second = make_app(database_url), make_app(database_url)
    apps.extend([first, second])
    create_user(first, *ADMIN, is_admin=True)
    one, two = first.test_client(), second.test_client()
    sign_in(one, *ADMIN)
    sign_in(two, *ADMIN)
    assert saved(second).enabled is False  # and so cached in the second process

    response = one.post(
        "/settings/oidc",
        data=settings_form(
            one, enabled=True, provider_name="Shared Provider", client_id=CLIENT_ID, issuer_uri=op.issuer
        ),
    )
    assert response.status_code == 302, page_text(response)

    assert 'value="Shared Provider"' in two.get("/settings/oidc").get_data(as_text=True)
    assert "Sign in with Shared Provider" in second.test_client().get("/login").get_data(as_text=True)

    two.post("/settings/oidc", data=settings_form(two, provider_name="Changed Back"))
    assert saved(first).provider_name == "Changed Back"


def test_an_app_without_csrf_protection_still_reports_invalid_values(app, admin):
    app.config["WTF_CSRF_ENABLED"] = False
    response = admin.post("/settings/oidc", data=settings_form(admin, client_id="a b"))
    assert response.status_code == 400 and "Client ID contains whitespace" in page_text(response)


# -- values only PostgreSQL refuses (SQLite keeps strings of any length, NUL bytes included) -------

@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("scopes", "openid " + "x" * 600, id="scopes-600"),
        pytest.param("claim_username", "c" * 300, id="claim_username-300"),
        pytest.param("claim_groups", "g" * 300, id="claim_groups-300"),
        pytest.param("public_url", "https://books.example.com/" + "p" * 600, id="public_url-600"),
        pytest.param("issuer_uri", "http://127.0.0.1:9/" + "i" * 600, id="issuer_uri-600"),
        pytest.param("provider_name", "Pocket\x00ID", id="provider_name-NUL"),
        pytest.param("client_id", "client\x00id", id="client_id-NUL"),
    ],
)
def test_a_value_the_database_cannot_store_is_refused_with_a_400_not_a_server_error(app, admin, name, value):
    before = saved(app).version
    response = admin.post("/settings/oidc", data=settings_form(admin, **{name: value}))
    assert response.status_code == 400
    assert saved(app).version == before


def test_constants_of_the_reference_panel_have_no_copy_button(admin):
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert 'data-copy-target="ref-redirect_uri"' in html and 'data-copy-target="ref-scopes"' in html
    for constant in ("pkce", "grant_type", "client_type"):
        assert f'data-copy-target="ref-{constant}"' not in html


def test_the_redirect_uri_may_wrap_after_its_slashes(admin):
    html = admin.get("/settings/oidc").get_data(as_text=True)
    assert re.search(r'<code id="ref-redirect_uri">http:/<wbr>/<wbr>localhost/<wbr>oauth2-callback</code>', html)


def test_the_client_launch_url_says_why_it_differs_from_the_guide(admin):
    assert "The guide suggests the app&#39;s root (/); both work" in admin.get("/settings/oidc").get_data(as_text=True)


def test_after_a_discovery_failure_test_connection_shows_one_skip_line(admin):
    response = admin.post("/settings/oidc/test", data=settings_form(admin, issuer_uri="http://127.0.0.1:9"))
    html = response.get_data(as_text=True)
    assert html.count('class="bo-badge bo-badge-fail">FAIL') == 1
    assert html.count('class="bo-badge bo-badge-skip">SKIP') == 1


def test_saving_a_provider_that_fails_test_connection_asks_first(app, admin):
    form = settings_form(admin, issuer_uri="http://127.0.0.1:9")
    asked = admin.post("/settings/oidc", data=form)
    html = page_text(asked)
    assert asked.status_code == 409 and "Save anyway" in html and "Nothing was saved" in html
    assert saved(app).issuer_uri != "http://127.0.0.1:9"
    assert 'value="http://127.0.0.1:9"' in html  # what was typed stays
    form["confirm"] = "yes"
    assert admin.post("/settings/oidc", data=form).status_code == 302
    assert saved(app).issuer_uri == "http://127.0.0.1:9"


def test_saving_without_a_provider_change_runs_no_test_connection(app, admin, op):
    before = op.calls["discovery"]
    response = admin.post("/settings/oidc", data=settings_form(admin, provider_name="Renamed", claim_username="username"))
    assert response.status_code == 302, page_text(response)
    assert op.calls["discovery"] == before
    assert saved(app).provider_name == "Renamed"


def test_switching_oidc_login_off_saves_whatever_test_connection_would_say(app, admin):
    response = admin.post("/settings/oidc", data=settings_form(admin, enabled=False, issuer_uri="http://127.0.0.1:9"))
    assert response.status_code == 302, page_text(response)
