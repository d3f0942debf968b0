"""A loopback HTTP server that misbehaves on purpose: trickles, floods, lies about lengths,
redirects. Tests set ``routes`` (path -> handler function) and read ``hits`` and ``sent``.

The sleeps of a trickling answer live here, in the server's thread, never in a test.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Route = Callable[["_Handler"], None]


class _Handler(BaseHTTPRequestHandler):
    server: HostileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.hits[path] += 1
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        route = self.server.routes.get(path)
        if route is None:
            self.send_body(404, b"not here", "text/plain")
            return
        route(self)

    do_GET = do_POST = _dispatch

    # -- helpers for routes ---------------------------------------------------------------------

    def send_body(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.write(body)

    def send_json(self, document: Any, status: int = 200) -> None:
        self.send_body(status, json.dumps(document).encode())

    def write(self, data: bytes) -> bool:
        """Send ``data``; False once the client has gone. Counts what was sent."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        with self.server.lock:
            self.server.sent[self.path.split("?", 1)[0]] += len(data)
        return True


class HostileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.routes: dict[str, Route] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        #: body bytes the server managed to hand to the socket, per path
        self.sent: collections.Counter[str] = collections.Counter()
        #: TCP connections accepted
        self.connections = 0
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


# -- ready-made misbehaviours --------------------------------------------------------------------


def trickle(interval: float = 0.5, length: int = 1000) -> Route:
    """200 with a ``length``-byte JSON-looking body, one byte every ``interval`` seconds."""

    def route(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        for _ in range(length):
            if not handler.write(b" "):
                return
            time.sleep(interval)

    return route


def trickle_headers(interval: float = 0.5, count: int = 1000) -> Route:
    """A status line, then one header byte every ``interval`` seconds."""

    def route(handler: _Handler) -> None:
        if not handler.write(b"HTTP/1.1 200 OK\r\nX-Slow: "):
            return
        for _ in range(count):
            if not handler.write(b"a"):
                return
            time.sleep(interval)

    return route


def flood(total: int, *, announce: bool = True, piece: int = 64 * 1024) -> Route:
    """200 with a ``total``-byte body sent as fast as the client takes it."""

    def route(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if announce:
            handler.send_header("Content-Length", str(total))
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        left = total
        while left > 0:
            if not handler.write(b"x" * min(piece, left)):
                return
            left -= piece

    return route


def announce_length(length: int, actually: bytes = b"{}") -> Route:
    """Headers that announce ``length`` bytes, then only ``actually`` and a hang-up."""

    def route(handler: _Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.write(actually)
        handler.close_connection = True

    return route


def redirect(location: str, status: int = 302) -> Route:
    def route(handler: _Handler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def json_answer(document: Any, status: int = 200) -> Route:
    def route(handler: _Handler) -> None:
        handler.send_json(document, status)

    return route


def html_answer(text: str, status: int) -> Route:
    def route(handler: _Handler) -> None:
        handler.send_body(status, f"<!doctype html><title>{text}</title><h1>{text}</h1>".encode(), "text/html")

    return route
