"""The extension object, in the Flask-SQLAlchemy style."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from flask import Flask, current_app, g
from sqlalchemy import MetaData, delete, event

from .adapter import SQLAlchemyUserAdapter, UserAdapter
from .config import APP_ONLY_DEFAULTS, PREFIX
from .discovery import ProviderCache
from .models import Base, Identity, LoginRecord
from .provisioning import GroupMapper, Provisioner
from .secretbox import SecretBox
from .settings import Settings, SettingsStore
from .transport import Transport

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _AppState:
    adapter: UserAdapter
    store: SettingsStore
    box: SecretBox
    transport: Transport
    cache: ProviderCache
    schema_ready: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_purge: dict[str, float] = field(default_factory=dict)

    def purge_due(self, what: str, every: float = 60.0) -> bool:
        """Whether this process should delete expired ``what`` rows now: at most once per
        ``every`` seconds, so a sign-in does not pay for a DELETE each time."""
        now = time.monotonic()
        with self.lock:
            if what in self.last_purge and now - self.last_purge[what] < every:
                return False
            self.last_purge[what] = now
            return True


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

    Configuration keys read from ``app.config`` (each also from the environment):
    every setting of :data:`~.config.FIELDS` as ``BOOKLORE_OIDC_<NAME>`` (setting one makes it
    read-only on the settings page), ``BOOKLORE_OIDC_CLIENT_SECRET_FILE``, and
    ``BOOKLORE_OIDC_DISCOVERY_TTL`` (3600), ``BOOKLORE_OIDC_JWKS_MIN_REFETCH`` (30),
    ``BOOKLORE_OIDC_TRANSACTION_TTL`` (600), ``BOOKLORE_OIDC_LOGIN_RECORD_TTL`` (31 days).
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
    ) -> None:
        self._defaults: dict[str, Any] = {
            "db": db,
            "user_model": user_model,
            "adapter": adapter,
            "url_prefix": url_prefix,
            "permissions": permissions,
            "libraries": libraries,
        }
        self._states: WeakKeyDictionary[Flask, _AppState] = WeakKeyDictionary()
        self._provisioner: Provisioner | None = None
        self._group_mapper: GroupMapper | None = None
        self._settings_access: Callable[[Any], bool] | None = None
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
        for key, value in APP_ONLY_DEFAULTS.items():
            app.config.setdefault(key, value)
        box = SecretBox(app.config.get("SECRET_KEY") or "")
        transport = Transport()
        self._states[app] = _AppState(
            adapter=adapter,
            store=SettingsStore(app.config, box),
            box=box,
            transport=transport,
            cache=ProviderCache(
                transport,
                ttl=float(app.config[PREFIX + "DISCOVERY_TTL"]),
                min_refetch=float(app.config[PREFIX + "JWKS_MIN_REFETCH"]),
            ),
        )
        app.extensions["booklore_oidc"] = self
        if adapter.user_class is not None:
            _forget_identities_with_user(adapter)

        from .backchannel import end_ended_session, exempt_from_csrf
        from .cli import cli
        from .views import blueprint

        app.register_blueprint(blueprint, url_prefix=opts["url_prefix"])
        # Sessions ended by the provider are signed out on their next request; free for
        # anonymous requests and sessions that did not sign in through the provider.
        app.before_request(end_ended_session)
        exempt_from_csrf(app)
        app.cli.add_command(cli)

    # -- per-app state ---------------------------------------------------------------------

    def _state(self, app: Flask | None = None) -> _AppState:
        app = app or current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._states[app]
        except KeyError:
            raise RuntimeError("BookloreOIDC is not registered on this app; call init_app(app) first.") from None

    @property
    def adapter(self) -> UserAdapter:
        """The user adapter of the current app."""
        return self._state().adapter

    def create_all(self) -> None:
        """Create the extension's tables if they do not exist (needs an app context).

        Our routes also do this on their first request, so calling it is optional."""
        state = self._state()
        with state.lock:
            Base.metadata.create_all(bind=state.adapter.session.get_bind())
            state.schema_ready = True

    def _ensure_schema(self) -> None:
        if not self._state().schema_ready:
            self.create_all()

    def settings(self) -> Settings:
        """The effective settings of the current app, read at most once per request."""
        cached: Settings | None = g.get("_booklore_oidc_settings")
        if cached is None:
            self._ensure_schema()
            cached = self._state().store.load(self._state().adapter.session)
            g._booklore_oidc_settings = cached
        return cached

    def save_settings(self, changes: dict[str, Any], *, remove_secret: bool = False) -> set[str]:
        """Store parsed settings (by lower-case name); sends ``settings_changed``."""
        from .signals import settings_changed

        self._ensure_schema()
        state = self._state()
        changed = state.store.save(state.adapter.session, changes, remove_secret=remove_secret)
        g.pop("_booklore_oidc_settings", None)
        if changed:
            state.cache.forget()
            settings_changed.send(current_app._get_current_object(), changed=changed)  # type: ignore[attr-defined]
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
        self._provisioner = func
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
        self._group_mapper = func
        return func

    def settings_access(self, func: F) -> F:
        """Decide who may open the settings page: ``func(user) -> bool``. Default: admins."""
        self._settings_access = func
        return func


def _forget_identities_with_user(adapter: UserAdapter) -> None:
    """Deleting a host user deletes its identities and login records in the same flush, so a
    user created later with the same id inherits nothing."""
    user_class = adapter.user_class
    if event.contains(user_class, "after_delete", _after_user_delete):
        return
    event.listen(user_class, "after_delete", _after_user_delete)


def _after_user_delete(mapper: Any, connection: Any, target: Any) -> None:
    user_id = str(mapper.primary_key_from_instance(target)[0])
    connection.execute(delete(Identity).where(Identity.user_id == user_id))
    connection.execute(delete(LoginRecord).where(LoginRecord.user_id == user_id))
