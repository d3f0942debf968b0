"""The extension object and settings storage (SPEC §2, §4): registration, precedence
environment > app.config > database > default, secrets at rest, and the change signal."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select

from example_app import create_app
from example_app.models import User, db
from flask_booklore_oidc import BookloreOIDC, signals
from flask_booklore_oidc.config import SESSION_KEYS
from flask_booklore_oidc.models import SettingsRow


def make_app(db_dir, **config):
    return create_app({"SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_dir / 'x.sqlite'}", **config})


def current(app):
    with app.test_request_context():
        return app.extensions["booklore_oidc"].settings()


def test_a_second_init_app_on_the_same_app_is_refused_with_the_fix():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI="sqlite://")
    sa = SQLAlchemy(app)
    BookloreOIDC(app, db=sa, user_model=User)
    with pytest.raises(RuntimeError, match=r"already been registered.*use that instance"):
        BookloreOIDC().init_app(app, db=sa, user_model=User)


def test_init_app_without_users_says_what_it_needs():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "k"
    with pytest.raises(TypeError, match="db= and user_model=, or adapter="):
        BookloreOIDC().init_app(app)


def test_environment_beats_config_beats_database_beats_default(db_dir, monkeypatch):
    app = make_app(db_dir, BOOKLORE_OIDC_PROVIDER_NAME="From config", BOOKLORE_OIDC_CLIENT_ID="config-id")
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings({"issuer_uri": "https://db.example", "scopes": "openid"})
    monkeypatch.setenv("BOOKLORE_OIDC_CLIENT_ID", "env-id")
    app2 = make_app(db_dir, BOOKLORE_OIDC_PROVIDER_NAME="From config", BOOKLORE_OIDC_CLIENT_ID="config-id")
    settings = current(app2)
    assert (settings.client_id, settings.sources["client_id"]) == ("env-id", "environment")
    assert (settings.provider_name, settings.sources["provider_name"]) == ("From config", "configuration")
    assert (settings.issuer_uri, settings.sources["issuer_uri"]) == ("https://db.example", "database")
    assert (settings.claim_groups, settings.sources["claim_groups"]) == ("groups", "default")
    assert settings.locked("client_id") and settings.locked("provider_name") and not settings.locked("issuer_uri")


def test_a_locked_setting_cannot_be_saved(db_dir):
    app = make_app(db_dir, BOOKLORE_OIDC_CLIENT_ID="config-id")
    with app.test_request_context(), pytest.raises(ValueError, match="set by configuration"):
        app.extensions["booklore_oidc"].save_settings({"client_id": "other"})


def test_client_secret_can_come_from_a_file(db_dir, tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("BOOKLORE_OIDC_CLIENT_SECRET_FILE", str(secret_file))
    settings = current(make_app(db_dir))
    assert settings.client_secret == "from-a-file"
    assert settings.sources["client_secret"] == "environment" and not settings.is_public_client


def test_the_client_secret_is_encrypted_at_rest_and_unreadable_after_a_key_change(db_dir):
    app = make_app(db_dir)
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings({"client_secret": "hunter2-very-secret"})
        stored = db.session.scalar(select(SettingsRow.client_secret))
    assert stored and "hunter2" not in stored
    assert current(app).client_secret == "hunter2-very-secret"

    rotated = make_app(db_dir, SECRET_KEY="another-key")
    settings = current(rotated)
    assert settings.secret_unreadable and settings.client_secret == "" and not settings.configured


def test_a_bad_value_in_the_environment_stops_the_app_from_starting_and_names_the_key(db_dir, monkeypatch):
    monkeypatch.setenv("BOOKLORE_OIDC_CLOCK_SKEW", "a minute")
    with pytest.raises(ValueError, match="BOOKLORE_OIDC_CLOCK_SKEW in the environment: Clock skew"):
        make_app(db_dir)


def test_saving_sends_settings_changed_with_the_changed_names_only(db_dir):
    app = make_app(db_dir)
    received = []
    record = lambda sender, **kw: received.append((sender, kw["changed"]))  # noqa: E731
    with signals.settings_changed.connected_to(record, app), app.test_request_context():
        oidc = app.extensions["booklore_oidc"]
        oidc.save_settings({"provider_name": "Pocket ID", "enabled": False})
        oidc.save_settings({"provider_name": "Pocket ID"})
    assert received == [(app, {"provider_name", "enabled"})]


def test_session_keys_are_all_ours():
    assert SESSION_KEYS and all(key.startswith("_booklore_oidc_") for key in SESSION_KEYS)


def test_url_prefix_moves_every_route(db_dir):
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", SQLALCHEMY_DATABASE_URI=f"sqlite:///{db_dir / 'p.sqlite'}")
    sa = SQLAlchemy(app)
    BookloreOIDC(app, db=sa, user_model=User, url_prefix="/auth")
    rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("booklore_oidc.")}
    assert "/auth/login" in rules and "/auth/oauth2-callback" in rules and "/auth/settings/oidc" in rules
    assert not {r for r in rules if not r.startswith("/auth/")}
