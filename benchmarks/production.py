"""The production scenarios of ``make bench`` (SPEC §12, §14): the example app under
``gunicorn -w 4`` on PostgreSQL.

- **Storm**: 200 concurrent complete first sign-ins of 40 new people (5 tabs each), as
  ``tests/test_production.py`` does: how many succeed, how many users and identities exist after,
  the callbacks' latency.
- **A hanging provider**: readers keep clicking "Sign in with …" while an administrator signs in
  locally, once with a provider that answers and once with one that accepts connections and
  never answers. The transport's total deadline and the 30 s negative cache of discovery
  failures should leave the administrator's sign-in latency unchanged.

PostgreSQL is a throwaway server started the way the tests start theirs (``tests/pgserver.py``).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from flask import Flask
from sqlalchemy import func, select

from benchmarks.provider import LightProvider
from benchmarks.storm import gunicorn, storm
from example_app import create_app
from example_app.models import User, db
from example_app.seed import seed_demo
from flask_booklore_oidc.models import Identity

#: the storm: people, tabs per person, requests in flight
PEOPLE, TABS, THREADS = 40, 5, 20
WORKERS = 4
#: the hang: reader threads clicking, administrator sign-ins measured per scenario
READERS, ADMIN_SIGNINS = 8, 40
#: a reader clicks again this long after the last answer: people, not a load generator, so that
#: what is compared is the hang and not two cores saturated by clicks
READER_PAUSE = 0.25
ADMIN_PASSWORD = "bench-admin-password"
HANG_TIMEOUT = 5.0  # the provider HTTP timeout (the setting) during the hang scenario


@contextmanager
def postgresql() -> Iterator[Any]:
    """A throwaway PostgreSQL server (``tests/pgserver.py``) with durability on (``fsync``,
    synchronous commits: a commit waits for the disk, as in production), or ``None`` without
    binaries."""
    from tests.pgserver import PostgresServer, find_binaries

    binaries = find_binaries()
    if binaries is None:
        yield None
        return
    server = PostgresServer(binaries, durable=True).start()
    try:
        yield server
    finally:
        server.stop()


def _prepare(url: str, secret_key: str, settings: dict[str, Any]) -> Flask:
    """Schema, the seeded library (admin included) and the settings, as a deploy leaves them."""
    app = create_app({"SECRET_KEY": secret_key, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        seed_demo(ADMIN_PASSWORD)
    save_settings(app, settings)
    return app


def save_settings(app: Flask, settings: dict[str, Any]) -> None:
    with app.test_request_context():
        app.extensions["booklore_oidc"].save_settings(settings)
    with app.app_context():
        db.session.remove()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_storm(
    url: str, secret_key: str, op: LightProvider, settings: dict[str, Any], add: Callable[..., None]
) -> None:
    app = _prepare(url, secret_key, settings)
    people = [f"storm-{n:03d}" for n in range(PEOPLE)]
    for n, sub in enumerate(people):
        op.add_user(sub, preferred_username=f"storm{n:03d}", email=f"storm{n:03d}@example.test",
                    email_verified=True, name=f"Storm Reader {n}", groups=["readers"])  # fmt: skip
    with app.app_context():
        users_before = db.session.scalar(select(func.count()).select_from(User)) or 0
        db.session.remove()
    with gunicorn({"SECRET_KEY": secret_key, "DATABASE_URL": url}, workers=WORKERS) as base:
        op.redirect_uris.add(base + "/oauth2-callback")
        result = storm(base, people, tabs=TABS, threads=THREADS)
    with app.app_context():
        users = (db.session.scalar(select(func.count()).select_from(User)) or 0) - users_before
        identities = db.session.scalar(select(func.count()).select_from(Identity)) or 0
        db.session.remove()
        db.engine.dispose()
    total = PEOPLE * TABS
    add(
        f"Storm, {WORKERS} gunicorn workers, PostgreSQL: {total} concurrent first sign-ins of {PEOPLE} people "
        f"({TABS} tabs each, {THREADS} in flight) that succeed",
        f"{result.succeeded} / {total} in {result.seconds:.1f} s",
        f"{total} / {total}",
        result.succeeded == total,
    )
    for failure in result.failures[:5]:
        print(f"    failed: {failure}")
    add("Storm: users / identities created", f"{users} / {identities}", f"{PEOPLE} / {PEOPLE}",
        users == PEOPLE and identities == PEOPLE)  # fmt: skip
    add("Storm: callback latency p50 / p95", f"{result.latency_ms(50):.0f} / {result.latency_ms(95):.0f} ms")


class HangingProvider:
    """A provider that accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.issuer = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="hanging-provider", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


def _admin_signs_in(base: str) -> float:
    """One local sign-in of the administrator (login page, then the form); seconds."""
    began = time.perf_counter()
    with requests.Session() as http:
        http.trust_env = False
        page = http.get(base + "/login", timeout=60)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        if token is None:
            raise RuntimeError(f"no CSRF token on the login page ({page.status_code})")
        answer = http.post(
            base + "/login",
            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token.group(1), "next": ""},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"local sign-in answered {answer.status_code}: {answer.text[:300]}")
    return time.perf_counter() - began


def _while_readers_click(
    base: str, readers: int, measure: Callable[[], list[float]]
) -> tuple[list[float], Counter[int]]:
    """Run ``measure`` while ``readers`` threads keep clicking the sign-in button."""
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def click() -> None:
        with requests.Session() as http:
            http.trust_env = False
            while not stop.is_set():
                status = http.get(base + "/login/oidc", allow_redirects=False, timeout=60).status_code
                with lock:
                    statuses[status] += 1
                stop.wait(READER_PAUSE)

    threads = [threading.Thread(target=click, daemon=True) for _ in range(readers)]
    for thread in threads:
        thread.start()
    try:
        return measure(), statuses
    finally:
        stop.set()
        for thread in threads:
            thread.join(90)


def bench_hang(
    url: str,
    secret_key: str,
    op: LightProvider,
    settings: dict[str, Any],
    add: Callable[..., None],
    *,
    threads: int = 1,
) -> None:
    """``threads``: per worker (gunicorn's ``--threads``); 1 is the sync worker."""
    app = _prepare(url, secret_key, {**settings, "http_timeout": HANG_TIMEOUT})
    hanging = HangingProvider()

    def admin_series() -> list[float]:
        return [_admin_signs_in(base) for _ in range(ADMIN_SIGNINS)]

    try:
        with gunicorn({"SECRET_KEY": secret_key, "DATABASE_URL": url}, workers=WORKERS, threads=threads) as base:
            for _ in range(2 * WORKERS):  # every worker warm (app loaded, connections pooled)
                _admin_signs_in(base)
            quiet = admin_series()
            answering, answered = _while_readers_click(base, READERS, admin_series)
            save_settings(app, {"issuer_uri": hanging.issuer})
            hung_began = time.perf_counter()
            hung, statuses = _while_readers_click(base, READERS, admin_series)
            hung_seconds = time.perf_counter() - hung_began
    finally:
        hanging.close()
        with app.app_context():
            db.engine.dispose()

    def summary(values: list[float]) -> str:
        return (
            f"{_percentile(values, 50) * 1000:.0f} / {_percentile(values, 95) * 1000:.0f} / {max(values) * 1000:.0f} ms"
        )

    workers = f"{WORKERS} workers" + (f" x {threads} threads" if threads > 1 else "")
    add(f"Hang ({workers}): admin local sign-in p50 / p95 / max, nobody else", summary(quiet))
    add(
        f"Hang ({workers}): same, {READERS} readers clicking the button (every {READER_PAUSE} s), provider answers",
        summary(answering),
    )
    add(
        f"Hang ({workers}): same, {READERS} readers clicking the button, provider never answers (timeout {HANG_TIMEOUT:.0f} s)",
        summary(hung),
    )
    ratio = _percentile(hung, 50) / _percentile(answering, 50)
    add(
        f"Hang ({workers}): admin p50, never-answering / answering provider", f"{ratio:.2f}", "about 1.0", ratio <= 1.25
    )
    clicks = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    add(
        f"Hang ({workers}): the readers' clicks while the provider never answered",
        f"{sum(statuses.values())} in {hung_seconds:.0f} s ({clicks}); answering: {sum(answered.values())}",
    )
