"""Linked identities, for admins: list, link and unlink (the settings page and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Connection, delete, select
from sqlalchemy.orm import Session

from . import sessions
from .adapter import UserAdapter
from .claims import Identity as ClaimedIdentity
from .errors import OIDCError
from .i18n import gettext
from .models import Identity, utcnow
from .settings import Settings
from .signals import account_linked


@dataclass(frozen=True)
class LinkedIdentity:
    id: int
    user_id: str
    username: str | None  # None when the user no longer exists
    issuer: str
    subject: str
    linked_at: datetime
    linked_by: str
    last_login_at: datetime | None


def _linked(adapter: UserAdapter, row: Identity) -> LinkedIdentity:
    user = adapter.get_by_id(row.user_id)
    return LinkedIdentity(
        id=row.id,
        user_id=row.user_id,
        username=adapter.get_username(user) if user is not None else None,
        issuer=row.issuer,
        subject=row.subject,
        linked_at=row.linked_at,
        linked_by=row.linked_by,
        last_login_at=row.last_login_at,
    )


def list_identities(adapter: UserAdapter, user: Any = None) -> list[LinkedIdentity]:
    """Every linked identity, oldest first; only ``user``'s when given."""
    query = select(Identity).order_by(Identity.linked_at, Identity.id)
    if user is not None:
        query = query.where(Identity.user_id == adapter.get_id(user))
    return [_linked(adapter, row) for row in adapter.session.execute(query).scalars()]


def get_identity(adapter: UserAdapter, identity_id: int) -> LinkedIdentity | None:
    row = adapter.session.get(Identity, identity_id)
    return _linked(adapter, row) if row is not None else None


def unlink_one(adapter: UserAdapter, identity_id: int) -> bool:
    """Remove one linked identity and end the sign-ins made with it; commits. False when it
    was already gone."""
    session = adapter.session
    row = session.get(Identity, identity_id)
    if row is None:
        return False
    sessions.forget_identity(session, row.user_id, row.issuer, row.subject)
    session.delete(row)
    session.commit()
    return True


def link(adapter: UserAdapter, user: Any, issuer: str, subject: str) -> None:
    """Link ``user`` to (issuer, subject) as an admin would; commits.

    Raises ``OIDCError("account_conflict")`` when the identity belongs to another user or the
    user already has an identity at this issuer.
    """
    session = adapter.session
    user_id = adapter.get_id(user)
    owner = session.execute(
        select(Identity).where(Identity.issuer == issuer, Identity.subject == subject)
    ).scalar_one_or_none()
    if owner is not None:
        if owner.user_id == user_id:
            return
        raise OIDCError("account_conflict", f"The identity {subject!r} is already linked to another account.")
    if session.execute(select(Identity.id).where(Identity.issuer == issuer, Identity.user_id == user_id)).first():
        raise OIDCError(
            "account_conflict",
            f"{adapter.get_username(user)!r} is already linked to another identity at {issuer}; unlink it first.",
        )
    session.add(Identity(issuer=issuer, subject=subject, user_id=user_id, linked_by="admin", linked_at=utcnow()))
    session.commit()
    account_linked.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user=user,
        identity=ClaimedIdentity(
            issuer, subject, adapter.get_username(user), adapter.get_email(user), False, None, None
        ),
        by="admin",
    )


def unlink(adapter: UserAdapter, user: Any) -> int:
    """Remove every identity of ``user`` and end its OIDC login records; commits. Returns how
    many identities were removed."""
    session = adapter.session
    user_id = adapter.get_id(user)
    removed = session.execute(delete(Identity).where(Identity.user_id == user_id)).rowcount  # type: ignore[attr-defined]
    sessions.forget_user(session, user_id, provider_only=True)
    session.commit()
    return int(removed or 0)


def unlink_warning(adapter: UserAdapter, settings: Settings, user: Any) -> str | None:
    """Why unlinking would leave ``user`` with no way in, or ``None`` when it would not."""
    relinks = settings.link_by_username or (settings.link_by_email and adapter.get_email(user))
    if relinks and settings.oidc_active:
        return None
    has_password = adapter.has_password(user)
    if settings.only_mode_active and not adapter.is_admin(user):
        return gettext(
            "%(user)s cannot sign in locally while OIDC-Only Mode is on, and nothing will link the account "
            "again: after unlinking, they cannot get in.",
            user=adapter.get_username(user),
        )
    if not has_password:
        return gettext(
            "%(user)s has no local password and nothing will link the account again: after unlinking, they "
            "cannot get in until you set a password or link them again.",
            user=adapter.get_username(user),
        )
    return None


def forget_user(db: Session | Connection, user_id: str) -> None:
    """Remove the identities and login records of a host user that is gone. Does not commit."""
    db.execute(delete(Identity).where(Identity.user_id == user_id))
    sessions.forget_user(db, user_id)
