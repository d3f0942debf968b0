"""The blueprint: views translate HTTP to the plain functions of the other modules."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import delete, update

from . import signals
from .errors import ERRORS, OIDCError
from .extension import BookloreOIDC
from .flow import SignInFlow
from .forms import LoginForm, LogoutForm
from .models import LoginRecord, utcnow
from .mapping import load_rows
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
    back = url_for(".login", local="true") if settings.only_mode_active else url_for(".login", error=error.error_code)
    return render_template("booklore_oidc/error.html", error=error, back_url=back), error.code or 500


# -- local sign-in ----------------------------------------------------------------------------


def _login_page(form: LoginForm, *, status: int = 200, message: str | None = None) -> tuple[str, int]:
    settings = _settings()
    error_code = request.args.get("error")
    error_info = ERRORS.get(error_code or "")
    return (
        render_template(
            "booklore_oidc/login.html",
            login_form=form,
            show_button=settings.oidc_active,
            show_form=not settings.only_mode_active or request.args.get("local") == "true" or error_info is not None,
            next_url=safe_next(request.values.get("next"), ""),
            error_info=error_info,
            message=message,
            logged_out=request.args.get("logged_out") == "1",
        ),
        status,
    )


@blueprint.route("/login", methods=["GET"])
def login() -> Any:
    """The login page: the local form and/or the provider's button."""
    settings = _settings()
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), _index()))
    form = LoginForm(next=safe_next(request.args.get("next"), ""))
    if (
        settings.only_mode_active
        and request.args.get("local") != "true"
        and "error" not in request.args
        and request.args.get("logged_out") != "1"
    ):
        count = int(session.get("_booklore_oidc_redirects", 0))
        if count < 3:
            session["_booklore_oidc_redirects"] = count + 1
            return redirect(url_for(".start", next=form.next.data or None))
        session.pop("_booklore_oidc_redirects", None)
        return _login_page(
            form,
            message=(
                "Signing in through the provider did not finish after several attempts. "
                "Try the button again, or sign in locally if you are an administrator."
            ),
        )
    return _login_page(form)


@blueprint.route("/login", methods=["POST"])
def login_post() -> Any:
    """Local sign-in through the adapter's password check."""
    settings = _settings()
    form = LoginForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            return _login_page(form, status=400, message="The form expired; please try again.")
        return _login_page(form, status=400)
    adapter = _ext().adapter
    user = adapter.get_by_username(form.username.data or "")
    password_ok = user is not None and adapter.check_password(user, form.password.data or "")
    if settings.only_mode_active and not (password_ok and adapter.is_admin(user)):
        # One answer whether the user exists, is an admin or typed the right password.
        log.info("Local sign-in refused in OIDC-only mode.")
        return _login_page(
            form,
            status=403,
            message=(
                "Local sign-in is disabled: sign in with "
                + settings.provider_name
                + ". Administrators can still sign in here with their password."
            ),
        )
    if not password_ok:
        return _login_page(form, status=401, message="Invalid username or password.")
    _rotate_session()
    login_user(user)
    return redirect(safe_next(form.next.data, _index()))


def _rotate_session() -> None:
    """Start a new session at every sign-in, so a planted session id is worthless. The browser
    binding survives, so sign-ins still pending in other tabs can finish (SPEC §5.2)."""
    browser_key = session.get(BROWSER_KEY)
    session.clear()
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if callable(regenerate):  # Flask-Session's server-side sessions
        regenerate(session)
    if browser_key:
        session[BROWSER_KEY] = browser_key


# -- OIDC sign-in -----------------------------------------------------------------------------


@blueprint.route("/login/oidc")
def start() -> Any:
    """Start a sign-in at the provider (also the Client Launch URL)."""
    settings = _settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    browser_key = session.get(BROWSER_KEY)
    if not browser_key:
        browser_key = session[BROWSER_KEY] = generate_token(32)
    url = _flow(settings).begin(
        redirect_uri=external_url(settings, ".callback"),
        browser_key=browser_key,
        next_url=safe_next(request.args.get("next"), ""),
        login_hint=request.args.get("login_hint") or None,
    )
    return redirect(url)


@blueprint.route("/oauth2-callback")
def callback() -> Any:
    """The Redirect URI: verify the provider's answer, decide who it is, sign them in."""
    settings = _settings()
    if not settings.oidc_active:
        raise OIDCError("oidc_disabled")
    completed = _flow(settings).complete(request.args, browser_key=session.get(BROWSER_KEY))
    ext = _ext()
    state = ext._state()
    resolution = Resolver(
        state.adapter,
        settings,
        mapping_rows=load_rows(state.adapter.session),
        provisioner=ext._provisioner,
        group_mapper=ext._group_mapper,
    ).resolve(completed.identity)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    _rotate_session()
    login_user(resolution.user)
    record_id = generate_token(43)
    now = utcnow()
    db = state.adapter.session
    db.execute(
        delete(LoginRecord).where(
            LoginRecord.created_at < now - timedelta(seconds=int(current_app.config["BOOKLORE_OIDC_LOGIN_RECORD_TTL"]))
        )
    )
    db.add(
        LoginRecord(
            id=record_id,
            user_id=state.adapter.get_id(resolution.user),
            issuer=completed.identity.issuer,
            subject=completed.identity.subject,
            sid=completed.sid,
            id_token=state.box.seal(completed.id_token),
            created_at=now,
        )
    )
    db.commit()
    session[LOGIN_KEY] = record_id

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
    """GET asks for confirmation; POST (with CSRF) signs out here, then at the provider."""
    form = LogoutForm()
    if request.method == "GET":
        return render_template("booklore_oidc/logout.html", logout_form=form)
    if not form.validate_on_submit():
        abort(400, "The sign-out form expired; please try again.")
    settings = _settings()
    state = _ext()._state()
    record_id = session.get(LOGIN_KEY)
    id_token = None
    if record_id:
        record = state.adapter.session.get(LoginRecord, record_id)
        if record is not None and record.id_token:
            try:
                id_token = state.box.open(record.id_token)
            except InvalidToken:
                id_token = None
        state.adapter.session.execute(update(LoginRecord).where(LoginRecord.id == record_id).values(ended_at=utcnow()))
        state.adapter.session.commit()
    user = current_user._get_current_object() if current_user.is_authenticated else None
    logout_user()
    session.clear()
    target = url_for(".login", logged_out="1")
    provider_logout = False
    if id_token and settings.oidc_active and settings.provider_logout:
        try:
            metadata = state.cache.metadata(settings)
        except OIDCError as exc:
            log.warning("Skipping provider sign-out: %s", exc)
            metadata = None
        if metadata is not None and metadata.end_session_endpoint:
            target = add_params_to_uri(
                metadata.end_session_endpoint,
                [
                    ("id_token_hint", id_token),
                    ("client_id", settings.client_id),
                    ("post_logout_redirect_uri", external_url(settings, ".login", logged_out="1")),
                    ("state", generate_token(24)),
                ],
            )
            provider_logout = True
    signals.logged_out.send(current_app._get_current_object(), user=user, provider_logout=provider_logout)  # type: ignore[attr-defined]
    return redirect(target)
