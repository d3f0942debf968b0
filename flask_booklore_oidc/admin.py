"""The settings page (SPEC §3, §4, §9): the form, Test Connection and the Provider Configuration
Reference, registered on the extension's blueprint (the test sign-in is :mod:`.preview`).

Who may open it is ``@oidc.settings_access`` (default: the adapter's ``is_admin``). Every POST
carries a CSRF token. Values set by the environment or app config are shown read-only and never
taken from a request. The client secret is write-only: it is never put into a page, a JSON
answer or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from . import checks
from .config import FIELDS_BY_NAME
from .flow import requested_scopes
from .forms import SettingsForm, csrf_failed
from .settings import Settings
from .urls import external_url
from .views import _ext, blueprint

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])

FORM_EXPIRED = "The form expired (its security token is missing or too old); reload the page and try again."

#: the page's sections: (anchor, heading, introduction, settings in order)
SECTIONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "login-methods",
        "Login Methods",
        "How readers sign in. Administrators can always use /login?local=true.",
        ("enabled", "only_mode"),
    ),
    (
        "provider",
        "Provider",
        "The client you created at your identity provider (Pocket ID, Authelia, Keycloak, …).",
        ("provider_name", "client_id", "client_secret", "issuer_uri", "scopes", "token_auth_method"),
    ),
    (
        "claims",
        "Claim Mappings",
        "Which claims of the provider's tokens hold the username, email, name and groups.",
        ("claim_username", "claim_email", "claim_display_name", "claim_groups", "always_userinfo"),
    ),
    (
        "provisioning",
        "Provisioning and Linking",
        "Who gets an account, and how existing accounts are matched on their first sign-in.",
        (
            "auto_provision",
            "sync_profile",
            "link_by_username",
            "username_case_sensitive",
            "link_by_email",
            "allowed_groups",
            "default_permissions",
            "default_libraries",
            "group_sync",
        ),
    ),
    (
        "advanced",
        "Session and Advanced",
        "Addresses, time limits and sign-out.",
        ("public_url", "http_timeout", "ca_bundle", "clock_skew", "provider_logout"),
    ),
)


# -- access --------------------------------------------------------------------------------------


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _may_open_settings(user: Any) -> bool:
    ext = _ext()
    allowed = ext._settings_access
    if allowed is not None:
        return bool(allowed(user))
    return ext.adapter.is_admin(user)


def _refusal() -> ResponseReturnValue | None:
    """``None`` when the current user may use the settings page, else the answer to send."""
    if not current_user.is_authenticated:
        if _wants_json():
            return jsonify(error="not_signed_in", message="Sign in as an administrator first."), 401
        back = request.path if request.method == "GET" and request.endpoint == "booklore_oidc.settings" else None
        return redirect(url_for("booklore_oidc.login", next=back or url_for("booklore_oidc.settings")))
    if not _may_open_settings(current_user._get_current_object()):
        log.warning("Refused the OIDC settings to %s: not an administrator.", _who())
        if _wants_json():
            return jsonify(error="forbidden", message="Only administrators may change the OIDC settings."), 403
        return render_template("booklore_oidc/forbidden.html"), 403
    return None


def admin_only(view: F) -> F:
    """Only users allowed by ``@oidc.settings_access`` (default: admins) get to ``view``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        refusal = _refusal()
        return refusal if refusal is not None else view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _who() -> str:
    if not current_user.is_authenticated:
        return "an anonymous visitor"
    return _ext().adapter.get_username(current_user._get_current_object())


# -- plain decisions -----------------------------------------------------------------------------


def merged_settings(saved: Settings, changes: Mapping[str, Any], *, remove_secret: bool) -> Settings:
    """``saved`` with unsaved form values applied; a blank secret keeps the stored one."""
    merged = _ext()._state().store.preview(saved, changes)
    if remove_secret:
        return replace(merged, client_secret="", secret_unreadable=False)
    if changes.get("client_secret"):
        return replace(merged, secret_unreadable=False)
    return merged


def enabled_problem(merged: Settings) -> str | None:
    """Why OIDC Login may not be on with these settings, or ``None``."""
    if merged.enabled and not (merged.client_id and merged.issuer_uri):
        return (
            "OIDC Login needs the Client ID and the Issuer URI: fill them in under Provider, or switch OIDC Login off."
        )
    return None


def only_mode_problem(merged: Settings, admins: int) -> str | None:
    """Why OIDC-Only Mode may not be on with these settings (SPEC §8), or ``None``."""
    if not merged.only_mode:
        return None
    if not merged.enabled:
        return "OIDC-Only Mode needs OIDC Login switched on: switch OIDC Login on, or OIDC-Only Mode off."
    if not (merged.client_id and merged.issuer_uri):
        return (
            "OIDC-Only Mode needs a configured provider: enter the Client ID and the Issuer URI (and run "
            "Test Connection) first."
        )
    if merged.secret_unreadable:
        return "OIDC-Only Mode needs a readable Client Secret: the stored one cannot be decrypted; enter it again."
    if admins < 1:
        return (
            "OIDC-Only Mode would lock everyone out: no administrator account exists that could still sign in "
            "locally at /login?local=true. Make an account an administrator first."
        )
    return None


@dataclass(frozen=True)
class ReferenceValue:
    key: str
    label: str
    value: str
    help: str


def reference_values(settings: Settings) -> list[ReferenceValue]:
    """The Provider Configuration Reference (SPEC §9): what to enter at the provider."""
    callback = external_url(settings, "booklore_oidc.callback")
    if "booklore_oidc.backchannel_logout" in current_app.view_functions:
        backchannel = external_url(settings, "booklore_oidc.backchannel_logout")
    else:  # same folder as the callback, whatever url_prefix moved them to
        backchannel = callback.rsplit("/", 1)[0] + "/oauth2-backchannel-logout"
    metadata = _ext()._state().cache.cached(settings.issuer_uri) if settings.issuer_uri else None
    scopes = " ".join(requested_scopes(settings, metadata))
    if settings.scopes.strip():
        scopes_help = "As set under Scopes."
    elif metadata is not None:
        scopes_help = "Automatic, from what the provider offers."
    else:
        scopes_help = "Automatic: plus groups when the provider offers it."
    if settings.client_secret or settings.secret_unreadable:
        client_type = "Confidential"
        client_help = "A client secret is used; at Pocket ID leave Public Client off."
    else:
        client_type = "Public"
        client_help = "No client secret, PKCE instead; at Pocket ID switch Public Client on."
    return [
        ReferenceValue(
            "redirect_uri",
            "Redirect URI",
            callback,
            "The Callback URL at the provider: it must match exactly.",
        ),
        ReferenceValue(
            "post_logout_redirect_uri",
            "Post-logout Redirect URI",
            external_url(settings, "booklore_oidc.login", logged_out="1"),
            "Where the provider sends readers after signing out there.",
        ),
        ReferenceValue(
            "launch_url",
            "Client Launch URL",
            external_url(settings, "booklore_oidc.start"),
            "Starts a sign-in from the provider's app dashboard.",
        ),
        ReferenceValue(
            "backchannel_logout_uri",
            "Back-channel Logout URI",
            backchannel,
            "The provider calls it to end sessions here when a reader signs out there.",
        ),
        ReferenceValue("scopes", "Scopes", scopes, scopes_help),
        ReferenceValue("pkce", "PKCE", "S256", "Always used; never plain."),
        ReferenceValue("grant_type", "Grant type", "Authorization Code", "response_type=code."),
        ReferenceValue("client_type", "Client type", client_type, client_help),
    ]


# -- the page ------------------------------------------------------------------------------------


def _form(saved: Settings) -> SettingsForm:
    adapter = _ext().adapter
    return SettingsForm(
        settings=saved,
        permission_choices=adapter.permission_choices(),
        library_choices=adapter.library_choices(),
    )


#: Functions adding names to the settings page's template context, e.g. the group mapping table
#: of the Provisioning section. Each is called with the keyword arguments given to
#: :func:`render_settings` (none for the page itself) and returns a mapping.
page_context_providers: list[Callable[..., Mapping[str, Any]]] = []


def _page(
    form: SettingsForm,
    saved: Settings,
    *,
    status: int = 200,
    merged: Settings | None = None,
    results: list[checks.CheckResult] | None = None,
    alert: str | None = None,
    section_state: Mapping[str, Any] | None = None,
) -> tuple[str, int]:
    extra: dict[str, Any] = {}
    for provider in page_context_providers:
        extra.update(provider(**(section_state or {})))
    return (
        render_template(
            "booklore_oidc/settings.html",
            **extra,
            settings_form=form,
            settings=saved,
            sections=SECTIONS,
            fields=FIELDS_BY_NAME,
            reference=reference_values(merged or saved),
            check_results=results,
            checks_ok=checks.ok(results) if results is not None else None,
            alert=alert,
            saved=request.args.get("saved"),
        ),
        status,
    )


def render_settings(*, status: int = 200, alert: str | None = None, **section_state: Any) -> tuple[str, int]:
    """The settings page with the saved values, for a view of another section of the page that
    re-shows it (a group mapping form that failed validation); ``section_state`` goes to every
    function of :data:`page_context_providers`."""
    saved = _ext().settings()
    return _page(_form(saved), saved, status=status, alert=alert, section_state=section_state)


def refused_form_page(form: SettingsForm, saved: Settings) -> tuple[str, int]:
    """The page again, 400, after the form failed validation (or its CSRF token)."""
    if csrf_failed(form):
        return _page(form, saved, status=400, alert=FORM_EXPIRED)
    return _page(form, saved, status=400)


def _submitted(form: SettingsForm, saved: Settings) -> tuple[dict[str, Any], bool, Settings] | None:
    """Validate a posted form: (changes, remove_secret, merged settings), or ``None``."""
    if not form.validate_on_submit():
        return None
    changes = form.changes()
    remove = form.remove_secret_requested
    return changes, remove, merged_settings(saved, changes, remove_secret=remove)


@blueprint.route("/settings/oidc", methods=["GET", "POST"], endpoint="settings")
@admin_only
def settings_page() -> ResponseReturnValue:
    """The admin settings page; POST saves (only what is not set by configuration)."""
    ext = _ext()
    saved = ext.settings()
    form = _form(saved)
    if request.method == "GET":
        return _page(form, saved)
    submitted = _submitted(form, saved)
    if submitted is None:
        return refused_form_page(form, saved)
    changes, remove, merged = submitted
    problems = {
        "enabled": enabled_problem(merged) if "enabled" not in form.locked_names else None,
        "only_mode": only_mode_problem(merged, ext.adapter.count_admins())
        if "only_mode" not in form.locked_names
        else None,
    }
    if any(problems.values()):
        for name, problem in problems.items():
            if problem:
                form[name].errors = [problem]
        return _page(form, saved, status=400, merged=merged)
    try:
        changed = ext.save_settings(changes, remove_secret=remove)
    except ValueError as exc:  # set by configuration since the page was loaded
        return _page(_form(ext.settings()), ext.settings(), status=409, alert=str(exc))
    # Names only: values may be secret, and the audit question is who changed what, when.
    log.info("OIDC settings saved by %s: %s.", _who(), ", ".join(sorted(changed)) or "nothing changed")
    return redirect(url_for("booklore_oidc.settings", saved="1" if changed else "0"))


# -- Test Connection -------------------------------------------------------------------------------


@blueprint.route("/settings/oidc/test", methods=["POST"])
@admin_only
def test_connection() -> ResponseReturnValue:
    """Test Connection on the unsaved form values: JSON for ``Accept: application/json``, an
    HTML fragment for the page's script (``X-Requested-With``), else the whole page."""
    ext = _ext()
    saved = ext.settings()
    form = _form(saved)
    fragment = bool(request.headers.get("X-Requested-With"))
    submitted = _submitted(form, saved)
    if submitted is None:
        if csrf_failed(form):
            if _wants_json():
                return jsonify(error="csrf", message=FORM_EXPIRED), 400
            if fragment:
                return render_template("booklore_oidc/_checks.html", check_results=None, alert=FORM_EXPIRED), 400
            return _page(form, saved, status=400, alert=FORM_EXPIRED)
        problems = [message for _, message in form.error_messages]
        results = [
            checks.CheckResult("form", "Form values", checks.Status.FAIL, "Fix the form first: " + " ".join(problems))
        ]
        if _wants_json():
            errors = {name: list(messages) for name, messages in form.errors.items()}
            return jsonify(checks=[r.as_dict() for r in results], ok=False, errors=errors), 400
        if fragment:
            return render_template("booklore_oidc/_checks.html", check_results=results, checks_ok=False), 400
        return _page(form, saved, status=400, results=results)
    _, _, merged = submitted
    results = checks.run_checks(merged, ext._state().transport, external_url(merged, "booklore_oidc.callback"))
    passed = checks.ok(results)
    log.info(
        "Test Connection by %s: %s.",
        _who(),
        ", ".join(f"{r.key}={r.status}" for r in results if r.status != "PASS") or "all passed",
    )
    if _wants_json():
        return jsonify(checks=[r.as_dict() for r in results], ok=passed)
    if fragment:
        return render_template("booklore_oidc/_checks.html", check_results=results, checks_ok=passed)
    return _page(form, saved, merged=merged, results=results)
