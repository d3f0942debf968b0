"""The wheel built from the sdist ships the templates and renders every page (SPEC §1)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RENDER = textwrap.dedent(
    """
    import sys
    import flask_booklore_oidc
    assert flask_booklore_oidc.__file__.startswith(sys.argv[1]), flask_booklore_oidc.__file__
    from flask import Flask
    from flask_login import LoginManager, UserMixin
    from flask_sqlalchemy import SQLAlchemy
    from flask_booklore_oidc import BookloreOIDC

    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://")
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):
        id = db.Column(db.Integer, primary_key=True)
        username = db.Column(db.String, unique=True)
        is_admin = db.Column(db.Boolean, default=False)
        password_hash = db.Column(db.String)

    LoginManager(app).user_loader(lambda i: db.session.get(User, int(i)))
    BookloreOIDC(app, db=db, user_model=User)
    with app.app_context():
        db.create_all()
    client = app.test_client()
    login = client.get("/login")
    assert login.status_code == 200 and b'name="password"' in login.data, login.data[:500]
    assert client.get("/login/oidc").status_code == 404          # the oidc_disabled page
    assert b"Single sign-on is not enabled" in client.get("/login/oidc").data
    assert client.get("/logout").status_code == 200
    assert client.get("/booklore-oidc/static/booklore_oidc.css").status_code == 200
    assert client.get("/booklore-oidc/static/booklore_oidc.js").status_code == 200
    from werkzeug.security import generate_password_hash
    with app.app_context():
        db.session.add(User(username="root", is_admin=True,
                            password_hash=generate_password_hash("pw", method="pbkdf2:sha256:1000")))
        db.session.commit()
    app.config["WTF_CSRF_ENABLED"] = False
    assert client.post("/login", data={"username": "root", "password": "pw"}).status_code == 302
    settings = client.get("/settings/oidc")
    assert settings.status_code == 200 and b"Provider Configuration Reference" in settings.data
    assert b"Group mapping" in settings.data
    checks = client.post("/settings/oidc/test", data={"issuer_uri": "http://127.0.0.1:9", "client_id": "x"})
    assert b"Discovery document" in checks.data, checks.data[:300]
    with app.app_context():
        db.session.add(User(username="reader", password_hash=generate_password_hash("pw", method="pbkdf2:sha256:1000")))
        db.session.commit()
    reader = app.test_client()
    reader.post("/login", data={"username": "reader", "password": "pw"})
    forbidden = reader.get("/settings/oidc")
    assert forbidden.status_code == 403 and b"<html" in forbidden.data
    print("rendered")
    """
)


@pytest.fixture(scope="module")
def wheel_from_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)]
    subprocess.run([*build, "--sdist", str(ROOT)], check=True, capture_output=True)
    sdist = next(out.glob("*.tar.gz"))
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    source = next(unpacked.iterdir())
    subprocess.run([*build, "--wheel", str(source)], check=True, capture_output=True)
    return next(out.glob("*.whl"))


def test_wheel_contains_the_templates(wheel_from_sdist: Path) -> None:
    names = zipfile.ZipFile(wheel_from_sdist).namelist()
    assert "flask_booklore_oidc/templates/booklore_oidc/login.html" in names
    assert "flask_booklore_oidc/templates/booklore_oidc/error.html" in names
    assert "flask_booklore_oidc/static/booklore_oidc.css" in names
    assert "flask_booklore_oidc/py.typed" in names


def test_wheel_contains_the_compiled_translations(wheel_from_sdist: Path) -> None:
    names = zipfile.ZipFile(wheel_from_sdist).namelist()
    for language in ("de", "fr"):
        assert f"flask_booklore_oidc/translations/{language}/LC_MESSAGES/flask_booklore_oidc.mo" in names


TRANSLATED = textwrap.dedent(
    """
    import sys
    import flask_booklore_oidc
    assert flask_booklore_oidc.__file__.startswith(sys.argv[1]), flask_booklore_oidc.__file__
    from flask import Flask
    from flask_babel import Babel
    from flask_login import LoginManager, UserMixin
    from flask_sqlalchemy import SQLAlchemy
    from flask_booklore_oidc import BookloreOIDC

    app = Flask(__name__)
    app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", BABEL_DEFAULT_LOCALE="de")
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):
        id = db.Column(db.Integer, primary_key=True)
        username = db.Column(db.String, unique=True)

    LoginManager(app).user_loader(lambda i: db.session.get(User, int(i)))
    Babel(app)
    BookloreOIDC(app, db=db, user_model=User)
    with app.app_context():
        db.create_all()
    page = app.test_client().get("/login/oidc").get_data(as_text=True)
    assert "Single Sign-On ist nicht aktiviert" in page, page[:500]
    print("translated")
    """
)


def test_wheel_built_from_the_sdist_translates_with_flask_babel(wheel_from_sdist: Path, tmp_path: Path) -> None:
    result = run_from_wheel(wheel_from_sdist, TRANSLATED, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translated" in result.stdout




def run_from_wheel(wheel: Path, script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh interpreter that sees only the unpacked wheel (not this checkout)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return subprocess.run(
        [sys.executable, "-c", script, str(site)],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_wheel_built_from_the_sdist_renders_the_pages(wheel_from_sdist: Path, tmp_path: Path) -> None:
    result = run_from_wheel(wheel_from_sdist, RENDER, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rendered" in result.stdout


def test_wheel_contains_the_migrations(wheel_from_sdist: Path) -> None:
    names = zipfile.ZipFile(wheel_from_sdist).namelist()
    assert "flask_booklore_oidc/migrations/env.py" in names
    assert "flask_booklore_oidc/migrations/versions/0001_first_schema.py" in names


MIGRATE = textwrap.dedent(
    """
    import sys
    from sqlalchemy import create_engine
    from flask_booklore_oidc import migrate
    assert migrate.__file__.startswith(sys.argv[1]), migrate.__file__
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        migrate.upgrade(connection)
        print(migrate.schema_state(connection))
    """
)


def test_migrations_run_from_the_installed_wheel(wheel_from_sdist: Path, tmp_path: Path) -> None:
    result = run_from_wheel(wheel_from_sdist, MIGRATE, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["current"]
