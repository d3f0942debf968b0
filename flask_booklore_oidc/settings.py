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

from .config import FIELDS, FIELDS_BY_NAME, Field, is_truthy, parse_value
from .models import SettingsRow, utcnow
from .secretbox import InvalidToken, SecretBox

log = logging.getLogger(__name__)

SOURCE_ENV = "environment"
SOURCE_CONFIG = "configuration"
SOURCE_DB = "database"
SOURCE_DEFAULT = "default"


@dataclass(frozen=True)
class Settings:
    """One consistent snapshot of every setting. Read-only; save through the store."""

    enabled: bool = False
    only_mode: bool = False
    provider_name: str = "OIDC"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    issuer_uri: str = ""
    scopes: str = ""
    token_auth_method: str = "auto"
    claim_username: str = "preferred_username"
    claim_email: str = "email"
    claim_display_name: str = "name"
    claim_groups: str = "groups"
    always_userinfo: bool = False
    auto_provision: bool = False
    sync_profile: bool = True
    link_by_username: bool = True
    username_case_sensitive: bool = True
    link_by_email: bool = False
    allowed_groups: tuple[str, ...] = ()
    default_permissions: tuple[str, ...] = ()
    default_libraries: tuple[str, ...] = ()
    group_sync: str = "disabled"
    provider_logout: bool = True
    public_url: str = ""
    http_timeout: float = 10.0
    ca_bundle: str = ""
    clock_skew: int = 60

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


_SETTING_NAMES = {f.name for f in fields(Settings)} & set(FIELDS_BY_NAME)
assert set(FIELDS_BY_NAME) == _SETTING_NAMES, "Settings and config.FIELDS must list the same names"


def _from_column(f: Field, raw: Any) -> Any:
    if f.kind == "list":
        return tuple(json.loads(raw))
    return raw


def _to_column(f: Field, value: Any) -> Any:
    if f.kind == "list":
        return json.dumps(list(value))
    return value


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
            if mapping.get(f.key) is not None:
                return source, mapping[f.key]
            if f.kind == "secret" and mapping.get(f.key + "_FILE"):
                return source, _read_secret_file(mapping[f.key + "_FILE"])
        return None

    def load(self, session: Session) -> Settings:
        """The current settings; one small query, a full re-parse only after a change."""
        # The version alone, as a plain column read: the whole row only after a change.
        version = session.execute(select(SettingsRow.version).where(SettingsRow.id == 1)).scalar_one_or_none() or 0
        with self._lock:
            if self._cached is not None and self._cached_version == version:
                return self._cached
        row = session.execute(
            select(SettingsRow).where(SettingsRow.id == 1).execution_options(populate_existing=True)
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
                    value = parse_value(f, raw)
                except ValueError as exc:
                    # A bad value in the environment must not take the app down: fall back to
                    # the default and say so in the log, where the operator set it.
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
        for name, value in changes.items():
            f = FIELDS_BY_NAME[name]
            if current.locked(name):
                raise ValueError(f"{f.label} is set by configuration ({f.key}) and cannot be changed here.")
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

    def preview(self, base: Settings, changes: Mapping[str, Any]) -> Settings:
        """``base`` with unsaved ``changes`` applied (for Test Connection); nothing is stored."""
        updates: dict[str, Any] = {k: (tuple(v) if FIELDS_BY_NAME[k].kind == "list" else v) for k, v in changes.items()}
        if not updates.get("client_secret"):
            updates.pop("client_secret", None)
        return replace(base, **updates)


def _read_secret_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        log.error("Cannot read secret file %s: %s", path, exc.strerror)
        return ""
