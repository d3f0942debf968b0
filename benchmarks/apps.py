"""The example library three ways, built from the same pieces in one process.

- :func:`example_app.create_app`: the library with flask-booklore-oidc (the real thing);
- :func:`create_twin_app`: the same library without the extension;
- :func:`create_authlib_app`: the same library signing in with a bare Authlib Flask client.

The twin and the Authlib app register a placeholder blueprint named ``booklore_oidc`` with the
same URL rules and stylesheet as the real one but no code at all, so the library's templates
(which link to the sign-out and settings pages) render the same HTML in all three apps.
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, redirect, url_for
from flask_login import LoginManager, login_user
from sqlalchemy import select

from example_app import views
from example_app.models import User, db


def _placeholder_blueprint(*, leave_out: frozenset[str] = frozenset()) -> Blueprint:
    """A blueprint named ``booklore_oidc`` with every URL rule of the real one (so ``url_for``
    in the host's templates builds the same links) and the same stylesheet, but views that do
    nothing and no hooks. Paths in ``leave_out`` are left to the app."""
    from flask_booklore_oidc.routes import create_blueprint

    real = create_blueprint()

    reference = Flask(__name__)
    reference.register_blueprint(real)
    placeholder = Blueprint(
        "booklore_oidc",
        __name__,
        static_folder=real.static_folder,
        static_url_path=real.static_url_path,
    )
    for rule in reference.url_map.iter_rules():
        blueprint_name, _, endpoint = rule.endpoint.partition(".")
        if blueprint_name == "booklore_oidc" and endpoint != "static" and rule.rule not in leave_out:
            placeholder.add_url_rule(rule.rule, endpoint, _placeholder_view, methods=rule.methods)
    return placeholder


def _placeholder_view(**kwargs: Any) -> str:
    return "placeholder"


def _load_user(user_id: str) -> User | None:
    # The example app's user_loader, word for word.
    return db.session.get(User, int(user_id))


def _host_app(config: dict[str, Any]) -> Flask:
    """The library without any sign-in: database, its own LoginManager, its pages."""
    app = Flask("example_app", instance_relative_config=True)
    app.config.from_mapping(config)
    db.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "booklore_oidc.login"
    manager.user_loader(_load_user)
    app.register_blueprint(views.bp)
    return app


def create_twin_app(config: dict[str, Any]) -> Flask:
    """The example app as it would be without flask-booklore-oidc. ``GET /twin-sign-in/<id>``
    signs that user in with ``login_user``, as the app's own login would."""
    app = _host_app(config)
    app.register_blueprint(_placeholder_blueprint())

    @app.route("/twin-sign-in/<int:user_id>")
    def twin_sign_in(user_id: int) -> str:
        user = db.session.get(User, user_id)
        assert user is not None
        login_user(user)
        return "signed in"

    with app.app_context():
        db.create_all()
    return app


def create_authlib_app(config: dict[str, Any], *, issuer: str, client_id: str) -> Flask:
    """The library signing in with Authlib's Flask client, as its documentation shows.

    Authlib validates what flask-booklore-oidc validates on the ID token (RS256 signature with
    the provider's JWKS, ``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``, ``at_hash``) and
    sends PKCE S256; it keeps the transaction in the session cookie instead of the database. A
    returning user is looked up by username, a new one created; then ``login_user``.
    """
    app = _host_app(config)
    app.register_blueprint(_placeholder_blueprint(leave_out=frozenset({"/login/oidc", "/oauth2-callback"})))
    oauth = OAuth(app)
    oauth.register(
        "op",
        client_id=client_id,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile email groups",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "none",
        },
    )

    @app.route("/login/oidc")
    def start() -> Any:
        return oauth.op.authorize_redirect(url_for("callback", _external=True))

    @app.route("/oauth2-callback")
    def callback() -> Any:
        token = oauth.op.authorize_access_token()
        claims = token["userinfo"]
        user = db.session.scalar(select(User).where(User.username == claims["preferred_username"]))
        if user is None:
            user = User(
                username=claims["preferred_username"], email=claims.get("email"), display_name=claims.get("name")
            )
            db.session.add(user)
            db.session.commit()
        login_user(user)
        return redirect("/")

    with app.app_context():
        db.create_all()
    return app
