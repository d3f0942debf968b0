"""The example app for a WSGI server: ``gunicorn -w 4 example_app.wsgi:app``.

Configuration comes from the environment: ``SECRET_KEY`` (required), ``DATABASE_URL`` (for
example ``postgresql+psycopg://booklore@db/booklore``; a SQLite file in the instance folder when
unset) and any ``BOOKLORE_OIDC_*`` setting."""

from __future__ import annotations

from example_app import create_app

app = create_app()
