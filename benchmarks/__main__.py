"""``make bench``: host-route overhead, callback throughput and latency against bare Authlib,
and memory over many sign-ins, printed as one table (SPEC §12).

Everything runs in this process: the apps through Flask's test client, the provider
(:mod:`benchmarks.provider`) on a loopback port in a thread. Contenders are measured in
interleaved rounds (A B C, C B A, …) and compared round by round, so drift of the machine
(frequency scaling, a neighbour's load) hits all of them alike.

``--quick`` runs fewer rounds and a shorter memory series (a smoke test, not a result);
``--profile`` prints a cProfile of flask-booklore-oidc's warm sign-ins instead of the table.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from benchmarks import production
from benchmarks.apps import create_authlib_app, create_twin_app
from benchmarks.provider import InProcessAdapter, LightProvider
from example_app import create_app
from example_app.models import User, db
from example_app.seed import seed_demo
from flask_booklore_oidc.models import LoginRecord, Transaction

CLIENT_ID = "booklore-bench"
REDIRECT_URI = "http://localhost/oauth2-callback"
USERS = 20  # distinct people signing in, round robin
OURS = "signed in"
OURS_LAZY = "signed in, session check at most every 60 s"
CHECK_INTERVAL = 60
TWIN = "without the extension"
SECRET_KEY = "benchmark-secret-key"


@dataclass(frozen=True)
class Plan:
    host_rounds: int  # per page; each round runs every contender for about HOST_BATCH_SECONDS
    callback_rounds: int  # per storage; each round signs CALLBACK_BATCH people in per contender
    memory_marks: tuple[int, int]


FULL = Plan(host_rounds=100, callback_rounds=40, memory_marks=(1_000, 10_000))
QUICK = Plan(host_rounds=40, callback_rounds=10, memory_marks=(300, 1_200))
HOST_BATCH_SECONDS = 0.025
CALLBACK_BATCH = 3


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    def add(self, measure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("met" if ok else "**missed**")
        if ok is False:
            self.missed.append(measure)
        self.rows.append((measure, value, target, verdict))
        print(f"  {measure}: {value}", file=sys.stderr, flush=True)


# -- machine and process ------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> list[str]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ", ".join(
        f"{name} {version(name)}" for name in ("flask", "flask-login", "authlib", "joserfc", "sqlalchemy", "requests")
    )
    return [
        f"CPU: {cpu_model()}, {cores} cores usable ({os.cpu_count()} online)",
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        f"Packages: {packages}; SQLite {sqlite3.sqlite_version}",
        f"Load average at start: {load_average()}",
    ]


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def rss_bytes() -> int:
    """Resident set size now (Linux: /proc/self/statm), after a full collection."""
    gc.collect()
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak, not current


@dataclass
class SQLCount:
    statements: list[str] = field(default_factory=list)
    commits: int = 0

    @property
    def writes(self) -> int:
        return sum(1 for s in self.statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")))


@contextmanager
def counting_sql(app: Flask) -> Iterator[SQLCount]:
    """Every SQL statement and commit ``app``'s engine sends while the block runs."""
    count = SQLCount()
    with app.app_context():
        engine = db.engine

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        count.statements.append(text)

    def commit(conn: Any) -> None:
        count.commits += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


# -- the apps ---------------------------------------------------------------------------------


def app_config(where: Path | str) -> dict[str, Any]:
    """Configuration for a SQLite file at a path, or a database at a URL. Every app gets the
    engine options the README asks production to use, so a pre-ping costs all of them alike."""
    url = where if isinstance(where, str) else f"sqlite:///{where}"
    return {
        "SECRET_KEY": SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }


def use_wal(app: Flask) -> None:
    """SQLite in WAL mode with ``synchronous=NORMAL``: a commit no longer waits for the disk
    (the usual production setting for SQLite; a server database with group commit is close)."""
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, record: Any) -> None:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()


def settings_for(op: LightProvider) -> dict[str, Any]:
    return {
        "enabled": True,
        "provider_name": "Bench ID",
        "client_id": CLIENT_ID,
        "issuer_uri": op.issuer,
        "auto_provision": True,
        "http_timeout": 5.0,
    }


def create_ours(where: Path | str, op: LightProvider) -> Flask:
    app = create_app(app_config(where))
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings(settings_for(op))
    return app


def forget_provider(app: Flask) -> None:
    app.extensions["booklore_oidc"].state_for(app).cache.forget()


def outbound(app: Flask) -> dict[str, int]:
    return dict(app.extensions["booklore_oidc"].state_for(app).transport.sent)


def subjects() -> list[str]:
    return [f"sub-{n:04d}" for n in range(USERS)]


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


class Browser:
    """Signs people in: the app's start route, the provider, the app's callback. A new browser
    (test client, empty cookie jar) per sign-in, as readers arrive with their own browsers."""

    def __init__(self, op: LightProvider) -> None:
        self.op = op
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only, never through a proxy
        self.last_client: FlaskClient | None = None

    def sign_in(self, app: Flask, sub: str) -> float:
        """One complete sign-in; returns the callback's duration in seconds."""
        client = app.test_client()
        self.op.current_user = sub
        start = client.get("/login/oidc")
        if start.status_code != 302:
            raise RuntimeError(f"start answered {start.status_code}: {start.get_data(as_text=True)[:300]}")
        answer = self.http.get(start.headers["Location"], allow_redirects=False, timeout=5)
        if answer.status_code != 302:
            raise RuntimeError(f"authorize answered {answer.status_code}: {answer.text[:300]}")
        began = time.perf_counter()
        done = client.get(local_path(answer.headers["Location"]))
        elapsed = time.perf_counter() - began
        if done.status_code != 302 or done.headers["Location"] != "/":
            raise RuntimeError(f"callback answered {done.status_code}: {done.get_data(as_text=True)[:300]}")
        self.last_client = client
        return elapsed

    def assert_signed_in(self, sub: str) -> None:
        assert self.last_client is not None
        me = self.last_client.get("/api/me")
        expected = self.op.users[sub]["preferred_username"]
        if me.status_code != 200 or me.get_json()["username"] != expected:
            raise RuntimeError(f"the last sign-in did not sign {expected} in: {me.status_code}")


def interleaved(rounds: int, contenders: dict[str, Callable[[], int]]) -> dict[str, list[float]]:
    """Run each contender's batch once per round, reversing the order every other round, and
    return its rates (units per second) round by round.

    Batches are short and alternate, so a neighbour's burst of load or a change of clock
    frequency hits the contenders alike; the collector is paused inside a batch (as ``timeit``
    does) and run between rounds, so one contender does not pay for the other's garbage."""
    names = list(contenders)
    rates: dict[str, list[float]] = {name: [] for name in names}
    try:
        for r in range(rounds):
            if r % 10 == 0:
                gc.collect()
            for name in names if r % 2 == 0 else reversed(names):
                gc.disable()
                began = time.perf_counter()
                units = contenders[name]()
                rates[name].append(units / (time.perf_counter() - began))
                gc.enable()
    finally:
        gc.enable()
    return rates


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median over rounds of ours/theirs measured back to back."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- 1. host routes -------------------------------------------------------------------------


def bench_host(plan: Plan, tmp: Path, op: LightProvider, browser: Browser, report: Report) -> None:
    """A signed-in reader on host pages: the app with the extension (its login record checked on
    every request, and at most every 60 s) against its twin without the extension."""
    path = tmp / "host.sqlite"
    ours = create_ours(path, op)
    # The same app in another process, with BOOKLORE_OIDC_SESSION_CHECK_INTERVAL set.
    lazy = create_app({**app_config(path), "BOOKLORE_OIDC_SESSION_CHECK_INTERVAL": CHECK_INTERVAL})
    twin = create_twin_app(app_config(path))  # the same database: the same user, books, libraries
    with ours.app_context():
        seed_demo()
    clients: dict[str, FlaskClient] = {}
    for name, app in ((OURS, ours), (OURS_LAZY, lazy)):
        browser.sign_in(app, "sub-0000")
        assert browser.last_client is not None
        clients[name] = browser.last_client
    with ours.app_context():
        user = db.session.scalar(select(User).where(User.username == "reader0000"))
        assert user is not None
        user.is_admin = True  # sees every library: the page lists all the books
        db.session.commit()
        user_id = user.id
    clients[TWIN] = twin.test_client()
    clients[TWIN].get(f"/twin-sign-in/{user_id}")  # login_user, as the host's own login would
    apps = {OURS: ours, OURS_LAZY: lazy, TWIN: twin}

    for page in ("/", "/api/me"):
        sql: dict[str, SQLCount] = {}
        bodies = set()
        for name, client in clients.items():
            assert client.get(page).status_code == 200
            with counting_sql(apps[name]) as sql[name]:
                bodies.add(client.get(page).get_data())
        assert len(bodies) == 1, "the twin must render the same page"
        began = time.perf_counter()
        for _ in range(20):
            clients[TWIN].get(page)
        batch = max(3, round(HOST_BATCH_SECONDS * 20 / (time.perf_counter() - began)))
        sent_before = outbound(ours)

        def run(client: FlaskClient, batch: int = batch, page: str = page) -> int:
            for _ in range(batch):
                client.get(page)
            return batch

        rates = interleaved(plan.host_rounds, {name: (lambda c=c: run(c)) for name, c in clients.items()})
        calls = {name: python_calls_per_request(client, page) for name, client in clients.items()}
        sent = sum(outbound(ours).values()) - sum(sent_before.values())
        for name in (OURS, OURS_LAZY):
            ratio = paired_ratio(rates[name], rates[TWIN])
            # SPEC §12: >= 0.90 on the library page; /api/me (one query, JSON) is reported.
            target = page == "/" and name == OURS
            report.add(
                f"GET {page} {name}: req/s with / without the extension",
                f"{statistics.median(rates[name]):,.0f} / {statistics.median(rates[TWIN]):,.0f}, ratio {ratio:.3f}",
                ">= 0.90" if target else "",
                ratio >= 0.90 if target else None,
            )
            own = [s for s in sql[name].statements if "booklore_oidc_" in s]
            report.add(
                f"GET {page} {name}: SQL statements per request with / without",
                f"{len(sql[name].statements)} / {len(sql[TWIN].statements)}"
                + (f" ({len(own)} on our tables)" if own else ""),
                "1 primary-key read added" if name == OURS else "0 added",
                [s for s in sql[name].statements if s not in own] == sql[TWIN].statements
                and len(own) == (1 if name == OURS else 0),
            )
            report.add(
                f"GET {page} {name}: Python function calls per request with / without",
                f"{calls[name]:,.0f} / {calls[TWIN]:,.0f} ({calls[name] / calls[TWIN] - 1:+.1%})",
            )
        report.add(f"GET {page}: outbound requests during these runs", str(sent), "0", sent == 0)


def python_calls_per_request(client: FlaskClient, page: str, requests: int = 30) -> float:
    """Function calls per request, counted by cProfile: a cost measure no neighbour disturbs."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(page)
    profiler.disable()
    return pstats.Stats(profiler).total_calls / requests  # type: ignore[attr-defined,no-any-return]


# -- 2. the callback ----------------------------------------------------------------------------


def bench_callback(
    plan: Plan, tmp: Path, op: LightProvider, browser: Browser, report: Report, *, storage: str, pg: Any = None
) -> None:
    """Complete sign-ins per second, ours against bare Authlib, on one kind of storage
    (``pg``: the PostgreSQL server, for ``storage="postgresql"``; a database each)."""
    if storage == "postgresql":
        ours_at: Path | str = pg.url(pg.new_database())
        theirs_at: Path | str = pg.url(pg.new_database())
    else:
        ours_at, theirs_at = tmp / f"ours-{storage}.sqlite", tmp / f"authlib-{storage}.sqlite"
    ours = create_ours(ours_at, op)
    theirs = create_authlib_app(app_config(theirs_at), issuer=op.issuer, client_id=CLIENT_ID)
    if storage == "wal":
        use_wal(ours)
        use_wal(theirs)
    people = subjects()
    for sub in people:  # first sign-ins create the accounts; from here on, every sign-in is warm
        for app in (ours, theirs):
            browser.sign_in(app, sub)
            browser.assert_signed_in(sub)

    counts: dict[str, SQLCount] = {}
    for name, app in (("ours", ours), ("authlib", theirs)):
        with counting_sql(app) as counts[name]:
            browser.sign_in(app, people[0])

    latencies: dict[str, list[float]] = {"ours": [], "authlib": []}
    turn = {"ours": 0, "authlib": 0}
    sent_before = outbound(ours)

    def run(name: str, app: Flask) -> int:
        for _ in range(CALLBACK_BATCH):
            sub = people[turn[name] % len(people)]
            turn[name] += 1
            latencies[name].append(browser.sign_in(app, sub))
        return CALLBACK_BATCH

    rates = interleaved(
        plan.callback_rounds, {"ours": lambda: run("ours", ours), "authlib": lambda: run("authlib", theirs)}
    )
    sent = {k: v - sent_before.get(k, 0) for k, v in outbound(ours).items()}
    for app in (ours, theirs):
        browser.sign_in(app, people[1])
        browser.assert_signed_in(people[1])
    ratio = paired_ratio(rates["ours"], rates["authlib"])
    where = {
        "file": "SQLite file, default journal (each commit waits for the disk)",
        "wal": "SQLite WAL, synchronous=NORMAL",
        "postgresql": "PostgreSQL, one process",
    }[storage]
    report.add(
        f"Sign-ins/s, ours / bare Authlib ({where})",
        f"{statistics.median(rates['ours']):,.1f} / {statistics.median(rates['authlib']):,.1f}, ratio {ratio:.2f}",
        ">= 0.80",
        ratio >= 0.8,
    )
    for name, label in (("ours", "ours"), ("authlib", "bare Authlib")):
        report.add(
            f"Callback latency p50 / p95, {label} ({storage})",
            f"{percentile(latencies[name], 50) * 1000:.1f} / {percentile(latencies[name], 95) * 1000:.1f} ms",
        )
    if storage == "file":
        for name, label in (("ours", "ours"), ("authlib", "bare Authlib")):
            c = counts[name]
            report.add(
                f"SQL per warm sign-in, {label}: statements (writes, commits)",
                f"{len(c.statements)} ({c.writes}, {c.commits})",
            )
        signins = turn["ours"]
        report.add(
            "Outbound requests per warm sign-in, ours",
            f"{sent.get('POST', 0) / signins:.2f} POST (token) + {sent.get('GET', 0) / signins:.2f} GET",
            "1 + 0",
            sent.get("POST") == signins and not sent.get("GET"),
        )


# -- 3. memory ----------------------------------------------------------------------------------


def bench_memory(plan: Plan, tmp: Path, op: LightProvider, report: Report) -> None:
    """RSS after many sign-ins. To make 10,000 sign-ins affordable the provider is called in
    process (no sockets) and SQLite runs in WAL mode; neither changes what Python keeps."""
    ours = create_ours(tmp / "memory.sqlite", op)
    use_wal(ours)
    adapter = InProcessAdapter(op.wsgi)
    # Our transport's requests.Session (internal) and the browser's both go to the adapter.
    ours.extensions["booklore_oidc"].state_for(ours).transport.mount(op.issuer + "/", adapter)
    browser = Browser(op)
    browser.http.mount(op.issuer + "/", adapter)
    people = subjects()
    first, last = plan.memory_marks
    done = 0
    samples: dict[int, int] = {}
    began = time.perf_counter()
    for mark in (first, last):
        while done < mark:
            browser.sign_in(ours, people[done % len(people)])
            done += 1
        samples[mark] = rss_bytes()
    elapsed = time.perf_counter() - began
    browser.assert_signed_in(people[(done - 1) % len(people)])
    growth = samples[last] / samples[first] - 1
    report.add(
        f"RSS after {first:,} / {last:,} sign-ins",
        f"{samples[first] / 2**20:.1f} / {samples[last] / 2**20:.1f} MiB ({growth:+.1%})",
        "within 10%",
        abs(growth) <= 0.10,
    )
    report.add("Sign-ins/s, ours, provider in process, WAL (the memory series)", f"{done / elapsed:,.0f}")
    with ours.app_context():
        transactions = db.session.scalar(select(func.count()).select_from(Transaction))
        records = db.session.scalar(select(func.count()).select_from(LoginRecord))
    report.add(
        "Rows left: open sign-in transactions / login records",
        f"{transactions} / {records:,}",
        "0 / one per sign-in until LOGIN_RECORD_TTL",
        transactions == 0,
    )


# -- output -------------------------------------------------------------------------------------


def print_table(report: Report) -> None:
    headers = ("Measure", "Result", "Target", "")
    rows = [headers, *report.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows[1:]:
        print(line(row))


def profile(tmp: Path, op: LightProvider, count: int) -> None:
    """cProfile of ``count`` warm sign-ins (provider in process, WAL), our code only."""
    ours = create_ours(tmp / "profile.sqlite", op)
    use_wal(ours)
    adapter = InProcessAdapter(op.wsgi)
    ours.extensions["booklore_oidc"].state_for(ours).transport.mount(op.issuer + "/", adapter)
    browser = Browser(op)
    browser.http.mount(op.issuer + "/", adapter)
    people = subjects()
    for sub in people:
        browser.sign_in(ours, sub)
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(count):
        browser.sign_in(ours, people[n % len(people)])
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(r"flask_booklore_oidc|sqlalchemy/orm/session.py:\d+\((commit|execute)\)", 40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter memory series (a smoke test)")
    parser.add_argument("--profile", action="store_true", help="profile 300 warm sign-ins of ours with cProfile")
    parser.add_argument("--host-only", action="store_true", help="only the host routes (about a minute)")
    parser.add_argument(
        "--production-only",
        action="store_true",
        help="only PostgreSQL: sign-ins against bare Authlib, the gunicorn storm, the hanging provider",
    )
    parser.add_argument(
        "--memory-signins",
        type=int,
        metavar="N",
        help="length of the memory series (default 10,000; 1,200 with --quick); RSS is compared at N/10 and N",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.memory_signins:
        plan = replace(plan, memory_marks=(args.memory_signins // 10, args.memory_signins))
    # The developer's shell must not change what is measured.
    for key in list(os.environ):
        if key.startswith("BOOKLORE_OIDC_") or key == "FORCE_DISABLE_OIDC":
            del os.environ[key]

    began = time.perf_counter()
    print("flask-booklore-oidc benchmarks" + (" (--quick: a smoke test, not a result)" if args.quick else ""))
    for line in machine_info():
        print("  " + line)
    print(flush=True)
    report = Report()
    with (
        tempfile.TemporaryDirectory(prefix="booklore-bench-") as tmpdir,
        LightProvider(client_id=CLIENT_ID, redirect_uris=[REDIRECT_URI]) as op,
        production.postgresql() as pg,
    ):
        tmp = Path(tmpdir)
        for n, sub in enumerate(subjects()):
            op.add_user(
                sub,
                preferred_username=f"reader{n:04d}",
                email=f"reader{n:04d}@example.test",
                email_verified=True,
                name=f"Reader {n}",
                groups=["readers"],
            )
        if args.profile:
            profile(tmp, op, 300)
            return 0
        browser = Browser(op)
        phases: list[tuple[str, Callable[[], None]]] = [
            ("host routes", lambda: bench_host(plan, tmp, op, browser, report)),
            ("sign-ins, SQLite file", lambda: bench_callback(plan, tmp, op, browser, report, storage="file")),
            ("sign-ins, SQLite WAL", lambda: bench_callback(plan, tmp, op, browser, report, storage="wal")),
            ("memory series", lambda: bench_memory(plan, tmp, op, report)),
        ]
        postgresql_phases: list[tuple[str, Callable[[], None]]] = [
            ("sign-ins, PostgreSQL", lambda: bench_callback(plan, tmp, op, browser, report, storage="postgresql", pg=pg)),
            ("storm", lambda: production.bench_storm(pg.url(pg.new_database()), SECRET_KEY, op, settings_for(op), report.add)),
            ("hanging provider", lambda: production.bench_hang(pg.url(pg.new_database()), SECRET_KEY, op, settings_for(op), report.add)),
            ("hanging provider, threads", lambda: production.bench_hang(pg.url(pg.new_database()), SECRET_KEY, op, settings_for(op), report.add, threads=4)),
        ]  # fmt: skip
        if pg is None:
            report.add("PostgreSQL scenarios", "skipped: no PostgreSQL binaries (initdb, pg_ctl)", "", False)
            postgresql_phases = []
        phases[3:3] = postgresql_phases
        if args.host_only:
            phases = phases[:1]
        elif args.production_only:
            phases = postgresql_phases
        durations = []
        for label, phase in phases:
            print(f"{label} …", file=sys.stderr, flush=True)
            phase_began = time.perf_counter()
            phase()
            durations.append(f"{label} {time.perf_counter() - phase_began:.0f} s")
        if op.outstanding:
            raise RuntimeError(f"{op.outstanding} authorization codes were never redeemed")
    print()
    print_table(report)
    print()
    print(
        f"Ran in {time.perf_counter() - began:.0f} s ({', '.join(durations)}); load average at the end: {load_average()}."
    )
    print("Targets missed: " + "; ".join(report.missed) if report.missed else "All targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
