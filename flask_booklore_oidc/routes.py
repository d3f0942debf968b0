"""Where every route of the extension is attached: the one place that imports the view modules.

:func:`create_blueprint` builds the ``booklore_oidc`` blueprint (routes of SPEC §3, the error
handler, the template context). View modules import services and never each other; the
callback, which ends both a reader's sign-in and an admin's test sign-in, is dispatched here by
the purpose its transaction was started with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError

from . import access_admin, admin, backchannel, preview, views
from .errors import OIDCError
from .migrate import SchemaError

_here = Path(__file__).parent
# In a wheel the templates sit inside the package; in a checkout, at the top level.
TEMPLATES = _here / "templates" if (_here / "templates").is_dir() else _here.parent / "templates"


def callback() -> ResponseReturnValue:
    """The Redirect URI: take the transaction, then finish what it started. A reload of a test
    sign-in's report says it was shown (its transaction is used up) instead of ``invalid_state``."""
    try:
        transaction = views.take_transaction()
    except OIDCError:
        if preview.was_shown():
            return preview.shown_again()
        raise
    if transaction.purpose == preview.PREVIEW:
        return preview.finish_preview(transaction)
    return views.finish_sign_in(transaction)


#: (rule, endpoint, view, methods); the login pages are left out in host-login mode
LOGIN_PAGES: tuple[tuple[str, str, Callable[..., Any], tuple[str, ...]], ...] = (
    ("/login", "login", views.login, ("GET",)),
    ("/login", "login_post", views.login_post, ("POST",)),
    ("/logout", "logout", views.logout, ("GET", "POST")),
)
ROUTES: tuple[tuple[str, str, Callable[..., Any], tuple[str, ...]], ...] = (
    ("/login/oidc", "start", views.start, ("GET", "POST")),
    # Ours also in host-login mode: only we know the pending link it finishes.
    ("/login/link", "link_account", views.link_account, ("GET", "POST")),
    ("/oauth2-callback", "callback", callback, ("GET",)),
    ("/oauth2-backchannel-logout", "backchannel_logout", backchannel.backchannel_logout, ("POST",)),
    ("/oauth2-frontchannel-logout", "frontchannel_logout", backchannel.frontchannel_logout, ("GET",)),
    ("/settings/oidc", "settings", admin.settings, ("GET", "POST")),
    ("/settings/oidc/test", "test_connection", admin.test_connection, ("POST",)),
    ("/settings/oidc/preview", "preview", preview.preview, ("GET", "POST")),
    ("/settings/oidc/groups", "add_group_mapping", access_admin.add_group_mapping, ("POST",)),
    ("/settings/oidc/groups/<int:row_id>", "edit_group_mapping", access_admin.edit_group_mapping, ("POST",)),
    (
        "/settings/oidc/groups/<int:row_id>/delete",
        "delete_group_mapping",
        access_admin.delete_group_mapping,
        ("POST",),
    ),
    (
        "/settings/oidc/identities/<int:identity_id>/end-sessions",
        "end_identity_sessions",
        access_admin.end_identity_sessions,
        ("POST",),
    ),
    (
        "/settings/oidc/identities/<int:identity_id>/unlink",
        "unlink_identity",
        access_admin.unlink_identity,
        ("POST",),
    ),
)

#: Views other servers POST to without our CSRF token: the provider's logout token, and a
#: third-party initiated login (OpenID Connect Core §4) may come as a form POST too.
CSRF_EXEMPT_VIEWS = (backchannel.backchannel_logout, views.start)
CSRF_EXEMPT_ENDPOINTS = frozenset({"booklore_oidc.backchannel_logout", "booklore_oidc.start"})


#: for a host's own login page and logout (host-login mode): attached by the extension
button = views.button
guard_login = views.guard_login
guard_logout = views.guard_logout
host_logged_out = views.host_logged_out
sign_out = views.sign_out


def paths(*, login_pages: bool = True, url_prefix: str | None = None) -> list[tuple[str, frozenset[str]]]:
    """(path, methods) of every route :func:`create_blueprint` attaches, for collision checks."""
    prefix = (url_prefix or "").rstrip("/")
    table = (*LOGIN_PAGES, *ROUTES) if login_pages else ROUTES
    return [(prefix + rule, frozenset(methods)) for rule, _, _, methods in table]


def create_blueprint(*, login_pages: bool = True) -> Blueprint:
    """A fresh ``booklore_oidc`` blueprint with every route (one per app registration)."""
    blueprint = Blueprint(
        "booklore_oidc",
        __name__,
        template_folder=str(TEMPLATES),
        static_folder="static",
        static_url_path="/booklore-oidc/static",
    )
    for rule, endpoint, view, methods in (*LOGIN_PAGES, *ROUTES) if login_pages else ROUTES:
        blueprint.add_url_rule(rule, endpoint, view, methods=list(methods))
    blueprint.register_error_handler(OIDCError, views.render_error)
    blueprint.register_error_handler(OperationalError, views.render_unavailable)
    blueprint.register_error_handler(SchemaError, views.render_unavailable)
    blueprint.context_processor(views.template_context)
    blueprint.after_request(views.protect_response)
    return blueprint


def exempt_from_csrf(app: Flask) -> None:
    """Exempt :data:`CSRF_EXEMPT_VIEWS` from Flask-WTF's ``CSRFProtect``, when the app uses it
    (also one set up after us: the extension calls this again before those endpoints)."""
    csrf = app.extensions.get("csrf")
    exempt = getattr(csrf, "exempt", None)
    if callable(exempt):
        for view in CSRF_EXEMPT_VIEWS:
            exempt(view)
