"""Many workers, many readers at once (SPEC §12, §14): the example app under gunicorn and a storm
of complete first sign-ins, shared by ``tests/test_production.py`` and ``make bench``.

:func:`gunicorn` starts ``gunicorn -w N example_app.wsgi:app`` on a loopback port, configured by
the environment as in production (``SECRET_KEY``, ``DATABASE_URL``). :func:`storm` drives
complete sign-ins over real HTTP, one :class:`requests.Session` per browser tab: our start route,
the provider's authorize endpoint (which approves at once the person the tab names with a
``login_as`` parameter: benchmarks/provider.py and tests/fakeprovider.py both understand it), our
callback. Every tab first gets as far as the provider, then all callbacks are fired together,
each person's tabs side by side, so that first sign-ins of one person really do race.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _browser() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    # One connection per request, as nginx talks to its upstream by default (HTTP/1.0): no
    # request goes out on a kept-alive connection that a threaded worker is just closing after
    # its keep-alive timeout (a reset that browsers retry, and a flaky test).
    session.headers["Connection"] = "close"
    return session


@contextmanager
def gunicorn(
    environment: dict[str, str], *, workers: int = 4, threads: int = 1, ready_within: float = 30.0
) -> Iterator[str]:
    """Serve the example app with ``gunicorn -w workers`` (``--threads``: gunicorn's threaded
    worker when more than one) on a loopback port; yields its base URL.

    The schema must exist already (as after ``flask booklore-oidc db upgrade`` on deploy): every
    worker builds the app, and four workers creating the same tables at once would race."""
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="booklore-gunicorn-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    env = {**os.environ, **environment}
    command = [
        sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
        "--timeout", "60", "--graceful-timeout", "5", "--error-logfile", str(log_path),
        "example_app.wsgi:app",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log_path, ready_within)
        yield url
    except BaseException:
        print(f"gunicorn's log (exit status {process.poll()}):\n{log_path.read_text()[-5000:]}")
        raise
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log_path.unlink(missing_ok=True)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    with _browser() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                # A worker still importing the app leaves the request waiting: time out, ask again.
                if http.get(url + "/login", allow_redirects=False, timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {within:.0f} s:\n{log.read_text()[-3000:]}")


@dataclass
class Tab:
    """One browser tab of one person."""

    person: str  # the provider's subject
    http: requests.Session = field(default_factory=_browser)
    callback: str = ""
    status: int = 0
    detail: str = ""
    latency: float = 0.0  # seconds the callback took

    @property
    def signed_in(self) -> bool:
        return self.status == 302 and self.detail == "/"


@dataclass
class StormResult:
    tabs: list[Tab]
    seconds: float

    @property
    def succeeded(self) -> int:
        return sum(tab.signed_in for tab in self.tabs)

    @property
    def failures(self) -> list[str]:
        return [f"{tab.person}: {tab.status} {tab.detail[:300]}" for tab in self.tabs if not tab.signed_in]

    def latency_ms(self, percentile: int) -> float:
        latencies = sorted(tab.latency for tab in self.tabs)
        if len(latencies) == 1:
            return latencies[0] * 1000
        return statistics.quantiles(latencies, n=100, method="inclusive")[percentile - 1] * 1000


def _to_provider(base_url: str, tab: Tab) -> None:
    start = tab.http.get(base_url + "/login/oidc", allow_redirects=False, timeout=30)
    if start.status_code != 302:
        raise RuntimeError(f"start answered {start.status_code}: {start.text[:300]}")
    authorize = start.headers["Location"] + "&" + urlencode({"login_as": tab.person})
    answer = tab.http.get(authorize, allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise RuntimeError(f"authorize answered {answer.status_code}: {answer.text[:300]}")
    tab.callback = answer.headers["Location"]


def _finish(tab: Tab) -> None:
    began = time.perf_counter()
    response = tab.http.get(tab.callback, allow_redirects=False, timeout=60)
    tab.latency = time.perf_counter() - began
    tab.status = response.status_code
    tab.detail = response.headers.get("Location", "") if response.status_code == 302 else response.text


def storm(base_url: str, people: list[str], *, tabs: int = 5, threads: int = 20) -> StormResult:
    """Sign each of ``people`` in from ``tabs`` tabs at once, ``threads`` requests in flight."""
    all_tabs = [Tab(person) for person in people for _ in range(tabs)]  # a person's tabs together
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda tab: _to_provider(base_url, tab), all_tabs))
        list(pool.map(_finish, all_tabs))
    seconds = time.perf_counter() - began
    for tab in all_tabs:
        tab.http.close()
    return StormResult(all_tabs, seconds)
