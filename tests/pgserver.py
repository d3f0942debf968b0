"""A throwaway PostgreSQL server for the test session (SPEC §13), registered from conftest.py
with ``pytest_plugins``.

The server starts the first time a test asks for ``postgresql_url`` (so a run that selects only
SQLite tests never starts it) and is stopped and deleted when the session ends, Ctrl-C included.
It is the machine's own PostgreSQL binaries (``initdb`` and ``pg_ctl`` on PATH, in
/usr/local/bin or /usr/lib/postgresql/*/bin; .ci/run installs Debian's ``postgresql`` when none
is there), run as an unprivileged user when the tests run as root, with durability switched off:
the data lives only as long as the session.

Every test gets an empty database of its own. Creating one costs a quarter of a second on a busy
machine (``CREATE DATABASE`` copies ``template0`` and, one way or another, writes it out), so a
test's database is emptied afterwards (its ``public`` schema dropped and made again: a few
milliseconds) and given to the next test.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: the system user that owns the cluster when the tests run as root (PostgreSQL refuses root)
TEST_USER = "booklore-pgtest"
SUPERUSER = "postgres"
WHERE = "on PATH, in /usr/local/bin or /usr/lib/postgresql/*/bin"
NO_POSTGRES = (
    f"No PostgreSQL binaries (initdb, pg_ctl) {WHERE}: the POSTGRESQL TESTS WERE SKIPPED. "
    "Install them with `apt-get install postgresql` (.ci/run does)."
)
NO_POSTGRES_IN_CI = (
    f"No PostgreSQL binaries (initdb, pg_ctl) {WHERE}, and CI is set: every PostgreSQL test fails. "
    ".ci/run installs Debian's postgresql when initdb is missing; did that step run?"
)


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest major version first, or ``None``."""
    candidates: list[str] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(os.path.realpath(on_path)))
    candidates.append("/usr/local/bin")
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major_version, reverse=True))
    for folder in candidates:
        if all(os.access(os.path.join(folder, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(folder)
    return None


def _major_version(folder: str) -> int:
    name = Path(folder).parent.name
    return int(name) if name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One cluster in a temporary folder: ``start()``, ``new_database()``, ``stop()``."""

    binaries: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="booklore-pg-")))
    port: int = 0
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _running: bool = False
    _free: list[str] = field(default_factory=list)
    #: keep fsync and synchronous commits (benchmarks); tests switch durability off
    durable: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self) -> list[str]:
        """The command prefix that runs a binary as the cluster's owner."""
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", _unprivileged_user(), "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            [*self._as_owner(), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}{detail}")

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            user = _unprivileged_user()
            shutil.chown(self.root, user)
        self._run(
            str(self.binaries / "initdb"),
            "--pgdata", str(self.data),
            "--username", SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# a throwaway cluster: loopback only\n"
                + ("" if self.durable else "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
                + f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "max_connections = 200\n"
            )
        # Another process may take the free port before the server binds it: try a few.
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
            except RuntimeError:
                if attempt == 2:
                    raise
                continue
            break
        self._running = True
        atexit.register(self.stop)
        return self

    def _pg_ctl_start(self) -> None:
        self._run(
            str(self.binaries / "pg_ctl"), "start", "--pgdata", str(self.data), "--wait",
            "--log", str(self.root / "server.log"), "--options", f"-p {self.port}",
        )  # fmt: skip

    def down(self) -> None:
        """Shut the server down as an administrator restarting it would (``pg_ctl stop``, fast
        mode: open connections are closed), keeping its data and port."""
        self._run(str(self.binaries / "pg_ctl"), "stop", "--pgdata", str(self.data), "--mode", "fast", "--wait")

    def up(self) -> None:
        """Start the server again after :meth:`down`: same data, same port."""
        self._pg_ctl_start()

    def restart(self) -> None:
        """:meth:`down` then :meth:`up`, with nothing in between."""
        self.down()
        self.up()

    def stop(self) -> None:
        if self._running:
            self._running = False
            # "immediate": nothing here is worth a checkpoint. A Ctrl-C may have stopped it already.
            subprocess.run(
                [*self._as_owner(), str(self.binaries / "pg_ctl"), "stop", "--pgdata", str(self.data),
                 "--mode", "immediate", "--wait"],
                capture_output=True,
                cwd=self.root,
                check=False,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _connect(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True)

    def new_database(self) -> str:
        """An empty database: one a finished test gave back, or a new one; returns its name."""
        if self._free:
            return self._free.pop()
        name = f"t_{next(self._counter)}"
        with self._connect() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return name

    def give_back(self, name: str) -> None:
        """Empty ``name`` again (as ``template0`` made it) for the next test."""
        with self._connect() as conn:
            # An app a test made and never disposed of may still be connected.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        with self._connect(name) as conn:
            conn.execute(
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
                "GRANT USAGE ON SCHEMA public TO PUBLIC"
            )
        self._free.append(name)


def _unprivileged_user() -> str:
    """``booklore-pgtest``, created as a system user the first time."""
    try:
        import pwd

        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=True,
            capture_output=True,
        )
    return TEST_USER


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if find_binaries() is None:
        message = NO_POSTGRES_IN_CI if os.environ.get("CI") else NO_POSTGRES
        terminalreporter.write_sep("!", message, red=True, bold=True)


def _binaries_or_skip() -> Path:
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail(NO_POSTGRES_IN_CI, pytrace=False)
        pytest.skip(NO_POSTGRES)
    return binaries


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started on first use. Without binaries the test fails
    under CI (where .ci/run should have installed them) and is skipped elsewhere."""
    server = PostgresServer(_binaries_or_skip())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def own_postgresql_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own (a new cluster, about a second), for a test that
    stops and starts it (:meth:`PostgresServer.down`, :meth:`~PostgresServer.up`,
    :meth:`~PostgresServer.restart`) without disturbing the session's server."""
    server = PostgresServer(_binaries_or_skip())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL (psycopg 3) of an empty database, the test's alone.

    Connections to it still open when the test ends (an app the test made and did not dispose
    of) are closed first: psycopg would otherwise warn, at some later garbage collection, in
    whatever test happens to run then."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    name = postgresql_server.new_database()
    opened: weakref.WeakSet[Any] = weakref.WeakSet()

    def remember(dbapi_connection: Any, record: Any) -> None:
        if getattr(dbapi_connection.info, "dbname", None) == name:
            opened.add(dbapi_connection)

    event.listen(Engine, "connect", remember)
    try:
        yield postgresql_server.url(name)
    finally:
        event.remove(Engine, "connect", remember)
        for connection in list(opened):
            connection.close()
        postgresql_server.give_back(name)
