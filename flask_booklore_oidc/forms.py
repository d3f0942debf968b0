"""WTForms forms (Flask-WTF, so every POST carries a CSRF token)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from .config import FIELDS, Field
from .i18n import gettext, lazy_gettext
from .settings import Settings


def csrf_failed(form: Any) -> bool:
    """Whether the form was refused for its CSRF token (there is none when the app sets
    ``WTF_CSRF_ENABLED = False``)."""
    token = getattr(form, "csrf_token", None)
    return bool(token is not None and token.errors)


def printable(form: Any, field: Any) -> None:
    """Refuse control characters (NUL, line breaks, …) before anything reaches the database."""
    if field.data and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in field.data):
        raise ValidationError(gettext("%(label)s contains a control character.", label=field.label.text))


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField(
        lazy_gettext("Username"),
        validators=[DataRequired(), Length(max=255), printable],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        lazy_gettext("Password"),
        validators=[DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    next = HiddenField()  # an unsafe or over-long value is dropped, never refused (urls.safe_next)


class LogoutForm(FlaskForm):  # type: ignore[misc]
    pass


class LinkForm(FlaskForm):  # type: ignore[misc]
    """The password that proves an existing account is the reader's (SPEC §6), or Cancel.
    The password is checked by the view (Cancel needs none)."""

    password = PasswordField(
        lazy_gettext("Password"),
        validators=[Optional(), Length(max=1024)],
        render_kw={"autocomplete": "current-password", "autofocus": True},
    )
    submit = SubmitField(lazy_gettext("Connect and sign in"))
    cancel = SubmitField(lazy_gettext("Cancel"))


def _errors_as_text(form: Any) -> None:
    """Every error message as a plain ``str`` in the reader's language: a lazy message (a
    validator's, made at import) would be joined or sent as JSON in English."""
    for field in form:
        field.errors = [str(message) for message in field.errors]


# -- the settings page ---------------------------------------------------------------------------

#: how the choices of the choice settings read on the page
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "token_auth_method": {
        "auto": lazy_gettext("Automatic"),
        "none": lazy_gettext("None (public client, PKCE only)"),
        "client_secret_basic": lazy_gettext("client_secret_basic (HTTP Basic)"),
        "client_secret_post": lazy_gettext("client_secret_post (in the request body)"),
    },
    "group_sync": {
        "disabled": lazy_gettext("Disabled: groups change nothing after the first sign-in"),
        "replace": lazy_gettext("Replace: access follows the groups at every sign-in"),
        "additive": lazy_gettext("Additive: groups only ever grant"),
    },
}

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3 takes (value, label) pairs
    SelectChoice = None


def select_choices(pairs: Any) -> Any:
    """``(value, label)`` pairs as WTForms wants them: WTForms 3.3 deprecates tuples."""
    if SelectChoice is None or pairs is None:
        return pairs
    # The label stays as it is: a lazy one is looked up when the page is rendered.
    return [SelectChoice(str(p[0]), p[1]) if isinstance(p, tuple) else p for p in pairs]


class MultiCheckboxField(SelectMultipleField):  # type: ignore[misc]
    """A multiple choice shown as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _setting(f: Field) -> Any:
    """The form field of one setting, with its label and help text; :meth:`Field.parse` (in
    :meth:`SettingsForm.validate`) is its validation."""
    if f.kind == "bool":
        return BooleanField(f.label, description=f.help)
    if f.kind == "secret":
        return PasswordField(f.label, description=f.help, render_kw={"autocomplete": "new-password"})
    if f.kind == "choice":
        labels = CHOICE_LABELS.get(f.name, {})
        return SelectField(
            f.label, description=f.help, choices=select_choices([(c, labels.get(c, c)) for c in f.choices])
        )
    if f.kind == "list" and f.name != "allowed_groups":  # chosen from the adapter's catalogue
        return MultiCheckboxField(f.label, description=f.help, choices=[])
    if f.kind in ("int", "float"):
        return StringField(f.label, description=f.help, render_kw={"inputmode": "decimal"})
    render_kw: dict[str, Any] = {"spellcheck": "false"}
    if f.max_length:
        render_kw["maxlength"] = f.max_length
    if f.name == "client_id":
        render_kw["autocomplete"] = "off"
    return StringField(f.label, description=f.help, render_kw=render_kw)


def initial_values(settings: Settings) -> dict[str, Any]:
    """The form's values for ``settings`` (the secret is never among them)."""
    values: dict[str, Any] = {}
    for f in FIELDS:
        value = getattr(settings, f.name)
        if f.kind == "secret":
            values[f.name] = ""
        elif f.name == "allowed_groups":
            values[f.name] = ", ".join(value)
        elif f.kind == "list":
            values[f.name] = list(value)
        elif f.kind == "float":
            values[f.name] = f"{value:g}"
        elif f.kind == "int":
            values[f.name] = str(value)
        else:
            values[f.name] = value
    return values


def _choices(catalogue: Sequence[tuple[str, str]], stored: Sequence[str]) -> list[tuple[str, str]]:
    """The catalogue, plus stored values it no longer lists (so a save does not drop them silently)."""
    known = {value for value, _ in catalogue}
    return [*catalogue, *((v, gettext("%(value)s (no longer offered)", value=v)) for v in stored if v not in known)]


class _SettingsFormBase(FlaskForm):  # type: ignore[misc]
    """Every setting of :data:`~.config.FIELDS` (added by :func:`_settings_form_class`), plus
    the explicit "remove the stored secret" control.

    Values set by the environment or app config are shown but never taken from the request:
    they keep their effective value, skip validation and are left out of :meth:`changes`.
    """

    def __init__(
        self,
        *args: Any,
        settings: Settings,
        permission_choices: Sequence[tuple[str, str]] = (),
        library_choices: Sequence[tuple[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        initial = initial_values(settings)
        super().__init__(*args, data=initial, **kwargs)
        self.settings = settings
        self.default_permissions.choices = select_choices(_choices(permission_choices, settings.default_permissions))
        self.default_libraries.choices = select_choices(_choices(library_choices, settings.default_libraries))
        self.locked_names = frozenset(f.name for f in FIELDS if settings.locked(f.name))
        for name in self.locked_names:
            self[name].process(None, initial[name])
            self[name].render_kw = {**(self[name].render_kw or {}), "disabled": True}
        if "client_secret" in self.locked_names:
            self.remove_secret.process(None, False)

    @property
    def secret_stored(self) -> bool:
        return bool(self.settings.client_secret) or self.settings.secret_unreadable

    def validate(self, extra_validators: Any = None) -> bool:
        super().validate(extra_validators)
        for f in FIELDS:
            field = self[f.name]
            if f.name in self.locked_names:
                field.errors = []
            elif not field.errors:
                try:
                    f.parse(field.data if field.data is not None else "")
                except ValueError as exc:
                    field.errors = [str(exc)]
        if self.remove_secret.data and self.client_secret.data:
            self.remove_secret.errors = [
                gettext("Either enter a new Client Secret or remove the stored one, not both.")
            ]
        _errors_as_text(self)
        return not any(field.errors for field in self)

    @property
    def error_messages(self) -> list[tuple[str, str]]:
        """(field name, message) for every error, in page order."""
        return [(field.name, message) for field in self for message in field.errors]

    def changes(self) -> dict[str, Any]:
        """The submitted values that differ from the current ones, parsed, for the settings not
        locked by configuration; a blank secret is left out (it means "keep the stored one")."""
        out: dict[str, Any] = {}
        for f in FIELDS:
            if f.name in self.locked_names:
                continue
            raw = self[f.name].data
            if f.kind == "secret":
                if raw:
                    out[f.name] = raw
                continue
            value = f.parse(raw if raw is not None else "")
            current = getattr(self.settings, f.name)
            if (tuple(value) if f.kind == "list" else value) != current:
                out[f.name] = value
        return out

    @property
    def remove_secret_requested(self) -> bool:
        return bool(self.remove_secret.data) and "client_secret" not in self.locked_names


def _settings_form_class() -> type[_SettingsFormBase]:
    attributes: dict[str, Any] = {}
    for f in FIELDS:
        attributes[f.name] = _setting(f)
        if f.kind == "secret":
            attributes["remove_secret"] = BooleanField(
                lazy_gettext("Remove the stored secret"),
                description=lazy_gettext("Turns this app into a public client (PKCE, no secret)."),
            )
    return type("SettingsForm", (_SettingsFormBase,), attributes)


#: The settings page's form: one field per setting of :data:`~.config.FIELDS`.
SettingsForm = _settings_form_class()


# -- the group mapping table and the linked identities ---------------------------------------------


def _no_surrounding_space(form: Any, field: Any) -> None:
    if field.data and field.data != field.data.strip():
        raise ValidationError(gettext("Group value has spaces at the start or end; groups are matched exactly."))


class GroupMappingForm(FlaskForm):  # type: ignore[misc]
    group_value = StringField(
        lazy_gettext("Group"),
        validators=[DataRequired(lazy_gettext("Group value is required.")), Length(max=255), _no_surrounding_space],
        description=lazy_gettext("The exact group name the provider sends, e.g. readers."),
    )
    description = StringField(
        lazy_gettext("Description"),
        validators=[Length(max=500)],
        description=lazy_gettext("For you: what this group is."),
    )
    grant_admin = BooleanField(lazy_gettext("Grant admin"), description=lazy_gettext("Members become administrators."))
    permissions = MultiCheckboxField(lazy_gettext("Permissions"), choices=[])
    libraries = MultiCheckboxField(lazy_gettext("Libraries"), choices=[])

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        _errors_as_text(self)
        return valid


class ConfirmForm(FlaskForm):  # type: ignore[misc]
    """A delete or unlink button: its CSRF token, and ``confirm=yes`` once a warning was shown."""

    confirm = HiddenField()
