"""``flask booklore-oidc …`` (SPEC §8): each command, its messages and its exit codes
(0 done, 1 refused or failed, 2 usage). Secrets never appear in the output."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from helpers import SECRET, add_user, configure
from sqlalchemy import select

from example_app.models import User, db
from flask_booklore_oidc.models import Identity

pytestmark = pytest.mark.both_databases


def settings(app: Flask) -> Any:
    with app.test_request_context():
        return app.extensions["booklore_oidc"].settings()


def linked_subjects(app: Flask, username: str) -> list[tuple[str, str]]:
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.username == username))
        rows = db.session.execute(select(Identity.issuer, Identity.subject).where(Identity.user_id == str(user_id)))
        return [tuple(r) for r in rows]


# -- status --------------------------------------------------------------------------------------


def test_status_shows_every_setting_with_its_source(app, run):
    result = run("status")
    assert result.exit_code == 0, result.output
    assert "OIDC sign-in: active" in result.output
    assert "OIDC-Only Mode: off" in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line and line[0].islower()}
    assert "Pocket ID" in lines["provider_name"] and lines["provider_name"].endswith("database")
    assert lines["clock_skew"].split()[1:] == ["60", "default"]
    assert lines["client_secret"].split()[1:] == ["(not", "set)", "default"]


def test_status_masks_the_secret(app, run):
    configure(app, client_secret=SECRET)
    result = run("status")
    line = next(line for line in result.output.splitlines() if line.startswith("client_secret"))
    assert line.split()[1:] == ["••••", "(stored)", "database"]
    assert SECRET not in result.output


def test_status_names_the_environment_and_the_kill_switch(app, restart, monkeypatch):
    monkeypatch.setenv("BOOKLORE_OIDC_PROVIDER_NAME", "Authelia")
    monkeypatch.setenv("FORCE_DISABLE_OIDC", "true")
    other = restart()
    result = other.test_cli_runner().invoke(args=["booklore-oidc", "status"])
    assert result.exit_code == 0
    assert "FORCE_DISABLE_OIDC is set" in result.output
    assert "environment (BOOKLORE_OIDC_PROVIDER_NAME)" in result.output


# -- test ----------------------------------------------------------------------------------------


def test_test_passes_against_a_working_provider(run):
    result = run("test")
    assert result.exit_code == 0, result.output
    assert "PASS  Discovery document reachable" in result.output
    assert "FAIL" not in result.output


def test_test_exits_1_when_a_check_fails(run, op):
    op.discovery_status = 500
    result = run("test")
    assert result.exit_code == 1
    assert "FAIL  Discovery document reachable" in result.output
    assert "check(s) failed" in result.output


# -- enable, disable, only-mode ------------------------------------------------------------------


def test_disable_and_enable(app, run, client):
    result = run("disable")
    assert result.exit_code == 0 and "OIDC Login is off" in result.output
    assert settings(app).enabled is False
    assert "Sign in with" not in client.get("/login").get_data(as_text=True)

    result = run("enable")
    assert result.exit_code == 0 and "OIDC Login is on" in result.output
    assert settings(app).enabled is True


def test_enable_is_refused_while_the_provider_is_not_configured(app, run):
    configure(app, enabled=False, client_id="")
    result = run("enable")
    assert result.exit_code == 1
    assert "client_id" in result.output
    assert settings(app).enabled is False


def test_only_mode_on_needs_an_admin(app, run):
    result = run("only-mode", "on")
    assert result.exit_code == 1
    assert "administrator" in result.output
    assert settings(app).only_mode is False


def test_only_mode_on_needs_oidc_enabled(app, run):
    add_user(app, "root", is_admin=True)
    configure(app, enabled=False)
    result = run("only-mode", "on")
    assert result.exit_code == 1
    assert "needs OIDC Login switched on" in result.output


def test_only_mode_on_and_off(app, run, client):
    add_user(app, "root", is_admin=True)
    result = run("only-mode", "on")
    assert result.exit_code == 0, result.output
    assert settings(app).only_mode is True
    assert client.get("/login").status_code == 302

    result = run("only-mode", "off")
    assert result.exit_code == 0
    assert settings(app).only_mode is False


def test_only_mode_needs_on_or_off(run):
    assert run("only-mode", "maybe").exit_code == 2


# -- set -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["client_id", "CLIENT_ID", "BOOKLORE_OIDC_CLIENT_ID", "booklore_oidc_client_id"])
def test_set_accepts_every_spelling_of_a_key(app, run, key):
    result = run("set", key, "new-client")
    assert result.exit_code == 0, result.output
    assert "client_id = new-client" in result.output
    assert settings(app).client_id == "new-client"


def test_set_parses_values(app, run):
    assert run("set", "auto_provision", "no").exit_code == 0
    assert settings(app).auto_provision is False
    assert run("set", "allowed_groups", "readers, admins").exit_code == 0
    assert settings(app).allowed_groups == ("readers", "admins")
    assert run("set", "http_timeout", "3.5").exit_code == 0
    assert settings(app).http_timeout == 3.5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nonsense", "x"), "not a setting"),
        (("auto_provision", "perhaps"), "expected true or false"),
        (("group_sync", "sometimes"), "must be one of"),
        (("client_id", " padded "), "spaces"),
        (("issuer_uri", "pocket-id.example.com"), "https://"),
        (("claim_groups", "groups,,roles"), "empty alternative"),
    ],
)
def test_set_refuses_bad_input_as_a_usage_error(app, run, args, words):
    before = settings(app)
    result = run("set", *args)
    assert result.exit_code == 2
    assert words in result.output
    assert settings(app) == before


def test_set_refuses_a_key_locked_by_the_environment(app, restart, monkeypatch):
    monkeypatch.setenv("BOOKLORE_OIDC_CLIENT_ID", "from-env")
    other = restart()
    result = other.test_cli_runner().invoke(args=["booklore-oidc", "set", "client_id", "x"])
    assert result.exit_code == 1
    assert "environment (BOOKLORE_OIDC_CLIENT_ID)" in result.output


def test_set_only_mode_follows_the_same_rule_as_only_mode_on(app, run):
    result = run("set", "only_mode", "true")
    assert result.exit_code == 1
    assert settings(app).only_mode is False


def test_set_client_secret_is_stored_but_never_echoed(app, run):
    result = run("set", "client_secret", SECRET)
    assert result.exit_code == 0
    assert SECRET not in result.output
    assert settings(app).client_secret == SECRET


def test_set_client_secret_from_standard_input(app, run):
    result = run("set", "CLIENT_SECRET", "-", input=SECRET + "\n")
    assert result.exit_code == 0
    assert SECRET not in result.output
    assert settings(app).client_secret == SECRET


def test_set_empty_client_secret_removes_it(app, run):
    configure(app, client_secret=SECRET)
    result = run("set", "client_secret", "")
    assert result.exit_code == 0 and "public client" in result.output
    assert settings(app).client_secret == ""


# -- identities, link, unlink --------------------------------------------------------------------


def test_identities_lists_linked_accounts(app, run, signin):
    assert run("identities").output.strip() == "No linked identities."
    signin()
    result = run("identities")
    assert result.exit_code == 0
    row = result.output.splitlines()[1].split()
    assert row[:2] == ["alice", "sub-alice"]


def test_link_uses_the_providers_issuer(app, run, op):
    add_user(app, "carol")
    result = run("link", "carol", "sub-carol")
    assert result.exit_code == 0, result.output
    assert linked_subjects(app, "carol") == [(op.issuer, "sub-carol")]


def test_link_falls_back_to_the_configured_issuer_when_the_provider_is_down(app, run, op):
    add_user(app, "carol")
    configure(app, issuer_uri=op.issuer + "/")
    op.discovery_status = 503
    result = run("link", "carol", "sub-carol")
    assert result.exit_code == 0, result.output
    assert "cannot be reached" in result.output
    assert linked_subjects(app, "carol") == [(op.issuer + "/", "sub-carol")]


def test_link_with_an_explicit_issuer(app, run):
    add_user(app, "carol")
    assert run("link", "carol", "abc", "--issuer", "https://id.example.com").exit_code == 0
    assert linked_subjects(app, "carol") == [("https://id.example.com", "abc")]


def test_link_refuses_an_unknown_user_and_a_taken_identity(app, run, signin):
    assert run("link", "nobody", "sub-x").exit_code == 1
    signin()  # sub-alice is alice's
    add_user(app, "carol")
    result = run("link", "carol", "sub-alice")
    assert result.exit_code == 1
    assert "already linked" in result.output
    assert linked_subjects(app, "carol") == []


def test_unlink_removes_the_identity(app, run, signin):
    signin()
    result = run("unlink", "alice")
    assert result.exit_code == 0, result.output
    assert "Unlinked 1 identity from alice" in result.output
    assert linked_subjects(app, "alice") == []


def test_unlink_that_would_lock_the_user_out_needs_yes(app, run, signin):
    signin()  # alice was provisioned: no local password
    configure(app, link_by_username=False)
    result = run("unlink", "alice")
    assert result.exit_code == 1
    assert "--yes" in result.output
    assert len(linked_subjects(app, "alice")) == 1

    result = run("unlink", "alice", "--yes")
    assert result.exit_code == 0
    assert linked_subjects(app, "alice") == []


def test_unlink_a_user_without_identity(app, run):
    add_user(app, "carol")
    result = run("unlink", "carol")
    assert result.exit_code == 0
    assert "no linked identity" in result.output
    assert run("unlink", "nobody").exit_code == 1
