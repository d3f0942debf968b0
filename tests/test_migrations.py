"""Schema migrations of our tables (SPEC §14): from nothing, from the first released schema and
from a database made by ``create_all`` before migrations shipped, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from click.testing import CliRunner
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, inspect, select, text
from sqlalchemy.engine import Engine

from flask_booklore_oidc import migrate
from flask_booklore_oidc.models import Base, Identity, SettingsRow

pytestmark = pytest.mark.both_databases


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def state(engine: Engine) -> str:
    with engine.connect() as connection:
        return migrate.schema_state(connection)


def revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return migrate.current(connection)


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return migrate.schema_differences(connection)


def add_settings_and_identity(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(SettingsRow.__table__).values(
                id=1, version=3, updated_at=datetime(2026, 1, 2), enabled=True, client_id="kept-client"
            )
        )
        connection.execute(
            insert(Identity.__table__).values(
                issuer="https://id.example.test", subject="sub-kept", user_id="7",
                linked_at=datetime(2026, 1, 2), linked_by="provisioned",
            )
        )  # fmt: skip


def assert_settings_and_identity_kept(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.execute(select(SettingsRow.__table__.c.client_id)).scalar_one() == "kept-client"
        identity = connection.execute(select(Identity.__table__.c.subject, Identity.__table__.c.user_id)).one()
        assert tuple(identity) == ("sub-kept", "7")


@pytest.fixture
def two_revisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend this package's head is a revision after 0001, as a later release's will be."""
    monkeypatch.setattr(migrate, "head", lambda: "0002")


# -- where a database stands ------------------------------------------------------------------


def test_a_database_without_our_tables_is_empty(engine):
    assert state(engine) == "empty" and revision(engine) is None


def test_a_database_made_by_create_all_without_a_version_is_unversioned(engine):
    Base.metadata.create_all(engine)
    assert state(engine) == "unversioned"


def test_a_database_upgraded_to_head_is_current(engine):
    migrate.upgrade(engine)
    assert state(engine) == "current" and revision(engine) == migrate.head()


def test_a_database_at_an_earlier_revision_is_behind(engine, two_revisions):
    migrate.upgrade(engine, "0001")
    assert state(engine) == "behind"


def test_a_database_at_a_revision_this_package_does_not_know_is_ahead(engine):
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'fffffff'"))
    assert state(engine) == "ahead"


# -- upgrading --------------------------------------------------------------------------------


def test_upgrade_from_the_first_released_schema_keeps_the_data(engine):
    migrate.upgrade(engine, "0001")
    add_settings_and_identity(engine)
    migrate.upgrade(engine)
    assert_settings_and_identity_kept(engine)
    assert revision(engine) == migrate.head()


def _first_release_made_by_create_all(engine: Engine) -> None:
    """A database of the first release: its create_all made the 0001 tables, with no version."""
    migrate.upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))


def test_upgrade_of_a_create_all_database_stamps_it_and_keeps_the_data(engine):
    _first_release_made_by_create_all(engine)
    add_settings_and_identity(engine)
    migrate.upgrade(engine)
    assert_settings_and_identity_kept(engine)
    assert revision(engine) == migrate.head()


def test_upgrade_refuses_a_database_ahead_of_the_package(engine):
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'fffffff'"))
    with pytest.raises(migrate.SchemaError, match="newer than this version"):
        migrate.upgrade(engine)


def test_upgrade_on_a_connection_leaves_the_commit_to_the_caller(engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("pysqlite commits DDL as it runs it: only the version row is rolled back")
    with engine.connect() as connection:
        migrate.upgrade(connection)
        connection.rollback()
    assert state(engine) == "empty"


def test_the_host_tables_are_neither_changed_nor_compared(engine):
    host = MetaData()
    books = Table("books", host, Column("id", Integer, primary_key=True), Column("title", String(50)))
    host.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(books).values(id=1, title="Kept"))
    migrate.upgrade(engine)
    assert differences(engine) == []
    with engine.connect() as connection:
        assert connection.execute(select(books.c.title)).scalar_one() == "Kept"


def test_the_version_is_kept_in_our_own_table_beside_the_hosts_alembic_history(engine):
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert migrate.VERSION_TABLE in tables and "alembic_version" not in tables


# -- the migrations match the models -----------------------------------------------------------


def test_head_creates_exactly_the_tables_of_the_models(engine):
    """Fails when a model changes without a migration."""
    migrate.upgrade(engine)
    assert differences(engine) == []


# -- what the extension calls on start ---------------------------------------------------------


def test_ensure_current_creates_and_stamps_an_empty_database(engine):
    migrate.ensure_current(engine)
    assert state(engine) == "current" and differences(engine) == []


def test_ensure_current_refuses_a_first_release_database_and_names_the_command(engine):
    _first_release_made_by_create_all(engine)
    with pytest.raises(migrate.SchemaError, match="run `flask booklore-oidc db upgrade`"):
        migrate.ensure_current(engine)


def test_ensure_current_refuses_a_database_behind_and_names_the_command(engine, two_revisions):
    migrate.upgrade(engine, "0001")
    with pytest.raises(migrate.SchemaError, match="run `flask booklore-oidc db upgrade`"):
        migrate.ensure_current(engine)


# -- the commands --------------------------------------------------------------------------------


def test_db_upgrade_command_brings_the_tables_to_head(engine):
    result = CliRunner().invoke(migrate.make_db_group(lambda: engine), ["upgrade"])
    assert result.exit_code == 0, result.output
    assert f"at revision {migrate.head()}" in result.output
    assert state(engine) == "current"


def test_db_current_command_says_when_an_upgrade_is_needed(engine):
    Base.metadata.create_all(engine)
    result = CliRunner().invoke(migrate.make_db_group(lambda: engine), ["current"])
    assert result.exit_code == 0, result.output
    assert "unversioned" in result.output and "flask booklore-oidc db upgrade" in result.output


def test_db_commands_built_as_an_app_group_run_in_the_app_context(engine):
    app = Flask("host")
    app.extensions["engine"] = engine
    app.cli.add_command(migrate.make_db_group(lambda: current_app.extensions["engine"], cls=AppGroup))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert state(engine) == "current"


# -- the whole story, as an admin lives it ---------------------------------------------------------


def test_a_first_release_database_is_refused_then_upgraded_with_one_command_and_signs_in(database_url, op):
    from helpers import SignIn, me, settings_for

    from example_app import create_app
    from example_app.models import db

    engine = create_engine(database_url)
    _first_release_made_by_create_all(engine)
    add_settings_and_identity(engine)
    engine.dispose()
    config = {"TESTING": True, "SECRET_KEY": "test-secret-key", "SQLALCHEMY_DATABASE_URI": database_url}
    app = create_app(config)
    try:
        client = app.test_client()
        refused = client.get("/login")
        assert refused.status_code == 503

        result = app.test_cli_runner().invoke(args=["booklore-oidc", "db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert f"at revision {migrate.head()}" in result.output

        restarted = create_app(config)
        with restarted.test_request_context():
            restarted.extensions["booklore_oidc"].save_settings(settings_for(op))
        reader = restarted.test_client()
        assert SignIn(reader, op)().status_code == 302
        assert me(reader)["username"] == "alice"
        with restarted.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
