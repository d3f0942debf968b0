"""A value the settings page refuses is refused everywhere — the CLI's ``set``, ``app.config``
and the environment — with the same message (SPEC §2, issue 10). One case per field family."""

from __future__ import annotations

import pytest
from settings_helpers import page_text, settings_form

from example_app import create_app
from flask_booklore_oidc.config import FIELDS_BY_NAME

#: (setting, refused value); the page shows each as a text box, a switch or a choice
CASES = [
    ("clock_skew", "9999"),  # a whole number out of bounds
    ("clock_skew", "a minute"),  # not a number
    ("http_timeout", "500"),  # a number out of bounds
    ("issuer_uri", "http://idp.example.com"),  # plain http on a public host
    ("issuer_uri", "http://["),  # not a URL at all
    ("issuer_uri", "https://idp.example.com/.well-known/openid-configuration"),
    ("public_url", "https://books.example.com/?from=mail"),
    ("ca_bundle", "/no/such/ca-bundle.pem"),  # a file that is not there
    ("claim_groups", "realm_access..roles"),  # a claim mapping
    ("client_id", "booklore "),  # whitespace, named
    ("client_id", "book\x00lore"),  # NUL
    ("scopes", 'openid "groups"'),
    ("provider_name", "P" * 101),  # too long for its column
    ("provider_name", ""),  # required
    ("allowed_groups", "readers, " + "g" * 300),  # a list entry too long
]


def message(name: str, value: str) -> str:
    with pytest.raises(ValueError) as refused:
        FIELDS_BY_NAME[name].parse(value)
    return str(refused.value)


@pytest.mark.parametrize(("name", "value"), CASES)
def test_the_settings_page_refuses_it_with_the_message(app, admin, name, value):
    response = admin.post("/settings/oidc", data=settings_form(admin, **{name: value}))
    assert response.status_code == 400
    assert message(name, value) in page_text(response)


@pytest.mark.parametrize(("name", "value"), [*CASES, ("group_sync", "sometimes"), ("enabled", "perhaps")])
def test_the_cli_refuses_it_with_the_same_message_and_stores_nothing(app, run, name, value):
    before = run("status").output
    result = run("set", name, value)
    assert result.exit_code == 2
    assert _words(message(name, value)) <= _words(result.output)
    assert run("status").output == before


def _words(text: str) -> set[str]:
    # Click wraps and frames long messages; compare the words.
    return {w.strip("│'\"") for w in text.split()} - {""}


@pytest.mark.parametrize(("name", "value"), [*CASES, ("group_sync", "sometimes"), ("enabled", "perhaps")])
def test_app_config_refuses_it_with_the_same_message(db_dir, name, value):
    key = FIELDS_BY_NAME[name].key
    with pytest.raises(ValueError) as refused:
        create_app({"SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'c.sqlite'}", key: value})
    assert str(refused.value) == f"{key} in the app configuration: {message(name, value)}"


@pytest.mark.parametrize(("name", "value"), [c for c in CASES if "\x00" not in c[1]])
def test_the_environment_refuses_it_with_the_same_message(db_dir, monkeypatch, name, value):
    key = FIELDS_BY_NAME[name].key
    monkeypatch.setenv(key, value)
    with pytest.raises(ValueError) as refused:
        create_app({"SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'e.sqlite'}"})
    assert str(refused.value) == f"{key} in the environment: {message(name, value)}"


def test_saving_through_the_api_refuses_it_too(app):
    with app.test_request_context(), pytest.raises(ValueError, match="Clock skew"):
        app.extensions["booklore_oidc"].save_settings({"clock_skew": 9999})
