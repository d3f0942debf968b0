"""The example app as the README's "Running in production" runs it (SPEC §12, §14):
``flask --app example_app booklore-oidc db upgrade``, then ``gunicorn -w 4 example_app.wsgi:app``
on PostgreSQL, a fake provider on loopback, readers' browsers over real HTTP
(:mod:`benchmarks.storm` drives them; ``make bench`` runs the same storm and times it)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

from flask import request
from helpers import settings_for

from benchmarks.storm import Tab, gunicorn, storm
from example_app import create_app
from example_app.models import User, db
from flask_booklore_oidc.models import Identity

STORM_CLIENT = "booklore-gunicorn"
SECRET_KEY = "gunicorn-test-secret-key"


def _prepare(database_url, op, *, people=0):
    """Schema and settings in the database, as a deploy's ``db upgrade`` and an admin would
    leave them; ``people`` new readers at the provider. Returns {subject: username} of them."""
    app = create_app({"SECRET_KEY": SECRET_KEY, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings(settings_for(op, client_id=STORM_CLIENT, link_by_username=True))
    with app.app_context():
        db.engine.dispose()
    readers = {f"sub-gunicorn-{n:03d}": f"guni{n:03d}" for n in range(people)}
    for n, (sub, username) in enumerate(readers.items()):
        op.add_user(sub, preferred_username=username, email=f"{username}@example.test", email_verified=True,
                    name=f"Reader {n}", groups=["readers"])
    return app, readers


def _served(url, op):
    op.add_client(STORM_CLIENT, redirect_uris=[f"{url}/oauth2-callback"])


def _users_and_identities(app):
    with app.app_context():
        counts = db.session.query(User).count(), db.session.query(Identity).count()
    _dispose(app)
    return counts


def _dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_concurrent_first_signins_on_four_workers_all_succeed_with_one_account_per_person(postgresql_url, op):
    app, people = _prepare(postgresql_url, op, people=40)
    with gunicorn({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": postgresql_url}, workers=4) as url:
        _served(url, op)
        result = storm(url, list(people), tabs=5, threads=20)
        assert result.failures == []
        assert result.succeeded == 200
        # every tab is signed in as its own person
        assert all(_me(url, tab) == people[tab.person] for tab in result.tabs)
    assert _users_and_identities(app) == (40, 40)


def test_a_postgresql_restart_under_threaded_gunicorn_workers_costs_503s_while_down_and_nothing_after(own_postgresql_server, op):
    database_url = own_postgresql_server.url()
    app, _ = _prepare(database_url, op)
    # The README's command: threaded workers, several pooled connections each.
    with gunicorn({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": database_url}, workers=4, threads=4) as url:
        _served(url, op)
        reader = storm(url, ["sub-alice"], tabs=1, threads=1).tabs[0]
        assert reader.signed_in, reader.detail
        assert _me(url, reader) == "alice"
        for _ in range(8):  # every worker has pooled connections for the restart to kill
            assert reader.http.get(url + "/", timeout=10).status_code == 200

        own_postgresql_server.down()
        for path in ("/login", "/"):
            response = reader.http.get(url + path, allow_redirects=False, timeout=10)
            assert response.status_code == 503, response.text[:300]
            assert "cannot reach its database" in response.text
        own_postgresql_server.up()

        statuses = [reader.http.get(url + "/", timeout=10).status_code for _ in range(12)]
        assert statuses == [200] * 12
        assert _me(url, reader) == "alice"
    _dispose(app)


def test_the_deploy_commands_create_and_report_the_schema_on_an_empty_postgresql_database(postgresql_url):
    env = {**os.environ, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": postgresql_url}
    flask = [sys.executable, "-m", "flask", "--app", "example_app", "booklore-oidc", "db"]
    upgrade = subprocess.run([*flask, "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    current = subprocess.run([*flask, "current"], env=env, capture_output=True, text=True, timeout=60)
    assert current.returncode == 0, current.stderr
    assert "(current;" in current.stdout


def _me(url: str, tab: Tab) -> str | None:
    response = tab.http.get(url + "/api/me", timeout=10)
    return response.json()["username"] if response.status_code == 200 else None


def _wsgi_app(monkeypatch, db_dir, **environment):
    """``example_app.wsgi.app``, imported afresh with ``environment``."""
    monkeypatch.setenv("SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db_dir / 'wsgi.sqlite'}")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "example_app.wsgi", raising=False)
    return importlib.import_module("example_app.wsgi").app


def test_the_wsgi_module_behind_one_proxy_takes_the_readers_address_and_scheme_and_sets_secure_cookies(monkeypatch, db_dir):
    app = _wsgi_app(monkeypatch, db_dir, TRUSTED_PROXIES="1", SESSION_COOKIE_SECURE="1")
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True}
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "books.example.org"}
    with app.test_client() as client:
        assert client.get("/login", headers=headers).status_code == 200
        assert request.remote_addr == "203.0.113.9"
        assert request.url_root == "https://books.example.org/"
    _dispose(app)


def test_the_wsgi_module_with_nothing_in_front_ignores_forwarded_headers(monkeypatch, db_dir):
    app = _wsgi_app(monkeypatch, db_dir)
    assert app.config["SESSION_COOKIE_SECURE"] is False
    with app.test_client() as client:
        client.get("/login", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        assert request.remote_addr == "127.0.0.1"
        assert request.url_root == "http://localhost/"
    _dispose(app)
