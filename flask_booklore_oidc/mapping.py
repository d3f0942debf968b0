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


# -- writing rows (the settings page, the CLI, hosts and their seed scripts) -----------------------

#: the longest group value and description a row accepts (the columns' lengths)
MAX_GROUP_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 500


def save_mapping(session: Session, row: MappingRow) -> int:
    """Insert ``row`` (``id`` is ``None``) or update the row with its ``id``; commits and
    returns the id. Raises :class:`ValueError` for a value the settings page would refuse, and
    :class:`LookupError` when the row to update no longer exists."""
    if not row.group or row.group != row.group.strip() or len(row.group) > MAX_GROUP_LENGTH:
        raise ValueError(f"Group value must be 1 to {MAX_GROUP_LENGTH} characters without spaces at the start or end.")
    if len(row.description) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"Description is longer than {MAX_DESCRIPTION_LENGTH} characters.")
    if row.id is None:
        stored = GroupMapping()
        session.add(stored)
    else:
        found = session.get(GroupMapping, row.id)
        if found is None:
            raise LookupError(f"There is no group mapping {row.id}.")
        stored = found
    stored.group_value = row.group
    stored.description = row.description.strip()
    stored.grant_admin = row.grant_admin
    stored.permissions = json.dumps(sorted(row.permissions))
    stored.libraries = json.dumps(sorted(row.libraries))
    session.commit()
    return stored.id


def delete_mapping(session: Session, row_id: int) -> MappingRow | None:
    """Delete the row ``row_id``; commits. Returns what it held, or ``None`` if it was gone."""
    stored = session.get(GroupMapping, row_id)
    if stored is None:
        return None
    removed = MappingRow(stored.group_value, stored.description, stored.grant_admin, id=row_id)
    session.delete(stored)
    session.commit()
    return removed
