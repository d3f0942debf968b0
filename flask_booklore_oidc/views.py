"""The blueprint: views translate HTTP to the plain functions of the other modules."""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import delete, update
from werkzeug.security import check_password_hash, generate_password_hash

from . import signals
from .adapter import UserAdapter
from .discovery import issuers_match
from .errors import ERRORS, OIDCError
from .extension import BookloreOIDC
from .flow import SignInFlow
from .forms import LoginForm, LogoutForm, csrf_failed
from .mapping import load_rows
from .models import LoginRecord, utcnow
from .provisioning import Resolver
from .secretbox import InvalidToken
from .settings import Settings
from .urls import external_url, safe_next

log = logging.getLogger(__name__)

_here = Path(__file__).parent
# In a wheel the templates sit inside the package; in a checkout, at the top level.
_templates = _here / "templates" if (_here / "templates").is_dir() else _here.parent / "templates"

blueprint = Blueprint(
    "booklore_oidc",
    __name__,
    template_folder=str(_templates),
    static_folder="static",
    static_url_path="/booklore-oidc/static",
)

BROWSER_KEY = "_booklore_oidc_browser"
LOGIN_KEY = "_booklore_oidc_login"
REDIRECTS_KEY = "_booklore_oidc_redirects"
LAST_ERROR_KEY = "_booklore_oidc_last_error"
BACKCHANNEL_KEY = "_booklore_oidc_backchannel"

#: OIDC-only mode: automatic redirects from /login to the provider in a row before the loop
#: breaker shows the login page instead.
MAX_AUTOMATIC_REDIRECTS = 3
#: Automatic redirects further apart than this (seconds) are not "in a row": a loop takes a
#: few seconds per turn, a reader who comes back later starts afresh.
LOOP_WINDOW = 300


def _ext() -> BookloreOIDC:
    return current_app.extensions["booklore_oidc"]  # type: ignore[no-any-return]


def _settings() -> Settings:
    return _ext().settings()


def _index() -> str:
    return request.script_root + "/" if request.script_root else "/"


def _flow(settings: Settings) -> SignInFlow:
    state = _ext()._state()
    return SignInFlow(
        settings,
        state.cache,
        state.transport,
        state.adapter.session,
        transaction_ttl=int(current_app.config["BOOKLORE_OIDC_TRANSACTION_TTL"]),
    )


@blueprint.context_processor
def _template_context() -> dict[str, Any]:
    settings = _settings()
    return {"booklore_oidc_settings": settings, "provider_name": settings.provider_name}


# -- errors ------------------------------------------------------------------------------------


@blueprint.errorhandler(OIDCError)
def _render_error(error: OIDCError) -> tuple[str, int]:
    log.warning("Sign-in failed: %s", error)
    signals.login_failed.send(current_app._get_current_object(), code=error.error_code, detail=error.detail)  # type: ignore[attr-defined]
    settings = _settings()
    # Shown again by the loop breaker, should the reader end up going round in circles.
    session[LAST_ERROR_KEY] = error.error_code
    # Neither link redirects to the provider again (login() stays on the page for both), so an
    # error can never turn into a loop.
    back = url_for(".login", local="true") if settings.only_mode_active else url_for(".login", error=error.error_code)
    return render_template("booklore_oidc/error.html", error=error, back_url=back), error.code or 500


# -- local sign-in ----------------------------------------------------------------------------


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
    settings = _settings()
    error_info = ERRORS.get(error_code or request.args.get("error") or "")
    return (
        render_template(
            "booklore_oidc/login.html",
            login_form=form,
            show_button=settings.oidc_active,
            show_form=not settings.only_mode_active or local or request.args.get("local") == "true",
            next_url=safe_next(request.values.get("next"), ""),
            error_info=error_info,
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

    The count survives the session rotation of a sign-in (see :func:`_rotate_session`): the loop
    to break is the one where the provider signs the reader in, the sign-in does not stick (a
    cookie the browser refuses, a user loader that rejects the user) and the app sends them back
    to /login. It lapses after :data:`LOOP_WINDOW` seconds without an automatic redirect.
    """
    now = int(time.time())
    saved = session.get(REDIRECTS_KEY)
    count, last = saved if isinstance(saved, list) and len(saved) == 2 else (0, 0)
    if not isinstance(count, int) or not isinstance(last, int) or now - last > LOOP_WINDOW:
        count = 0
    if count >= MAX_AUTOMATIC_REDIRECTS:
        return False
    session[REDIRECTS_KEY] = [count + 1, now]
    return True


@blueprint.route("/login", methods=["GET"])
def login() -> Any:
    """The login page: the local form and/or the provider's button. In OIDC-only mode it sends
    the reader straight to the provider, except as :func:`_stays_on_login_page` says."""
    settings = _settings()
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), _index()))
    form = LoginForm(next=safe_next(request.args.get("next"), ""))
    if not settings.only_mode_active or _stays_on_login_page():
        return _login_page(form)
    if _count_automatic_redirect():
        return redirect(url_for(".start", next=form.next.data or None))
    log.warning("OIDC-only mode: %d automatic redirects in a row; showing the login page.", MAX_AUTOMATIC_REDIRECTS)
    return _login_page(
        form,
        error_code=session.get(LAST_ERROR_KEY),
        message=(
            f"Signing in with {settings.provider_name} did not finish after {MAX_AUTOMATIC_REDIRECTS} "
            "attempts in a row. Try the button again, or sign in locally if you are an administrator."
        ),
    )


@cache
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def _password_ok(adapter: UserAdapter, user: Any, password: str) -> bool:
    if user is None:
        # Spend the time a real check would, so timing does not tell whether a username exists.
        check_password_hash(_dummy_password_hash(), password)
        return False
    return adapter.check_password(user, password)


@blueprint.route("/login", methods=["POST"])
def login_post() -> Any:
    """Local sign-in through the adapter's password check. In OIDC-only mode only admins may
    sign in; everyone else gets one and the same refusal."""
    settings = _settings()
    form = LoginForm()
    if not form.validate_on_submit():
        if csrf_failed(form):
            return _login_page(form, status=400, message="The form expired; please try again.", local=True)
        return _login_page(form, status=400, local=True)
    adapter = _ext().adapter
    user = adapter.get_by_username(form.username.data or "")
    password_ok = _password_ok(adapter, user, form.password.data or "")
    if settings.only_mode_active and not (password_ok and adapter.is_admin(user)):
        # One answer, byte for byte but for the CSRF token, whether the username exists, is an
        # admin or not, and whether the password was right: a fresh form, not one that echoes
        # the username, and nothing that depends on the user.
        log.info("Local sign-in refused in OIDC-only mode.")
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
    if not password_ok:
        return _login_page(form, status=401, message="Invalid username or password.", local=True)
    _rotate_session()
    login_user(user)
    return redirect(safe_next(form.next.data, _index()))


def _rotate_session() -> None:
    """Start a new session at every sign-in, so a planted session id is worthless. The browser
    binding survives, so sign-ins still pending in other tabs can finish (SPEC §5.2), and so does
    the loop breaker's count (see :func:`_count_automatic_redirect`)."""
    browser_key = session.get(BROWSER_KEY)
    redirects = session.get(REDIRECTS_KEY)
    session.clear()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):  # Flask-Session's server-side sessions
        regenerate(session)
    if browser_key:
        session[BROWSER_KEY] = browser_key
    if redirects:
        session[REDIRECTS_KEY] = redirects


# -- OIDC sign-in -----------------------------------------------------------------------------


@blueprint.route("/login/oidc", methods=["GET", "POST"])
def start() -> Any:
    """Start a sign-in at the provider; also the Client Launch URL.

    Takes ``next``, and the parameters of a third-party initiated login (OpenID Connect Core
    §4), by GET or POST: ``iss`` must be our provider's issuer, ``login_hint`` is passed on,
    and ``target_link_uri`` is where the reader lands, if it is on this site.
    """
    settings = _settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    params = request.values
    flow = _flow(settings)
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
    browser_key = session.get(BROWSER_KEY)
    if not browser_key:
        browser_key = session[BROWSER_KEY] = secrets.token_urlsafe(32)
    url = flow.begin(
        redirect_uri=external_url(settings, ".callback"),
        browser_key=browser_key,
        next_url=next_url,
        login_hint=params.get("login_hint") or None,
        purge_expired=_ext()._state().purge_due("transactions"),
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


_DEFAULT_PORTS = {"http": 80, "https": 443}


@blueprint.route("/oauth2-callback")
def callback() -> Any:
    """The Redirect URI: verify the provider's answer, decide who it is, sign them in."""
    settings = _settings()
    ext = _ext()
    state = ext._state()
    flow = _flow(settings)
    try:
        transaction = flow.consume(request.args.get("state"), session.get(BROWSER_KEY))
    except OIDCError:
        if not settings.oidc_active:  # with OIDC off, only a test sign-in can come back here
            raise OIDCError("oidc_disabled") from None
        raise
    # A test sign-in from the settings page runs with its own (maybe unsaved) settings, also
    # while OIDC Login is off, and signs nobody in: preview.py finishes it.
    if transaction.purpose == preview.PREVIEW:
        return preview.finish_preview(transaction)
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    completed = flow.complete(request.args, transaction=transaction)
    db = state.adapter.session
    record_id = secrets.token_urlsafe(32)

    def remember(user: Any) -> None:
        """The server-side login record, committed with the user and identity writes."""
        now = utcnow()
        if state.purge_due("login_records"):
            ttl = timedelta(seconds=int(current_app.config["BOOKLORE_OIDC_LOGIN_RECORD_TTL"]))
            db.execute(delete(LoginRecord).where(LoginRecord.created_at < now - ttl))
        db.add(
            LoginRecord(
                id=record_id,
                user_id=state.adapter.get_id(user),
                issuer=completed.identity.issuer,
                subject=completed.identity.subject,
                sid=completed.sid,
                id_token=state.box.seal(completed.id_token),
                created_at=now,
            )
        )

    # Group rows are read only when group sync or a group mapper hook will use them.
    wants_rows = settings.group_sync != "disabled"
    resolution = Resolver(
        state.adapter,
        settings,
        mapping_rows=load_rows(db) if wants_rows else (),
        provisioner=ext._provisioner,
        group_mapper=ext._group_mapper,
    ).resolve(completed.identity, also=remember)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    _rotate_session()
    login_user(resolution.user)
    session[LOGIN_KEY] = record_id
    if _backchannel_advertised(settings):
        session[BACKCHANNEL_KEY] = True  # this session can be ended by a logout token: backchannel.py

    if resolution.rule == "provisioned":
        signals.user_provisioned.send(app, user=resolution.user, identity=completed.identity)
    elif resolution.rule in ("username", "email"):
        signals.account_linked.send(app, user=resolution.user, identity=completed.identity, by=resolution.rule)
    if resolution.access is not None:
        signals.access_synced.send(
            app, user=resolution.user, access=resolution.access, groups=completed.identity.groups or []
        )
    signals.login_succeeded.send(app, user=resolution.user, identity=completed.identity, rule=resolution.rule)
    log.info("%s signed in through the provider (%s).", state.adapter.get_username(resolution.user), resolution.rule)
    return redirect(safe_next(completed.next_url, _index()))


# -- sign-out ---------------------------------------------------------------------------------


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    """GET asks for confirmation; POST (with CSRF) signs out here, then at the provider.

    The provider's end-session endpoint gets ``id_token_hint``, ``client_id``,
    ``post_logout_redirect_uri`` (``/login?logged_out=1``, which never redirects to the provider
    again, even in OIDC-only mode) and ``state``. It is skipped when the reader did not sign in
    through the provider, provider logout is off, OIDC is off (``FORCE_DISABLE_OIDC`` too), or the
    provider has no end-session endpoint.
    """
    form = LogoutForm()
    if request.method == "GET":
        return render_template("booklore_oidc/logout.html", logout_form=form)
    if not form.validate_on_submit():
        return render_template(
            "booklore_oidc/logout.html", logout_form=form, message="The sign-out form expired; please try again."
        ), 400
    settings = _settings()
    state = _ext()._state()
    record_id = session.get(LOGIN_KEY)
    signed_in_with_provider = False
    id_token = None
    if record_id:
        record = state.adapter.session.get(LoginRecord, record_id)
        if record is not None:
            signed_in_with_provider = True
            if record.id_token:
                try:
                    id_token = state.box.open(record.id_token)
                except InvalidToken:  # SECRET_KEY changed since: sign out without the hint
                    id_token = None
        # The stored ID token was kept only for this hint; it goes now.
        state.adapter.session.execute(
            update(LoginRecord).where(LoginRecord.id == record_id).values(ended_at=utcnow(), id_token=None)
        )
        state.adapter.session.commit()
    user = current_user._get_current_object() if current_user.is_authenticated else None
    logout_user()
    session.clear()
    target = url_for(".login", logged_out="1")
    provider_logout = False
    if signed_in_with_provider and settings.oidc_active and settings.provider_logout:
        try:
            metadata = state.cache.metadata(settings)
        except OIDCError as exc:
            log.warning("Skipping provider sign-out: %s", exc)
            metadata = None
        if metadata is not None and metadata.end_session_endpoint:
            params = [("id_token_hint", id_token)] if id_token else []
            params += [
                ("client_id", settings.client_id),
                ("post_logout_redirect_uri", external_url(settings, ".login", logged_out="1")),
                ("state", secrets.token_urlsafe(24)),
            ]
            target = add_params_to_uri(metadata.end_session_endpoint, params)
            provider_logout = True
    signals.logged_out.send(current_app._get_current_object(), user=user, provider_logout=provider_logout)  # type: ignore[attr-defined]
    return redirect(target)


def _backchannel_advertised(settings: Settings) -> bool:
    """Whether the provider says it sends back-channel logout tokens (from the metadata the
    sign-in just used, so no request goes out)."""
    try:
        metadata = _ext()._state().cache.metadata(settings)
    except OIDCError:
        return False
    return metadata.raw.get("backchannel_logout_supported") is True


# Imported last: each registers its routes on the blueprint above.
from . import (  # noqa: E402
    access_admin,  # noqa: F401  group mapping rows and linked identities on the settings page
    admin,  # noqa: F401  the settings page and Test Connection
    backchannel,  # noqa: F401
    preview,  # the settings page's test sign-in; the callback hands those to it
)
