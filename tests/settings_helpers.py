"""Helpers for the settings page tests: an admin who signs in through the real login form, and
the settings form read back from the page the way a browser would submit it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.security import generate_password_hash

from example_app.models import User, db

FORM_ID = "bo-settings-form"
ADMIN = ("admin", "admin-password")


def create_user(app: Flask, username: str, password: str, *, is_admin: bool = False, **fields: Any) -> int:
    """A local user of the example app, with a cheap password hash (scrypt would dominate)."""
    with app.app_context():
        user = User(
            username=username,
            is_admin=is_admin,
            permissions=fields.pop("permissions", []),
            libraries=fields.pop("libraries", []),
            password_hash=generate_password_hash(password, method="pbkdf2:sha256:1000"),
            **fields,
        )
        db.session.add(user)
        db.session.commit()
        return int(user.id)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str) -> None:
    """Sign in through ``POST /login`` with the CSRF token of the login form."""
    page = client.get("/login?local=true").get_data(as_text=True)
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf_token(page), "next": ""}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


class _FormReader(HTMLParser):
    """Collects what a browser would submit for the form ``FORM_ID``: the controls inside it
    and those that name it with ``form=``; disabled controls and unchecked boxes are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.values: MultiDict[str, str] = MultiDict()
        self._in_form = 0
        self._select: str | None = None
        self._select_disabled = False
        self._selected: str | None = None
        self._first_option: str | None = None

    def _owned(self, attrs: dict[str, str | None]) -> bool:
        return attrs.get("form") == FORM_ID or self._in_form > 0

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = dict(attr_list)
        if tag == "form" and attrs.get("id") == FORM_ID:
            self._in_form += 1
        elif tag == "input" and self._owned(attrs) and "disabled" not in attrs and attrs.get("name"):
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.values.add(attrs["name"] or "", attrs.get("value") or "on")
            elif kind not in ("submit", "button"):
                self.values.add(attrs["name"] or "", attrs.get("value") or "")
        elif tag == "select" and self._owned(attrs):
            self._select = attrs.get("name")
            self._select_disabled = "disabled" in attrs
            self._selected = self._first_option = None
        elif tag == "option" and self._select is not None:
            value = attrs.get("value") or ""
            if self._first_option is None:
                self._first_option = value
            if "selected" in attrs:
                self._selected = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form -= 1
        elif tag == "select" and self._select is not None:
            if not self._select_disabled:
                self.values.add(
                    self._select, self._selected if self._selected is not None else self._first_option or ""
                )
            self._select = None


def read_form(html: str) -> MultiDict[str, str]:
    reader = _FormReader()
    reader.feed(html)
    return reader.values


def settings_form(client: FlaskClient, **changes: Any) -> MultiDict[str, str]:
    """The settings form as the page shows it, with ``changes`` applied like a person would:
    ``True``/``False`` ticks or unticks a box, a list sets a multiple choice, a string types."""
    response = client.get("/settings/oidc")
    assert response.status_code == 200, response.status_code
    values = read_form(response.get_data(as_text=True))
    for name, value in changes.items():
        if value is True:
            values.setlist(name, ["y"])
        elif value is False:
            values.poplist(name)
        elif isinstance(value, (list, tuple)):
            values.setlist(name, [str(v) for v in value])
        else:
            values.setlist(name, [str(value)])
    return values


def page_text(response: Any) -> str:
    import html

    return html.unescape(response.get_data(as_text=True))
