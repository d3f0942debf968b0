"""The Alembic environment of the extension's own tables, run by :mod:`flask_booklore_oidc.migrate`.

There is no ``alembic.ini``: ``migrate`` builds the configuration in code and hands over the
connection to migrate in ``config.attributes["connection"]``. Only tables named
``booklore_oidc_*`` are ever compared, and the version table is our own, so the host's tables
and the host's own Alembic history are never touched.
"""

from __future__ import annotations

from alembic import context

from flask_booklore_oidc.migrate import configure_context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Run these migrations through flask_booklore_oidc.migrate (or `flask booklore-oidc db upgrade`)."
    )
configure_context(context, connection)
with context.begin_transaction():
    context.run_migrations()
