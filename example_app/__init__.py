"""A small book library that adopts flask-booklore-oidc the way the README tells you to."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_login import LoginManager
from sqlalchemy.exc import OperationalError

from flask_booklore_oidc import BookloreOIDC, SchemaError, database_unavailable

from .models import PERMISSIONS, Library, User, db

login_manager = LoginManager()
oidc = BookloreOIDC()

#: Keys published in this repository's history and docs: anyone could sign a session cookie
#: (an admin's) with them, so the app refuses them.
PUBLISHED_SECRET_KEYS = frozenset({"dev-only-change-me", "change-me", "dev"})


class MissingSecretKey(RuntimeError):
    """The app was started without a SECRET_KEY of its own."""


def _libraries() -> list[tuple[str, str]]:
    return [(str(lib.id), lib.name) for lib in db.session.query(Library).order_by(Library.name)]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory. ``test_config`` may set any Flask, SQLAlchemy or
    ``BOOKLORE_OIDC_*`` key. Refuses to start without a ``SECRET_KEY`` (from the environment or
    ``test_config``) that is not a published one: it signs the session cookie."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", "sqlite:///" + os.path.join(app.instance_path, "library.sqlite")
        ),
        # A pooled connection that died with a database restart is replaced, not used.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    key = app.config.get("SECRET_KEY")
    if not key or key in PUBLISHED_SECRET_KEYS:
        raise MissingSecretKey(
            "SECRET_KEY is not set (or is a published example value): it signs session cookies, so "
            "anyone who knows it can sign in as anyone. Set the SECRET_KEY environment variable to a "
            "random value, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "booklore_oidc.login"
    oidc.init_app(app, db=db, user_model=User, permissions=PERMISSIONS, libraries=_libraries)

    from . import views

    app.register_blueprint(views.bp)
    # While the database is down (a restart), every page says so with a 503, not a 500.
    app.register_error_handler(OperationalError, database_unavailable)
    from . import seed

    seed.register(app)
    with app.app_context():
        try:
            db.create_all()
            oidc.create_all()
        except SchemaError as exc:
            # The app still starts, so that `flask booklore-oidc db upgrade` can run; until then
            # the sign-in pages answer 503 and say the same.
            app.logger.error("%s", exc)
        except OperationalError as exc:
            # The database is down (a restart) just as this process starts: gunicorn replacing
            # a worker, say. Failing here would make gunicorn stop every worker ("failed to
            # boot"); instead every page answers 503 until the database is back, and our routes
            # check the schema on their first request then.
            app.logger.warning("The database is unreachable at start-up (%s); pages answer 503 until it is back.",
                               type(exc.orig).__name__)  # fmt: skip
        finally:
            db.session.remove()
    return app


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))
