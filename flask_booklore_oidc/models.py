"""The extension's own tables, all prefixed ``booklore_oidc_``.

They live in their own :class:`~sqlalchemy.MetaData` (``Base.metadata``, also exposed as
``BookloreOIDC.metadata`` for Alembic) and are used through the host's SQLAlchemy session, so a
new user and the identity linked to it are written in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .config import FIELDS


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class SettingsRow(Base):
    """The one row (``id = 1``) of settings saved from the settings page or the CLI.

    One nullable column per setting of :data:`~.config.FIELDS` (its type and length from there);
    ``NULL`` means "not set here": the value comes from configuration or the default.
    ``version`` grows on every save, so every process notices a change on its next request.
    """

    __table__ = Table(
        "booklore_oidc_settings",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("version", Integer, nullable=False, default=1),
        Column("updated_at", DateTime, nullable=False, default=utcnow),
        *(Column(f.name, f.column_type()) for f in FIELDS),
    )

    if TYPE_CHECKING:
        id: int
        version: int
        updated_at: datetime
        client_secret: str | None  # a Fernet token, never plain text

        def __init__(self, **values: Any) -> None: ...


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
    """The server-side record of one signed-in session, local or through the provider: the
    cookie holds only ``id``; every signed-in request checks ``ended_at`` and ``expires_at``.

    ``issuer``, ``subject`` and ``client_id`` are ``NULL`` for a local sign-in (a password, or
    the host's own login view through :meth:`~.extension.BookloreOIDC.start_session`).
    """

    __tablename__ = "booklore_oidc_login"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    issuer: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(255))
    #: the Client ID the provider sign-in was made with, so changing it ends these sessions
    client_id: Mapped[str | None] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(255), index=True)
    id_token: Mapped[str | None] = mapped_column(Text)  # encrypted, for the logout hint
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, index=True)
    #: when the Maximum session age ends it (``NULL``: no limit)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
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


class PendingLink(Base):
    """A provider sign-in that found an existing account it may link to only with proof (SPEC
    §6): kept until the reader types that account's local password, cancels, fails too often
    or ten minutes pass.

    Like a transaction, only hashes of its random id (held in the browser's session) and of the
    browser binding are stored. It holds what finishing the sign-in needs: the verified
    identity's mapped claims (bounded), the provider session id and the ID token (encrypted, for
    the logout hint).
    """

    __tablename__ = "booklore_oidc_pending_link"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser_hash: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    issuer: Mapped[str] = mapped_column(String(500), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    #: the §6 rule that found the account: "username" or "email"
    linked_by: Mapped[str] = mapped_column(String(20), nullable=False)
    username: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    email_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    display_name: Mapped[str | None] = mapped_column(String(255))
    #: JSON list of group values; NULL when the claim was absent or too large to keep ("unknown")
    groups: Mapped[str | None] = mapped_column(Text)
    sid: Mapped[str | None] = mapped_column(String(255))
    id_token: Mapped[str | None] = mapped_column(Text)  # encrypted, for the logout hint
    next_url: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class Throttle(Base):
    """Failed password checks of one account name or one client address (SPEC §8), shared by
    every process on the database. The key is a SHA-256 of ``user:<folded name>`` or
    ``ip:<address>``, so its length is fixed and no name is stored; rows without a failure for a
    day are purged."""

    __tablename__ = "booklore_oidc_throttle"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_failure: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Activity(Base):
    """One sign-in attempt, through the provider or local (SPEC §9 "Recent sign-in activity"),
    for admins who troubleshoot without the server log. Bounded by :mod:`.activity`; holds no
    tokens and no claims beyond the username and subject."""

    __tablename__ = "booklore_oidc_activity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, index=True)
    #: ``signed_in``, or an error code (``user_not_provisioned``, ``invalid_credentials``, …)
    result: Mapped[str] = mapped_column(String(40), nullable=False)
    #: the §6 rule that picked the user (``identity``, ``username``, …), ``local``, or ""
    rule: Mapped[str] = mapped_column(String(20), nullable=False, default="")
    username: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    subject: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    client_address: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    #: what went wrong, as the log says it (our message, provider text already scrubbed; SPEC §10)
    detail: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    #: the short id a reader's error page shows, to quote to an administrator
    reference: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
