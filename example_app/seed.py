"""`flask --app example_app seed`: an admin, a few libraries and books."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from .models import Book, Library, User, db

DEMO_BOOKS = {
    "Fiction": [
        ("Pride and Prejudice", "Jane Austen"),
        ("Moby-Dick", "Herman Melville"),
        ("Middlemarch", "George Eliot"),
    ],
    "Science": [("On the Origin of Species", "Charles Darwin"), ("The Voyage of the Beagle", "Charles Darwin")],
    "Poetry": [("Leaves of Grass", "Walt Whitman"), ("The Waste Land", "T. S. Eliot")],
}


def seed_demo(admin_password: str = "admin") -> None:
    """Create the demo libraries, books and the local admin if they are missing."""
    for name, books in DEMO_BOOKS.items():
        library = db.session.scalar(select(Library).where(Library.name == name))
        if library is None:
            library = Library(name=name)
            db.session.add(library)
            for title, author in books:
                db.session.add(Book(title=title, author=author, library=library))
    if db.session.scalar(select(User).where(User.username == "admin")) is None:
        admin = User(username="admin", display_name="Administrator", is_admin=True, permissions=[], libraries=[])
        admin.set_password(admin_password)
        db.session.add(admin)
    db.session.commit()


def register(app: Flask) -> None:
    @app.cli.command("seed")
    @click.option("--admin-password", default="admin", show_default=True)
    def seed_command(admin_password: str) -> None:
        """Create demo libraries, books and the local admin."""
        seed_demo(admin_password)
        click.echo("Seeded demo libraries and the local admin.")
