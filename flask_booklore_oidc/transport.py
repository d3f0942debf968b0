"""Outbound HTTP to the provider: one pooled :class:`requests.Session` per app, the configured CA
bundle, and every request bounded (SPEC §5.9):

- a short connect timeout (:data:`CONNECT_TIMEOUT`, or less when the whole deadline is shorter);
- the HTTP timeout as a *total* deadline: the body is read in chunks, each read waits at most
  for what is left of the deadline, so a provider that trickles one byte at a time is cut off
  on time (:class:`TooSlow`);
- at most :data:`MAX_BODY` bytes of body, decoded: a larger ``Content-Length`` is refused before
  reading, and reading stops at the cap (:class:`TooLarge`); the transport never holds more
  than the cap plus one chunk;
- redirects are never followed: a 3xx comes back as the response.

``sent`` counts requests (tests, benchmarks). Every failure is a :class:`requests.RequestException`;
:class:`TooSlow` is also a :class:`requests.Timeout`, so ``except requests.Timeout`` catches both
a slow connect and a slow body.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from .settings import Settings

USER_AGENT = "flask-booklore-oidc"

#: seconds to wait for the TCP (and TLS) connection, at most
CONNECT_TIMEOUT = 3.0
#: bytes of (decoded) body we accept from the provider
MAX_BODY = 1024 * 1024
#: bytes read at a time
CHUNK = 64 * 1024


class TransportError(requests.RequestException):
    """A request we cut short ourselves, rather than one the network failed."""


class TooSlow(TransportError, requests.Timeout):
    """The response did not arrive completely within the deadline."""


class TooLarge(TransportError):
    """The response body is larger than :data:`MAX_BODY`. ``received`` is how many bytes of it
    were read before giving up (0 when ``Content-Length`` already said too much)."""

    def __init__(self, message: str, *, received: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.received = received


#: the deadline (time.monotonic) of the request this thread is sending, if any
_deadline = threading.local()


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        sock.shutdown(socket.SHUT_RDWR)


class _Deadline:
    """Mixed into urllib3's connections: while the status line and headers are read, a timer
    shuts the socket down at the deadline. Each read already waits at most the remaining time,
    but a provider sending one header byte at a time would otherwise never be cut off."""

    sock: socket.socket | None

    def getresponse(self) -> Any:
        deadline: float | None = getattr(_deadline, "value", None)
        if deadline is None or self.sock is None:
            return super().getresponse()  # type: ignore[misc]
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (self.sock,))
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            timer.cancel()


class _HTTPConnection(_Deadline, HTTPConnection):
    pass


class _HTTPSConnection(_Deadline, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


class Transport:
    def __init__(
        self, *, max_body: int = MAX_BODY, connect_timeout: float = CONNECT_TIMEOUT, trust_env: bool = True
    ) -> None:
        """``trust_env=False`` ignores the proxy and CA variables of the environment
        (``HTTPS_PROXY``, ``REQUESTS_CA_BUNDLE``, …): for loopback tests and benchmarks."""
        self._session = requests.Session()
        self._session.trust_env = trust_env
        self._session.headers["User-Agent"] = USER_AGENT
        for prefix in ("http://", "https://"):
            self._session.mount(prefix, _Adapter())
        self._lock = threading.Lock()
        self.max_body = max_body
        self.connect_timeout = connect_timeout
        #: number of requests sent, by method
        self.sent: dict[str, int] = {"GET": 0, "POST": 0}

    def request(
        self, method: str, url: str, settings: Settings, *, timeout: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request and read its whole body, within ``timeout`` seconds in total
        (default: the HTTP timeout of ``settings``). Raises :class:`requests.RequestException`
        on network failure, :class:`TooSlow` or :class:`TooLarge`."""
        total = settings.http_timeout if timeout is None else timeout
        deadline = time.monotonic() + total
        kwargs["timeout"] = urllib3.Timeout(connect=min(self.connect_timeout, total), read=total, total=total)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        if settings.ca_bundle:
            kwargs.setdefault("verify", settings.ca_bundle)
        with self._lock:
            self.sent[method] = self.sent.get(method, 0) + 1
        _deadline.value = deadline
        try:
            response = self._session.request(method, url, **kwargs)
        except requests.ConnectionError:
            if time.monotonic() >= deadline:
                raise TooSlow(f"The response did not arrive within {total:g} s.") from None
            raise
        finally:
            _deadline.value = None
        try:
            response._content = self._read_body(response, deadline, total)
            # Read to the end: the connection goes back to the pool instead of being closed.
            response._content_consumed = True
        finally:
            response.close()
        return response

    def _read_body(self, response: requests.Response, deadline: float, total: float) -> bytes:
        length = response.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > self.max_body:
            raise TooLarge(
                f"The response announces {int(length)} bytes; at most {self.max_body} are accepted.", response=response
            )
        raw: urllib3.BaseHTTPResponse | None = response.raw
        if raw is None:
            # An adapter that produced the body itself (an in-process provider in benchmarks).
            if len(response.content) > self.max_body:
                raise TooLarge(f"The response is larger than {self.max_body} bytes.", response=response)
            return response.content
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TooSlow(f"The response did not arrive within {total:g} s.", response=response)
            if isinstance(sock, socket.socket):
                # One read waits no longer than what is left of the whole deadline.
                sock.settimeout(remaining)
            try:
                chunk = raw.read1(CHUNK, decode_content=True)
            except ReadTimeoutError:
                raise TooSlow(f"The response did not arrive within {total:g} s.", response=response) from None
            except Urllib3Error as exc:
                raise requests.ConnectionError(exc, response=response) from None
            if not chunk:
                return bytes(body)
            if len(body) + len(chunk) > self.max_body:
                raise TooLarge(
                    f"The response is larger than {self.max_body} bytes.",
                    received=len(body) + len(chunk),
                    response=response,
                )
            body += chunk

    def get(self, url: str, settings: Settings, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, settings, **kwargs)

    def post(self, url: str, settings: Settings, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, settings, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def mount(self, prefix: str, adapter: requests.adapters.BaseAdapter) -> None:
        """Send requests for URLs starting with ``prefix`` through ``adapter`` (a requests
        transport adapter): an in-process provider for benchmarks, a proxy-aware one."""
        self._session.mount(prefix, adapter)

    def close(self) -> None:
        self._session.close()
