"""Effective settings: environment > ``app.config`` > database row > default (SPEC §4).

:class:`SettingsStore` keeps one parsed :class:`Settings` per process and re-reads it only when
the row's ``version`` changed, which it checks once per request to one of our routes; a save in
any process is therefore seen by every process on its next such request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import FIELDS, FIELDS_BY_NAME, Field, is_truthy
from .i18n import gettext
from .models import SettingsRow, utcnow
from .secretbox import InvalidToken, SecretBox

log = logging.getLogger(__name__)

SOURCE_ENV = "environment"
SOURCE_CONFIG = "configuration"
SOURCE_DB = "database"
SOURCE_DEFAULT = "default"


def _default(name: str) -> Any:
    default = FIELDS_BY_NAME[name].default
    return tuple(default) if isinstance(default, (list, tuple)) else default


@dataclass(frozen=True)
class Settings:
    """One consistent snapshot of every setting. Read-only; save through the store.

    The attributes are the settings of :data:`~.config.FIELDS`, typed for the code that reads
    them; their defaults come from there (an import-time check keeps the two lists equal).
    """

    enabled: bool = _default("enabled")
    only_mode: bool = _default("only_mode")
    provider_name: str = _default("provider_name")
    client_id: str = _default("client_id")
    client_secret: str = field(default=_default("client_secret"), repr=False)
    issuer_uri: str = _default("issuer_uri")
    scopes: str = _default("scopes")
    token_auth_method: str = _default("token_auth_method")
    claim_username: str = _default("claim_username")
    claim_email: str = _default("claim_email")
    claim_display_name: str = _default("claim_display_name")
    claim_groups: str = _default("claim_groups")
    always_userinfo: bool = _default("always_userinfo")
    auto_provision: bool = _default("auto_provision")
    sync_profile: bool = _default("sync_profile")
    link_by_username: bool = _default("link_by_username")
    username_case_sensitive: bool = _default("username_case_sensitive")
    link_by_email: bool = _default("link_by_email")
    allowed_groups: tuple[str, ...] = _default("allowed_groups")
    default_permissions: tuple[str, ...] = _default("default_permissions")
    default_libraries: tuple[str, ...] = _default("default_libraries")
    group_sync: str = _default("group_sync")
    public_url: str = _default("public_url")
    http_timeout: float = _default("http_timeout")
    ca_bundle: str = _default("ca_bundle")
    clock_skew: int = _default("clock_skew")
    max_session_age: int = _default("max_session_age")
    provider_logout: bool = _default("provider_logout")

    #: where each value came from: "environment", "configuration", "database" or "default"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: a secret is stored but cannot be decrypted (the app's SECRET_KEY changed)
    secret_unreadable: bool = False
    #: FORCE_DISABLE_OIDC is set in the environment (SPEC §8)
    force_disabled: bool = False
    version: int = 0

    @property
    def configured(self) -> bool:
        """Client ID and Issuer URI are set (and a stored secret is readable)."""
        return bool(self.client_id and self.issuer_uri) and not self.secret_unreadable

    @property
    def oidc_active(self) -> bool:
        """The provider may be used: enabled, configured and not force-disabled."""
        return self.enabled and self.configured and not self.force_disabled

    @property
    def only_mode_active(self) -> bool:
        return self.only_mode and self.oidc_active

    @property
    def is_public_client(self) -> bool:
        return not self.client_secret

    def locked(self, name: str) -> bool:
        """True when the value is set by the environment or app config (read-only on the page)."""
        return self.sources.get(name) in (SOURCE_ENV, SOURCE_CONFIG)

    def with_changes(self, changes: Mapping[str, Any], *, remove_secret: bool = False) -> Settings:
        """These settings with unsaved ``changes`` (parsed values by name) applied, as Test
        Connection and Test sign-in use them; a blank secret keeps the stored one."""
        updates: dict[str, Any] = {
            name: tuple(value) if FIELDS_BY_NAME[name].kind == "list" else value for name, value in changes.items()
        }
        if not updates.get("client_secret"):
            updates.pop("client_secret", None)
        merged = replace(self, **updates)
        if remove_secret:
            return replace(merged, client_secret="", secret_unreadable=False)
        if updates.get("client_secret"):
            return replace(merged, secret_unreadable=False)
        return merged


_SETTING_NAMES = [f.name for f in fields(Settings)][: len(FIELDS)]
if [f.name for f in FIELDS] != _SETTING_NAMES:  # pragma: no cover - caught by the first import
    raise AssertionError("Settings must declare the settings of config.FIELDS, in the same order")


def _from_column(f: Field, raw: Any) -> Any:
    if f.kind == "list":
        return tuple(json.loads(raw))
    return raw


def _to_column(f: Field, value: Any) -> Any:
    if f.kind == "list":
        return json.dumps(list(value))
    return value


def external_value(f: Field, source: Mapping[str, Any]) -> Any:
    """The raw value of ``f`` in an environment or config mapping, or ``None``."""
    if source.get(f.key) is not None:
        return source[f.key]
    if f.kind == "secret" and source.get(f.key + "_FILE"):
        return _read_secret_file(source[f.key + "_FILE"])
    return None


def check_external(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> None:
    """Refuse (with :class:`ValueError`) a setting given in the environment or ``app.config``
    that the settings page would refuse, with the same message, naming the key."""
    environ = os.environ if environ is None else environ
    for f in FIELDS:
        for where, mapping in (("environment", environ), ("app configuration", config)):
            raw = external_value(f, mapping)
            if raw is None:
                continue
            try:
                f.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{f.key} in the {where}: {exc}") from None
            break


class SettingsStore:
    """Loads and saves settings for one app. Thread-safe; one per app per process."""

    def __init__(self, config: Mapping[str, Any], box: SecretBox, environ: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._box = box
        self._environ = os.environ if environ is None else environ
        self._lock = threading.Lock()
        self._cached: Settings | None = None
        self._cached_version: int | None = None

    # -- reading -----------------------------------------------------------------------------

    def _external(self, f: Field) -> tuple[str, Any] | None:
        """The value given by the environment or app config, if any, as (source, raw)."""
        for source, mapping in ((SOURCE_ENV, self._environ), (SOURCE_CONFIG, self._config)):
            raw = external_value(f, mapping)
            if raw is not None:
                return source, raw
        return None

    def load(self, session: Session) -> Settings:
        """The current settings; one small query, a full re-parse only after a change."""
        # The version alone, as a plain column read: the whole row only after a change.
        columns = SettingsRow.__table__.c
        version = session.execute(select(columns.version).where(columns.id == 1)).scalar_one_or_none() or 0
        with self._lock:
            if self._cached is not None and self._cached_version == version:
                return self._cached
        row = session.execute(
            select(SettingsRow).where(columns.id == 1).execution_options(populate_existing=True)
        ).scalar_one_or_none()
        version = row.version if row is not None else 0
        settings = self._build(row)
        with self._lock:
            self._cached, self._cached_version = settings, version
        return settings

    def _build(self, row: SettingsRow | None) -> Settings:
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        secret_unreadable = False
        for f in FIELDS:
            external = self._external(f)
            if external is not None:
                source, raw = external
                try:
                    value = f.parse(raw)
                except ValueError as exc:
                    # init_app refuses such a value (check_external); one set after start-up
                    # falls back to the default, said in the log where the operator looks.
                    log.error("Ignoring %s from the %s: %s", f.key, source, exc)
                    continue
                values[f.name] = tuple(value) if f.kind == "list" else value
                sources[f.name] = source
                continue
            raw_column = getattr(row, f.name) if row is not None else None
            if raw_column is None:
                sources[f.name] = SOURCE_DEFAULT
                continue
            if f.kind == "secret":
                try:
                    values[f.name] = self._box.open(raw_column)
                except InvalidToken:
                    log.error(
                        "The stored client secret cannot be decrypted (SECRET_KEY changed?); "
                        "re-enter it on the OIDC settings page."
                    )
                    secret_unreadable = True
                    sources[f.name] = SOURCE_DB
                    continue
            else:
                values[f.name] = _from_column(f, raw_column)
            sources[f.name] = SOURCE_DB
        return Settings(
            **values,
            sources=sources,
            secret_unreadable=secret_unreadable,
            force_disabled=is_truthy(self._environ.get("FORCE_DISABLE_OIDC")),
            version=row.version if row is not None else 0,
        )

    # -- writing -----------------------------------------------------------------------------

    def save(self, session: Session, changes: Mapping[str, Any], *, remove_secret: bool = False) -> set[str]:
        """Store ``changes`` (parsed values by setting name) and bump the version.

        Settings locked by the environment or config are refused with :class:`ValueError`.
        A blank secret keeps the stored one; ``remove_secret`` deletes it. Returns the names of
        the settings whose stored value changed; commits.
        """
        current = self.load(session)
        row = session.get(SettingsRow, 1)
        if row is None:
            row = SettingsRow(id=1, version=0)
            session.add(row)
        changed: set[str] = set()
        for name, raw in changes.items():
            f = FIELDS_BY_NAME[name]
            if current.locked(name):
                raise ValueError(
                    gettext(
                        "%(label)s is set by configuration (%(key)s) and cannot be changed here.",
                        label=f.label,
                        key=f.key,
                    )
                )
            value = f.parse(raw)  # every path is bounded and validated before the database
            if f.kind == "secret":
                if not value:
                    continue
                if value != current.client_secret or current.secret_unreadable:
                    row.client_secret = self._box.seal(value)
                    changed.add(name)
                continue
            column = _to_column(f, value)
            if getattr(row, name) != column:
                setattr(row, name, column)
                changed.add(name)
        if remove_secret and row.client_secret is not None:
            row.client_secret = None
            changed.add("client_secret")
        if changed:
            row.version = (row.version or 0) + 1
            row.updated_at = utcnow()
        session.commit()
        return changed


def _read_secret_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        log.error("Cannot read secret file %s: %s", path, exc.strerror)
        return ""
