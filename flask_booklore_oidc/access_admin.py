"""The group mapping table and the linked identities list of the settings page (SPEC §7, issue 4).

Each action is its own small form posted to its own URL, then back to the settings page; the
decisions (what a row grants, who would be stranded by an unlink) live in :mod:`.mapping` and
:mod:`.identities`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from . import identities
from .admin import admin_only, page_context_providers, render_settings
from .forms import MultiCheckboxField, select_choices
from .models import GroupMapping
from .models import Identity as IdentityRow
from .views import _ext, blueprint

log = logging.getLogger(__name__)


def _no_surrounding_space(form: Any, field: Any) -> None:
    if field.data and field.data != field.data.strip():
        raise ValidationError("Group value has spaces at the start or end; groups are matched exactly.")


class GroupMappingForm(FlaskForm):  # type: ignore[misc]
    group_value = StringField(
        "Group",
        validators=[DataRequired("Group value is required."), Length(max=255), _no_surrounding_space],
        description="The exact group name the provider sends, e.g. readers.",
    )
    description = StringField("Description", validators=[Length(max=500)], description="For you: what this group is.")
    grant_admin = BooleanField("Grant admin", description="Members become administrators.")
    permissions = MultiCheckboxField("Permissions", choices=[])
    libraries = MultiCheckboxField("Libraries", choices=[])


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A delete or unlink button: its CSRF token, and ``confirm=yes`` once a warning was shown."""

    confirm = HiddenField()


def group_form(row: GroupMapping | None = None, **kwargs: Any) -> GroupMappingForm:
    adapter = _ext().adapter
    if row is not None and not request.form:
        kwargs.setdefault("group_value", row.group_value)
        kwargs.setdefault("description", row.description)
        kwargs.setdefault("grant_admin", row.grant_admin)
        kwargs.setdefault("permissions", json.loads(row.permissions or "[]"))
        kwargs.setdefault("libraries", json.loads(row.libraries or "[]"))
    form = GroupMappingForm(prefix=f"group-{row.id}" if row is not None else "group-new", **kwargs)
    form.permissions.choices = select_choices(adapter.permission_choices())
    form.libraries.choices = select_choices(adapter.library_choices())
    return form


def page_context(
    *, editing: tuple[int | None, GroupMappingForm] | None = None, confirm_unlink: int | None = None
) -> dict[str, Any]:
    """What ``_group_mappings.html`` needs; ``editing`` re-shows a form that failed validation."""
    ext = _ext()
    adapter = ext.adapter
    session = adapter.session
    rows = session.execute(select(GroupMapping).order_by(GroupMapping.group_value, GroupMapping.id)).scalars().all()
    forms = {row.id: group_form(row) for row in rows}
    new_form = group_form()
    if editing is not None:
        row_id, form = editing
        if row_id is None:
            new_form = form
        else:
            forms[row_id] = form
    settings = ext.settings()
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
        "confirm_form": ConfirmForm(),
    }


def _back(anchor: str, **params: Any) -> ResponseReturnValue:
    return redirect(url_for("booklore_oidc.settings", **params) + "#" + anchor)


def _rerender(**context: Any) -> ResponseReturnValue:
    return render_settings(status=400, **context)


def _store(row: GroupMapping, form: GroupMappingForm) -> None:
    row.group_value = form.group_value.data
    row.description = (form.description.data or "").strip()
    row.grant_admin = bool(form.grant_admin.data)
    row.permissions = json.dumps(sorted(form.permissions.data or []))
    row.libraries = json.dumps(sorted(form.libraries.data or []))


@blueprint.route("/settings/oidc/groups", methods=["POST"], endpoint="add_group_mapping")
@admin_only
def add_group_mapping() -> ResponseReturnValue:
    form = group_form()
    if not form.validate_on_submit():
        return _rerender(editing=(None, form))
    session = _ext().adapter.session
    row = GroupMapping()
    _store(row, form)
    session.add(row)
    session.commit()
    log.info("Group mapping for %r added.", row.group_value)
    return _back("group-mappings", groups="added")


@blueprint.route("/settings/oidc/groups/<int:row_id>", methods=["POST"], endpoint="edit_group_mapping")
@admin_only
def edit_group_mapping(row_id: int) -> ResponseReturnValue:
    session = _ext().adapter.session
    row = session.get(GroupMapping, row_id)
    if row is None:
        return _back("group-mappings", groups="missing")
    form = group_form(row)
    if not form.validate_on_submit():
        return _rerender(editing=(row_id, form))
    _store(row, form)
    session.commit()
    log.info("Group mapping for %r changed.", row.group_value)
    return _back("group-mappings", groups="updated")


@blueprint.route("/settings/oidc/groups/<int:row_id>/delete", methods=["POST"], endpoint="delete_group_mapping")
@admin_only
def delete_group_mapping(row_id: int) -> ResponseReturnValue:
    if not ConfirmForm().validate_on_submit():
        return _back("group-mappings", groups="expired")
    session = _ext().adapter.session
    row = session.get(GroupMapping, row_id)
    if row is not None:
        session.delete(row)
        session.commit()
        log.info("Group mapping for %r deleted.", row.group_value)
    return _back("group-mappings", groups="deleted")


@blueprint.route("/settings/oidc/identities/<int:identity_id>/unlink", methods=["POST"], endpoint="unlink_identity")
@admin_only
def unlink_identity(identity_id: int) -> ResponseReturnValue:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _back("linked-identities", identities="expired")
    ext = _ext()
    adapter = ext.adapter
    row = adapter.session.get(IdentityRow, identity_id)
    if row is None:
        return _back("linked-identities", identities="missing")
    user = adapter.get_by_id(row.user_id)
    if user is not None and form.confirm.data != "yes" and identities.unlink_warning(adapter, ext.settings(), user):
        return _rerender(confirm_unlink=identity_id)
    adapter.session.delete(row)
    adapter.session.commit()
    log.info(
        "Identity %s unlinked from %s.", row.subject, adapter.get_username(user) if user is not None else row.user_id
    )
    return _back("linked-identities", identities="unlinked")


page_context_providers.append(page_context)
