"""The README's quick start, pasted into a new Flask app with a Flask-SQLAlchemy User model,
signs a user in through a real provider on localhost (oidc-provider-mock, confidential client)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import local_path
from oidc_provider_mock import User as MockUser
from oidc_provider_mock import run_server_in_thread

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start_code() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start for a Flask app", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def quick_start_app(db_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Runs the README's lines as they are; only the model they refer to is defined first."""
    code = quick_start_code()
    assert "BookloreOIDC(app, db=db, user_model=User)" in code
    model = (
        "from flask_login import UserMixin\n"
        "class User(UserMixin, db.Model):\n"
        "    id = db.Column(db.Integer, primary_key=True)\n"
        "    username = db.Column(db.String(80), unique=True)\n"
        "    email = db.Column(db.String(120))\n"
    )
    # The User model needs `db`, which the quick start creates: define it right after `db`.
    before, after = code.split("login_manager = LoginManager(app)", 1)
    monkeypatch.chdir(db_dir)  # the app's root, so its instance/library.sqlite lands there
    monkeypatch.setenv("SECRET_KEY", "quick-start-secret-key")
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    exec(before + model + "login_manager = LoginManager(app)" + after, namespace)
    app, db = namespace["app"], namespace["db"]
    namespace["login_manager"].user_loader(lambda user_id: db.session.get(namespace["User"], int(user_id)))

    @app.route("/whoami")
    def whoami() -> Any:
        from flask_login import current_user

        return {"username": current_user.username} if current_user.is_authenticated else ({}, 401)

    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


def test_readme_quick_start_signs_a_user_in_through_a_real_provider(quick_start_app):
    users = [MockUser(sub="mock-dora", claims={"preferred_username": "dora", "email": "dora@example.test"})]
    with run_server_in_thread(user_claims=users, require_nonce=True) as server:
        issuer = f"http://localhost:{server.server_port}"
        with quick_start_app.test_request_context():
            quick_start_app.extensions["booklore_oidc"].save_settings({
                "enabled": True, "client_id": "quick", "client_secret": "quick-secret", "issuer_uri": issuer,
                "auto_provision": True,
            })
        client = quick_start_app.test_client()
        login = client.get("/login")
        assert b"Sign in with OIDC" in login.data
        start = client.get("/login/oidc", query_string={"next": "/whoami"})
        answer = requests.post(start.headers["Location"], data={"sub": "mock-dora"}, allow_redirects=False, timeout=5)
        callback = client.get(local_path(answer.headers["Location"]))
    assert callback.headers["Location"] == "/whoami"
    assert client.get("/whoami").get_json() == {"username": "dora"}
