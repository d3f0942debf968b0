"""The reader's views: the login page, local sign-in, the start of a provider sign-in, its end
at the callback, sign-out, and the one error page. Each translates HTTP to the services
(:mod:`.signin`, :mod:`.sessions`, :mod:`.flow`) and renders what they return; the routes are
attached in :mod:`.routes`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from contextlib import suppress
from functools import wraps
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from flask import Response, current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import Row
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from . import activity, gate, i18n, sessions, signals
from .discovery import issuers_match
from .errors import ERRORS, OIDCError
from .forms import LinkForm, LoginForm, LogoutForm, csrf_failed
from .i18n import gettext, lazy_gettext, ngettext
from .migrate import SchemaError
from .pages import may_open_settings
from .settings import Settings
from .signin import (
    LocalOutcome,
    ProofNeeded,
    ProofOutcome,
    cancel_link,
    check_local_sign_in,
    finish_link,
    flow_for,
    note_local_attempt,
    pending_account,
    sign_in_locally,
    sign_in_with_provider,
)
from .state import current_settings, current_state, login_endpoint, render_page
from .throttle import minutes
from .urls import external_url, safe_next

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: the start of a sign-in checks discovery when the cached copy is older than this (seconds): a
#: provider that stopped ends on our provider_unreachable page within a minute, not on the
#: browser's "cannot connect" page; it costs at most one request per minute and process
RECHECK_PROVIDER_AFTER = 60


def index() -> str:
    return request.script_root + "/" if request.script_root else "/"


def template_context() -> dict[str, Any]:
    """Names every template of ours may use."""
    try:
        settings = current_settings()
    except OperationalError:  # the unavailable page is being rendered: no database to ask
        settings = Settings()
    return {
        "booklore_oidc_settings": settings,
        "provider_name": settings.provider_name,
        "button_label": sign_in_label(settings.provider_name),
    }


def sign_in_label(provider_name: str) -> str:
    """The text of the sign-in button, in the reader's language."""
    return gettext("Sign in with %(name)s", name=provider_name)


def render_unavailable(error: OperationalError | SchemaError) -> ResponseReturnValue:
    """The database cannot be reached (a restart, a network blip) or holds an older schema of
    our tables: a 503 that says so, and a session left clean for the next request, which the
    pool's pre-ping reconnects (SPEC §14). The log says what to do."""
    if isinstance(error, SchemaError):
        log.error("%s", error)
    else:
        log.error("The database cannot be reached: %s", type(error.orig).__name__ if error.orig else error)
    with suppress(SQLAlchemyError):
        current_state().adapter.session.rollback()
    # Rendered without the context processors: the host's (Flask-Login's current_user) would
    # ask the database again.
    template = current_app.jinja_env.get_template("booklore_oidc/unavailable.html")
    try:
        page = template.render()
    except SQLAlchemyError:  # the host's locale selector asked the database: say it in English
        with suppress(SQLAlchemyError):
            current_state().adapter.session.rollback()
        page = template.render(**i18n.english_template_globals())
    response = current_app.make_response((page, 503))
    response.headers["Retry-After"] = "30"
    return response


# -- headers -----------------------------------------------------------------------------------

#: endpoints a provider may show in a frame of its own (front-channel logout's hidden iframe)
FRAMEABLE = frozenset({"booklore_oidc.frontchannel_logout"})


def protect_response(response: Response) -> Response:
    """Headers of every page of ours (SPEC §5.12): never cached (admin pages, personal data,
    the callback), never framed (but :data:`FRAMEABLE`), and the callback's URL — it carries the
    provider's code — is not sent on as a referrer."""
    endpoint = request.endpoint or ""
    if endpoint.endswith(".static"):
        return response
    response.headers["Cache-Control"] = "no-store"
    if endpoint not in FRAMEABLE:
        response.headers.setdefault("X-Frame-Options", "DENY")
        policy = response.headers.get("Content-Security-Policy")
        if not policy:
            response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        elif "frame-ancestors" not in policy:
            response.headers["Content-Security-Policy"] = policy + "; frame-ancestors 'none'"
    if endpoint == "booklore_oidc.callback":
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


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
    login = login_endpoint()
    back = url_for(login, local="true") if settings.only_mode_active else url_for(login, error=error.error_code)
    technical = current_user.is_authenticated and may_open_settings(current_user._get_current_object())
    return render_page(
        "booklore_oidc/error.html", error=error, back_url=back, technical=technical, more_url=docs_link(error)
    ), error.code or 500


def docs_link(error: OIDCError) -> str | None:
    """The documentation's troubleshooting entry for ``error`` (``BOOKLORE_OIDC_DOCS_URL``;
    empty: no link)."""
    base = str(current_app.config.get("BOOKLORE_OIDC_DOCS_URL") or "")
    if not base:
        return None
    return f"{base.rstrip('/')}/troubleshooting.html#{error.error_code}"


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
        render_page(
            "booklore_oidc/login.html",
            login_form=form,
            show_button=settings.oidc_active,
            show_form=not settings.only_mode_active or local or request.args.get("local") == "true",
            next_url=safe_next(request.values.get("next"), ""),
            error_info=ERRORS.get(code),  # type: ignore[call-overload]
            message=message,
            logged_out=request.args.get("logged_out") == "1",
            provider_logged_out=request.args.get("logged_out") == "1"
            and session.pop(sessions.LOGOUT_STATE_KEY, None) is True,
        ),
        status,
    )


def login() -> ResponseReturnValue:
    """The login page: the local form and/or the provider's button. In OIDC-only mode it sends
    the reader straight to the provider, except as :func:`.gate.stays_on_login_page` says."""
    settings = current_settings()
    if "state" in request.args:
        return _back_from_provider_logout()
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), index()))
    if request.args.get("logged_out") == "1" and "state" in request.args:
        # The provider's way back after its sign-out carries our throwaway ``state``: drop it
        # from the address bar (and from bookmarks).
        return redirect(url_for("booklore_oidc.login", logged_out="1"))
    form = LoginForm(next=safe_next(request.args.get("next"), ""))
    target = gate.automatic_redirect(settings, request.args, form.next.data or "")
    if target is not None:
        return redirect(target)
    if gate.loop_broken(settings, request.args):
        return _login_page(form, error_code=session.get(sessions.LAST_ERROR_KEY), message=gate.loop_message(settings))
    return _login_page(form)


def _back_from_provider_logout() -> ResponseReturnValue:
    """The provider sent the reader back from its end-session endpoint with our ``state``.

    Checked against the one :func:`sign_out` remembered in this browser's session: when it
    matches, the next page confirms the sign-out at the provider; when not (forged, replayed,
    another tab's), it does not, and the mismatch is logged. Either way the browser is sent
    once to the same page without ``state``, so it never stays in the address bar or history.
    """
    expected = session.pop(sessions.LOGOUT_STATE_KEY, None)
    returned = request.args.get("state", "")
    if isinstance(expected, str) and expected and hmac.compare_digest(expected.encode(), returned.encode()):
        session[sessions.LOGOUT_STATE_KEY] = True  # shown once by the page redirected to
    else:
        log.warning("Back from the provider's sign-out with a state this browser did not send; not confirming it.")
    args: dict[str, Any] = {key: value for key, value in request.args.items() if key != "state"}
    return redirect(url_for("booklore_oidc.login", **args))


def login_post() -> ResponseReturnValue:
    """Local sign-in through the adapter's password check. In OIDC-only mode only admins may
    sign in; everyone else gets one and the same refusal."""
    settings = current_settings()
    form = LoginForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            return _login_page(form, status=400, message=gettext("The form expired; please try again."), local=True)
        return _login_page(form, status=400, local=True)
    state = current_state()
    result = check_local_sign_in(
        state, settings, form.username.data or "", form.password.data or "", request.remote_addr
    )
    outcome, user = result.outcome, result.user
    if outcome == LocalOutcome.THROTTLED:
        page, status = _login_page(form, status=429, message=too_many_attempts(result.wait), local=True)
        return page, status, {"Retry-After": str(result.wait)}
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
            message=gettext(
                "Local sign-in is for administrators only while OIDC-Only Mode is on, and these details were not "
                "accepted. Sign in with %(name)s instead.",
                name=settings.provider_name,
            ),
        )
    if outcome == LocalOutcome.INVALID:
        note_local_attempt(state, activity.INVALID_CREDENTIALS, form.username.data or "")
        return _login_page(form, status=401, message=gettext("Invalid username or password."), local=True)
    if not sign_in_locally(state, settings, user):
        raise OIDCError("account_inactive", lazy_gettext("This account may not sign in."))
    return redirect(safe_next(form.next.data, index()))


def too_many_attempts(wait: int) -> str:
    count = minutes(wait)
    return ngettext(
        "Too many attempts; try again in %(num)s minute.", "Too many attempts; try again in %(num)s minutes.", count
    )


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
            # The caller's error, not the provider's: a 400 that does not repeat their text.
            raise OIDCError(
                "invalid_request",
                lazy_gettext(
                    "This sign-in link names another issuer than this app's provider (%(issuer)s). Start from this "
                    "app's login page, or check the Client Launch URL at the provider.",
                    issuer=issuer,
                ),
            )
    target = params.get("target_link_uri")
    next_url = _own_target(settings, target) if target else safe_next(params.get("next"), "")
    url = flow.begin(
        redirect_uri=external_url(settings, "booklore_oidc.callback"),
        browser_key=sessions.browser_key(),
        next_url=next_url,
        login_hint=_login_hint(params.get("login_hint")),
        purge_expired=state.purge_due("transactions"),
    )
    return redirect(url)


def _login_hint(value: str | None) -> str | None:
    """A third-party login's ``login_hint``, passed on only when it is a plausible name."""
    if not value or len(value) > 255 or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    return value


def _own_target(settings: Settings, target: str) -> str:
    """``target_link_uri`` as a local path when it points at this site (the Public URL's origin,
    or the request's when none is set), else ``""`` (the index)."""
    try:
        parts = urlsplit(target)
    except ValueError:  # an unbalanced "[" taken for an IPv6 host
        return ""
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
    if isinstance(sign_in_with_provider(state, settings, completed), ProofNeeded):
        return redirect(url_for("booklore_oidc.link_account"))
    return redirect(safe_next(completed.next_url, index()))


# -- linking an existing account with its password ---------------------------------------------

_NO_PENDING_LINK = lazy_gettext(
    "No account is waiting to be connected in this browser: the request expired (it lasts 10 "
    "minutes), was cancelled, or too many wrong passwords were typed. Nothing was linked; sign in again."
)


def _link_page(form: LinkForm, username: str, *, status: int = 200, message: str | None = None) -> tuple[str, int]:
    return render_page("booklore_oidc/link.html", link_form=form, username=username, message=message), status


def link_account() -> ResponseReturnValue:
    """The page that connects an existing account to the provider's user (SPEC §6): it asks
    once for that account's local password. Cancel drops the request; nobody is signed in
    until the password is right. CSRF-protected and throttled like local sign-in."""
    settings = current_settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    state = current_state()
    account = pending_account(state)
    if account is None:
        raise OIDCError("invalid_state", _NO_PENDING_LINK)
    form = LinkForm()
    if request.method == "GET":
        return _link_page(form, account.username)
    if not form.validate_on_submit():
        if csrf_failed(form):
            return _link_page(
                LinkForm(formdata=None),
                account.username,
                status=400,
                message=gettext("The form expired; please try again."),
            )
        if not form.cancel.data:
            return _link_page(
                form, account.username, status=400, message=gettext("Enter the password of this account.")
            )
    if form.cancel.data:
        cancel_link(state)
        log.info("A reader cancelled linking the account %s.", account.username)
        if settings.only_mode_active:
            return redirect(url_for("booklore_oidc.login", local="true"))
        return redirect(url_for("booklore_oidc.login"))
    proof = finish_link(state, settings, form.password.data or "", request.remote_addr)
    if proof.outcome == ProofOutcome.SIGNED_IN:
        return redirect(safe_next(proof.next_url, index()))
    if proof.outcome == ProofOutcome.THROTTLED:
        page, status = _link_page(
            LinkForm(formdata=None), account.username, status=429, message=too_many_attempts(proof.wait)
        )
        return page, status, {"Retry-After": str(proof.wait)}
    if proof.outcome == ProofOutcome.WRONG:
        left = proof.attempts_left
        return _link_page(
            LinkForm(formdata=None),
            account.username,
            status=401,
            message=ngettext("Wrong password. %(num)s attempt left.", "Wrong password. %(num)s attempts left.", left),
        )
    raise OIDCError("invalid_state", _NO_PENDING_LINK)


# -- sign-out ---------------------------------------------------------------------------------


def logout() -> ResponseReturnValue:
    """GET asks for confirmation; POST (with CSRF) signs out here, then at the provider.

    The provider's end-session endpoint gets ``id_token_hint``, ``client_id``,
    ``post_logout_redirect_uri`` (``/login?logged_out=1``, which never redirects to the provider
    again, even in OIDC-only mode) and ``state`` (remembered in the signed session and checked
    on return by :func:`_back_from_provider_logout`). It is skipped when the reader did not sign in
    through the provider, provider logout is off, OIDC is off (``FORCE_DISABLE_OIDC`` too), or the
    provider has no end-session endpoint.
    """
    form = LogoutForm()
    cancel = _came_from()
    if request.method == "GET":
        return render_page("booklore_oidc/logout.html", logout_form=form, cancel_url=cancel)
    if not form.validate_on_submit():
        return render_page(
            "booklore_oidc/logout.html",
            logout_form=form,
            cancel_url=cancel,
            message=gettext("The sign-out form expired; please try again."),
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
    sessions.clear()  # first: the host's logout signal then finds nothing of ours left to end
    state.adapter.logout_user()
    session.clear()
    session[sessions.SIGNED_OUT_KEY] = True
    target = url_for(login_endpoint(), logged_out="1")
    provider_logout = False
    if ended.with_provider and settings.oidc_active and settings.provider_logout:
        try:
            metadata = state.cache.metadata(settings)
        except OIDCError as exc:
            log.warning("Skipping provider sign-out: %s", exc)
            metadata = None
        if metadata is not None and metadata.end_session_endpoint:
            params = [("id_token_hint", ended.id_token)] if ended.id_token else []
            logout_state = session[sessions.LOGOUT_STATE_KEY] = secrets.token_urlsafe(24)
            params += [
                ("client_id", settings.client_id),
                ("post_logout_redirect_uri", external_url(settings, login_endpoint(), logged_out="1")),
                ("state", logout_state),
            ]
            target = add_params_to_uri(metadata.end_session_endpoint, params)
            provider_logout = True
    signals.logged_out.send(current_app._get_current_object(), user=user, provider_logout=provider_logout)  # type: ignore[attr-defined]
    return target


# -- apps with their own login page (host-login mode, SPEC §2) -----------------------------------


def button() -> Markup:
    """The Jinja global ``booklore_oidc_button()``: the "Sign in with …" button for a host's own
    login page (with the page's ``next``), and in OIDC-only mode the administrators' way to the
    local form; nothing at all while OIDC sign-in is off."""
    settings = current_settings()
    if not settings.oidc_active:
        return Markup("")
    next_url = safe_next(request.args.get("next"), "")
    html = render_template(
        "booklore_oidc/_button.html",
        provider_name=settings.provider_name,
        button_label=sign_in_label(settings.provider_name),
        start_url=url_for("booklore_oidc.start", next=next_url or None),
        local_url=url_for(login_endpoint(), local="true", next=next_url or None) if settings.only_mode_active else None,
        on_local_form=request.args.get("local") == "true",
    )
    return Markup(html)  # noqa: S704 - our own template, autoescaped


def guard_login(view: Callable[..., Any], *, username_field: str, password_field: str) -> Any:
    """Wrap a host's login view with the rules our own /login applies (SPEC §8): in OIDC-only
    mode a GET goes straight to the provider (but for the backdoor, errors, sign-outs and the
    loop breaker), and a POST reaches the host's view only for an administrator with the right
    password — everyone else gets one and the same refusal, before the host's code runs."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        settings = current_settings()
        if request.method in ("GET", "HEAD"):
            if not current_user.is_authenticated:
                target = gate.automatic_redirect(settings, request.args, safe_next(request.args.get("next"), ""))
                if target is not None:
                    return redirect(target)
            return view(*args, **kwargs)
        if settings.only_mode_active:
            username = request.form.get(username_field, "")
            password = request.form.get(password_field, "")
            result = check_local_sign_in(
                current_state(), settings, username[:255], password[:1024], request.remote_addr
            )
            if result.outcome == LocalOutcome.THROTTLED:
                return too_many_attempts(result.wait), 429, {"Retry-After": str(result.wait)}
            if result.outcome != LocalOutcome.SIGNED_IN:
                log.info("Local sign-in refused in OIDC-only mode (host login view).")
                error = OIDCError(
                    "local_login_disabled",
                    lazy_gettext(
                        "Local sign-in is for administrators only while OIDC-Only Mode is on, and these details were "
                        "not accepted. Sign in with %(name)s instead.",
                        name=settings.provider_name,
                    ),
                )
                signals.login_failed.send(
                    current_app._get_current_object(),  # type: ignore[attr-defined]
                    code=error.error_code,
                    detail=error.detail,
                )
                back = url_for(login_endpoint(), local="true")
                return render_page(
                    "booklore_oidc/error.html", error=error, back_url=back, more_url=docs_link(error)
                ), 403
        return view(*args, **kwargs)

    return guarded


def guard_logout(view: Callable[..., Any]) -> Any:
    """Wrap a host's logout view: our session ends with it, and when the reader signed in through
    the provider (and provider logout applies), the browser goes on to the provider's sign-out."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        with_provider = bool(session.get(sessions.LOGIN_KEY))
        target = sign_out() if with_provider else None
        response = view(*args, **kwargs)
        if target is not None and not target.startswith("/"):
            return redirect(target)
        return response

    return guarded


def host_logged_out(sender: Any, **extra: Any) -> None:
    """Flask-Login's ``user_logged_out``, sent by the host's own logout: our login record ends
    and our session keys go (the provider is not told: only our sign-out can redirect there)."""
    if not session.get(sessions.LOGIN_KEY):
        return
    sessions.end_current(current_state())
    sessions.clear()
