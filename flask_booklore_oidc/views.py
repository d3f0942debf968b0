"""The reader's views: the login page, local sign-in, the start of a provider sign-in, its end
at the callback, sign-out, and the one error page. Each translates HTTP to the services
(:mod:`.signin`, :mod:`.sessions`, :mod:`.flow`) and renders what they return; the routes are
attached in :mod:`.routes`.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import Row

from . import activity, sessions, signals
from .discovery import issuers_match
from .errors import ERRORS, OIDCError
from .forms import LoginForm, LogoutForm, csrf_failed
from .pages import may_open_settings
from .settings import Settings
from .signin import (
    LocalOutcome,
    check_local_sign_in,
    flow_for,
    note_local_attempt,
    sign_in_locally,
    sign_in_with_provider,
)
from .state import current_settings, current_state
from .urls import external_url, safe_next

log = logging.getLogger(__name__)

#: OIDC-only mode: automatic redirects from /login to the provider in a row before the loop
#: breaker shows the login page instead.
MAX_AUTOMATIC_REDIRECTS = 3
#: Automatic redirects further apart than this (seconds) are not "in a row": a loop takes a
#: few seconds per turn, a reader who comes back later starts afresh.
LOOP_WINDOW = 300

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: the start of a sign-in checks discovery when the cached copy is older than this (seconds): a
#: provider that stopped ends on our provider_unreachable page within a minute, not on the
#: browser's "cannot connect" page; it costs at most one request per minute and process
RECHECK_PROVIDER_AFTER = 60


def index() -> str:
    return request.script_root + "/" if request.script_root else "/"


def template_context() -> dict[str, Any]:
    """Names every template of ours may use."""
    settings = current_settings()
    return {"booklore_oidc_settings": settings, "provider_name": settings.provider_name}


# -- errors ------------------------------------------------------------------------------------


def render_error(error: OIDCError) -> ResponseReturnValue:
    """The one error page of our routes (a host's ``@app.errorhandler(OIDCError)`` wins).

    The failure goes on the activity list (its reference is ``error.reference``). Readers (and
    anonymous visitors) get the short version: what to do, the code and the reference; whoever
    may open the settings page gets the technical detail and the guide's advice."""
    session_ = current_state().adapter.session
    session_.rollback()  # nothing half-written: the activity row must not commit a failed step
    error.reference = activity.record(
        session_,
        error.error_code,
        username=error.username,
        subject=error.subject,
        client_address=request.remote_addr,
        detail=error.detail,
    )
    log.warning("Sign-in failed (reference %s): %s", error.reference, error)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    signals.login_failed.send(app, code=error.error_code, detail=error.detail)
    # Shown again by the loop breaker, should the reader end up going round in circles.
    session[sessions.LAST_ERROR_KEY] = error.error_code
    host_handler = _host_error_handler(error)
    if host_handler is not None:
        return host_handler(error)  # type: ignore[no-any-return]
    settings = current_settings()
    # Neither link redirects to the provider again (login() stays on the page for both), so an
    # error can never turn into a loop.
    back = url_for("booklore_oidc.login", local="true") if settings.only_mode_active else None
    if back is None:
        back = url_for("booklore_oidc.login", error=error.error_code)
    technical = current_user.is_authenticated and may_open_settings(current_user._get_current_object())
    return render_template(
        "booklore_oidc/error.html", error=error, back_url=back, technical=technical
    ), error.code or 500


def _host_error_handler(error: OIDCError) -> Any:
    """The app-wide handler the host registered for :class:`OIDCError`, if any."""
    handlers = current_app.error_handler_spec.get(None, {}).get(None, {})
    for cls in type(error).__mro__:
        if not issubclass(cls, OIDCError):
            return None
        if cls in handlers:
            return handlers[cls]
    return None


# -- the login page and local sign-in ---------------------------------------------------------


def _login_page(
    form: LoginForm,
    *,
    status: int = 200,
    message: str | None = None,
    local: bool = False,
    error_code: str | None = None,
) -> tuple[str, int]:
    """The login page. In OIDC-only mode the local form is shown only on the admin backdoor
    (``?local=true``) or when ``local`` (answering a post of that form); elsewhere a link to it."""
    settings = current_settings()
    code = error_code or request.args.get("error") or ""
    return (
        render_template(
            "booklore_oidc/login.html",
            login_form=form,
            show_button=settings.oidc_active,
            show_form=not settings.only_mode_active or local or request.args.get("local") == "true",
            next_url=safe_next(request.values.get("next"), ""),
            error_info=ERRORS.get(code),  # type: ignore[call-overload]
            message=message,
            logged_out=request.args.get("logged_out") == "1",
        ),
        status,
    )


def _stays_on_login_page() -> bool:
    """In OIDC-only mode, /login shows the page instead of redirecting to the provider: on the
    admin backdoor, after an error (the error page links here) and right after a sign-out."""
    args = request.args
    return args.get("local") == "true" or "error" in args or args.get("logged_out") == "1"


def _count_automatic_redirect() -> bool:
    """Count one automatic redirect to the provider; False when it would be one too many.

    The count survives the session rotation of a sign-in (:func:`.sessions.rotate`): the loop
    to break is the one where the provider signs the reader in, the sign-in does not stick (a
    cookie the browser refuses, a user loader that rejects the user) and the app sends them back
    to /login. It lapses after :data:`LOOP_WINDOW` seconds without an automatic redirect.
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


def login() -> ResponseReturnValue:
    """The login page: the local form and/or the provider's button. In OIDC-only mode it sends
    the reader straight to the provider, except as :func:`_stays_on_login_page` says."""
    settings = current_settings()
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), index()))
    if request.args.get("logged_out") == "1" and "state" in request.args:
        # The provider's way back after its sign-out carries our throwaway ``state``: drop it
        # from the address bar (and from bookmarks).
        return redirect(url_for("booklore_oidc.login", logged_out="1"))
    form = LoginForm(next=safe_next(request.args.get("next"), ""))
    if not settings.only_mode_active or _stays_on_login_page():
        return _login_page(form)
    if _count_automatic_redirect():
        return redirect(url_for("booklore_oidc.start", next=form.next.data or None))
    log.warning("OIDC-only mode: %d automatic redirects in a row; showing the login page.", MAX_AUTOMATIC_REDIRECTS)
    return _login_page(
        form,
        error_code=session.get(sessions.LAST_ERROR_KEY),
        message=(
            f"Signing in with {settings.provider_name} did not finish after {MAX_AUTOMATIC_REDIRECTS} "
            "attempts in a row. Try the button again, or sign in locally if you are an administrator."
        ),
    )


def login_post() -> ResponseReturnValue:
    """Local sign-in through the adapter's password check. In OIDC-only mode only admins may
    sign in; everyone else gets one and the same refusal."""
    settings = current_settings()
    form = LoginForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            return _login_page(form, status=400, message="The form expired; please try again.", local=True)
        return _login_page(form, status=400, local=True)
    state = current_state()
    outcome, user = check_local_sign_in(state, settings, form.username.data or "", form.password.data or "")
    if outcome == LocalOutcome.DISABLED:
        # One answer, byte for byte but for the CSRF token, whether the username exists, is an
        # admin or not, and whether the password was right: a fresh form, not one that echoes
        # the username, and nothing that depends on the user.
        log.info("Local sign-in refused in OIDC-only mode.")
        note_local_attempt(state, "local_login_disabled", form.username.data or "")
        signals.login_failed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            code="local_login_disabled",
            detail="Local sign-in refused in OIDC-only mode.",
        )
        return _login_page(
            LoginForm(formdata=None, next=form.next.data),
            status=403,
            local=True,
            message=(
                "Local sign-in is for administrators only while OIDC-Only Mode is on, and these "
                f"details were not accepted. Sign in with {settings.provider_name} instead."
            ),
        )
    if outcome == LocalOutcome.INVALID:
        note_local_attempt(state, activity.INVALID_CREDENTIALS, form.username.data or "")
        return _login_page(form, status=401, message="Invalid username or password.", local=True)
    if not sign_in_locally(state, user):
        raise OIDCError("account_inactive", "This account may not sign in.")
    return redirect(safe_next(form.next.data, index()))


# -- OIDC sign-in -----------------------------------------------------------------------------


def start() -> ResponseReturnValue:
    """Start a sign-in at the provider; also the Client Launch URL.

    Takes ``next``, and the parameters of a third-party initiated login (OpenID Connect Core
    §4), by GET or POST: ``iss`` must be our provider's issuer, ``login_hint`` is passed on,
    and ``target_link_uri`` is where the reader lands, if it is on this site.
    """
    settings = current_settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    params = request.values
    state = current_state()
    flow = flow_for(state, settings)
    flow.cache.metadata(settings, max_age=RECHECK_PROVIDER_AFTER)  # provider_unreachable when it stopped
    iss = params.get("iss")
    if iss is not None:
        issuer = flow.cache.metadata(settings).issuer
        if not issuers_match(issuer, iss):
            raise OIDCError(
                "issuer_mismatch",
                f"This sign-in link names the issuer {iss!r}, but this app signs in with {issuer!r}. "
                "Start from this app's login page, or check the Client Launch URL at the provider.",
            )
    target = params.get("target_link_uri")
    next_url = _own_target(settings, target) if target else safe_next(params.get("next"), "")
    url = flow.begin(
        redirect_uri=external_url(settings, "booklore_oidc.callback"),
        browser_key=sessions.browser_key(),
        next_url=next_url,
        login_hint=params.get("login_hint") or None,
        purge_expired=state.purge_due("transactions"),
    )
    return redirect(url)


def _own_target(settings: Settings, target: str) -> str:
    """``target_link_uri`` as a local path when it points at this site (the Public URL's origin,
    or the request's when none is set), else ``""`` (the index)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        own = urlsplit(settings.public_url or request.host_url)
        try:
            same_origin = (
                parts.scheme.lower() == own.scheme.lower()
                and parts.hostname == own.hostname
                and parts.username is None
                and parts.password is None
                and (parts.port or _DEFAULT_PORTS.get(parts.scheme.lower()))
                == (own.port or _DEFAULT_PORTS.get(own.scheme.lower()))
            )
        except ValueError:  # a port that is not a number
            same_origin = False
        if not same_origin:
            log.info("Third-party login: ignoring a target_link_uri on another site.")
            return ""
        target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return safe_next(target, "")


def take_transaction() -> Row[Any]:
    """The callback's first step: take the sign-in transaction named by ``state``, once."""
    settings = current_settings()
    try:
        return flow_for(current_state(), settings).consume(request.args.get("state"), session.get(sessions.BROWSER_KEY))
    except OIDCError:
        if not settings.oidc_active:  # with OIDC off, only a test sign-in can come back here
            raise OIDCError("oidc_disabled") from None
        raise


def finish_sign_in(transaction: Row[Any]) -> ResponseReturnValue:
    """The callback of a reader's sign-in: verify the provider's answer, sign the person in."""
    settings = current_settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    state = current_state()
    completed = flow_for(state, settings).complete(request.args, transaction=transaction)
    sign_in_with_provider(state, settings, completed)
    return redirect(safe_next(completed.next_url, index()))


# -- sign-out ---------------------------------------------------------------------------------


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; POST (with CSRF) signs out here, then at the provider.

    The provider's end-session endpoint gets ``id_token_hint``, ``client_id``,
    ``post_logout_redirect_uri`` (``/login?logged_out=1``, which never redirects to the provider
    again, even in OIDC-only mode) and ``state``. It is skipped when the reader did not sign in
    through the provider, provider logout is off, OIDC is off (``FORCE_DISABLE_OIDC`` too), or the
    provider has no end-session endpoint.
    """
    form = LogoutForm()
    cancel = _came_from()
    if request.method == "GET":
        return render_template("booklore_oidc/logout.html", logout_form=form, cancel_url=cancel)
    if not form.validate_on_submit():
        return render_template(
            "booklore_oidc/logout.html",
            logout_form=form,
            cancel_url=cancel,
            message="The sign-out form expired; please try again.",
        ), 400
    return redirect(sign_out())


def _came_from() -> str:
    """Where Cancel on the sign-out page goes: the page the reader came from, when it is on this
    site (and not the sign-out page itself), else the index."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host or parts.path == request.path:
        return index()
    return safe_next(urlunsplit(("", "", parts.path or "/", parts.query, "")), index())


def sign_out() -> str:
    """Sign the current user out here; returns where to send the browser: the provider's
    end-session endpoint when it applies (see :func:`logout`), else the login page."""
    settings = current_settings()
    state = current_state()
    ended = sessions.end_current(state)
    user = current_user._get_current_object() if current_user.is_authenticated else None
    state.adapter.logout_user()
    session.clear()
    target = url_for("booklore_oidc.login", logged_out="1")
    provider_logout = False
    if ended.with_provider and settings.oidc_active and settings.provider_logout:
        try:
            metadata = state.cache.metadata(settings)
        except OIDCError as exc:
            log.warning("Skipping provider sign-out: %s", exc)
            metadata = None
        if metadata is not None and metadata.end_session_endpoint:
            params = [("id_token_hint", ended.id_token)] if ended.id_token else []
            params += [
                ("client_id", settings.client_id),
                ("post_logout_redirect_uri", external_url(settings, "booklore_oidc.login", logged_out="1")),
                ("state", secrets.token_urlsafe(24)),
            ]
            target = add_params_to_uri(metadata.end_session_endpoint, params)
            provider_logout = True
    signals.logged_out.send(current_app._get_current_object(), user=user, provider_logout=provider_logout)  # type: ignore[attr-defined]
    return target
