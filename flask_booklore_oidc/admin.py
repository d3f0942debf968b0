"""Views of the settings page (SPEC §3, §4, §9): the form and Test Connection.

Who may open it is ``@oidc.settings_access`` (default: the adapter's ``is_admin``). Every POST
carries a CSRF token. Values set by the environment or app config are shown read-only and never
taken from a request. The client secret is write-only: it is never put into a page, a JSON
answer or a log line.
"""

from __future__ import annotations

import logging

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from . import checks, rules, sessions
from .config import SECTIONS, fields_of
from .forms import csrf_failed
from .i18n import gettext, lazy_gettext
from .pages import (
    FORM_EXPIRED,
    admin_only,
    refused_form_page,
    restored_form,
    settings_form,
    settings_page,
    submitted,
    wants_json,
    who,
)
from .settings import SOURCE_DB, Settings
from .state import current_settings, current_state, save_settings
from .urls import external_url

log = logging.getLogger(__name__)

#: settings whose change makes a save with OIDC Login on run Test Connection first
CHECKED_ON_SAVE = frozenset(
    {f.name for section in SECTIONS if section.anchor == "provider" for f in fields_of(section)} - {"provider_name"}
    | {"public_url"}
)
SAVE_ANYWAY = lazy_gettext(
    "Nothing was saved: with these values Test Connection fails (see its results), so readers could not "
    "sign in while OIDC Login is on. Fix the failures, switch OIDC Login off, or save anyway."
)


@admin_only
def settings() -> ResponseReturnValue:
    """The admin settings page; POST saves (only what is not set by configuration)."""
    state = current_state()
    saved = current_settings()
    form = settings_form(saved)
    if request.method == "GET":
        restored = restored_form(saved) if request.args.get("restore") else None
        if restored is not None:
            return settings_page(restored[0], notice=restored[1])
        return settings_page(form)
    posted = submitted(form, saved)
    if posted is None:
        return refused_form_page(form)
    if posted.secret_withheld and saved.sources.get("client_secret") == SOURCE_DB:
        form.client_secret.errors = [str(rules.SECRET_STAYS_HOME)]
        return settings_page(form, status=400, merged=posted.merged)
    problems = {
        "enabled": rules.enabled_problem(posted.merged),
        "only_mode": rules.only_mode_problem(posted.merged, state.adapter.count_admins()),
    }
    problems = {name: problem for name, problem in problems.items() if problem and name not in form.locked_names}
    if problems:
        for name, problem in problems.items():
            form[name].errors = [problem]
        return settings_page(form, status=400, merged=posted.merged)
    if request.form.get("confirm") != "yes" and _may_break_sign_in(saved, posted.merged, posted.changes):
        results = checks.run_checks(
            posted.merged, state.transport, external_url(posted.merged, "booklore_oidc.callback")
        )
        if not checks.ok(results):
            log.info("Save by %s held back: Test Connection fails on the new values.", who())
            return settings_page(
                form, status=409, merged=posted.merged, results=results, alert=SAVE_ANYWAY, confirm_save=True
            )
    try:
        changed = save_settings(posted.changes, remove_secret=posted.remove_secret)
    except ValueError as exc:  # set by configuration since the page was loaded
        return settings_page(status=409, alert=str(exc))
    # Names only: values may be secret, and the audit question is who changed what, when.
    log.info("OIDC settings saved by %s: %s.", who(), ", ".join(sorted(changed)) or "nothing changed")
    ended = sessions.settings_saved(state.adapter.session, current_settings(), changed)
    return redirect(url_for("booklore_oidc.settings", saved="1" if changed else "0", ended=ended or None))


def _may_break_sign_in(saved: Settings, merged: Settings, changes: dict[str, object]) -> bool:
    """Whether a save could leave OIDC Login on but unusable, so Test Connection runs first:
    OIDC Login stays or goes on, and it is switched on now or a provider setting changes."""
    if not merged.oidc_active:
        return False
    return not saved.oidc_active or bool(CHECKED_ON_SAVE & set(changes)) or "client_secret" in changes


@admin_only
def test_connection() -> ResponseReturnValue:
    """Test Connection on the unsaved form values: JSON for ``Accept: application/json``, an
    HTML fragment for the page's script (``X-Requested-With``), else the whole page."""
    state = current_state()
    saved = current_settings()
    form = settings_form(saved)
    fragment = bool(request.headers.get("X-Requested-With"))
    posted = submitted(form, saved)
    if posted is None:
        if csrf_failed(form):
            if wants_json():
                return jsonify(error="csrf", message=str(FORM_EXPIRED)), 400
            if fragment:
                return render_template("booklore_oidc/_checks.html", check_results=None, alert=FORM_EXPIRED), 400
            return settings_page(form, status=400, alert=FORM_EXPIRED)
        problems = [message for _, message in form.error_messages]
        results = [
            checks.CheckResult(
                "form",
                gettext("Form values"),
                checks.Status.FAIL,
                gettext("Fix the form first: %(problems)s", problems=" ".join(problems)),
            )
        ]
        if wants_json():
            errors = {name: list(messages) for name, messages in form.errors.items()}
            return jsonify(checks=[r.as_dict() for r in results], ok=False, errors=errors), 400
        if fragment:
            return render_template("booklore_oidc/_checks.html", check_results=results, checks_ok=False), 400
        return settings_page(form, status=400, results=results)
    merged = posted.merged
    results = checks.run_checks(merged, state.transport, external_url(merged, "booklore_oidc.callback"))
    results += checks.site_checks(
        merged,
        session_cookie_secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        secret_withheld=posted.secret_withheld,
    )
    passed = checks.ok(results)
    log.info(
        "Test Connection by %s: %s.",
        who(),
        ", ".join(f"{r.key}={r.status}" for r in results if r.status != "PASS") or "all passed",
    )
    if wants_json():
        return jsonify(checks=[r.as_dict() for r in results], ok=passed)
    if fragment:
        return render_template("booklore_oidc/_checks.html", check_results=results, checks_ok=passed)
    return settings_page(form, merged=merged, results=results)
