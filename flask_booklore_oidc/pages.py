"""What the admin views share: who may open the settings page, the page itself with all its
parts (the settings form, the group mapping table, the linked identities, the reference panel),
and the parsing of a posted settings form. View modules import this; it imports no view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from . import activity, checks, identities, rules
from .config import FIELDS_BY_NAME, SECTIONS, fields_of
from .flow import requested_scopes
from .forms import ConfirmForm, GroupMappingForm, SettingsForm, csrf_failed, select_choices
from .i18n import gettext, lazy_gettext
from .mapping import MappingRow, load_rows
from .settings import Settings
from .state import current_settings, current_state, login_endpoint, render_page
from .urls import external_url

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])

#: session key: the unsaved values of the last test sign-in, without the secret, to put back
#: on the settings page afterwards (``/settings/oidc?restore=1``)
RESTORE_KEY = "_booklore_oidc_restore"
RESTORED = lazy_gettext("Your unsaved values are back on the page; nothing was saved.")
RESTORED_NO_SECRET = lazy_gettext(
    "Your unsaved values are back on the page; nothing was saved. The Client Secret you typed is never kept: "
    "type it again before saving."
)

FORM_EXPIRED = lazy_gettext(
    "The form expired (its security token is missing or too old); reload the page and try again."
)


# -- access ---------------------------------------------------------------------------------------


def wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def may_open_settings(user: Any) -> bool:
    state = current_state()
    allowed = state.hooks.settings_access
    if allowed is not None:
        return bool(allowed(user))
    return state.adapter.is_admin(user)


def refusal() -> ResponseReturnValue | None:
    """``None`` when the current user may use the settings page, else the answer to send."""
    if not current_user.is_authenticated:
        if wants_json():
            return jsonify(error="not_signed_in", message=gettext("Sign in as an administrator first.")), 401
        back = request.path if request.method == "GET" and request.endpoint == "booklore_oidc.settings" else None
        return redirect(url_for(login_endpoint(), next=back or url_for("booklore_oidc.settings")))
    if not may_open_settings(current_user._get_current_object()):
        log.warning("Refused the OIDC settings to %s: not an administrator.", who())
        if wants_json():
            return jsonify(error="forbidden", message=gettext("Only administrators may change the OIDC settings.")), 403
        return render_page("booklore_oidc/forbidden.html"), 403
    return None


def admin_only(view: F) -> F:
    """Only users allowed by ``@oidc.settings_access`` (default: admins) get to ``view``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        refused = refusal()
        return refused if refused is not None else view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def who() -> str:
    """The signed-in user's name, for log lines."""
    if not current_user.is_authenticated:
        return "an anonymous visitor"
    return current_state().adapter.get_username(current_user._get_current_object())


# -- the Provider Configuration Reference ---------------------------------------------------------


@dataclass(frozen=True)
class ReferenceValue:
    key: str
    label: str
    value: str
    help: str
    #: whether the page offers a Copy button (not for constants such as S256)
    copy: bool = True


def reference_values(settings: Settings) -> list[ReferenceValue]:
    """The Provider Configuration Reference (SPEC §9): what to enter at the provider."""
    callback = external_url(settings, "booklore_oidc.callback")
    metadata = current_state().cache.cached(settings.issuer_uri) if settings.issuer_uri else None
    scopes = " ".join(requested_scopes(settings, metadata))
    if settings.scopes.strip():
        scopes_help = gettext("As set under Scopes.")
    elif metadata is not None:
        scopes_help = gettext("Automatic, from what the provider offers.")
    else:
        scopes_help = gettext("Automatic: plus groups when the provider offers it.")
    if settings.client_secret or settings.secret_unreadable:
        client_type = gettext("Confidential")
        client_help = gettext("A client secret is used; at Pocket ID leave Public Client off.")
    else:
        client_type = gettext("Public")
        client_help = gettext("No client secret, PKCE instead; at Pocket ID switch Public Client on.")
    return [
        ReferenceValue(
            "redirect_uri",
            gettext("Redirect URI"),
            callback,
            gettext("The Callback URL at the provider: it must match exactly."),
        ),
        ReferenceValue(
            "post_logout_redirect_uri",
            gettext("Post-logout Redirect URI"),
            external_url(settings, login_endpoint(), logged_out="1"),
            gettext("Where the provider sends readers after signing out there."),
        ),
        ReferenceValue(
            "launch_url",
            gettext("Client Launch URL"),
            external_url(settings, "booklore_oidc.start"),
            gettext(
                "Starts a sign-in from the provider's app dashboard. The guide suggests the app's root (/); "
                "both work, this one starts the sign-in at once instead of showing the login page first."
            ),
        ),
        ReferenceValue(
            "backchannel_logout_uri",
            gettext("Back-channel Logout URI"),
            external_url(settings, "booklore_oidc.backchannel_logout"),
            gettext("The provider calls it to end sessions here when a reader signs out there."),
        ),
        ReferenceValue(
            "frontchannel_logout_uri",
            gettext("Front-channel Logout URI"),
            external_url(settings, "booklore_oidc.frontchannel_logout"),
            gettext("The provider's logout page loads it to end sessions here; switch on its session id (sid) option."),
        ),
        ReferenceValue("scopes", gettext("Scopes"), scopes, scopes_help),
        ReferenceValue("pkce", "PKCE", "S256", gettext("Always used; never plain."), copy=False),
        ReferenceValue("grant_type", gettext("Grant type"), "Authorization Code", "response_type=code.", copy=False),
        ReferenceValue("client_type", gettext("Client type"), client_type, client_help, copy=False),
    ]


# -- the settings form ----------------------------------------------------------------------------


def settings_form(saved: Settings, **kwargs: Any) -> Any:
    """The settings form over ``saved``, with the adapter's catalogue and the posted values
    (``formdata=None``: the saved values only, for a page redrawn after another form's post)."""
    adapter = current_state().adapter
    return SettingsForm(
        **kwargs,
        settings=saved,
        permission_choices=adapter.permission_choices(),
        library_choices=adapter.library_choices(),
    )


def keep_for_restore(changes: dict[str, Any], remove_secret: bool) -> None:
    """Remember unsaved values (never the secret) so :func:`restored_form` can put them back."""
    session[RESTORE_KEY] = {
        "changes": {name: value for name, value in changes.items() if name != "client_secret"},
        "remove_secret": remove_secret,
        "had_secret": "client_secret" in changes,
    }


def restored_form(saved: Settings) -> tuple[Any, str] | None:
    """The settings form with the values kept by :func:`keep_for_restore`, and a notice; ``None``
    when there are none (or they no longer apply)."""
    kept = session.get(RESTORE_KEY)
    if not isinstance(kept, dict) or not isinstance(kept.get("changes"), dict):
        return None
    changes = {name: value for name, value in kept["changes"].items() if name in FIELDS_BY_NAME}
    changes = {name: value for name, value in changes.items() if not saved.locked(name)}
    try:
        merged = saved.with_changes(changes)
    except (TypeError, ValueError):
        return None
    adapter = current_state().adapter
    form = SettingsForm(
        formdata=None,
        settings=merged,
        permission_choices=adapter.permission_choices(),
        library_choices=adapter.library_choices(),
    )
    if kept.get("remove_secret"):
        form.remove_secret.data = True
    return form, RESTORED_NO_SECRET if kept.get("had_secret") else RESTORED


@dataclass(frozen=True)
class Submitted:
    """A posted settings form that passed validation."""

    changes: dict[str, Any]
    remove_secret: bool
    #: the saved settings with the unsaved values applied (see :func:`.rules.for_unsaved`)
    merged: Settings
    #: the stored secret was left out: the Issuer URI changed and no secret was typed
    secret_withheld: bool


def submitted(form: Any, saved: Settings) -> Submitted | None:
    """Validate a posted settings form; ``None`` when it is refused."""
    if not form.validate_on_submit():
        return None
    changes = form.changes()
    remove = form.remove_secret_requested
    merged, withheld = rules.for_unsaved(saved, changes, remove_secret=remove)
    return Submitted(changes, remove, merged, withheld)


# -- the group mapping table and the linked identities --------------------------------------------


def group_form(row: MappingRow | None = None, **kwargs: Any) -> GroupMappingForm:
    """The add form (no ``row``) or the edit form of ``row``: from the posted values, or with
    ``formdata=None`` from the row itself (every redraw of the page shows the stored rows)."""
    adapter = current_state().adapter
    if row is not None:
        kwargs.setdefault("group_value", row.group)
        kwargs.setdefault("description", row.description)
        kwargs.setdefault("grant_admin", row.grant_admin)
        kwargs.setdefault("permissions", sorted(row.permissions))
        kwargs.setdefault("libraries", sorted(row.libraries))
    form = GroupMappingForm(prefix=f"group-{row.id}" if row is not None else "group-new", **kwargs)
    form.permissions.choices = select_choices(adapter.permission_choices())
    form.libraries.choices = select_choices(adapter.library_choices())
    return form


def _access_context(
    settings: Settings,
    editing: tuple[int | None, GroupMappingForm] | None,
    confirm_unlink: int | None,
    confirm_delete: int | None = None,
) -> dict[str, Any]:
    adapter = current_state().adapter
    rows = load_rows(adapter.session)
    forms = {row.id: group_form(row, formdata=None) for row in rows}
    new_form = group_form(formdata=None)
    if editing is not None:
        row_id, form = editing
        if row_id is None:
            new_form = form
        else:
            forms[row_id] = form
    linked = identities.list_identities(adapter)
    warnings = {}
    for item in linked:
        user = adapter.get_by_id(item.user_id)
        if user is not None:
            warning = identities.unlink_warning(adapter, settings, user)
            if warning:
                warnings[item.id] = warning
    return {
        "group_rows": [(row, forms[row.id]) for row in rows],
        "new_group_form": new_form,
        "permission_labels": dict(adapter.permission_choices()),
        "library_labels": dict(adapter.library_choices()),
        "linked_identities": linked,
        "unlink_warnings": warnings,
        "confirm_unlink": confirm_unlink,
        "confirm_delete": confirm_delete,
        "confirm_form": ConfirmForm(),
        "activity": activity.recent(adapter.session),
    }


# -- the page -------------------------------------------------------------------------------------


def settings_page(
    form: Any | None = None,
    *,
    status: int = 200,
    merged: Settings | None = None,
    results: list[checks.CheckResult] | None = None,
    alert: str | None = None,
    editing: tuple[int | None, GroupMappingForm] | None = None,
    confirm_unlink: int | None = None,
    confirm_delete: int | None = None,
    confirm_save: bool = False,
    notice: str | None = None,
) -> tuple[str, int]:
    """The settings page: ``form`` (default: the saved values), Test Connection ``results``,
    an ``alert``, a group mapping form being ``edit``ed again, an unlink or a delete to confirm,
    a save to confirm (``confirm_save``: Test Connection failed on the values to save)."""
    saved = current_settings()
    if form is None:
        # Not from this request's form: that is a group row's or a confirmation's, and would
        # turn every switch of the settings form off.
        form = settings_form(saved, formdata=None)
    sections = [
        (section.anchor, section.heading, section.intro, tuple(f.name for f in fields_of(section)))
        for section in SECTIONS
    ]
    return (
        render_page(
            "booklore_oidc/settings.html",
            **_access_context(saved, editing, confirm_unlink, confirm_delete),
            confirm_save=confirm_save,
            settings_form=form,
            settings=saved,
            sections=sections,
            fields=FIELDS_BY_NAME,
            reference=reference_values(merged or saved),
            check_results=results,
            checks_ok=checks.ok(results) if results is not None else None,
            alert=alert,
            notice=notice,
            saved=request.args.get("saved"),
        ),
        status,
    )


def refused_form_page(form: Any) -> tuple[str, int]:
    """The page again, 400, after the settings form failed validation (or its CSRF token)."""
    return settings_page(form, status=400, alert=FORM_EXPIRED if csrf_failed(form) else None)


def back_to_settings(anchor: str, **params: Any) -> ResponseReturnValue:
    """Redirect to a part of the settings page, with a notice parameter."""
    return redirect(url_for("booklore_oidc.settings", **params) + "#" + anchor)
