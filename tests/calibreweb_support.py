"""The real Calibre-Web (PyPI ``calibreweb`` 0.6.x), in this process, for the contrib tests.

Calibre-Web keeps its Flask app, its settings and its database session in module globals
(``cps.app``, ``cps.config``, ``cps.ub.session``), so there is one Calibre-Web per test process:
:func:`calibreweb` is session-scoped. It is started by Calibre-Web's own ``cps.main.main`` (the
function behind its ``cps`` command), with a fresh config dir given by ``-p``/``-g`` and only the
web server's ``start`` replaced, so every blueprint is registered exactly as in production and
:func:`flask_booklore_oidc.contrib.calibreweb.attach` can be applied to it afterwards (once per
process: an app takes one ``init_app``).

The config dir holds a minimal Calibre library (``metadata.db`` made from Calibre-Web's own table
definitions, plus a library id) and ``app.db`` made by Calibre-Web's ``ub.init_db`` (its ``admin``
/ ``admin123`` and ``Guest`` accounts), pointed at that library. Calibre-Web's import-time side
effects (``~/.calibre-web``, its log file, its cache) are kept inside the temp dir.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

ADMIN = "admin"
ADMIN_PASSWORD = "admin123"  # Calibre-Web's own default (cps/constants.py DEFAULT_PASSWORD)
USER_AGENT = "pytest-calibreweb"
LIBRARY_UUID = "0e1f2a3b-0000-4000-8000-000000000001"


@dataclass
class CalibreWebHost:
    app: Flask
    root: Path  # the config dir: app.db, gdrive.db, calibre-web.log, library/metadata.db
    cps: ModuleType
    ub: ModuleType
    constants: ModuleType

    def client(self) -> FlaskClient:
        client = self.app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
        return client

    def request_context(self, **kwargs: Any) -> Any:
        """A request context that looks like :meth:`client`'s requests (Calibre-Web's session id
        hashes the address and the User-Agent)."""
        return self.app.test_request_context(environ_base={"HTTP_USER_AGENT": USER_AGENT}, **kwargs)

    def signed_in_client(self, sign_in: Any) -> FlaskClient:
        """A client whose session cookie is what ``sign_in()`` (run inside a request) left in
        the session, e.g. ``lambda: adapter.login_user(user)``."""
        with self.request_context():
            assert sign_in()
            data = dict(session)
        client = self.client()
        with client.session_transaction() as sess:
            sess.update(data)
        return client

    def local_login(self, client: FlaskClient, username: str, password: str) -> Any:
        """Calibre-Web's own login form: GET for the CSRF token, then POST."""
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        return client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/"}
        )


def _import_calibreweb(root: Path) -> None:
    """Import Calibre-Web with its import-time paths (home config dir, log, cache) under ``root``."""
    os.environ["CALIBRE_DBPATH"] = str(root)
    os.environ["CACHE_DIRECTORY"] = str(root / "cache")
    home = os.environ.get("HOME")
    os.environ["HOME"] = str(root / "home")  # cps.constants creates ~/.calibre-web on import
    try:
        import calibreweb  # noqa: F401  (puts its cps package on sys.path)
        import cps  # noqa: F401
    finally:
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home


def make_config_dir(root: Path) -> Path:
    """A minimal library and an ``app.db`` with Calibre-Web's admin and Guest; returns app.db."""
    from cps import config_sql, ub
    from cps import db as calibre_db

    library = root / "library"
    library.mkdir(parents=True)
    engine = create_engine(f"sqlite:///{library / 'metadata.db'}")
    with engine.begin() as conn:
        # Calibre-Web's own table definitions; one of them is declared in the attached "calibre" schema.
        calibre_db.Base.metadata.create_all(conn.execution_options(schema_translate_map={"calibre": None}))
        conn.execute(text("INSERT INTO library_id (uuid) VALUES (:uuid)"), {"uuid": LIBRARY_UUID})
    engine.dispose()

    app_db = root / "app.db"
    ub.init_db(str(app_db))  # a new file: Calibre-Web creates its admin and Guest accounts
    config_sql._Base.metadata.create_all(ub.session.bind)
    ub.session.add(config_sql._Settings(config_calibre_dir=str(library)))
    ub.session.commit()
    ub.dispose()
    return app_db


def start_calibreweb(root: Path) -> CalibreWebHost:
    """Calibre-Web's ``cps`` command, in process, up to (not including) serving."""
    _import_calibreweb(root)
    import cps
    from cps import constants, ub
    from cps.main import main

    app_db = make_config_dir(root)
    argv, start = sys.argv, cps.web_server.start
    sys.argv = ["cps", "-p", str(app_db), "-g", str(root / "gdrive.db")]
    cps.web_server.start = lambda: True
    # Calibre-Web leaves Flask-Limiter on its implicit in-memory storage, which warns; say it.
    cps.app.config["RATELIMIT_STORAGE_URI"] = "memory://"
    try:
        main()
    except SystemExit as stop:  # main() ends with sys.exit(0) once the (stubbed) server returns
        assert stop.code == 0, stop.code
    finally:
        sys.argv = argv
        cps.web_server.start = start
    cps.app.config["TESTING"] = True
    # What calibre-web-oidc does just before Calibre-Web's server starts.
    from flask_booklore_oidc.contrib.calibreweb import attach

    attach(cps.app)
    with cps.app.app_context():
        cps.app.extensions["booklore_oidc"].create_all()
    return CalibreWebHost(app=cps.app, root=root, cps=cps, ub=ub, constants=constants)


#: skip marker for modules that need Calibre-Web; checks without importing it (its import has side effects)
needs_calibreweb = pytest.mark.skipif(
    importlib.util.find_spec("calibreweb") is None, reason="needs the calibre-web extra (PyPI calibreweb)"
)


@pytest.fixture(scope="session", name="calibreweb")
def calibreweb_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CalibreWebHost]:
    """The process's one Calibre-Web app, with the extension attached (registered as a plugin
    in conftest.py)."""
    host = start_calibreweb(tmp_path_factory.mktemp("calibre-web"))
    yield host
    # What Calibre-Web's own shutdown does for its updater thread (not a daemon, parked on an
    # Event: without this the test process never exits). Its scheduler stops at exit by itself.
    host.cps.updater_thread.stop()
    host.cps.updater_thread.join(timeout=10)
