"""Where we send browsers: the one public base for every URI we hand out, and the rule for
``next`` (SPEC §5.8: a same-origin relative path, or the app's index)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request, url_for

from .settings import Settings

#: the longest ``next`` we keep (a longer one is dropped: it is stored with a pending sign-in)
MAX_NEXT = 2000


def is_safe_next(target: str | None) -> bool:
    """True for a relative path on this site: ``/books/1?x=y``; false for anything a browser
    could read as another origin (``//evil``, ``/\\evil``, ``https://…``, ``javascript:``), and
    for anything longer than :data:`MAX_NEXT`."""
    if not target or not target.startswith("/") or target.startswith("//") or len(target) > MAX_NEXT:
        return False
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. an unbalanced "[" taken for an IPv6 host
        return False
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str) -> str:
    return target if target is not None and is_safe_next(target) else default


def external_url(settings: Settings, endpoint: str, **values: object) -> str:
    """Absolute URL of one of our routes, built on the Public URL when it is set.

    The Public URL is the app's own external root (what readers type), so the path is taken
    relative to the app's script root to avoid doubling a prefix.
    """
    path = url_for(endpoint, **values)  # type: ignore[arg-type]
    if not settings.public_url:
        return request.host_url.rstrip("/") + path
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root) :]
    return settings.public_url.rstrip("/") + path
