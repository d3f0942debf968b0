"""Per-app state, and the one public way the web layer and the CLI reach it.

:class:`AppState` holds what one app registered with the extension uses: the user adapter, the
settings store, the outbound transport, the provider cache and the host's hooks. The extension
object keeps one per app; :func:`current_state` and :func:`current_settings` find the current
app's, so no module needs the extension object itself (and none imports it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Flask, current_app, g, render_template

from . import signals
from .adapter import UserAdapter
from .discovery import ProviderCache
from .provisioning import GroupMapper, Provisioner
from .secretbox import SecretBox
from .settings import Settings, SettingsStore
from .transport import Transport

#: ``@oidc.settings_access``: (user) -> whether the user may open the settings page
SettingsAccess = Callable[[Any], bool]
#: ``render_template=`` of ``init_app``: renders one of our pages through the host's theme layer,
#: called like :func:`flask.render_template` (template name, then the context)
PageRenderer = Callable[..., str]

_SETTINGS_KEY = "_booklore_oidc_settings"


@dataclass
class Hooks:
    """The callbacks a host registered with the extension's decorators (``None``: built-in)."""

    provisioner: Provisioner | None = None
    group_mapper: GroupMapper | None = None
    settings_access: SettingsAccess | None = None


@dataclass
class AppState:
    adapter: UserAdapter
    store: SettingsStore
    box: SecretBox
    transport: Transport
    cache: ProviderCache
    hooks: Hooks
    config: Any  # the app's config mapping, for the app-only keys (TTLs)
    #: how our pages are rendered (the host's theme layer), else Flask's render_template
    renderer: PageRenderer | None = None
    #: our /login and /logout are registered (False: host-login mode, SPEC §2)
    login_pages: bool = True
    #: in host-login mode, the host's login view (set by ``oidc.guard_login_view``)
    host_login_endpoint: str | None = None
    #: ``BOOKLORE_OIDC_SESSION_CHECK_INTERVAL``: seconds between checks of a session's login
    #: record (0: every request)
    check_interval: int = 0
    #: ``create_all`` ran in this process (or the schema was found complete)
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

    def seconds(self, suffix: str) -> int:
        """One of the app-only durations: ``TRANSACTION_TTL``, ``LOGIN_RECORD_TTL``, …"""
        return int(self.config["BOOKLORE_OIDC_" + suffix])


class _Extension(Protocol):
    def state_for(self, app: Flask) -> AppState: ...

    def ensure_schema(self) -> None: ...


def _extension() -> _Extension:
    try:
        return current_app.extensions["booklore_oidc"]  # type: ignore[no-any-return]
    except KeyError:
        raise RuntimeError("BookloreOIDC is not registered on this app; call init_app(app) first.") from None


def current_state() -> AppState:
    """The current app's :class:`AppState` (needs an app context)."""
    return _extension().state_for(current_app._get_current_object())  # type: ignore[attr-defined]


def current_settings() -> Settings:
    """The current app's effective settings, read at most once per request (or app context)."""
    cached: Settings | None = g.get(_SETTINGS_KEY)
    if cached is None:
        _extension().ensure_schema()
        state = current_state()
        cached = state.store.load(state.adapter.session)
        setattr(g, _SETTINGS_KEY, cached)
    return cached


def forget_current_settings() -> None:
    """Make the next :func:`current_settings` read them again (after a save)."""
    g.pop(_SETTINGS_KEY, None)


def save_settings(changes: dict[str, Any], *, remove_secret: bool = False) -> set[str]:
    """Store parsed settings (by name) for the current app; every process sees them on its next
    request. Sends ``settings_changed``; returns the names whose stored value changed. Raises
    :class:`ValueError` for a value :meth:`~.config.Field.parse` refuses or one set by
    configuration."""
    _extension().ensure_schema()
    state = current_state()
    changed = state.store.save(state.adapter.session, changes, remove_secret=remove_secret)
    forget_current_settings()
    if changed:
        state.cache.forget()
        signals.settings_changed.send(current_app._get_current_object(), changed=changed)  # type: ignore[attr-defined]
    return changed


def render_page(template: str, **context: Any) -> str:
    """One of our whole pages, through the host's renderer when it gave one (``render_template=``
    of ``init_app``); fragments for the page's script use Flask's own."""
    renderer = current_state().renderer or render_template
    return renderer(template, **context)


def login_endpoint() -> str:
    """The endpoint of the login page readers see: ours, or in host-login mode the host's (the
    view given to ``guard_login_view``, else the LoginManager's ``login_view``)."""
    state = current_state()
    if state.login_pages:
        return "booklore_oidc.login"
    if state.host_login_endpoint:
        return state.host_login_endpoint
    manager = getattr(current_app, "login_manager", None)
    view = getattr(manager, "login_view", None)
    return view if isinstance(view, str) and view else "booklore_oidc.start"
