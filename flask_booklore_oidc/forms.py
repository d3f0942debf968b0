"""WTForms forms (Flask-WTF, so every POST carries a CSRF token)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from .claims import validate_mapping
from .config import FIELDS, FIELDS_BY_NAME, parse_value
from .settings import Settings


def csrf_failed(form: Any) -> bool:
    """Whether the form was refused for its CSRF token (there is none when the app sets
    ``WTF_CSRF_ENABLED = False``)."""
    token = getattr(form, "csrf_token", None)
    return bool(token is not None and token.errors)


class LoginForm(FlaskForm):  # type: ignore[misc]
    username = StringField(
        "Username",
        validators=[DataRequired(), Length(max=255)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=1024)], render_kw={"autocomplete": "current-password"}
    )
    next = HiddenField()


class LogoutForm(FlaskForm):  # type: ignore[misc]
    pass


# -- the settings page ---------------------------------------------------------------------------

#: how the choices of the choice settings read on the page
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "token_auth_method": {
        "auto": "Automatic",
        "none": "None (public client, PKCE only)",
        "client_secret_basic": "client_secret_basic (HTTP Basic)",
        "client_secret_post": "client_secret_post (in the request body)",
    },
    "group_sync": {
        "disabled": "Disabled: groups change nothing after the first sign-in",
        "replace": "Replace: access follows the groups at every sign-in",
        "additive": "Additive: groups only ever grant",
    },
}

#: RFC 6749 §3.3 scope-token characters
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3 takes (value, label) pairs
    SelectChoice = None


def select_choices(pairs: Any) -> Any:
    """``(value, label)`` pairs as WTForms wants them: WTForms 3.3 deprecates tuples."""
    if SelectChoice is None or pairs is None:
        return pairs
    return [SelectChoice(str(p[0]), str(p[1])) if isinstance(p, tuple) else p for p in pairs]


class MultiCheckboxField(SelectMultipleField):  # type: ignore[misc]
    """A multiple choice shown as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _setting(name: str) -> Any:
    """The form field of one setting of :data:`~.config.FIELDS`, with its label and help text."""
    f = FIELDS_BY_NAME[name]
    if f.kind == "bool":
        return BooleanField(f.label, description=f.help)
    if f.kind == "secret":
        return PasswordField(f.label, description=f.help, render_kw={"autocomplete": "new-password"})
    if f.kind == "choice":
        labels = CHOICE_LABELS.get(name, {})
        return SelectField(
            f.label, description=f.help, choices=select_choices([(c, labels.get(c, c)) for c in f.choices])
        )
    if name in ("default_permissions", "default_libraries"):
        return MultiCheckboxField(f.label, description=f.help, choices=[])
    if f.kind in ("int", "float"):
        return StringField(f.label, description=f.help, filters=[_strip], render_kw={"inputmode": "decimal"})
    if name == "client_id":  # stray whitespace is reported, not silently removed (SPEC §4)
        return StringField(f.label, description=f.help, render_kw={"autocomplete": "off", "spellcheck": "false"})
    return StringField(f.label, description=f.help, filters=[_strip], render_kw={"spellcheck": "false"})


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


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
    return [*catalogue, *((v, f"{v} (no longer offered)") for v in stored if v not in known)]


def http_url_problem(value: str, label: str, *, https_only: bool) -> str | None:
    """What is wrong with ``value`` as an absolute base URL, or ``None``."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{label} must be an absolute URL such as https://{'pocket-id' if https_only else 'books'}.example.com, got {value!r}."
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        return f"{label} must not contain a query (?…) or a fragment (#…)."
    if https_only and parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
        return f"{label} must be an https:// URL (http:// is allowed only for localhost, 127.0.0.1 and ::1), got {value!r}."
    return None


class SettingsForm(FlaskForm):  # type: ignore[misc]
    """Every setting of SPEC §4, plus the explicit "remove the stored secret" control.

    Values set by the environment or app config are shown but never taken from the request:
    they keep their effective value, skip validation and are left out of :meth:`changes`.
    """

    enabled = _setting("enabled")
    only_mode = _setting("only_mode")
    provider_name = _setting("provider_name")
    client_id = _setting("client_id")
    client_secret = _setting("client_secret")
    remove_secret = BooleanField(
        "Remove the stored secret", description="Turns this app into a public client (PKCE, no secret)."
    )
    issuer_uri = _setting("issuer_uri")
    scopes = _setting("scopes")
    token_auth_method = _setting("token_auth_method")
    claim_username = _setting("claim_username")
    claim_email = _setting("claim_email")
    claim_display_name = _setting("claim_display_name")
    claim_groups = _setting("claim_groups")
    always_userinfo = _setting("always_userinfo")
    auto_provision = _setting("auto_provision")
    sync_profile = _setting("sync_profile")
    link_by_username = _setting("link_by_username")
    username_case_sensitive = _setting("username_case_sensitive")
    link_by_email = _setting("link_by_email")
    allowed_groups = _setting("allowed_groups")
    default_permissions = _setting("default_permissions")
    default_libraries = _setting("default_libraries")
    group_sync = _setting("group_sync")
    public_url = _setting("public_url")
    http_timeout = _setting("http_timeout")
    ca_bundle = _setting("ca_bundle")
    clock_skew = _setting("clock_skew")
    provider_logout = _setting("provider_logout")

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
        for name in self.locked_names:
            self[name].errors = []
        for f in FIELDS:
            if f.kind in ("int", "float") and f.name not in self.locked_names and not self[f.name].errors:
                try:
                    parse_value(f, self[f.name].data)
                except ValueError as exc:
                    self[f.name].errors = [str(exc)]
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
            value = parse_value(f, raw if raw is not None else "")
            current = getattr(self.settings, f.name)
            if (tuple(value) if f.kind == "list" else value) != current:
                out[f.name] = value
        return out

    @property
    def remove_secret_requested(self) -> bool:
        return bool(self.remove_secret.data) and "client_secret" not in self.locked_names

    # -- field checks (WTForms calls validate_<name>) ---------------------------------------------

    def validate_provider_name(self, field: Any) -> None:
        if not field.data:
            raise ValidationError("Provider Name is empty: enter the name shown on the button, e.g. Pocket ID.")
        if len(field.data) > 100:
            raise ValidationError("Provider Name is longer than 100 characters.")

    def validate_client_id(self, field: Any) -> None:
        value = field.data or ""
        for index, char in enumerate(value):
            if char.isspace():
                where = "at the start" if index == 0 else "at the end" if index == len(value) - 1 else "inside it"
                raise ValidationError(
                    f"Client ID contains whitespace ({_describe_space(char)} {where}): copy it again from the provider, "
                    "without spaces."
                )
        if len(value) > 255:
            raise ValidationError("Client ID is longer than 255 characters.")

    def validate_client_secret(self, field: Any) -> None:
        value = field.data or ""
        if value and value != value.strip():
            raise ValidationError(
                "Client Secret starts or ends with whitespace: copy it again from the provider, without spaces."
            )
        if len(value) > 1000:
            raise ValidationError("Client Secret is longer than 1000 characters.")

    def validate_remove_secret(self, field: Any) -> None:
        if field.data and self.client_secret.data:
            raise ValidationError("Either enter a new Client Secret or remove the stored one, not both.")

    def validate_issuer_uri(self, field: Any) -> None:
        value = field.data or ""
        if not value:
            return
        if value.rstrip("/").endswith("/.well-known/openid-configuration"):
            raise ValidationError(
                "Issuer URI: enter the provider's base URL, without /.well-known/openid-configuration."
            )
        problem = http_url_problem(value, "Issuer URI", https_only=True)
        if problem:
            raise ValidationError(problem)

    def validate_scopes(self, field: Any) -> None:
        for scope in (field.data or "").replace(",", " ").split():
            if not _SCOPE_TOKEN.match(scope):
                raise ValidationError(f"Scopes: {scope!r} is not a valid scope name.")

    def _claim(self, field: Any) -> None:
        problem = validate_mapping(field.data or "")
        if problem:
            raise ValidationError(f"{field.label.text}: {problem}.")

    validate_claim_username = _claim
    validate_claim_email = _claim
    validate_claim_display_name = _claim
    validate_claim_groups = _claim

    def validate_public_url(self, field: Any) -> None:
        if field.data:
            problem = http_url_problem(field.data, "Public URL", https_only=False)
            if problem:
                raise ValidationError(problem)

    def validate_http_timeout(self, field: Any) -> None:
        try:
            value = float(field.data)
        except (TypeError, ValueError):
            return  # parse_value reports it
        if value > 120:
            raise ValidationError("HTTP timeout (seconds) must be at most 120.")

    def validate_clock_skew(self, field: Any) -> None:
        try:
            value = int(field.data)
        except (TypeError, ValueError):
            return  # parse_value reports it
        if not 0 <= value <= 600:
            raise ValidationError("Clock skew (seconds) must be between 0 and 600.")

    def validate_ca_bundle(self, field: Any) -> None:
        if field.data and not os.path.isfile(field.data):
            raise ValidationError(f"CA bundle: there is no file at {field.data} on this server.")


def _describe_space(char: str) -> str:
    return {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a line break"}.get(char, "a blank character")
