"""Group mapping (SPEC §7): which access a user's provider groups grant.

Plain functions over plain data. On each sign-in the rows whose group value is among the user's
groups are merged (union; admin if any row grants it). *Replace* makes the user's access
defaults ∪ merged; *additive* only adds. A missing groups claim (``None``) changes nothing; an
empty one means "no groups".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .adapter import Access
from .models import GroupMapping


@dataclass(frozen=True)
class MappingRow:
    group: str
    description: str = ""
    grant_admin: bool = False
    permissions: frozenset[str] = frozenset()
    libraries: frozenset[str] = frozenset()
    id: int | None = None


def load_rows(session: Session) -> list[MappingRow]:
    rows = session.execute(select(GroupMapping).order_by(GroupMapping.group_value, GroupMapping.id)).scalars()
    return [
        MappingRow(
            id=r.id,
            group=r.group_value,
            description=r.description,
            grant_admin=r.grant_admin,
            permissions=frozenset(json.loads(r.permissions or "[]")),
            libraries=frozenset(json.loads(r.libraries or "[]")),
        )
        for r in rows
    ]


def matching(rows: Iterable[MappingRow], groups: Sequence[str]) -> list[MappingRow]:
    wanted = set(groups)
    return [row for row in rows if row.group in wanted]


def merge(rows: Iterable[MappingRow]) -> Access:
    admin = False
    permissions: set[str] = set()
    libraries: set[str] = set()
    for row in rows:
        admin = admin or row.grant_admin
        permissions |= row.permissions
        libraries |= row.libraries
    return Access(admin, frozenset(permissions), frozenset(libraries))


def compute_access(
    mode: str, current: Access, defaults: Access, rows: Sequence[MappingRow], groups: Sequence[str] | None
) -> Access | None:
    """The access group sync gives, or ``None`` when it changes nothing (sync disabled or the
    groups claim missing)."""
    if mode not in ("replace", "additive") or groups is None:
        return None
    merged = merge(matching(rows, groups))
    if mode == "replace":
        return Access(
            merged.is_admin,
            defaults.permissions | merged.permissions,
            defaults.libraries | merged.libraries,
        )
    return Access(
        current.is_admin or merged.is_admin,
        current.permissions | merged.permissions,
        current.libraries | merged.libraries,
    )
