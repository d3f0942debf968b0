"""Recent sign-in activity (SPEC §9): one row per sign-in attempt, through the provider or
local, so an admin can see why a reader's sign-in failed without reading the server log.

:func:`record` is the one way a row is written (the sign-in services and the error page call
it); :func:`recent` reads the newest. The table stays small: each write deletes rows older than
:data:`MAX_AGE` and all but the newest :data:`MAX_ROWS`. A row holds the time, the result
(``signed_in`` or an error code), the §6 rule, the username and subject, the client address, the
error's detail (as logged: provider text is scrubbed of the secret before it gets there) and a
short reference; never a token, a secret or any other claim.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .i18n import translated
from .models import Activity, utcnow

log = logging.getLogger(__name__)

#: rows kept at most, and for at most how long
MAX_ROWS = 500
MAX_AGE = timedelta(days=30)
#: rows the settings page shows
SHOWN = 50
#: the result of a successful sign-in; anything else is an error code
SIGNED_IN = "signed_in"
#: the result of a local sign-in with a wrong username or password
INVALID_CREDENTIALS = "invalid_credentials"

# No 0/O or 1/I/L: a reference is read out over the phone.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERENCE_LENGTH = 8


def new_reference() -> str:
    """A short random id (``K7Q2M9XD``) a reader quotes and an admin finds in the list."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(REFERENCE_LENGTH))


@dataclass(frozen=True)
class Attempt:
    """One row of the activity list."""

    at: datetime
    result: str
    rule: str
    username: str
    subject: str
    client_address: str
    reference: str
    detail: str = ""

    @property
    def signed_in(self) -> bool:
        return self.result == SIGNED_IN

    @property
    def shown_detail(self) -> str:
        """The detail in the reader's language when it is one of our messages as it stands
        (it is stored in English, as logged); a detail with values filled in stays English."""
        return translated(self.detail) if self.detail else ""


def _bounded(value: str | None, length: int) -> str:
    """``value`` fit for the column and the page: control characters (NUL, which PostgreSQL
    refuses, line breaks that would forge a row) shown as U+FFFD, cut to ``length``."""
    text = "".join("\ufffd" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in (value or ""))
    return text[:length]


def add(
    session: Session,
    result: str,
    *,
    rule: str = "",
    username: str | None = "",
    subject: str | None = "",
    client_address: str | None = "",
    detail: str | None = "",
    reference: str | None = None,
    now: datetime | None = None,
) -> str:
    """Add one attempt to ``session`` (committed with the caller's other writes: a sign-in's)
    and delete what is past the bounds; returns its reference."""
    reference = reference or new_reference()
    at = now or utcnow()
    row = Activity(
        at=at,
        result=_bounded(result, 40),
        rule=_bounded(rule, 20),
        username=_bounded(username, 255),
        subject=_bounded(subject, 255),
        client_address=_bounded(client_address, 64),
        detail=_bounded(detail, 500),
        reference=reference,
    )
    session.add(row)
    session.flush()
    # Ids grow, so "all but the newest MAX_ROWS" is one indexed range delete.
    session.execute(delete(Activity).where((Activity.id <= row.id - MAX_ROWS) | (Activity.at < at - MAX_AGE)))
    return reference


def record(session: Session, result: str, **attempt: Any) -> str:
    """:func:`add` one attempt and commit; returns its reference. Never raises for a database
    failure (a sign-in must not fail because its log line could not be written): it logs it
    and rolls back."""
    reference = str(attempt.pop("reference", None) or new_reference())
    try:
        add(session, result, reference=reference, **attempt)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("Could not record sign-in activity (%s).", result)
    return reference


def recent(session: Session, limit: int = SHOWN) -> list[Attempt]:
    """The newest ``limit`` attempts, newest first."""
    rows = session.scalars(select(Activity).order_by(Activity.id.desc()).limit(limit)).all()
    return [
        Attempt(row.at, row.result, row.rule, row.username, row.subject, row.client_address, row.reference, row.detail)
        for row in rows
    ]


def count(session: Session) -> int:
    """How many attempts are stored."""
    return int(session.scalar(select(func.count()).select_from(Activity)) or 0)


def find(session: Session, reference: str) -> Attempt | None:
    """The attempt with ``reference`` (what a reader quoted), if it is still kept."""
    for attempt in (
        Attempt(row.at, row.result, row.rule, row.username, row.subject, row.client_address, row.reference, row.detail)
        for row in session.scalars(select(Activity).where(Activity.reference == reference.strip().upper()).limit(1))
    ):
        return attempt
    return None
