"""Helpers the tests share (plain functions and classes; the fixtures are in conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from fakeprovider import FakeProvider
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from example_app.models import User, db

CLIENT_ID = "booklore-test"
SECRET = "s3cr3t-Value-!&%"
REDIRECT_URI = "http://localhost/oauth2-callback"


def settings_for(op: FakeProvider, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "enabled": True,
        "provider_name": "Pocket ID",
        "client_id": CLIENT_ID,
        "issuer_uri": op.issuer,
        "auto_provision": True,
        "http_timeout": 2.0,
    }
    values.update(overrides)
    return values


def configure(app: Flask, **changes: Any) -> None:
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings(changes)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


class SignIn:
    """Drives a browser's sign-in: our start route, the provider, our callback."""

    def __init__(self, client: FlaskClient, op: FakeProvider) -> None:
        self.client = client
        self.op = op

    def start(self, next: str | None = None) -> str:
        response = self.client.get("/login/oidc", query_string={"next": next} if next else {})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response.headers["Location"]

    def provider_answer(self, authorize_url: str) -> str:
        return local_path(self.op.authorize(authorize_url))

    def __call__(self, next: str | None = None) -> Any:
        return self.client.get(self.provider_answer(self.start(next)))


def me(client: FlaskClient) -> dict[str, Any] | None:
    response = client.get("/api/me")
    return response.get_json() if response.status_code == 200 else None


def add_user(app: Flask, username: str, *, email: str | None = None, password: str | None = "pw", is_admin: bool = False,
             permissions: tuple[str, ...] | list[str] = (), libraries: tuple[str, ...] | list[str] = (),
             display_name: str | None = None) -> int:
    """Create a local user of the example app; returns its id. The password hash is a cheap
    one: scrypt's deliberate slowness would dominate the suite's run time. ``password=None``
    makes an account for single sign-on (no local password), which links by name at once."""
    from werkzeug.security import generate_password_hash

    with app.app_context():
        user = User(username=username, email=email, display_name=display_name, is_admin=is_admin,
                    permissions=list(permissions), libraries=list(libraries),
                    password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000")
                    if password is not None else None)
        db.session.add(user)
        db.session.commit()
        return int(user.id)


def neutral_sql(statement: str) -> str:
    """A statement spelled the same on every database: whitespace collapsed, each bound
    parameter (SQLite's ``?``, psycopg's ``%(name)s`` with its ``::TYPE`` cast) written ``?``."""
    return re.sub(r"%\(\w+\)s(::\w+)?", "?", " ".join(statement.split()))


@contextmanager
def sql_statements(app: Flask) -> Iterator[list[str]]:
    """Every statement ``app``'s engine sends to the database while the block runs, each as
    :func:`neutral_sql` spells it."""
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(neutral_sql(statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def link_identity(app: Flask, user_id: int, issuer: str, subject: str) -> None:
    """Link a provider identity to a user, as an administrator would."""
    from flask_booklore_oidc.models import Identity

    with app.app_context():
        db.session.add(Identity(issuer=issuer, subject=subject, user_id=str(user_id), linked_by="admin"))
        db.session.commit()


def user_count(app: Flask) -> int:
    with app.app_context():
        return db.session.query(User).count()


def identity_count(app: Flask) -> int:
    from flask_booklore_oidc.models import Identity

    with app.app_context():
        return db.session.query(Identity).count()


def refusal_detail(app: Flask, text: str) -> str:
    """The technical detail of the refusal a reader's error page ``text`` shows: the reader sees
    only its reference (SPEC §10); the detail is on the activity list, under that reference."""
    import re

    from flask_booklore_oidc import activity

    match = re.search(r"Reference: (?:<code>)?([A-Z0-9]{8})", text)
    assert match, text
    with app.app_context():
        found = activity.find(db.session, match.group(1))
    assert found is not None
    assert not found.detail or found.detail not in text, "the detail never reaches readers"
    return found.detail
