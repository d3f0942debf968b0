"""The one place the extension touches the host app's users (SPEC §2).

Subclass :class:`UserAdapter` for an app whose users live somewhere unusual (a plain SQLAlchemy
session, a role bitmask, its own password scheme); :class:`SQLAlchemyUserAdapter` covers a
Flask-SQLAlchemy model by attribute names. The adapter also provides the SQLAlchemy session in
which the extension's own tables are read and written, so a new user and its identity are
committed together.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import flask_login
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .names import fold


@cache
def dummy_hash(method: str | None = None) -> str:
    """A hash of a random password made with ``method`` (werkzeug's default when ``None``):
    checking a password against it costs what checking a real one made the same way does."""
    secret = secrets.token_urlsafe(16)
    return generate_password_hash(secret, method=method) if method else generate_password_hash(secret)


@dataclass(frozen=True)
class Access:
    """What a user may do: the admin flag, permission names and library ids (as strings)."""

    is_admin: bool = False
    permissions: frozenset[str] = field(default_factory=frozenset)
    libraries: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class NewUser:
    """A user about to be created from an identity (the input of ``@oidc.user_provisioner``)."""

    username: str
    email: str | None
    display_name: str
    access: Access


class UserAdapter(abc.ABC):
    """How the extension reads and changes the host's users. Ids are passed as strings.

    The contract, for every method: a lookup returns ``None`` (or an empty sequence) when
    nothing matches and never raises for a value it cannot parse; writing methods add to or
    change objects in :attr:`session` and may flush, but **never commit** — the extension
    commits the user, its identity and its login record together, or rolls them all back.
    A host decides, and says here, which accounts may never sign in through the provider (a
    guest or anonymous account: return ``None`` for it from the lookups), which columns are
    unique (an email address), and whether usernames compare case-insensitively.
    """

    @property
    @abc.abstractmethod
    def session(self) -> Session:
        """The SQLAlchemy session the host's users and our tables share."""

    #: the longest username the host can store: a longer provider username is refused
    max_username_length: int = 255

    #: whether the host compares usernames case-sensitively at its own login (local sign-in
    #: here follows the same rule; Calibre-Web, for one, does not)
    usernames_case_sensitive: bool = True

    #: the mapped user class, if any: deleting one of its rows removes the linked identities
    #: (hosts that delete users with bulk queries call ``oidc.forget_user(user_id)`` instead)
    user_class: type | None = None

    @abc.abstractmethod
    def get_id(self, user: Any) -> str:
        """The user's primary key as a string (stored with identities and login records)."""

    @abc.abstractmethod
    def get_by_id(self, user_id: str) -> Any | None:
        """The user with this id; ``None`` when there is none or ``user_id`` is not a valid id."""

    @abc.abstractmethod
    def get_by_username(self, username: str, *, case_sensitive: bool = True) -> Any | None:
        """The one user named exactly ``username``. With ``case_sensitive=False``, the one whose
        name equals it after :func:`.names.fold` (NFKC + case folding); ``None`` when none or
        several do (an ambiguous name links nobody)."""

    def usernames(self) -> Iterable[str]:
        """Every username, for the look-alike check before an account is created (SPEC §6 rule
        5). Override it: the default lists none, which turns that check off."""
        return ()

    @abc.abstractmethod
    def find_by_email(self, email: str) -> Sequence[Any]:
        """Every user with this email address, compared case-insensitively (a few at most)."""

    @abc.abstractmethod
    def get_username(self, user: Any) -> str:
        """The user's username, as shown to admins and compared with the provider's."""

    @abc.abstractmethod
    def create_user(self, new: NewUser) -> Any:
        """Create the user described by ``new`` (username, email, display name, access) and add
        it to the session (flushing is fine, committing is not); return it."""

    @abc.abstractmethod
    def update_profile(self, user: Any, *, email: str | None, display_name: str | None) -> None:
        """Set the email and display name from the provider; ``None`` leaves a value as it is.
        The extension passes only a verified email that belongs to no other account."""

    @abc.abstractmethod
    def get_access(self, user: Any) -> Access:
        """The user's admin flag, permissions and libraries."""

    @abc.abstractmethod
    def apply_access(self, user: Any, access: Access) -> None:
        """Give the user exactly ``access`` (group sync and new accounts); no commit."""

    @abc.abstractmethod
    def check_password(self, user: Any, password: str) -> bool:
        """Whether ``password`` is the user's local password; False for an account without one."""

    def check_dummy_password(self, password: str) -> None:
        """Spend the time :meth:`check_password` takes, for a sign-in whose account does not
        exist or has no password, so the answer's timing does not tell them apart (SPEC §8).
        The default checks a werkzeug hash of werkzeug's default method; override it when the
        host hashes otherwise."""
        check_password_hash(dummy_hash(), password)

    def is_admin(self, user: Any) -> bool:
        """Whether the user is an administrator (may open the settings page by default)."""
        return self.get_access(user).is_admin

    def has_password(self, user: Any) -> bool:
        """Whether the user has a usable local password. An account without one (made for
        single sign-on) is linked to a provider user of the same name at once; one with a
        password only after its password is typed (SPEC §6). Also used to warn before
        unlinking."""
        return True

    @abc.abstractmethod
    def count_admins(self) -> int:
        """How many administrators exist (OIDC-Only Mode needs one; the last is never demoted)."""

    def permission_choices(self) -> list[tuple[str, str]]:
        """(value, label) pairs offered for default permissions and group mappings."""
        return []

    def library_choices(self) -> list[tuple[str, str]]:
        """(value, label) pairs offered for default libraries and group mappings."""
        return []

    def get_email(self, user: Any) -> str | None:
        """The user's email address, or ``None``."""
        return None

    def is_active(self, user: Any) -> bool:
        """Whether the host lets this account sign in at all (Flask-Login's ``is_active``)."""
        return bool(getattr(user, "is_active", True))

    def login_user(self, user: Any, remember: bool = False) -> bool:
        """Sign ``user`` in to the host's session machinery; False when the host refuses.

        Every sign-in of ours goes through here. The default is Flask-Login's ``login_user``;
        a host with its own (Calibre-Web's forked Flask-Login) overrides it."""
        return bool(flask_login.login_user(user, remember=remember))

    def logout_user(self) -> None:
        """Sign the current user out of the host's session machinery (Flask-Login's default)."""
        flask_login.logout_user()


def _choices(items: Iterable[Any] | Callable[[], Iterable[Any]] | None) -> list[tuple[str, str]]:
    if items is None:
        return []
    values = items() if callable(items) else items
    out = []
    for item in values:
        if isinstance(item, tuple):
            out.append((str(item[0]), str(item[1])))
        else:
            out.append((str(item), str(item).replace("_", " ").capitalize()))
    return out


class SQLAlchemyUserAdapter(UserAdapter):
    """Default adapter for a Flask-SQLAlchemy (or any declarative) user model.

    The model needs ``id`` and a username attribute; the others are used when present:
    ``email``, ``display_name``, ``is_admin`` (bool), ``permissions`` and ``libraries`` (lists
    of strings, e.g. JSON columns), and either a ``check_password(password)`` method or a
    werkzeug ``password_hash`` attribute. Attribute names are options::

        SQLAlchemyUserAdapter(db, User, username_attr="name", permissions=["read", "upload"])

    ``is_admin_attr``, ``permissions_attr`` and ``libraries_attr`` may also be callables
    ``(user) -> value`` for a host whose users say it another way (a role, a property)::

        SQLAlchemyUserAdapter(db, User, is_admin_attr=lambda user: user.role == "admin")

    Values are read from any attribute (a property too), but written only to real mapped
    columns: access held in a callable or a read-only property is read, never written.
    """

    def __init__(
        self,
        db: Any,
        user_model: type,
        *,
        username_attr: str = "username",
        email_attr: str = "email",
        display_name_attr: str = "display_name",
        is_admin_attr: str | Callable[[Any], Any] = "is_admin",
        permissions_attr: str | Callable[[Any], Any] = "permissions",
        libraries_attr: str | Callable[[Any], Any] = "libraries",
        password_hash_attr: str = "password_hash",
        permissions: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
        libraries: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
    ) -> None:
        self._db = db
        self.user_class = user_model
        self.model = user_model
        self.username_attr = username_attr
        self.email_attr = email_attr
        self.display_name_attr = display_name_attr
        self.is_admin_attr = is_admin_attr
        self.permissions_attr = permissions_attr
        self.libraries_attr = libraries_attr
        self.password_hash_attr = password_hash_attr
        self._permissions = permissions
        self._libraries = libraries
        #: (when read, method) of the stored hashes, for check_dummy_password
        self._hash_method: tuple[float, str | None] | None = None

    @property
    def session(self) -> Session:
        # Flask-SQLAlchemy exposes a scoped session as db.session; a plain Session works too.
        session = getattr(self._db, "session", self._db)
        return session  # type: ignore[no-any-return]

    @property
    def max_username_length(self) -> int:  # type: ignore[override]
        """The username column's length, when it has one."""
        column: Any = sa_inspect(self.model).columns.get(self.username_attr)
        length = getattr(getattr(column, "type", None), "length", None)
        return int(length) if isinstance(length, int) else 255

    def _has(self, attr: str | Callable[[Any], Any]) -> bool:
        """``attr`` is a real mapped column of the model: the only kind we write to."""
        return isinstance(attr, str) and attr in sa_inspect(self.model).column_attrs

    def _read(self, user: Any, attr: str | Callable[[Any], Any], default: Any) -> Any:
        return attr(user) if callable(attr) else getattr(user, attr, default)

    def get_id(self, user: Any) -> str:
        return str(user.id)

    def get_by_id(self, user_id: str) -> Any | None:
        pk = self.model.__table__.c.id.type.python_type  # type: ignore[attr-defined]
        try:
            key = pk(user_id)
        except (TypeError, ValueError):
            return None
        return self.session.get(self.model, key)

    def get_by_username(self, username: str, *, case_sensitive: bool = True) -> Any | None:
        column = getattr(self.model, self.username_attr)
        if case_sensitive:
            rows: Sequence[Any] = (
                self.session.execute(select(self.model).where(column == username).limit(2)).scalars().all()
            )
            return rows[0] if len(rows) == 1 else None
        # SQL's lower() knows neither NFKC nor full case folding (fullwidth letters, "ß"), so the names
        # are folded here, in one pass over (id, name) pairs. It runs only at a first sign-in
        # (a linked identity is found before), and reads a few bytes per account.
        wanted = fold(username)
        pk = self.model.id  # type: ignore[attr-defined]
        found: list[Any] = []
        for row in self.session.execute(select(pk, column).execution_options(yield_per=1000)):
            if isinstance(row[1], str) and fold(row[1]) == wanted:
                found.append(row[0])
                if len(found) > 1:
                    break
        # A name that matches two accounts is ambiguous: link neither.
        return self.session.get(self.model, found[0]) if len(found) == 1 else None

    def usernames(self) -> Iterable[str]:
        column = getattr(self.model, self.username_attr)
        for (name,) in self.session.execute(select(column).execution_options(yield_per=1000)):
            if isinstance(name, str):
                yield name

    def find_by_email(self, email: str) -> Sequence[Any]:
        if not self._has(self.email_attr):
            return []
        column = getattr(self.model, self.email_attr)
        return (
            self.session.execute(select(self.model).where(func.lower(column) == email.lower()).limit(5)).scalars().all()
        )

    def get_username(self, user: Any) -> str:
        return str(getattr(user, self.username_attr))

    def get_email(self, user: Any) -> str | None:
        return getattr(user, self.email_attr, None)

    def create_user(self, new: NewUser) -> Any:
        user = self.model()
        setattr(user, self.username_attr, new.username)
        if self._has(self.email_attr):
            setattr(user, self.email_attr, new.email)
        if self._has(self.display_name_attr):
            setattr(user, self.display_name_attr, new.display_name)
        self.apply_access(user, new.access)
        self.session.add(user)
        self.session.flush()
        return user

    def update_profile(self, user: Any, *, email: str | None, display_name: str | None) -> None:
        if email is not None and self._has(self.email_attr):
            setattr(user, self.email_attr, email)
        if display_name is not None and self._has(self.display_name_attr):
            setattr(user, self.display_name_attr, display_name)

    def get_access(self, user: Any) -> Access:
        return Access(
            is_admin=bool(self._read(user, self.is_admin_attr, False)),
            permissions=frozenset(self._read(user, self.permissions_attr, None) or ()),
            libraries=frozenset(str(v) for v in (self._read(user, self.libraries_attr, None) or ())),
        )

    def apply_access(self, user: Any, access: Access) -> None:
        for attr, value in (
            (self.is_admin_attr, access.is_admin),
            (self.permissions_attr, sorted(access.permissions)),
            (self.libraries_attr, sorted(access.libraries)),
        ):
            if isinstance(attr, str) and self._has(attr):
                setattr(user, attr, value)

    def check_password(self, user: Any, password: str) -> bool:
        method = getattr(user, "check_password", None)
        if callable(method):
            return bool(method(password))
        stored = getattr(user, self.password_hash_attr, None)
        return isinstance(stored, str) and bool(stored) and check_password_hash(stored, password)

    def has_password(self, user: Any) -> bool:
        return bool(getattr(user, self.password_hash_attr, None))

    def check_dummy_password(self, password: str) -> None:
        # The dummy is hashed the way the stored hashes are (werkzeug's "method$salt$hash"), so
        # it costs the same to check: read the method of the newest one once a minute.
        now = time.monotonic()
        if self._hash_method is None or now - self._hash_method[0] > 60:
            self._hash_method = (now, self._stored_hash_method())
        try:
            hashed = dummy_hash(self._hash_method[1])
        except ValueError:  # not a werkzeug method: the default's cost is the best guess
            hashed = dummy_hash()
        check_password_hash(hashed, password)

    def _stored_hash_method(self) -> str | None:
        if not self._has(self.password_hash_attr):
            return None
        column = getattr(self.model, self.password_hash_attr)
        pk = self.model.id  # type: ignore[attr-defined]
        stored = self.session.execute(
            select(column).where(column.is_not(None), column != "").order_by(pk.desc()).limit(1)
        ).scalar()
        if not isinstance(stored, str) or "$" not in stored:
            return None
        return stored.split("$", 1)[0]

    def count_admins(self) -> int:
        attr = self.is_admin_attr
        if not isinstance(attr, str) or not self._has(attr):
            # Said by a callable or a property: ask each user (hosts with few users do this).
            users: Iterable[Any] = self.session.execute(select(self.model)).scalars()
            return sum(1 for user in users if self._read(user, attr, False))
        column = getattr(self.model, attr)
        return int(
            self.session.execute(select(func.count()).select_from(self.model).where(column.is_(True))).scalar_one()
        )

    def permission_choices(self) -> list[tuple[str, str]]:
        return _choices(self._permissions)

    def library_choices(self) -> list[tuple[str, str]]:
        return _choices(self._libraries)
