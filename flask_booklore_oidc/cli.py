"""``flask booklore-oidc …``: settings, Test Connection and linked identities from a shell; the
way back in when the provider is down (SPEC §8).

Every command runs in the app context and a request context on the Public URL (or
``http://localhost``), so the URLs it uses are the ones readers see. Exit codes: 0 done,
1 refused or failed, 2 usage error. Secrets are never printed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import Engine

from . import activity, checks, rules, sessions
from .adapter import UserAdapter
from .config import FIELDS, FIELDS_BY_NAME, Field, field_named
from .errors import OIDCError
from .identities import link as link_identity
from .identities import list_identities, unlink_warning
from .identities import unlink as unlink_identity
from .migrate import make_db_group
from .settings import SOURCE_CONFIG, SOURCE_ENV, Settings
from .state import current_settings, current_state, save_settings
from .urls import external_url

F = TypeVar("F", bound=Callable[..., Any])

MASK = "••••"

cli = AppGroup(
    "booklore-oidc",
    help="OpenID Connect sign-in: settings, Test Connection, linked identities.",
)


# `flask booklore-oidc db upgrade` / `db current`: schema migrations of our tables (SPEC §14)
def _engine() -> Engine:
    bind = current_state().adapter.session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


cli.add_command(make_db_group(_engine, cls=AppGroup))


def _settings() -> Settings:
    return current_settings()


def _adapter() -> UserAdapter:
    return current_state().adapter


def _with_request_context(func: F) -> F:
    """Run the command in a request context on the Public URL, for ``url_for``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        base_url = _settings().public_url or "http://localhost"
        with app.test_request_context(base_url=base_url):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- the rules of the settings page (:mod:`.rules`), so both refuse alike ------------------------


def _only_mode_refusal(settings: Settings, adapter: UserAdapter) -> str | None:
    """Why OIDC-Only Mode may not be switched on, or ``None``."""
    return rules.only_mode_problem(replace(settings, only_mode=True), adapter.count_admins())


def _save(changes: dict[str, Any], *, remove_secret: bool = False) -> set[str]:
    try:
        changed = save_settings(changes, remove_secret=remove_secret)
    except ValueError as exc:  # a setting locked by the environment or app config
        raise click.ClickException(str(exc)) from None
    ended = sessions.settings_saved(_adapter().session, _settings(), changed)
    if ended:
        noun, verb = ("session", "was") if ended == 1 else ("sessions", "were")
        click.echo(f"{ended} {noun} signed in through the old client {verb} ended.")
    return changed


def _refuse_locked(settings: Settings, name: str) -> None:
    if settings.locked(name):
        f = FIELDS_BY_NAME[name]
        where = "the environment" if settings.sources.get(name) == SOURCE_ENV else "the app configuration"
        raise click.ClickException(f"{f.name} is set by {where} ({f.key}); change it there.")


def _enable(settings: Settings) -> None:
    problem = rules.enabled_problem(replace(settings, enabled=True))
    if problem:
        raise click.ClickException(f"{problem} (flask booklore-oidc set KEY VALUE)")


# -- formatting -------------------------------------------------------------------------------


def _show(f: Field, settings: Settings) -> str:
    if f.kind == "secret":
        if settings.secret_unreadable:
            return f"{MASK} (stored, cannot be decrypted: set it again)"
        return f"{MASK} (stored)" if settings.client_secret else "(not set)"
    value = getattr(settings, f.name)
    if f.kind == "bool":
        return "on" if value else "off"
    if f.kind == "list":
        return ", ".join(value) if value else "(none)"
    if value == "":
        return "(automatic)" if f.name == "scopes" else "(empty)"
    return str(value)


def _source(settings: Settings, f: Field) -> str:
    source = settings.sources.get(f.name, "default")
    if source in (SOURCE_ENV, SOURCE_CONFIG):
        return f"{source} ({f.key})"
    return source


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- commands ---------------------------------------------------------------------------------


@cli.command()
@_with_request_context
def status() -> None:
    """Show the effective settings and where each one comes from."""
    settings = _settings()
    if settings.force_disabled:
        click.echo(
            "OIDC sign-in: OFF everywhere, because FORCE_DISABLE_OIDC is set in the environment. "
            "Local sign-in is open to every user; the stored settings below are unchanged."
        )
    elif settings.oidc_active:
        click.echo("OIDC sign-in: active")
    elif not settings.enabled:
        click.echo("OIDC sign-in: off (OIDC Login is switched off)")
    else:
        click.echo(f"OIDC sign-in: not active: {rules.enabled_problem(settings)}")
    if settings.only_mode_active:
        only = "on: /login sends readers to the provider; admins sign in at /login?local=true"
    elif settings.only_mode:
        only = "switched on, but without effect while OIDC sign-in is not active"
    else:
        only = "off"
    click.echo(f"OIDC-Only Mode: {only}")
    click.echo(f"Administrators: {_adapter().count_admins()}")
    click.echo("")
    rows = [("SETTING", "VALUE", "FROM")]
    rows += [(f.name, _show(f, settings), _source(settings, f)) for f in FIELDS]
    _table(rows)


@cli.command("test")
@_with_request_context
def test_connection() -> None:
    """Run Test Connection on the saved settings; exit code 1 when a check fails."""
    settings = _settings()
    results = checks.run_checks(settings, current_state().transport, external_url(settings, "booklore_oidc.callback"))
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    results += checks.site_checks(settings, session_cookie_secure=secure, secret_withheld=False)
    for result in results:
        click.echo(f"{result.status.value:<4}  {result.label}: {result.message}")
    failed = sum(1 for r in results if r.status == checks.Status.FAIL)
    warned = sum(1 for r in results if r.status == checks.Status.WARN)
    if not checks.ok(results):
        raise click.ClickException(f"Test Connection: {failed} check(s) failed, {warned} warning(s).")
    click.echo(f"Test Connection passed ({warned} warning(s)).")


@cli.command()
@_with_request_context
def enable() -> None:
    """Switch OIDC Login on (the provider must be configured)."""
    settings = _settings()
    _refuse_locked(settings, "enabled")
    _enable(settings)
    _save({"enabled": True})
    click.echo(f"OIDC Login is on: readers see “Sign in with {settings.provider_name}”.")
    if settings.force_disabled:
        click.echo("Note: FORCE_DISABLE_OIDC is set in the environment, so OIDC stays off until it is removed.")


@cli.command()
@_with_request_context
def disable() -> None:
    """Switch OIDC Login off: everyone signs in locally again."""
    settings = _settings()
    _refuse_locked(settings, "enabled")
    _save({"enabled": False})
    click.echo("OIDC Login is off: the button is gone and every user signs in with a password.")
    if settings.only_mode:
        click.echo("OIDC-Only Mode stays switched on but has no effect while OIDC Login is off.")


@cli.command("only-mode")
@click.argument("switch", type=click.Choice(["on", "off"]))
@_with_request_context
def only_mode(switch: str) -> None:
    """Switch OIDC-Only Mode on or off."""
    settings = _settings()
    _refuse_locked(settings, "only_mode")
    if switch == "on":
        refusal = _only_mode_refusal(settings, _adapter())
        if refusal:
            raise click.ClickException(refusal)
    _save({"only_mode": switch == "on"})
    if switch == "on":
        click.echo("OIDC-Only Mode is on: /login sends readers to the provider; admins sign in at /login?local=true.")
        if settings.force_disabled:
            click.echo("Note: FORCE_DISABLE_OIDC is set in the environment, so it has no effect until that is removed.")
    else:
        click.echo("OIDC-Only Mode is off: the login page offers both ways to sign in.")


def _setting_name(key: str) -> str:
    try:
        return field_named(key).name
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="KEY") from None


def _parse(f: Field, raw: str) -> Any:
    """``raw`` checked by the one validator every surface shares (:meth:`Field.parse`)."""
    try:
        return f.parse(raw)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="VALUE") from None


@cli.command("set")
@click.argument("key")
@click.argument("value")
@_with_request_context
def set_setting(key: str, value: str) -> None:
    """Store one setting: KEY is its name (client_id, CLIENT_ID or BOOKLORE_OIDC_CLIENT_ID).

    For client_secret, VALUE "-" reads the secret from standard input (keeping it out of the
    shell history) and an empty VALUE removes it (a public client).
    """
    settings = _settings()
    name = _setting_name(key)
    f = FIELDS_BY_NAME[name]
    _refuse_locked(settings, name)
    if f.kind == "secret":
        secret = sys.stdin.readline().strip() if value == "-" else value
        if secret:
            _save({name: _parse(f, secret)})
            click.echo(f"{f.name} saved ({MASK}; it is never shown).")
        else:
            _save({}, remove_secret=True)
            click.echo(f"{f.name} removed: this is now a public client (PKCE, no secret).")
        return
    parsed = _parse(f, value)
    if name == "enabled" and parsed:
        _enable(settings)
    if name == "only_mode" and parsed:
        refusal = _only_mode_refusal(settings, _adapter())
        if refusal:
            raise click.ClickException(refusal)
    changed = _save({name: parsed})
    shown = _show(f, _settings())
    click.echo(f"{f.name} = {shown}" + ("" if changed else " (unchanged)"))


@cli.command()
@_with_request_context
def identities() -> None:
    """List linked provider identities."""
    rows = list_identities(_adapter())
    if not rows:
        click.echo("No linked identities.")
        return
    table = [("USER", "SUBJECT", "ISSUER", "LINKED", "BY", "LAST SIGN-IN")]
    for row in rows:
        table.append(
            (
                row.username if row.username is not None else f"(deleted user {row.user_id})",
                row.subject,
                row.issuer,
                row.linked_at.strftime("%Y-%m-%d %H:%M"),
                row.linked_by,
                row.last_login_at.strftime("%Y-%m-%d %H:%M") if row.last_login_at else "never",
            )
        )
    _table(table)


@cli.command("activity")
@click.option("--limit", default=activity.SHOWN, show_default=True, type=click.IntRange(1, activity.MAX_ROWS))
@_with_request_context
def show_activity(limit: int) -> None:
    """List recent sign-in attempts (provider and local), newest first."""
    rows = activity.recent(_adapter().session, limit)
    if not rows:
        click.echo("No sign-in attempts yet.")
        return
    table = [("TIME (UTC)", "RESULT", "RULE", "USER", "SUBJECT", "CLIENT", "REFERENCE", "DETAIL")]
    for row in rows:
        table.append(
            (
                row.at.strftime("%Y-%m-%d %H:%M:%S"),
                row.result,
                row.rule or "-",
                row.username or "-",
                row.subject or "-",
                row.client_address or "-",
                row.reference,
                row.detail or "-",
            )
        )
    _table(table)


def _user(username: str) -> Any:
    user = _adapter().get_by_username(username)
    if user is None:
        raise click.ClickException(f"There is no user named {username!r}.")
    return user


def _default_issuer(settings: Settings) -> str:
    """The provider's own issuer string (what sign-ins compare with), else the configured one."""
    if not settings.issuer_uri:
        raise click.ClickException("No Issuer URI is configured; pass --issuer.")
    try:
        issuer: str = current_state().cache.metadata(settings).issuer
    except OIDCError as exc:
        click.echo(
            f"The provider cannot be reached ({exc.detail or exc.title}); using the configured Issuer URI, "
            "which must match the provider's issuer exactly.",
            err=True,
        )
        return settings.issuer_uri
    return issuer


@cli.command()
@click.argument("username")
@click.argument("subject")
@click.option("--issuer", help="The provider's issuer; default: the configured provider's.")
@_with_request_context
def link(username: str, subject: str, issuer: str | None) -> None:
    """Link USERNAME to the provider identity SUBJECT (its "sub")."""
    user = _user(username)
    issuer = issuer or _default_issuer(_settings())
    try:
        link_identity(_adapter(), user, issuer, subject)
    except OIDCError as exc:
        raise click.ClickException(exc.detail or exc.title) from None
    click.echo(f"Linked {username} to {subject!r} at {issuer}.")


@cli.command()
@click.argument("username")
@click.option("--yes", is_flag=True, help="Unlink even when the user could not get in afterwards.")
@_with_request_context
def unlink(username: str, yes: bool) -> None:
    """Remove USERNAME's linked identities and end its provider sign-ins."""
    adapter = _adapter()
    user = _user(username)
    if not list_identities(adapter, user):
        click.echo(f"{username} has no linked identity.")
        return
    warning = unlink_warning(adapter, _settings(), user)
    if warning and not yes:
        raise click.ClickException(f"{warning} Run again with --yes to unlink anyway.")
    removed = unlink_identity(adapter, user)
    click.echo(f"Unlinked {removed} identit{'y' if removed == 1 else 'ies'} from {username}.")


@cli.command("end-sessions")
@click.argument("username")
@_with_request_context
def end_sessions(username: str) -> None:
    """Sign USERNAME out everywhere: every session of theirs ends on its next request."""
    adapter = _adapter()
    user = _user(username)
    ended = sessions.end_for_user(adapter.session, adapter.get_id(user))
    adapter.session.commit()
    click.echo(f"Ended {ended} session{'' if ended == 1 else 's'} of {username}.")
