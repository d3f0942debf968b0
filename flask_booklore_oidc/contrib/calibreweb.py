"""Calibre-Web signs in through flask-booklore-oidc, with no patch to either package (SPEC §15).

Calibre-Web (PyPI ``calibreweb`` 0.6.x) keeps its users in a plain SQLAlchemy session
(``cps.ub.session``), their rights in a role bitmask (``ub.User.role``) and its sign-ins in a
fork of Flask-Login (``cps.cw_login``) that also records each session in its ``user_session``
table. :class:`CalibreWebAdapter` speaks those; :func:`attach` puts the extension on Calibre-Web's
app in host-login mode (its own login page gets the button, its login views the OIDC-only guard,
its logout ends ours, its admin page a link to ``/settings/oidc``); the console script
``calibre-web-oidc`` (:func:`main`) starts Calibre-Web exactly as its ``cps`` command does, same
arguments, with :func:`attach` applied. Settings come from ``BOOKLORE_OIDC_*`` and the settings page.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Importing ``calibreweb`` puts its ``cps`` package on sys.path, as the ``cps`` command does. Only
# modules that ``cps.main`` itself imports before ``create_app`` are imported here: others (admin,
# helper, gdriveutils...) read the parsed command line at import time.
import calibreweb  # noqa: F401
import cps
from cps import constants, cw_login, ub
from cps.main import main as cps_main
from flask import Flask
from flask import session as flask_session
from jinja2 import BaseLoader, Environment
from sqlalchemy import func
from werkzeug.security import check_password_hash

from ..adapter import Access, NewUser, UserAdapter
from ..errors import OIDCError
from ..extension import BookloreOIDC

log = logging.getLogger(__name__)

#: permission name -> (Calibre-Web role bit, the label of its user form); admin is ``Access.is_admin``
PERMISSIONS: dict[str, tuple[int, str]] = {
    "download": (constants.ROLE_DOWNLOAD, "Allow Downloads"),
    "viewer": (constants.ROLE_VIEWER, "Allow eBook Viewer"),
    "upload": (constants.ROLE_UPLOAD, "Allow Uploads"),
    "edit": (constants.ROLE_EDIT, "Allow Edit"),
    "delete_books": (constants.ROLE_DELETE_BOOKS, "Allow Delete Books"),
    "change_password": (constants.ROLE_PASSWD, "Allow Changing Password"),
    "edit_shelfs": (constants.ROLE_EDIT_SHELFS, "Allow Editing Public Shelves"),
}
#: the bits an access sync owns; any other bit of ``role`` (Guest's ROLE_ANONYMOUS) is left alone
MANAGED_ROLES = constants.ROLE_ADMIN | sum(bit for bit, _ in PERMISSIONS.values())


class CalibreWebAdapter(UserAdapter):
    """Calibre-Web's users for the extension. The Guest (anonymous) account is never found,
    linked or changed; names and emails compare case-insensitively, as Calibre-Web does."""

    user_class = ub.User
    #: Calibre-Web's own login compares names case-insensitively; local sign-in here does too
    usernames_case_sensitive = False
    #: ``user.name`` is a String(64)
    max_username_length = 64

    @property
    def session(self) -> Any:
        return ub.session  # read at each call: Calibre-Web replaces it on reconnect

    def _users(self) -> Any:
        """Every account but Guest (Calibre-Web tells it by the anonymous role bit and its name)."""
        role = func.coalesce(ub.User.role, 0)
        return ub.session.query(ub.User).filter(role.op("&")(constants.ROLE_ANONYMOUS) == 0, ub.User.name != "Guest")

    def get_id(self, user: Any) -> str:
        return str(user.id)

    def get_by_id(self, user_id: str) -> Any | None:
        return self._users().filter(ub.User.id == int(user_id)).first() if user_id.isdigit() else None

    def usernames(self) -> Iterator[str]:
        """Every account name but Guest's, for the look-alike check before creating one."""
        for (name,) in self._users().with_entities(ub.User.name):
            yield name

    def get_by_username(self, username: str, *, case_sensitive: bool = True) -> Any | None:
        name = ub.User.name == username if case_sensitive else func.lower(ub.User.name) == username.lower()
        rows = self._users().filter(name).limit(2).all()
        return rows[0] if len(rows) == 1 else None

    def find_by_email(self, email: str) -> Sequence[Any]:
        return list(self._users().filter(func.lower(ub.User.email) == email.lower()).limit(5).all())

    def get_username(self, user: Any) -> str:
        return str(user.name)

    def get_email(self, user: Any) -> str | None:
        return user.email or None

    def _taken(self, column: Any, value: str) -> bool:
        """Whether any account, Guest included, has this name or email (Calibre-Web's unique check)."""
        return ub.session.query(ub.User.id).filter(func.lower(column) == value.lower()).first() is not None

    def create_user(self, new: NewUser) -> Any:
        """A passwordless account with Calibre-Web's defaults for new users (as its LDAP import makes them)."""
        if self._taken(ub.User.name, new.username):
            raise OIDCError("account_conflict", f"The username {new.username!r} is taken in Calibre-Web.")
        if new.email and self._taken(ub.User.email, new.email):
            raise OIDCError(
                "account_conflict", f"The email address {new.email} belongs to another Calibre-Web account."
            )
        config = cps.config
        user = ub.User(
            name=new.username,
            email=new.email or None,
            password="",
            role=0,
            kindle_mail="",
            default_language=config.config_default_language,
            locale=config.config_default_locale,
            sidebar_view=config.config_default_show,
            allowed_tags=config.config_allowed_tags,
            denied_tags=config.config_denied_tags,
            allowed_column_value=config.config_allowed_column_value,
            denied_column_value=config.config_denied_column_value,
        )
        self.apply_access(user, new.access)
        ub.session.add(user)
        ub.session.flush()
        return user

    def update_profile(self, user: Any, *, email: str | None, display_name: str | None) -> None:
        # Calibre-Web has no display name; its email column is unique.
        if email and email.lower() != (user.email or "").lower():
            if self._taken(ub.User.email, email):
                log.warning("Not changing the email of %s: %s belongs to another account.", user.name, email)
            else:
                user.email = email

    def get_access(self, user: Any) -> Access:
        role = user.role or 0
        return Access(
            is_admin=bool(role & constants.ROLE_ADMIN),
            permissions=frozenset(name for name, (bit, _) in PERMISSIONS.items() if role & bit),
        )

    def apply_access(self, user: Any, access: Access) -> None:
        if (user.role or 0) & constants.ROLE_ANONYMOUS:
            return
        role = constants.ROLE_ADMIN if access.is_admin else 0
        for name in access.permissions:
            role |= PERMISSIONS[name][0] if name in PERMISSIONS else 0
        user.role = ((user.role or 0) & ~MANAGED_ROLES) | role

    def is_admin(self, user: Any) -> bool:
        return bool((user.role or 0) & constants.ROLE_ADMIN)

    def count_admins(self) -> int:
        return int(self._users().filter(ub.User.role.op("&")(constants.ROLE_ADMIN) == constants.ROLE_ADMIN).count())

    def has_password(self, user: Any) -> bool:
        return bool(user.password) and user.name != "Guest"

    def check_password(self, user: Any, password: str) -> bool:
        """Calibre-Web's own check (web.py ``login_post``): LDAP bind when LDAP is the login
        type (the stored hash only when the server is unreachable), else the stored hash."""
        if user.name == "Guest" or (user.role or 0) & constants.ROLE_ANONYMOUS or not password:
            return False
        from cps import services

        if cps.config.config_login_type == constants.LOGIN_LDAP and services.ldap:
            result, _error = services.ldap.bind_user(user.name, password)
            if result is not None:
                return bool(result)
        return bool(user.password) and check_password_hash(str(user.password), password)

    def permission_choices(self) -> list[tuple[str, str]]:
        return [(name, label) for name, (_, label) in PERMISSIONS.items()]

    def login_user(self, user: Any, remember: bool = False) -> bool:
        """Through ``cps.cw_login``, which also stores the session in ``user_session``."""
        return bool(cw_login.login_user(user, remember=remember))

    def logout_user(self) -> None:
        """As Calibre-Web's ``/logout`` does: drop the ``user_session`` row, then sign out."""
        if cw_login.current_user.is_authenticated:
            ub.delete_user_session(cw_login.current_user.id, flask_session.get("_id", ""))
        cw_login.logout_user()


# Calibre-Web's own pages, each extended by a template of the same name (the original stays
# reachable as "calibreweb/<name>"), so neither package's files change.
PAGE_HOOKS = {
    "login.html": """{% extends "calibreweb/login.html" %}{% block body %}{{ super() }}
<div class="col-sm-6 col-sm-offset-2" id="booklore-oidc">{{ booklore_oidc_button() }}</div>{% endblock %}""",
    "admin.html": """{% extends "calibreweb/admin.html" %}{% block body %}{{ super() }}
<div class="container-fluid"><div class="row form-group"><h2>Single sign-on</h2>
<a class="btn btn-default" id="booklore_oidc_settings" href="{{ url_for('booklore_oidc.settings') }}">OpenID Connect</a>
</div></div>{% endblock %}""",
}


class PageHookLoader(BaseLoader):
    def __init__(self, inner: BaseLoader, pages: dict[str, str]) -> None:
        self.inner, self.pages = inner, pages

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template in self.pages:
            return self.pages[template], None, lambda: True
        return self.inner.get_source(environment, template.removeprefix("calibreweb/"))

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def attach(app: Flask, oidc: BookloreOIDC | None = None) -> BookloreOIDC:
    """Put the extension on Calibre-Web's app, after its blueprints, before its first request."""
    oidc = oidc or BookloreOIDC()
    oidc.init_app(app, adapter=CalibreWebAdapter(), login_pages=False)
    if app.jinja_loader is not None:
        app.jinja_loader = PageHookLoader(app.jinja_loader, PAGE_HOOKS)
    # OIDC-only mode and admins-only local sign-in on Calibre-Web's own GET and POST login views;
    # its logout ends our session too, and the provider's.
    oidc.guard_login_view("web.login", app=app, post="web.login_post")
    oidc.guard_logout_view("web.logout", app=app)

    # Calibre-Web deletes a user with bulk queries (no ORM event); both its callers (the user
    # form and the users table) go through this module function.
    import cps.admin as cps_admin

    host_delete = cps_admin._delete_user

    @functools.wraps(host_delete)
    def delete_user(content: Any) -> Any:
        user_id = str(content.id)
        message = host_delete(content)
        oidc.forget_user(user_id)
        return message

    cps_admin._delete_user = delete_user
    return oidc


def main() -> None:
    """``calibre-web-oidc``: Calibre-Web's ``cps`` command (same arguments), with :func:`attach`
    applied once its blueprints are registered, just before its server starts."""
    server = cps.web_server
    start = server.start

    def start_with_oidc() -> bool:
        attach(cps.app)
        return bool(start())

    server.start = start_with_oidc
    cps_main()
