"""The settings page's test sign-in (SPEC §3): a real sign-in with the saved or the
unsaved settings that signs nobody in and writes nothing, and shows the claims, what each
mapping resolved to, the matching group rows, the resulting access and which §6 rule would
pick the user. Only for whoever may open the settings page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import Row

from . import rules, sessions
from .adapter import Access, UserAdapter
from .claims import Identity, resolve_claim
from .errors import ERRORS, OIDCError
from .flow import Completed, digest
from .i18n import gettext, lazy_gettext
from .mapping import MappingRow, load_rows
from .pages import (
    RESTORE_KEY,
    admin_only,
    keep_for_restore,
    refusal,
    refused_form_page,
    settings_form,
    settings_page,
    submitted,
    who,
)
from .provisioning import Decision, Resolver, Rule
from .secretbox import InvalidToken
from .settings import Settings
from .signin import flow_for
from .state import current_settings, current_state, render_page
from .urls import external_url

log = logging.getLogger(__name__)

#: the purpose of a test sign-in's transaction
PREVIEW = "preview"
#: session key: a hash of the ``state`` of the test sign-in whose report was shown last, so a
#: reload of the report says so instead of ``invalid_state``
SHOWN_KEY = "_booklore_oidc_preview_shown"


# -- test sign-in ----------------------------------------------------------------------------------


@admin_only
def preview() -> ResponseReturnValue:
    """Test sign-in: a real sign-in at the provider, with the saved settings (GET) or the
    unsaved form values (POST), that signs nobody in and writes nothing (see :func:`finish_preview`)."""
    state = current_state()
    saved = current_settings()
    form = settings_form(saved)
    override: str | None = None
    merged = saved
    session.pop(RESTORE_KEY, None)
    if request.method == "POST":
        posted = submitted(form, saved)
        if posted is None:
            return refused_form_page(form)
        merged = posted.merged
        if posted.secret_withheld:
            return settings_page(form, status=409, merged=merged, alert=rules.SECRET_STAYS_HOME)
        keep_for_restore(posted.changes, posted.remove_secret)
        # The unsaved values travel with the transaction, encrypted: they may hold a secret.
        override = state.box.seal(json.dumps({"changes": posted.changes, "remove_secret": posted.remove_secret}))
    problem = rules.preview_problem(merged)
    if problem:
        return settings_page(form, status=409, merged=merged, alert=problem)
    try:
        url = flow_for(state, merged).begin(
            redirect_uri=external_url(merged, "booklore_oidc.callback"),
            browser_key=sessions.browser_key(),
            purpose=PREVIEW,
            settings_override=override,
            # "Test sign-in as another user": the provider asks who signs in, even if signed in there.
            prompt="login" if request.values.get("another_user") else None,
        )
    except OIDCError as error:
        return settings_page(
            form,
            status=error.code or 502,
            merged=merged,
            alert=gettext("Test sign-in could not start: %(problem)s", problem=error.detail or error.title),
        )
    log.info("Test sign-in started by %s.", who())
    return redirect(url)


def finish_preview(transaction: Row[Any]) -> ResponseReturnValue:
    """The callback of a test sign-in (its ``transaction`` already taken): verify everything as
    a sign-in would, then show what would happen, without signing anyone in or writing
    anything. Only for admins."""
    refused = refusal()
    if refused is not None:
        return refused
    session[SHOWN_KEY] = digest(request.args.get("state") or "")
    state = current_state()
    merged = saved = current_settings()
    sealed = transaction.settings_override
    if sealed:
        try:
            override = json.loads(state.box.open(sealed))
        except InvalidToken:
            error = OIDCError(
                "invalid_state", lazy_gettext("The test sign-in's settings cannot be read; start it again.")
            )
            return _report(None, error), 400
        merged, _ = rules.for_unsaved(saved, override["changes"], remove_secret=bool(override["remove_secret"]))
    try:
        completed = flow_for(state, merged).complete(request.args, transaction=transaction)
    except OIDCError as error:
        log.info("Test sign-in by %s failed: %s", who(), error)
        return _report(None, error), error.code or 500
    report = build_preview(state.adapter, merged, completed, load_rows(state.adapter.session), state.hooks.group_mapper)
    state.adapter.session.rollback()  # deciding only reads; make sure nothing lingers
    log.info("Test sign-in by %s: rule %s.", who(), report.decision.rule)
    return _report(report, None)


def _report(report: PreviewReport | None, error: OIDCError | None, *, already_shown: bool = False) -> str:
    adapter = current_state().adapter
    kept = session.get(RESTORE_KEY)
    return render_page(
        "booklore_oidc/preview.html",
        preview=report,
        error=error,
        already_shown=already_shown,
        back_url=url_for("booklore_oidc.settings", restore="1") if kept else url_for("booklore_oidc.settings"),
        restored_note=gettext("The settings page will show the unsaved values you tested.") if kept else None,
        permission_labels=dict(adapter.permission_choices()),
        library_labels=dict(adapter.library_choices()),
    )


def was_shown() -> bool:
    """Whether the callback being reloaded is that of the test sign-in whose report this
    browser was shown last (its transaction is gone, so it would be ``invalid_state``)."""
    shown = session.get(SHOWN_KEY)
    return bool(shown) and shown == digest(request.args.get("state") or "")


def shown_again() -> ResponseReturnValue:
    """The answer to a reload of a test sign-in's report: it was shown; start a new one."""
    refused = refusal()
    if refused is not None:
        return refused
    return _report(None, None, already_shown=True), 200


@dataclass(frozen=True)
class MappedClaim:
    label: str
    spec: str
    value: Any
    source: str | None  # "ID token", "userinfo" or None when missing


@dataclass(frozen=True)
class AccessView:
    """Access with labels, for the page."""

    is_admin: bool
    permissions: list[str]
    libraries: list[str]


@dataclass(frozen=True)
class PreviewReport:
    identity: Identity
    #: (claim name, value as JSON, where it came from)
    claims: list[tuple[str, str, str]]
    mappings: list[MappedClaim]
    rows: list[MappingRow]
    matching: list[MappingRow]
    decision: Decision
    summary: str
    user_name: str | None
    group_sync: str
    current: AccessView | None
    result: AccessView | None
    access_changes: bool
    last_admin_kept: bool

    @property
    def signs_in(self) -> bool:
        return self.decision.error is None


_TIME_CLAIMS = frozenset({"exp", "iat", "nbf", "auth_time", "updated_at"})


def _source(spec: str, id_claims: Mapping[str, Any], userinfo: Mapping[str, Any] | None) -> str | None:
    if resolve_claim([id_claims], spec) is not None:
        return gettext("ID token")
    if userinfo is not None and resolve_claim([userinfo], spec) is not None:
        return gettext("userinfo")
    return None


def _access_view(adapter: UserAdapter, access: Access) -> AccessView:
    permissions = dict(adapter.permission_choices())
    libraries = dict(adapter.library_choices())
    return AccessView(
        access.is_admin,
        [permissions.get(p, p) for p in sorted(access.permissions)],
        [libraries.get(lib, lib) for lib in sorted(access.libraries)],
    )


def build_preview(
    adapter: UserAdapter,
    settings: Settings,
    completed: Completed,
    rows: Sequence[MappingRow],
    group_mapper: Any = None,
) -> PreviewReport:
    """What a sign-in with ``completed`` would do under ``settings``; reads only."""
    identity = completed.identity
    id_claims, userinfo = completed.id_claims, completed.userinfo
    resolver = Resolver(adapter, settings, mapping_rows=rows, group_mapper=group_mapper)
    decision = resolver.decide(identity)

    claims = []
    for name in sorted(set(id_claims) | set(userinfo or {})):
        value = id_claims[name] if name in id_claims else (userinfo or {})[name]
        in_token, in_userinfo = name in id_claims, name in (userinfo or {})
        if in_token and in_userinfo:
            where = gettext("ID token and userinfo")
        else:
            where = gettext("ID token") if in_token else gettext("userinfo")
        shown = json.dumps(value, ensure_ascii=False, default=str)
        if name in _TIME_CLAIMS and isinstance(value, int) and not isinstance(value, bool):
            with suppress(OverflowError, OSError, ValueError):  # else the number alone
                shown += datetime.fromtimestamp(value, UTC).strftime(" (%Y-%m-%d %H:%M:%S UTC)")
        claims.append((name, shown, where))

    mappings = [
        MappedClaim(
            gettext("Username"),
            settings.claim_username,
            identity.username,
            _source(settings.claim_username, id_claims, userinfo),
        ),
        MappedClaim(
            gettext("Email"), settings.claim_email, identity.email, _source(settings.claim_email, id_claims, userinfo)
        ),
        MappedClaim(
            gettext("Display name"),
            settings.claim_display_name,
            identity.display_name,
            _source(settings.claim_display_name, id_claims, userinfo),
        ),
        MappedClaim(
            gettext("Groups"),
            settings.claim_groups,
            identity.groups,
            _source(settings.claim_groups, id_claims, userinfo),
        ),
    ]

    user_name = adapter.get_username(decision.user) if decision.user is not None else None
    current_access: Access | None = None
    if decision.error is None:
        if decision.new_user is not None:
            current_access = decision.new_user.access
        elif decision.user is not None:
            current_access = adapter.get_access(decision.user)
    result_access = planned = None
    last_admin_kept = False
    if current_access is not None:
        planned = resolver.planned_access(identity, current_access)
        result_access = planned or current_access
        if decision.new_user is None and current_access.is_admin and not result_access.is_admin:
            kept = rules.keep_last_admin(current_access, result_access, adapter.count_admins())
            last_admin_kept = kept != result_access
            result_access = kept

    return PreviewReport(
        identity=identity,
        claims=claims,
        mappings=mappings,
        rows=list(rows),
        matching=resolver.matching_rows(identity),
        decision=decision,
        summary=_summary(decision, user_name),
        user_name=user_name,
        group_sync=settings.group_sync,
        current=_access_view(adapter, current_access)
        if current_access is not None and decision.new_user is None
        else None,
        result=_access_view(adapter, result_access) if result_access is not None else None,
        access_changes=planned is not None and planned != current_access,
        last_admin_kept=last_admin_kept,
    )


def _summary(decision: Decision, user_name: str | None) -> str:
    rule = decision.rule
    if rule == Rule.IDENTITY:
        return gettext(
            "Signs in as %(user)s: this provider identity is already linked to that account.", user=user_name
        )
    if rule == Rule.USERNAME:
        return gettext(
            "Links the existing account %(user)s (same username) to this identity and signs in.", user=user_name
        )
    if rule == Rule.EMAIL:
        return gettext(
            "Links the existing account %(user)s (same verified email) to this identity and signs in.", user=user_name
        )
    if rule == Rule.NEEDS_PROOF:
        how = gettext("same verified email") if decision.link_by == Rule.EMAIL else gettext("same username")
        return gettext(
            "Asks for the local password of the existing account %(user)s (%(how)s): it has a password or is an "
            "administrator, so it is linked to this identity only after that password is typed. Nothing is linked "
            "and nobody is signed in until then.",
            user=user_name,
            how=how,
        )
    if rule == Rule.PROVISIONED:
        assert decision.new_user is not None
        return gettext("Creates the new account %(user)s and signs in.", user=decision.new_user.username)
    assert decision.error is not None
    info = ERRORS[decision.error.error_code]
    return gettext(
        "Nobody is signed in: %(title)s (%(code)s). %(detail)s",
        title=info.title,
        code=decision.error.error_code,
        detail=decision.error.detail,
    )
