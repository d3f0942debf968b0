"""Views of the group mapping table and the linked identities list on the settings page
(SPEC §7). Each action is its own small form posted to its own URL, then back to the settings
page; the decisions (what a row grants, who would be stranded by an unlink) live in
:mod:`.mapping` and :mod:`.identities`.
"""

from __future__ import annotations

import logging

from flask.typing import ResponseReturnValue

from . import identities, sessions
from .forms import ConfirmForm
from .mapping import MappingRow, delete_mapping, load_rows, save_mapping
from .pages import admin_only, back_to_settings, group_form, settings_page
from .state import current_settings, current_state

log = logging.getLogger(__name__)


def _posted_row(form: object, row_id: int | None) -> MappingRow:
    return MappingRow(
        group=form.group_value.data,  # type: ignore[attr-defined]
        description=form.description.data or "",  # type: ignore[attr-defined]
        grant_admin=bool(form.grant_admin.data),  # type: ignore[attr-defined]
        permissions=frozenset(form.permissions.data or ()),  # type: ignore[attr-defined]
        libraries=frozenset(form.libraries.data or ()),  # type: ignore[attr-defined]
        id=row_id,
    )


@admin_only
def add_group_mapping() -> ResponseReturnValue:
    form = group_form()
    if not form.validate_on_submit():
        return settings_page(status=400, editing=(None, form))
    row = _posted_row(form, None)
    save_mapping(current_state().adapter.session, row)
    log.info("Group mapping for %r added.", row.group)
    return back_to_settings("group-mappings", groups="added")


@admin_only
def edit_group_mapping(row_id: int) -> ResponseReturnValue:
    rows = {row.id: row for row in load_rows(current_state().adapter.session)}
    if row_id not in rows:
        return back_to_settings("group-mappings", groups="missing")
    form = group_form(rows[row_id])
    if not form.validate_on_submit():
        return settings_page(status=400, editing=(row_id, form))
    row = _posted_row(form, row_id)
    try:
        save_mapping(current_state().adapter.session, row)
    except LookupError:  # deleted in the meantime
        return back_to_settings("group-mappings", groups="missing")
    log.info("Group mapping for %r changed.", row.group)
    return back_to_settings("group-mappings", groups="updated")


@admin_only
def delete_group_mapping(row_id: int) -> ResponseReturnValue:
    """Delete a row; the first post (without ``confirm=yes``) only asks, also without JavaScript."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return back_to_settings("group-mappings", groups="expired")
    if form.confirm.data != "yes":
        if row_id not in {row.id for row in load_rows(current_state().adapter.session)}:
            return back_to_settings("group-mappings", groups="missing")
        return settings_page(confirm_delete=row_id)
    removed = delete_mapping(current_state().adapter.session, row_id)
    if removed is not None:
        log.info("Group mapping for %r deleted.", removed.group)
    return back_to_settings("group-mappings", groups="deleted")


@admin_only
def unlink_identity(identity_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return back_to_settings("linked-identities", identities="expired")
    adapter = current_state().adapter
    linked = identities.get_identity(adapter, identity_id)
    if linked is None:
        return back_to_settings("linked-identities", identities="missing")
    user = adapter.get_by_id(linked.user_id)
    if form.confirm.data != "yes":  # ask first, louder when the user would be locked out
        warned = user is not None and identities.unlink_warning(adapter, current_settings(), user)
        return settings_page(status=400 if warned else 200, confirm_unlink=identity_id)
    identities.unlink_one(adapter, identity_id)
    log.info("Identity %s unlinked from %s.", linked.subject, linked.username or linked.user_id)
    return back_to_settings("linked-identities", identities="unlinked")


@admin_only
def end_identity_sessions(identity_id: int) -> ResponseReturnValue:
    """End every session of the user behind a linked identity, local ones too: each browser
    is signed out on its next request."""
    if not ConfirmForm().validate_on_submit():
        return back_to_settings("linked-identities", identities="expired")
    adapter = current_state().adapter
    linked = identities.get_identity(adapter, identity_id)
    if linked is None:
        return back_to_settings("linked-identities", identities="missing")
    ended = sessions.end_for_user(adapter.session, linked.user_id)
    adapter.session.commit()
    log.info("%d session(s) of %s ended by an administrator.", ended, linked.username or linked.user_id)
    return back_to_settings("linked-identities", identities="ended", ended=ended)
