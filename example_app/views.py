"""Pages of the example library."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from .models import PERMISSIONS, Library, User, db

bp = Blueprint("library", __name__)


@bp.after_request
def _personal(response: Any) -> Any:
    """Every page of the library shows the signed-in reader's data: never cache it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/")
@login_required
def index() -> str:
    libraries = [lib for lib in db.session.scalars(select(Library).order_by(Library.name)) if current_user.sees(lib)]
    return render_template("example_app/index.html", libraries=libraries)


@bp.route("/account")
@login_required
def account() -> str:
    from . import oidc

    identities = oidc.identities(current_user)
    labels = dict(PERMISSIONS)
    return render_template("example_app/account.html", identities=identities, permission_labels=labels)


@bp.route("/admin/users")
@login_required
def users() -> str:
    if not current_user.is_admin:
        abort(403)
    return render_template(
        "example_app/users.html", users=db.session.scalars(select(User).order_by(User.username)).all()
    )


@bp.route("/api/me")
def me() -> Any:
    if not current_user.is_authenticated:
        return jsonify(error="not signed in"), 401
    user: User = current_user
    return jsonify(
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        is_admin=user.is_admin,
        permissions=sorted(user.permissions or []),
        libraries=sorted(user.libraries or []),
    )
