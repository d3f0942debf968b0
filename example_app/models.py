"""Users, libraries and books of the example library."""

from __future__ import annotations

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

db = SQLAlchemy()

#: Booklore's ten permissions, as (value, label).
PERMISSIONS = [
    ("read", "Read books"),
    ("upload", "Upload books"),
    ("download", "Download books"),
    ("edit_metadata", "Edit metadata"),
    ("manage_library", "Manage libraries"),
    ("email_book", "Email books"),
    ("delete_book", "Delete books"),
    ("koreader_sync", "KOReader sync"),
    ("kobo_sync", "Kobo sync"),
    ("opds", "OPDS feed"),
]


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    libraries: Mapped[list[str]] = mapped_column(JSON, default=list)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash or "", password)

    def can(self, permission: str) -> bool:
        return self.is_admin or permission in (self.permissions or [])

    def sees(self, library: Library) -> bool:
        return self.is_admin or str(library.id) in (self.libraries or [])


class Library(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    books: Mapped[list[Book]] = relationship(back_populates="library", order_by="Book.title")


class Book(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200))
    library_id: Mapped[int] = mapped_column(ForeignKey("library.id"))
    library: Mapped[Library] = relationship(back_populates="books")
