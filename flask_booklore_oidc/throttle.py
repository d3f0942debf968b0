"""Throttling password guesses (SPEC §8): per account name and per client address, stored in the
database so every process and every app instance on it sees the same count.

Each failed password check (local sign-in, the admin backdoor, the link-proof page) counts
against two keys: the account name (folded, so ``Admin`` and ``admin`` share one) and the client
address. Past :data:`FREE_FAILURES` for a key, the next attempt must wait a delay that doubles
with each further failure, up to :data:`MAX_DELAY`; while it waits, no password is checked. A
streak ends with a right password (for the name) or after :data:`FORGET_AFTER` without a
failure. The client address is ``request.remote_addr``: behind a reverse proxy the host must
apply werkzeug's ``ProxyFix`` (or the proxy's equivalent), or every reader shares one address.

>>> delay_after(5, "user")
1
>>> delay_after(30, "user")
900
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Throttle, utcnow
from .names import fold

Kind = Literal["user", "ip"]

#: failures allowed before attempts must wait: an account name, and a client address (higher:
#: several readers may share one address behind a NAT)
FREE_FAILURES: dict[Kind, int] = {"user": 5, "ip": 20}
#: the longest wait, in seconds
MAX_DELAY = 15 * 60
#: a streak of failures with no new one for this long is forgotten (and its row purged)
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Key:
    kind: Kind
    #: SHA-256 of ``"<kind>:<value>"``: fixed length, and no name or address stored
    hash: str


def keys_for(username: str, address: str | None) -> list[Key]:
    """The keys a password attempt for ``username`` from ``address`` counts against."""
    keys = [Key("user", _digest("user:" + fold(username)))]
    if address:
        keys.append(Key("ip", _digest("ip:" + address)))
    return keys


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def delay_after(failures: int, kind: Kind) -> int:
    """Seconds the next attempt waits after ``failures`` failures in a row: none up to the
    free allowance, then 1, 2, 4, … up to :data:`MAX_DELAY`."""
    free = FREE_FAILURES[kind]
    if failures < free:
        return 0
    return min(int(2 ** min(failures - free, 20)), MAX_DELAY)


def wait_seconds(db: Session, keys: list[Key], now: datetime | None = None) -> int:
    """How long (seconds, rounded up) the caller must wait before a password is checked; 0
    when it may be checked now. One indexed read."""
    now = now or utcnow()
    rows = db.execute(select(Throttle.locked_until).where(Throttle.key_hash.in_([k.hash for k in keys]))).all()
    waits = [(row.locked_until - now).total_seconds() for row in rows if row.locked_until is not None]
    longest = max(waits, default=0.0)
    return math.ceil(longest) if longest > 0 else 0


def minutes(seconds: int) -> int:
    """``seconds`` as whole minutes for a reader, at least 1."""
    return max(1, math.ceil(seconds / 60))


def record_failure(db: Session, keys: list[Key], now: datetime | None = None) -> None:
    """Count one failed password check against each key; commits. Safe against other
    processes counting the same key at the same moment (an atomic increment)."""
    now = now or utcnow()
    forget_stale(db, keys, now)
    for key in keys:
        failures = _increment(db, key.hash, now)
        delay = delay_after(failures, key.kind)
        locked_until = now + timedelta(seconds=delay) if delay else None
        db.execute(update(Throttle).where(Throttle.key_hash == key.hash).values(locked_until=locked_until))
    db.commit()


def _increment(db: Session, key_hash: str, now: datetime) -> int:
    for _ in (1, 2):
        counted = db.execute(
            update(Throttle)
            .where(Throttle.key_hash == key_hash)
            .values(failures=Throttle.failures + 1, last_failure=now)
        )
        if counted.rowcount:  # type: ignore[attr-defined]
            break
        try:
            with db.begin_nested():
                db.add(Throttle(key_hash=key_hash, failures=1, last_failure=now))
            return 1
        except IntegrityError:  # another process inserted it first: count on its row
            continue
    failures = db.execute(select(Throttle.failures).where(Throttle.key_hash == key_hash)).scalar_one()
    return int(failures)


def forget_stale(db: Session, keys: list[Key], now: datetime | None = None) -> None:
    """Reset the keys whose last failure is older than :data:`FORGET_AFTER` (before counting a
    new one). Does not commit."""
    now = now or utcnow()
    db.execute(
        update(Throttle)
        .where(Throttle.key_hash.in_([k.hash for k in keys]), Throttle.last_failure < now - FORGET_AFTER)
        .values(failures=0, locked_until=None)
    )


def record_success(db: Session, username: str) -> None:
    """A right password ends the account name's streak (not the address's); commits."""
    db.execute(delete(Throttle).where(Throttle.key_hash == keys_for(username, None)[0].hash))
    db.commit()


def purge(db: Session, now: datetime | None = None) -> None:
    """Delete the rows of streaks that are over (no failure for :data:`FORGET_AFTER`, no wait
    left), so the table stays as small as the recent failures. Does not commit."""
    now = now or utcnow()
    db.execute(
        delete(Throttle).where(
            Throttle.last_failure < now - FORGET_AFTER,
            or_(Throttle.locked_until.is_(None), Throttle.locked_until < now),
        )
    )
