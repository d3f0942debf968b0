"""The example app for a WSGI server: ``gunicorn -w 4 example_app.wsgi:app``.

Configured by the environment:

- ``SECRET_KEY`` (required; the same in every worker and on every host);
- ``DATABASE_URL``, e.g. ``postgresql+psycopg://booklore:…@db.internal/booklore`` (a SQLite file
  in the instance folder when unset);
- ``SESSION_COOKIE_SECURE=1`` when readers reach the app over HTTPS (the session and the
  remember-me cookie are then sent over HTTPS only);
- ``TRUSTED_PROXIES=1`` behind one reverse proxy (nginx): werkzeug's ``ProxyFix`` then takes the
  client address, scheme and host from that many ``X-Forwarded-*`` hops. Leave it unset when
  nothing sits in front, or anyone could claim any address (the sign-in throttle counts per
  address);
- any ``BOOKLORE_OIDC_*`` setting (``BOOKLORE_OIDC_PUBLIC_URL=https://books.example.org``).
"""

from __future__ import annotations

import os

from werkzeug.middleware.proxy_fix import ProxyFix

from example_app import create_app


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


_https = _flag("SESSION_COOKIE_SECURE")
app = create_app({"SESSION_COOKIE_SECURE": _https, "REMEMBER_COOKIE_SECURE": _https})
if proxies := int(os.environ.get("TRUSTED_PROXIES", "0") or 0):
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
