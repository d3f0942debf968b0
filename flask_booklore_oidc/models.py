"""The extension's own tables, all prefixed ``booklore_oidc_``.

They live in their own :class:`~sqlalchemy.MetaData` (``Base.metadata``, also exposed as
``BookloreOIDC.metadata`` for Alembic) and are used through the host's SQLAlchemy session, so a
new user and the identity linked to it are written in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class SettingsRow(Base):
    """The one row (``id = 1``) of settings saved from the settings page or the CLI.

    A ``NULL`` column means "not set here": the value comes from configuration or the default.
    ``version`` grows on every save, so every process notices a change on its next request.
    """

    __tablename__ = "booklore_oidc_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    enabled: Mapped[bool | None] = mapped_column(Boolean)
    only_mode: Mapped[bool | None] = mapped_column(Boolean)
    provider_name: Mapped[str | None] = mapped_column(String(100))
    client_id: Mapped[str | None] = mapped_column(String(255))
    client_secret: Mapped[str | None] = mapped_column(Text)  # Fernet token, never plain text
    issuer_uri: Mapped[str | None] = mapped_column(String(500))
    scopes: Mapped[str | None] = mapped_column(String(500))
    token_auth_method: Mapped[str | None] = mapped_column(String(40))
    claim_username: Mapped[str | None] = mapped_column(String(200))
    claim_email: Mapped[str | None] = mapped_column(String(200))
    claim_display_name: Mapped[str | None] = mapped_column(String(200))
    claim_groups: Mapped[str | None] = mapped_column(String(200))
    always_userinfo: Mapped[bool | None] = mapped_column(Boolean)
    auto_provision: Mapped[bool | None] = mapped_column(Boolean)
    sync_profile: Mapped[bool | None] = mapped_column(Boolean)
    link_by_username: Mapped[bool | None] = mapped_column(Boolean)
    username_case_sensitive: Mapped[bool | None] = mapped_column(Boolean)
    link_by_email: Mapped[bool | None] = mapped_column(Boolean)
    allowed_groups: Mapped[str | None] = mapped_column(Text)  # JSON list
    default_permissions: Mapped[str | None] = mapped_column(Text)  # JSON list
    default_libraries: Mapped[str | None] = mapped_column(Text)  # JSON list
    group_sync: Mapped[str | None] = mapped_column(String(20))
    provider_logout: Mapped[bool | None] = mapped_column(Boolean)
    public_url: Mapped[str | None] = mapped_column(String(500))
    http_timeout: Mapped[float | None] = mapped_column(Float)
    ca_bundle: Mapped[str | None] = mapped_column(String(500))
    clock_skew: Mapped[int | None] = mapped_column(Integer)


class Identity(Base):
    """A provider identity (issuer, subject) linked to one host user."""

    __tablename__ = "booklore_oidc_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_booklore_oidc_identity_iss_sub"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    linked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    linked_by: Mapped[str] = mapped_column(String(20), nullable=False, default="provisioned")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)


class Transaction(Base):
    """A sign-in started in a browser and not finished yet; used once, then deleted.

    Only hashes of ``state`` and of the browser binding are stored, so a database reader cannot
    finish someone else's sign-in.
    """

    __tablename__ = "booklore_oidc_transaction"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    nonce: Mapped[str] = mapped_column(String(128), nullable=False)
    code_verifier: Mapped[str] = mapped_column(String(128), nullable=False)
    issuer: Mapped[str] = mapped_column(String(500), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(1000), nullable=False)
    next_url: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    purpose: Mapped[str] = mapped_column(String(20), nullable=False, default="login")
    #: a test sign-in with unsaved settings: those settings, encrypted (they may hold a secret)
    settings_override: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class LoginRecord(Base):
    """What we remember server-side about an OIDC sign-in: the cookie holds only ``id``."""

    __tablename__ = "booklore_oidc_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    issuer: Mapped[str] = mapped_column(String(500), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    sid: Mapped[str | None] = mapped_column(String(255), index=True)
    id_token: Mapped[str | None] = mapped_column(Text)  # encrypted, for the logout hint
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)


class GroupMapping(Base):
    """One row of the group mapping table (SPEC §7): members of ``group_value`` get this access."""

    __tablename__ = "booklore_oidc_group_mapping"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_value: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    description: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    grant_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    permissions: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list
    libraries: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # JSON list


class LogoutTokenJti(Base):
    """A back-channel logout token already accepted, remembered until it would be refused as
    expired anyway, so a replayed token is refused (Back-Channel Logout 1.0 §2.6 step 7).

    The key is a hash of issuer and ``jti``, so its length is fixed whatever the provider sends;
    rows past ``expires_at`` are purged whenever a logout token arrives, which keeps the table as
    small as the number of logouts within one token lifetime.
    """

    __tablename__ = "booklore_oidc_logout_jti"

    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
