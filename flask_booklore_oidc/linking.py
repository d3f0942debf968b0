"""Pending links (SPEC §6): a provider sign-in that found an existing account with a password,
or an admin's, waits here until the reader types that account's password.

A pending link lives :data:`LINK_TTL` seconds, is bound to the browser that started the sign-in
(only hashes of its id and of the browser binding are stored, like a sign-in transaction),
allows :data:`MAX_ATTEMPTS` wrong passwords and is used once. It keeps the verified identity's
mapped claims, bounded, so the sign-in can finish without asking the provider again; the raw
claims are not kept (a group mapper hook sees ``identity.claims`` empty when it finishes).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .claims import Identity
from .models import PendingLink, utcnow

#: how long the password page waits for the reader, in seconds
LINK_TTL = 600
#: wrong passwords before the pending link is dropped
MAX_ATTEMPTS = 5
#: the largest groups claim kept (JSON characters); a larger one is kept as "unknown"
MAX_GROUPS = 16_384
#: the largest ID token kept for the logout hint; a larger one is dropped (sign-out without hint)
MAX_ID_TOKEN = 16_384
_TEXT = 255


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _bounded(value: str | None, limit: int = _TEXT) -> str | None:
    return value if value is not None and len(value) <= limit else None


def store(
    db: Session,
    *,
    browser_key: str,
    user_id: str,
    linked_by: str,
    identity: Identity,
    sid: str | None,
    sealed_id_token: str | None,
    next_url: str,
    purge_expired: bool = True,
) -> str:
    """Store a pending link and return its random id (for the browser's session); commits.

    An earlier pending link of the same browser is replaced, so one browser holds at most one."""
    now = utcnow()
    browser_hash = _digest(browser_key)
    if purge_expired:
        db.execute(delete(PendingLink).where(PendingLink.expires_at < now))
    db.execute(delete(PendingLink).where(PendingLink.browser_hash == browser_hash))
    groups = json.dumps(identity.groups) if identity.groups is not None else None
    link_id = secrets.token_urlsafe(32)
    db.add(
        PendingLink(
            id_hash=_digest(link_id),
            browser_hash=browser_hash,
            issuer=identity.issuer,
            subject=identity.subject,
            user_id=user_id,
            linked_by=linked_by,
            username=_bounded(identity.username),
            email=_bounded(identity.email),
            email_verified=identity.email_verified,
            display_name=_bounded(identity.display_name),
            groups=_bounded(groups, MAX_GROUPS),
            sid=_bounded(sid),
            id_token=_bounded(sealed_id_token, MAX_ID_TOKEN),
            next_url=next_url if len(next_url) <= 2000 else "",
            attempts=0,
            created_at=now,
            expires_at=now + timedelta(seconds=LINK_TTL),
        )
    )
    db.commit()
    return link_id


def find(db: Session, link_id: str | None, browser_key: str | None) -> PendingLink | None:
    """This browser's pending link named ``link_id``, or ``None`` (unknown, another browser's,
    or expired: an expired one is deleted)."""
    if not link_id or not browser_key:
        return None
    row = db.execute(
        select(PendingLink).where(
            PendingLink.id_hash == _digest(link_id), PendingLink.browser_hash == _digest(browser_key)
        )
    ).scalar_one_or_none()
    if row is not None and row.expires_at < utcnow():
        drop(db, row)
        return None
    return row


def drop(db: Session, row: PendingLink) -> None:
    """Delete a pending link (cancelled, expired, too many wrong passwords); commits."""
    db.execute(delete(PendingLink).where(PendingLink.id_hash == row.id_hash))
    db.commit()


def count_wrong_password(db: Session, row: PendingLink) -> int:
    """Count one wrong password; the link is deleted at :data:`MAX_ATTEMPTS`. Returns the
    attempts left (0: gone). Commits."""
    db.execute(update(PendingLink).where(PendingLink.id_hash == row.id_hash).values(attempts=PendingLink.attempts + 1))
    attempts = db.execute(select(PendingLink.attempts).where(PendingLink.id_hash == row.id_hash)).scalar()
    if attempts is None or attempts >= MAX_ATTEMPTS:
        db.execute(delete(PendingLink).where(PendingLink.id_hash == row.id_hash))
        db.commit()
        return 0
    db.commit()
    return MAX_ATTEMPTS - int(attempts)


def take(db: Session, row: PendingLink) -> bool:
    """Use the pending link once (after the right password): True only for the request whose
    DELETE removed it, so two tabs cannot both finish it. Commits."""
    taken = db.execute(delete(PendingLink).where(PendingLink.id_hash == row.id_hash))
    db.commit()
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def identity_of(row: PendingLink) -> Identity:
    """The verified identity a pending link keeps (mapped claims only)."""
    groups = json.loads(row.groups) if row.groups is not None else None
    return Identity(
        issuer=row.issuer,
        subject=row.subject,
        username=row.username,
        email=row.email,
        email_verified=row.email_verified,
        display_name=row.display_name,
        groups=[str(g) for g in groups] if isinstance(groups, list) else None,
    )
