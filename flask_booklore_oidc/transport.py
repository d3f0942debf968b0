"""Outbound HTTP to the provider: one pooled :class:`requests.Session` per app, bounded time,
no redirects followed, the configured CA bundle. ``sent`` counts requests (tests, benchmarks)."""

from __future__ import annotations

import threading
from typing import Any

import requests

from .settings import Settings

USER_AGENT = "flask-booklore-oidc"


class Transport:
    def __init__(self) -> None:
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._lock = threading.Lock()
        #: number of requests sent, by method
        self.sent: dict[str, int] = {"GET": 0, "POST": 0}

    def request(self, method: str, url: str, settings: Settings, **kwargs: Any) -> requests.Response:
        """Send one request; raises :class:`requests.RequestException` on network failure."""
        kwargs.setdefault("timeout", settings.http_timeout)
        kwargs.setdefault("allow_redirects", False)
        if settings.ca_bundle:
            kwargs.setdefault("verify", settings.ca_bundle)
        with self._lock:
            self.sent[method] = self.sent.get(method, 0) + 1
        return self._session.request(method, url, **kwargs)

    def get(self, url: str, settings: Settings, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, settings, **kwargs)

    def post(self, url: str, settings: Settings, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, settings, **kwargs)

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def close(self) -> None:
        self._session.close()
