"""The extension object, in the Flask-SQLAlchemy style."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from flask import Flask, current_app, has_app_context, request
from flask_login import user_logged_out
from sqlalchemy import MetaData, event

from . import i18n, identities, mapping, migrate, routes, sessions
from .adapter import SQLAlchemyUserAdapter, UserAdapter
from .cli import cli
from .config import APP_ONLY_DEFAULTS, PREFIX
from .discovery import ProviderCache
from .identities import LinkedIdentity
from .mapping import MappingRow
from .models import Base
from .secretbox import SecretBox
from .settings import Settings, SettingsStore, check_external
from .state import AppState, Hooks, PageRenderer, current_settings, current_state, save_settings
from .transport import Transport

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class BookloreOIDC:
    """OpenID Connect sign-in for a Flask book app.

    ::

        db = SQLAlchemy(app)
        login_manager = LoginManager(app)
        oidc = BookloreOIDC(app, db=db, user_model=User)
        login_manager.login_view = "booklore_oidc.login"

    or, with an app factory, ``oidc = BookloreOIDC()`` and later
    ``oidc.init_app(app, db=db, user_model=User)``.

    Options (keyword-only, on the constructor as defaults or on :meth:`init_app`):

    ``db``
        The Flask-SQLAlchemy extension (or a SQLAlchemy session) holding the users.
    ``user_model``
        The user model, for the default :class:`~.adapter.SQLAlchemyUserAdapter`.
    ``adapter``
        A :class:`~.adapter.UserAdapter` instead of ``db`` and ``user_model``.
    ``url_prefix``
        Moves every route of the extension under a prefix.
    ``permissions``, ``libraries``
        The catalogue offered on the settings page: an iterable of names or (value, label)
        pairs, or a callable returning one.
    ``login_pages``
        ``False`` for an app that keeps its own login page (host-login mode): our ``/login``
        and ``/logout`` are not registered; the app puts ``{{ booklore_oidc_button() }}`` on its
        page and wraps its views with :meth:`guard_login_view` and :meth:`guard_logout_view`.
    ``render_template``
        Renders our pages through the host's theme layer: called like
        :func:`flask.render_template` (template name, then the context).

    Configuration keys read from ``app.config`` (each also from the environment):
    every setting of :data:`~.config.FIELDS` as ``BOOKLORE_OIDC_<NAME>`` (setting one makes it
    read-only on the settings page; a value the settings page would refuse is refused here,
    with the same message), ``BOOKLORE_OIDC_CLIENT_SECRET_FILE``, and
    ``BOOKLORE_OIDC_DISCOVERY_TTL`` (3600), ``BOOKLORE_OIDC_JWKS_MIN_REFETCH`` (30),
    ``BOOKLORE_OIDC_TRANSACTION_TTL`` (600), ``BOOKLORE_OIDC_LOGIN_RECORD_TTL`` (31 days),
    ``BOOKLORE_OIDC_SESSION_CHECK_INTERVAL`` (0: a signed-in session's login record is checked
    on every request; N: at most every N seconds per session, so an ended session may live on
    for up to N seconds in a browser that still has its cookie, for no query in between), and
    ``BOOKLORE_OIDC_DOCS_URL`` (the documentation each error page links to; empty: no link).
    """

    #: the extension's tables, for ``create_all`` or an Alembic ``target_metadata`` list
    metadata: MetaData = Base.metadata

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: Any = None,
        user_model: type | None = None,
        adapter: UserAdapter | None = None,
        url_prefix: str | None = None,
        permissions: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
        libraries: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
        login_pages: bool | None = None,
        render_template: PageRenderer | None = None,
    ) -> None:
        self._defaults: dict[str, Any] = {
            "db": db,
            "user_model": user_model,
            "adapter": adapter,
            "url_prefix": url_prefix,
            "permissions": permissions,
            "libraries": libraries,
            "login_pages": login_pages,
            "render_template": render_template,
        }
        self._states: WeakKeyDictionary[Flask, AppState] = WeakKeyDictionary()
        #: the callbacks registered with :meth:`user_provisioner`, :meth:`group_mapper` and
        #: :meth:`settings_access`; shared by every app this object is registered on
        self.hooks = Hooks()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, **options: Any) -> None:
        """Register the extension on ``app``; options as in the class docstring."""
        if "booklore_oidc" in app.extensions:
            raise RuntimeError(
                "A 'BookloreOIDC' instance has already been registered on this Flask app. "
                "Import and use that instance instead."
            )
        unknown = set(options) - set(self._defaults)
        if unknown:
            raise TypeError(f"init_app() got unexpected options: {', '.join(sorted(unknown))}")
        opts = {**self._defaults, **{k: v for k, v in options.items() if v is not None}}
        adapter = opts["adapter"]
        if adapter is None:
            if opts["db"] is None or opts["user_model"] is None:
                raise TypeError("BookloreOIDC needs db= and user_model=, or adapter=.")
            adapter = SQLAlchemyUserAdapter(
                opts["db"], opts["user_model"], permissions=opts["permissions"], libraries=opts["libraries"]
            )
        login_pages = opts["login_pages"] is not False
        _refuse_collisions(app, login_pages=login_pages, url_prefix=opts["url_prefix"])
        for key, value in APP_ONLY_DEFAULTS.items():
            app.config.setdefault(key, value)
        # Cookies that a cross-site POST does not carry, unless the host chose otherwise.
        for key in ("SESSION_COOKIE_SAMESITE", "REMEMBER_COOKIE_SAMESITE"):
            if app.config.get(key) is None:
                app.config[key] = "Lax"
        check_external(app.config)
        check_interval = _check_interval(app.config[PREFIX + "SESSION_CHECK_INTERVAL"])
        box = SecretBox(app.config.get("SECRET_KEY") or "")
        transport = Transport()
        self._states[app] = AppState(
            adapter=adapter,
            store=SettingsStore(app.config, box),
            box=box,
            transport=transport,
            cache=ProviderCache(
                transport,
                ttl=float(app.config[PREFIX + "DISCOVERY_TTL"]),
                min_refetch=float(app.config[PREFIX + "JWKS_MIN_REFETCH"]),
            ),
            hooks=self.hooks,
            config=app.config,
            renderer=opts["render_template"],
            login_pages=login_pages,
            check_interval=check_interval,
        )
        app.extensions["booklore_oidc"] = self
        if adapter.user_class is not None:
            _forget_identities_with_user(adapter)

        app.register_blueprint(routes.create_blueprint(login_pages=login_pages), url_prefix=opts["url_prefix"])
        app.add_template_global(routes.button, "booklore_oidc_button")
        # Our templates translate through our own domain, never the host's ``_``/``gettext``.
        app.add_template_global(i18n.template_gettext, "booklore_oidc_gettext")
        app.add_template_global(i18n.template_ngettext, "booklore_oidc_ngettext")
        app.add_template_global(i18n.language, "booklore_oidc_language")
        user_logged_out.connect(_host_logged_out, app)
        # Sessions whose login record was ended are signed out on their next request; free for
        # anonymous requests, one primary-key read for signed-in ones.
        app.before_request(_before_request)
        routes.exempt_from_csrf(app)
        app.cli.add_command(cli)

    # -- per-app state ---------------------------------------------------------------------

    def state_for(self, app: Flask) -> AppState:
        """The :class:`~.state.AppState` of ``app`` (the web layer uses
        :func:`~.state.current_state`)."""
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError("BookloreOIDC is not registered on this app; call init_app(app) first.") from None

    @property
    def adapter(self) -> UserAdapter:
        """The user adapter of the current app."""
        return current_state().adapter

    def create_all(self) -> None:
        """Create the extension's tables on a database that has none, or check that they are
        up to date (needs an app context); an older schema is refused with
        :class:`~.migrate.SchemaError`, naming ``flask booklore-oidc db upgrade``.

        Our routes also do this on their first request, so calling it is optional; calling it at
        start-up makes an old schema stop the app there, with the command in the message."""
        state = current_state()
        with state.lock:
            migrate.ensure_current(state.adapter.session.get_bind())
            state.schema_ready = True

    def ensure_schema(self) -> None:
        """:meth:`create_all`, once per process."""
        if not current_state().schema_ready:
            self.create_all()

    def settings(self) -> Settings:
        """The effective settings of the current app, read at most once per request."""
        return current_settings()

    def save_settings(self, changes: dict[str, Any], *, remove_secret: bool = False) -> set[str]:
        """Store settings (by lower-case name), validated as the settings page validates them;
        sends ``settings_changed`` and returns the names whose stored value changed."""
        changed = save_settings(changes, remove_secret=remove_secret)
        sessions.settings_saved(current_state().adapter.session, current_settings(), changed)
        return changed

    # -- hooks -----------------------------------------------------------------------------

    def user_provisioner(self, func: F) -> F:
        """Build the host user for a new identity; replaces the adapter's ``create_user``.

        The function receives ``(identity, new_user)`` (an :class:`~.claims.Identity` and the
        proposed :class:`~.adapter.NewUser`) and returns the user, added to the session::

            @oidc.user_provisioner
            def make_user(identity, new_user):
                user = User(username=new_user.username, email=new_user.email)
                db.session.add(user)
                return user
        """
        self.hooks.provisioner = func
        return func

    def group_mapper(self, func: F) -> F:
        """Turn an identity's groups into access; replaces the built-in group mapping.

        Receives ``(identity, access)``: the :class:`~.claims.Identity` with its mapped claims
        and groups, and the :class:`~.adapter.Access` the built-in mapping computed from the
        group mapping table (``None`` when group sync is disabled or the groups claim is
        missing). Returns the :class:`~.adapter.Access` to apply, or ``None`` to leave the
        user's access unchanged. The last admin is never demoted, whatever it returns::

            @oidc.group_mapper
            def map_groups(identity, access):
                if identity.groups and "wheel" in identity.groups:
                    return Access(is_admin=True)
                return access
        """
        self.hooks.group_mapper = func
        return func

    def settings_access(self, func: F) -> F:
        """Decide who may open the settings page: ``func(user) -> bool``. Default: admins."""
        self.hooks.settings_access = func
        return func

    # -- apps with their own login page (host-login mode) ----------------------------------

    #: the ``flask booklore-oidc`` command group, for a host whose CLI group is not Flask's:
    #: ``host_cli.add_command(oidc.cli)``
    cli = cli

    def guard_login_view(
        self,
        endpoint: str,
        *,
        app: Flask | None = None,
        post: str | None = None,
        username_field: str = "username",
        password_field: str = "password",
    ) -> None:
        """Apply our login rules to the host's own login view ``endpoint`` (SPEC §8): in
        OIDC-only mode its GET sends readers to the provider (but for ``?local=true``, errors,
        sign-outs and the loop breaker) and its POST is refused, before the host's code runs,
        for everyone but an administrator with the right password (``username_field`` and
        ``password_field`` name the form's inputs; ``post`` names the view that takes the form
        when it is not ``endpoint`` itself). Also makes it the login page our error pages and
        sign-out link to."""
        app = self._app(app)
        for name in (endpoint, post) if post else (endpoint,):
            app.view_functions[name] = routes.guard_login(
                app.view_functions[name], username_field=username_field, password_field=password_field
            )
        self.state_for(app).host_login_endpoint = endpoint

    def guard_logout_view(self, endpoint: str, *, app: Flask | None = None) -> None:
        """Make the host's own logout view ``endpoint`` end our session too, and send readers
        who signed in through the provider on to its sign-out."""
        app = self._app(app)
        app.view_functions[endpoint] = routes.guard_logout(app.view_functions[endpoint])

    def sign_out(self) -> str:
        """Sign the current user out (our session and, through the adapter, the host's); returns
        where to redirect: the provider's end-session endpoint when it applies, else the login
        page with ``logged_out=1``. For a host's own logout view."""
        return routes.sign_out()

    def _app(self, app: Flask | None) -> Flask:
        if app is not None:
            return app
        if has_app_context():
            return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
        apps = list(self._states)
        if len(apps) == 1:
            return apps[0]
        raise RuntimeError("Pass app=: this BookloreOIDC is registered on several apps, and no app context is active.")

    def reset_hooks(self) -> None:
        """Forget every hook registered with the decorators (the built-in behaviour again)."""
        self.hooks.provisioner = self.hooks.group_mapper = self.hooks.settings_access = None

    # -- linked identities, group mappings, sessions (need an app context) -----------------

    def identities(self, user: Any = None) -> list[LinkedIdentity]:
        """Every linked provider identity, or only ``user``'s."""
        return identities.list_identities(current_state().adapter, user)

    def link_identity(self, user: Any, subject: str, *, issuer: str | None = None) -> None:
        """Link ``user`` to the provider identity ``subject`` (its ``sub``) as an admin would;
        ``issuer`` defaults to the configured provider's. Raises :class:`~.errors.OIDCError`
        (``account_conflict``) when either side is linked elsewhere."""
        state = current_state()
        identities.link(state.adapter, user, issuer or current_settings().issuer_uri, subject)

    def unlink_identities(self, user: Any) -> int:
        """Remove ``user``'s linked identities and end its provider sign-ins; returns how many."""
        return identities.unlink(current_state().adapter, user)

    def group_mappings(self) -> list[MappingRow]:
        """The rows of the group mapping table, by group."""
        return mapping.load_rows(current_state().adapter.session)

    def save_group_mapping(self, row: MappingRow) -> int:
        """Add (``row.id is None``) or change a group mapping row; returns its id. Validated as
        the settings page validates it (:class:`ValueError`)."""
        return mapping.save_mapping(current_state().adapter.session, row)

    def delete_group_mapping(self, row_id: int) -> bool:
        """Delete a group mapping row; False when it did not exist."""
        return mapping.delete_mapping(current_state().adapter.session, row_id) is not None

    def forget_user(self, user_id: Any) -> None:
        """Remove every identity and login record of a deleted host user, for hosts that delete
        users without ORM events (bulk queries); commits."""
        db = current_state().adapter.session
        identities.forget_user(db, str(user_id))
        db.commit()

    def start_session(self, user: Any) -> str:
        """Give the session of ``user`` a login record, from the host's own login view (after
        its ``login_user``), so that sign-out, :meth:`end_sessions`, the settings page and a
        Maximum session age can end it like the sessions our login page starts (SPEC §8)::

            if login_user(user):
                oidc.start_session(user)

        Commits; returns the record's id. A session the host signs in without this call has
        no record and is left alone by the per-request check."""
        return sessions.start_session(current_state(), current_settings(), user)

    def end_sessions(self, user: Any) -> int:
        """Sign ``user`` out everywhere (every login record ends; each browser is signed out on
        its next request); returns how many ended. Commits."""
        state = current_state()
        ended = sessions.end_for_user(state.adapter.session, state.adapter.get_id(user))
        state.adapter.session.commit()
        return ended


def _refuse_collisions(app: Flask, *, login_pages: bool, url_prefix: str | None) -> None:
    """Refuse to register a route the app already has (it would be shadowed silently)."""
    taken = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods or ():
            taken[(rule.rule, method)] = rule.endpoint
    for path, methods in routes.paths(login_pages=login_pages, url_prefix=url_prefix):
        for method in methods:
            if (path, method) in taken:
                raise RuntimeError(
                    f"The app already has a route for {method} {path} ({taken[path, method]}), which "
                    "flask-booklore-oidc would register too. Keep the app's own login page with "
                    "init_app(..., login_pages=False), or move our routes with url_prefix='/sso' (then tell "
                    "the provider the new Redirect URI)."
                )


def _host_logged_out(sender: Flask, **extra: Any) -> None:
    routes.host_logged_out(sender, **extra)


def _check_interval(raw: Any) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= 86_400:
        raise ValueError(f"{PREFIX}SESSION_CHECK_INTERVAL must be a whole number of seconds from 0 to 86400.")
    return value


def _before_request() -> None:
    if request.endpoint in routes.CSRF_EXEMPT_ENDPOINTS:
        routes.exempt_from_csrf(current_app._get_current_object())  # type: ignore[attr-defined]
    sessions.check_request()


def _forget_identities_with_user(adapter: UserAdapter) -> None:
    """Deleting a host user deletes its identities and login records in the same flush, so a
    user created later with the same id inherits nothing."""
    user_class = adapter.user_class
    if event.contains(user_class, "after_delete", _after_user_delete):
        return
    event.listen(user_class, "after_delete", _after_user_delete)


def _after_user_delete(mapper: Any, connection: Any, target: Any) -> None:
    user_id = str(mapper.primary_key_from_instance(target)[0])
    identities.forget_user(connection, user_id)
