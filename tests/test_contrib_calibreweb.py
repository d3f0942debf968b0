"""``flask_booklore_oidc.contrib.calibreweb`` against the real Calibre-Web package.

These tests exercise the adapter and the console script on their own; the sign-ins through the
attached app are in test_contrib_calibreweb_signin.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask_login
import pytest
from calibreweb_support import (
    ADMIN,
    ADMIN_PASSWORD,
    CalibreWebHost,
    needs_calibreweb,
)

from flask_booklore_oidc.adapter import Access, NewUser
from flask_booklore_oidc.errors import OIDCError

pytestmark = needs_calibreweb


@pytest.fixture
def adapter(calibreweb: CalibreWebHost) -> Iterator[Any]:
    from flask_booklore_oidc.contrib.calibreweb import CalibreWebAdapter

    with calibreweb.app.app_context():
        yield CalibreWebAdapter()
        calibreweb.ub.session.rollback()


def _new(adapter: Any, name: str, *permissions: str, admin: bool = False, email: str | None = None) -> Any:
    user = adapter.create_user(
        NewUser(username=name, email=email, display_name=name.title(), access=Access(admin, frozenset(permissions)))
    )
    adapter.session.commit()
    return user


def test_create_user_sets_calibreweb_role_bits(calibreweb: CalibreWebHost, adapter: Any) -> None:
    c = calibreweb.constants
    user = _new(adapter, "reader", "download", "viewer", "edit_shelfs", email="reader@example.test")

    row = calibreweb.ub.session.query(calibreweb.ub.User).filter_by(name="reader").one()
    assert row.role == c.ROLE_DOWNLOAD | c.ROLE_VIEWER | c.ROLE_EDIT_SHELFS
    assert row.role_download() and row.role_viewer() and not row.role_admin() and not row.role_upload()
    assert row.email == "reader@example.test" and row.password == ""
    assert row.locale == calibreweb.cps.config.config_default_locale
    assert not adapter.has_password(user) and not adapter.check_password(user, "")
    assert adapter.get_access(user) == Access(False, frozenset({"download", "viewer", "edit_shelfs"}))

    adapter.apply_access(user, Access(True, frozenset({"upload", "change_password", "delete_books", "edit"})))
    assert user.role == c.ROLE_ADMIN | c.ROLE_UPLOAD | c.ROLE_PASSWD | c.ROLE_DELETE_BOOKS | c.ROLE_EDIT
    assert adapter.is_admin(user) and adapter.count_admins() == 2  # with Calibre-Web's own admin
    assert {value for value, _ in adapter.permission_choices()} == {
        "download", "viewer", "upload", "edit", "delete_books", "change_password", "edit_shelfs"
    }  # fmt: skip


def test_lookups_are_case_insensitive_like_calibreweb_and_respect_unique_email(adapter: Any) -> None:
    user = _new(adapter, "MixedCase", email="Mixed@Example.test")
    assert adapter.get_by_username("mixedcase", case_sensitive=False) is user
    assert adapter.get_by_username("mixedcase") is None
    assert adapter.get_by_username("MixedCase") is user
    assert adapter.find_by_email("mixed@example.TEST") == [user]
    assert adapter.get_by_id(adapter.get_id(user)) is user and adapter.get_by_id("x1") is None

    with pytest.raises(OIDCError) as taken:  # Calibre-Web cannot tell "mixedcase" from "MixedCase"
        _new(adapter, "MIXEDCASE")
    assert taken.value.error_code == "account_conflict"
    with pytest.raises(OIDCError):
        _new(adapter, "other", email="MIXED@example.test")

    other = _new(adapter, "other2", email="other2@example.test")
    adapter.update_profile(other, email="mixed@EXAMPLE.test", display_name="ignored")
    assert other.email == "other2@example.test"  # taken: skipped, not a unique-constraint error
    adapter.update_profile(other, email="new2@example.test", display_name=None)
    assert other.email == "new2@example.test"


def test_guest_is_never_found_linked_or_changed(calibreweb: CalibreWebHost, adapter: Any) -> None:
    ub = calibreweb.ub
    guest = ub.session.query(ub.User).filter_by(name="Guest").one()
    assert guest.role_anonymous()
    assert adapter.get_by_username("Guest") is None
    assert adapter.get_by_username("guest", case_sensitive=False) is None
    assert adapter.get_by_id(str(guest.id)) is None
    assert adapter.find_by_email(guest.email) == []
    assert not adapter.has_password(guest) and not adapter.check_password(guest, "")
    with pytest.raises(OIDCError):
        _new(adapter, "guest")
    role = guest.role
    adapter.apply_access(guest, Access(True, frozenset({"download"})))
    assert guest.role == role


def test_check_password_against_calibreweb_own_admin(calibreweb: CalibreWebHost, adapter: Any) -> None:
    admin = adapter.get_by_username(ADMIN)
    assert adapter.is_admin(admin) and adapter.has_password(admin)
    assert adapter.check_password(admin, ADMIN_PASSWORD)
    assert not adapter.check_password(admin, ADMIN_PASSWORD.upper())
    # ...and Calibre-Web's own login form agrees (the harness drives the real app).
    client = calibreweb.client()
    assert calibreweb.local_login(client, ADMIN, ADMIN_PASSWORD).status_code == 302
    assert ADMIN in client.get("/me").get_data(as_text=True)


def test_login_user_goes_through_cw_login_and_logout_ends_the_session(
    calibreweb: CalibreWebHost,
    adapter: Any,
) -> None:
    ub = calibreweb.ub
    user = _new(adapter, "oidcreader", "download", email="oidcreader@example.test")
    client = calibreweb.signed_in_client(lambda: adapter.login_user(user))

    me = client.get("/me")
    assert me.status_code == 200
    assert 'value="oidcreader@example.test"' in me.get_data(as_text=True)  # Calibre-Web's own profile page
    rows = ub.session.query(ub.User_Sessions).filter_by(user_id=user.id).all()
    assert len(rows) == 1  # cw_login recorded the session, as Calibre-Web's own login does

    with client.session_transaction() as sess:
        cookie = dict(sess)
    with calibreweb.request_context():
        from flask import session

        session.update(cookie)
        # The extension's own Flask-Login sees Calibre-Web's user: both read current_app.login_manager
        # and g._login_user, and cw_login's loader accepts the session login_user wrote.
        assert flask_login.current_user.name == "oidcreader"
        adapter.logout_user()
        assert "_user_id" not in session
    assert ub.session.query(ub.User_Sessions).filter_by(user_id=user.id).count() == 0
    # The copied cookie no longer signs anybody in.
    assert client.get("/me").status_code == 302


def _run(script: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "CALIBRE_DBPATH": str(home), "CACHE_DIRECTORY": str(home / "cache")}
    return subprocess.run(
        [str(Path(sys.executable).with_name(script)), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_console_script_takes_calibreweb_own_arguments(tmp_path: Path) -> None:
    """``calibre-web-oidc`` is Calibre-Web's ``cps`` command: same argument parser, same start-up
    (here ``-s user:password``, which Calibre-Web handles inside create_app and then exits)."""
    if not Path(sys.executable).with_name("calibre-web-oidc").exists():
        pytest.skip("calibre-web-oidc is not installed in this environment")
    ours = _run("calibre-web-oidc", "-v", home=tmp_path)
    assert ours.returncode == 0 and ours.stdout == _run("cps", "-v", home=tmp_path).stdout
    assert ours.stdout.startswith("Calibre-Web version: 0.6.")

    app_db = tmp_path / "config" / "app.db"
    app_db.parent.mkdir()
    changed = _run(
        "calibre-web-oidc", "-p", str(app_db), "-g", str(tmp_path / "gd.db"), "-s", "admin:N3w-pass!", home=tmp_path
    )
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "Password for user 'admin' changed" in changed.stdout
    assert app_db.exists()  # the settings path came from our argv, as with cps
