"""Schema migrations for the extension's own tables (SPEC §14), with Alembic driven from code.

Our history lives in ``flask_booklore_oidc/migrations`` and is recorded in a version table of
our own, ``booklore_oidc_alembic_version``, beside (never inside) the host's Alembic history;
only tables named ``booklore_oidc_*`` are ever looked at. Every function takes a SQLAlchemy
:class:`~sqlalchemy.engine.Engine` (and commits) or a :class:`~sqlalchemy.engine.Connection`
(and leaves the commit to the caller)::

    from flask_booklore_oidc import migrate

    match migrate.schema_state(connection):
        case "empty":
            migrate.create_all(engine)  # the tables of today, stamped as head
        case "behind" | "unversioned":
            migrate.upgrade(engine)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from .models import Base

VERSION_TABLE = "booklore_oidc_alembic_version"
TABLE_PREFIX = "booklore_oidc_"
#: the schema ``create_all`` made before migrations shipped; a database without our version
#: table but with our tables is at this revision
FIRST_REVISION = "0001"
UPGRADE_COMMAND = "flask booklore-oidc db upgrade"

SchemaState = Literal["empty", "current", "behind", "ahead", "unversioned"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


class SchemaError(RuntimeError):
    """The database's schema of our tables is not one this version of the package can use."""


def is_ours(name: str | None) -> bool:
    """Whether a table (or index) name belongs to the extension."""
    return bool(name) and str(name).startswith(TABLE_PREFIX) and name != VERSION_TABLE


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    # Reflect only our tables: the host's are neither read nor compared.
    return type_ != "table" or is_ours(name)


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return is_ours(name)
    table = getattr(obj, "table", None)
    return table is None or is_ours(table.name)


def context_options() -> dict[str, Any]:
    """The options of every migration context of ours, for ``env.py`` and for comparisons."""
    return {
        "version_table": VERSION_TABLE,
        "target_metadata": Base.metadata,
        "include_name": _include_name,
        "include_object": _include_object,
        # SQLite can only ALTER a table by copying it: let Alembic do that.
        "render_as_batch": True,
        "compare_type": True,
    }


def configure_context(context: Any, connection: Connection) -> None:
    """Configure the Alembic context of ``env.py`` (one place for every option)."""
    context.configure(connection=connection, **context_options())


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


@contextmanager
def _connected(bind: Engine | Connection) -> Iterator[Connection]:
    """A connection: the one given, or a new one of the engine in a transaction committed at
    the end."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.begin() as connection:
        yield connection


def head() -> str:
    """The newest revision this package knows."""
    revision = _scripts().get_current_head()
    assert revision is not None  # the package ships at least one revision
    return revision


def current(connection: Connection) -> str | None:
    """The revision recorded in the database, or ``None`` (no version table, or an empty one)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _our_tables(connection: Connection) -> list[str]:
    return [name for name in inspect(connection).get_table_names() if is_ours(name)]


def schema_state(connection: Connection) -> SchemaState:
    """Where the database stands:

    ``"empty"``
        none of our tables;
    ``"current"``
        at :func:`head`;
    ``"behind"``
        at an earlier revision: run :func:`upgrade`;
    ``"ahead"``
        at a revision this package does not know (a newer version of it migrated the database);
    ``"unversioned"``
        our tables without a version: made by ``create_all`` before migrations shipped, which
        is revision 0001; :func:`upgrade` stamps it so first.
    """
    revision = current(connection)
    if revision is None:
        return "unversioned" if _our_tables(connection) else "empty"
    if revision == head():
        return "current"
    known = {script.revision for script in _scripts().walk_revisions()}
    return "behind" if revision in known else "ahead"


def upgrade(bind: Engine | Connection, revision: str = "head") -> None:
    """Bring our tables up to ``revision``: from nothing, from any earlier revision, or from an
    unversioned database (stamped 0001 first)."""
    with _connected(bind) as connection:
        state = schema_state(connection)
        if state == "ahead":
            raise SchemaError(
                f"The database's booklore_oidc tables are at revision {current(connection)}, "
                "newer than this version of flask-booklore-oidc knows: upgrade the package."
            )
        if state == "unversioned":
            command.stamp(_config(connection), FIRST_REVISION)
        command.upgrade(_config(connection), revision)


def stamp_head(bind: Engine | Connection) -> None:
    """Record our tables as being at :func:`head` without changing them (after ``create_all``)."""
    with _connected(bind) as connection:
        command.stamp(_config(connection), "head")


def create_all(bind: Engine | Connection) -> None:
    """Create our tables as they are today on a database that has none, stamped as :func:`head`."""
    with _connected(bind) as connection:
        Base.metadata.create_all(connection)
        stamp_head(connection)


def ensure_current(bind: Engine | Connection) -> None:
    """Make a new database ready, accept a current one, refuse any other with
    :class:`SchemaError` naming the command that fixes it.

    An unversioned database at 0001 while 0001 is still the head is simply stamped: nothing
    needs to change in it.
    """
    with _connected(bind) as connection:
        state = schema_state(connection)
        if state == "empty":
            create_all(connection)
        elif state == "unversioned" and head() == FIRST_REVISION:
            stamp_head(connection)
        elif state in ("behind", "unversioned"):
            raise SchemaError(
                f"The booklore_oidc tables are at revision {current(connection) or FIRST_REVISION}, "
                f"this version of flask-booklore-oidc needs {head()}: run `{UPGRADE_COMMAND}`."
            )
        elif state == "ahead":
            raise SchemaError(
                f"The database's booklore_oidc tables are at revision {current(connection)}, "
                "newer than this version of flask-booklore-oidc knows: upgrade the package."
            )


def schema_differences(connection: Connection) -> list[Any]:
    """What differs between our tables in the database and :data:`Base.metadata` (Alembic's
    ``compare_metadata``); empty when a migration matches the models."""
    from alembic.autogenerate import compare_metadata

    context = MigrationContext.configure(connection, opts=context_options())
    return list(compare_metadata(context, Base.metadata))


def make_db_group(get_engine: Callable[[], Engine], *, cls: type[click.Group] = click.Group) -> click.Group:
    """The ``db`` command group (``upgrade``, ``current``) over the engine ``get_engine()``
    returns. The CLI adds it under ``flask booklore-oidc`` with ``cls=flask.cli.AppGroup``, so
    each command runs in the app context and ``get_engine`` may use ``current_app``::

        cli.add_command(make_db_group(lambda: oidc.adapter.session.get_bind(), cls=AppGroup))
    """

    @click.group("db", cls=cls, help="Schema migrations of the booklore_oidc tables.")
    def db() -> None:
        pass

    @db.command("upgrade", help="Bring the booklore_oidc tables up to date (or create them).")
    @click.option("--revision", default="head", show_default=True, help="The revision to upgrade to.")
    def upgrade_command(revision: str) -> None:
        engine = get_engine()
        try:
            upgrade(engine, revision)
        except SchemaError as error:
            raise click.ClickException(str(error)) from None
        with engine.connect() as connection:
            click.echo(f"booklore_oidc tables at revision {current(connection)}.")

    @db.command("current", help="Show the revision of the booklore_oidc tables and whether it is the newest.")
    def current_command() -> None:
        with get_engine().connect() as connection:
            state = schema_state(connection)
            revision = current(connection)
        click.echo(f"revision: {revision or 'none'} ({state}; newest: {head()})")
        if state in ("behind", "unversioned"):
            click.echo(f"Run `{UPGRADE_COMMAND}`.")

    return db
