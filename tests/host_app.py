"""A small Flask app with its own login page, logout and theme layer — the shape of most real
apps — that adopts the extension in host-login mode with the documented API only: no patch, no
private name. Its users have no ``is_admin`` column (a role string says it), ``permissions`` is a
read-only property, and an account can be inactive."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, redirect, render_template_string, request, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from flask_booklore_oidc import BookloreOIDC, SQLAlchemyUserAdapter


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Member(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "member"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    email: Mapped[str | None] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="reader")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))

    @property
    def permissions(self) -> list[str]:  # read-only: the role decides
        return ["read", "manage"] if self.role == "admin" else ["read"]

    @property
    def is_active(self) -> bool:
        return self.active


LOGIN_PAGE = """<!doctype html><title>Host sign-in</title>
<h1>Host sign-in</h1>{{ message or "" }}
<form method="post"><input name="login" value=""><input name="secret" type="password">
<button>Sign in</button></form>
{{ booklore_oidc_button() }}"""

#: what the host's theme layer adds to every page it renders
THEME_MARK = "<!-- rendered by the host theme -->"


def create_host_app(database_uri: str, **config: Any) -> tuple[Flask, BookloreOIDC]:
    app = Flask("host_app")
    app.config.update(SECRET_KEY="host-secret", SQLALCHEMY_DATABASE_URI=database_uri, WTF_CSRF_ENABLED=True, **config)
    db.init_app(app)
    manager = LoginManager(app)
    manager.login_view = "login"
    host_logins: list[str] = []
    app.config["HOST_LOGINS"] = host_logins

    @manager.user_loader
    def load(user_id: str) -> Member | None:
        return db.session.get(Member, int(user_id))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        message = ""
        if request.method == "POST":
            user = db.session.query(Member).filter_by(username=request.form.get("login", "")).one_or_none()
            if user and user.password_hash and check_password_hash(user.password_hash, request.form.get("secret", "")):
                host_logins.append(user.username)
                login_user(user)
                return redirect("/me")
            message = "Wrong name or password (host)."
        return render_template_string(LOGIN_PAGE, message=message)

    @app.route("/logout")
    def logout() -> Any:
        logout_user()
        return redirect(url_for("login"))

    @app.route("/plain-logout")
    def plain_logout() -> Any:  # the host's own logout, not guarded: Flask-Login's signal only
        logout_user()
        return "signed out"

    @app.route("/me")
    def me() -> Any:
        if not current_user.is_authenticated:
            return jsonify(error="anonymous"), 401
        return jsonify(username=current_user.username, email=current_user.email, role=current_user.role)

    def themed(template: str, **context: Any) -> str:
        from flask import render_template

        return THEME_MARK + render_template(template, **context)

    oidc = BookloreOIDC(
        app,
        adapter=SQLAlchemyUserAdapter(
            db, Member, is_admin_attr=lambda user: user.role == "admin", permissions=["read", "manage"]
        ),
        login_pages=False,
        render_template=themed,
    )
    oidc.guard_login_view("login", username_field="login", password_field="secret")
    oidc.guard_logout_view("logout")
    with app.app_context():
        db.create_all()
        oidc.create_all()
    return app, oidc


def add_member(app: Flask, username: str, *, password: str | None = "pw", role: str = "reader", active: bool = True,
               email: str | None = None) -> int:
    with app.app_context():
        member = Member(username=username, role=role, active=active, email=email,
                        password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000") if password else None)
        db.session.add(member)
        db.session.commit()
        return member.id
