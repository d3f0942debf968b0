"""A host app shaped like Calibre-Web: users in plain SQLAlchemy (no Flask-SQLAlchemy), a role
bitmask instead of permission names, its own password check and login manager. It adopts the
extension through its own adapter only; the README shows this adapter as the guide."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from flask import Flask, jsonify
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy import Integer, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from flask_booklore_oidc import BookloreOIDC
from flask_booklore_oidc.adapter import Access, NewUser, UserAdapter

# Calibre-Web's role bits.
ROLE_ADMIN = 1
ROLE_DOWNLOAD = 2
ROLE_UPLOAD = 4
ROLE_EDIT = 8
ROLE_DELETE_BOOKS = 128
ROLE_EDIT_SHELFS = 64
ROLE_VIEWER = 256

PERMISSION_BITS = {
    "download": ROLE_DOWNLOAD,
    "upload": ROLE_UPLOAD,
    "edit": ROLE_EDIT,
    "delete_books": ROLE_DELETE_BOOKS,
    "edit_shelfs": ROLE_EDIT_SHELFS,
    "viewer": ROLE_VIEWER,
}


class Base(DeclarativeBase):
    pass


class CalibreUser(UserMixin, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(120), unique=True)
    role: Mapped[int] = mapped_column(Integer, default=0)
    password: Mapped[str | None] = mapped_column(String)


def verify_login(user: CalibreUser, password: str) -> bool:
    """The host's own password check."""
    return bool(user.password) and check_password_hash(user.password or "", password)


class CalibreWebAdapter(UserAdapter):
    """Everything flask-booklore-oidc needs from a Calibre-Web-style user store."""

    user_class = CalibreUser

    def __init__(self, session: scoped_session[Any]) -> None:
        self._session = session

    @property
    def session(self) -> Any:
        return self._session

    def get_id(self, user: CalibreUser) -> str:
        return str(user.id)

    def get_by_id(self, user_id: str) -> CalibreUser | None:
        return self._session.get(CalibreUser, int(user_id)) if user_id.isdigit() else None

    def get_by_username(self, username: str, *, case_sensitive: bool = True) -> CalibreUser | None:
        column = CalibreUser.name if case_sensitive else func.lower(CalibreUser.name)
        wanted = username if case_sensitive else username.lower()
        rows = self._session.scalars(select(CalibreUser).where(column == wanted).limit(2)).all()
        return rows[0] if len(rows) == 1 else None

    def usernames(self) -> Iterator[str]:
        for (name,) in self._session.execute(select(CalibreUser.name)):
            yield name

    def find_by_email(self, email: str) -> Sequence[CalibreUser]:
        return self._session.scalars(select(CalibreUser).where(func.lower(CalibreUser.email) == email.lower())).all()

    def get_username(self, user: CalibreUser) -> str:
        return user.name

    def get_email(self, user: CalibreUser) -> str | None:
        return user.email

    def create_user(self, new: NewUser) -> CalibreUser:
        user = CalibreUser(name=new.username, email=new.email, role=0)
        self.apply_access(user, new.access)
        self._session.add(user)
        self._session.flush()
        return user

    def update_profile(self, user: CalibreUser, *, email: str | None, display_name: str | None) -> None:
        if email:
            user.email = email  # Calibre-Web has no display name

    def get_access(self, user: CalibreUser) -> Access:
        return Access(
            is_admin=bool(user.role & ROLE_ADMIN),
            permissions=frozenset(name for name, bit in PERMISSION_BITS.items() if user.role & bit),
        )

    def apply_access(self, user: CalibreUser, access: Access) -> None:
        role = ROLE_ADMIN if access.is_admin else 0
        for name in access.permissions:
            role |= PERMISSION_BITS.get(name, 0)
        user.role = role

    def check_password(self, user: CalibreUser, password: str) -> bool:
        return verify_login(user, password)

    def has_password(self, user: CalibreUser) -> bool:
        return bool(user.password)

    def count_admins(self) -> int:
        return int(self._session.scalar(select(func.count()).where(CalibreUser.role.op("&")(ROLE_ADMIN) != 0)) or 0)

    def permission_choices(self) -> list[tuple[str, str]]:
        return [(name, name.replace("_", " ").capitalize()) for name in PERMISSION_BITS]


def create_calibre_app(database_uri: str, secret_key: str = "calibre-secret") -> Flask:
    app = Flask("calibre_like")
    app.config.update(SECRET_KEY=secret_key, TESTING=True)
    engine = create_engine(database_uri)
    session = scoped_session(sessionmaker(bind=engine))
    Base.metadata.create_all(engine)

    login_manager = LoginManager(app)
    login_manager.login_view = "booklore_oidc.login"

    @login_manager.user_loader
    def load(user_id: str) -> CalibreUser | None:
        return session.get(CalibreUser, int(user_id))

    @app.teardown_appcontext
    def remove_session(exc: BaseException | None) -> None:
        session.remove()

    @app.route("/")
    def index() -> Any:
        if not current_user.is_authenticated:
            return jsonify(error="not signed in"), 401
        return jsonify(name=current_user.name, email=current_user.email, role=current_user.role)

    BookloreOIDC(app, adapter=CalibreWebAdapter(session))
    app.extensions["calibre_session"] = session
    app.extensions["calibre_engine"] = engine
    return app


def add_calibre_user(app: Flask, name: str, *, role: int = 0, password: str | None = "pw", email: str | None = None) -> None:
    """``password=None``: an account made for single sign-on (links by name at once)."""
    session = app.extensions["calibre_session"]
    hashed = generate_password_hash(password, method="pbkdf2:sha256:1000") if password is not None else ""
    session.add(CalibreUser(name=name, role=role, email=email, password=hashed))
    session.commit()
    session.remove()
