"""The login page's gate in OIDC-Only Mode (SPEC §8), for our ``/login`` and for a host's own
login view guarded by ``oidc.guard_login_view``: when the page sends the reader straight to the
provider, when it stays (the admin backdoor, after an error, after a sign-out), and the loop
breaker that stops the automatic redirects.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from flask import session, url_for

from . import sessions
from .i18n import gettext
from .settings import Settings

log = logging.getLogger(__name__)

#: automatic redirects from the login page to the provider in a row before the loop breaker
#: shows the login page instead
MAX_AUTOMATIC_REDIRECTS = 3
#: Automatic redirects further apart than this (seconds) are not "in a row": a loop takes a
#: few seconds per turn, a reader who comes back later starts afresh.
LOOP_WINDOW = 300


def stays_on_login_page(args: Mapping[str, str]) -> bool:
    """In OIDC-only mode, the login page shows itself instead of redirecting to the provider: on
    the admin backdoor (``local=true``), after an error (the error page links here with
    ``error=``) and right after a sign-out (``logged_out=1``, or once after our sign-out when a
    host's logout view redirects without it)."""
    just_signed_out = bool(session.pop(sessions.SIGNED_OUT_KEY, False))
    return args.get("local") == "true" or "error" in args or args.get("logged_out") == "1" or just_signed_out


def count_automatic_redirect() -> bool:
    """Count one automatic redirect to the provider; False when it would be one too many.

    The count survives the session rotation of a sign-in (:func:`.sessions.rotate`): the loop
    to break is the one where the provider signs the reader in, the sign-in does not stick (a
    cookie the browser refuses, a user loader that rejects the user) and the app sends them back
    to the login page. It lapses after :data:`LOOP_WINDOW` seconds without an automatic redirect.
    """
    now = int(time.time())
    saved = session.get(sessions.REDIRECTS_KEY)
    count, last = saved if isinstance(saved, list) and len(saved) == 2 else (0, 0)
    if not isinstance(count, int) or not isinstance(last, int) or now - last > LOOP_WINDOW:
        count = 0
    if count >= MAX_AUTOMATIC_REDIRECTS:
        return False
    session[sessions.REDIRECTS_KEY] = [count + 1, now]
    return True


def automatic_redirect(settings: Settings, args: Mapping[str, str], next_url: str) -> str | None:
    """Where the login page sends an anonymous reader right away (the start of a provider
    sign-in), or ``None`` when it shows itself: OIDC-only mode off, :func:`stays_on_login_page`,
    or the loop breaker (then :func:`loop_broken` says so)."""
    if not settings.only_mode_active or stays_on_login_page(args):
        return None
    if count_automatic_redirect():
        return url_for("booklore_oidc.start", next=next_url or None)
    log.warning("OIDC-only mode: %d automatic redirects in a row; showing the login page.", MAX_AUTOMATIC_REDIRECTS)
    return None


def loop_broken(settings: Settings, args: Mapping[str, str]) -> bool:
    """The login page shows itself because the loop breaker stopped the automatic redirects."""
    if not settings.only_mode_active or stays_on_login_page(args):
        return False
    saved = session.get(sessions.REDIRECTS_KEY)
    return isinstance(saved, list) and len(saved) == 2 and saved[0] == MAX_AUTOMATIC_REDIRECTS


def loop_message(settings: Settings) -> str:
    return gettext(
        "Signing in with %(name)s did not finish after %(count)s attempts in a row. Try the button again, or sign "
        "in locally if you are an administrator.",
        name=settings.provider_name,
        count=MAX_AUTOMATIC_REDIRECTS,
    )
