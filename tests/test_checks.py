"""Test Connection (SPEC §9): every check, in each of its outcomes, against variants of the fake
provider. The checks are plain functions over a Settings object, so most tests need no app."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fakeprovider import FakeProvider

from flask_booklore_oidc.checks import CHECKS, Status, ok, run_checks
from flask_booklore_oidc.settings import Settings
from flask_booklore_oidc.transport import Transport

REDIRECT = "http://127.0.0.1:9/oauth2-callback"  # the discard port: a followed redirect would fail
SECRET = "checks-Secret-9z!"


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    """A provider of this module's own, so its keys can be changed without touching others."""
    with FakeProvider() as fake:
        fake.add_client("public", redirect_uris=[REDIRECT])
        fake.add_client("confidential", secret=SECRET, auth_method="client_secret_basic", redirect_uris=[REDIRECT])
        fake.add_client("confidential-post", secret=SECRET, auth_method="client_secret_post", redirect_uris=[REDIRECT])
        fake.add_user("u1", preferred_username="alice", email="alice@example.test", groups=["readers"])
        fake.login_as("u1")
        yield fake


@pytest.fixture
def fake(provider: FakeProvider) -> Iterator[FakeProvider]:
    provider.reset()
    provider.login_as("u1")
    yield provider
    provider.reset()


def settings(fake: FakeProvider, **changes: Any) -> Settings:
    base = Settings(client_id="public", issuer_uri=fake.issuer, http_timeout=2.0)
    return replace(base, **changes)


def check(results: list[Any], key: str) -> Any:
    return next(r for r in results if r.key == key)


def run(fake: FakeProvider, transport: Transport, **changes: Any) -> list[Any]:
    return run_checks(settings(fake, **changes), transport, REDIRECT)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- all together --------------------------------------------------------------------------------


def test_a_well_configured_public_client_passes_every_check(fake, transport):
    results = run(fake, transport)
    assert [r.key for r in results] == [key for key, _ in CHECKS]
    assert {r.key: r.status for r in results} == {key: Status.PASS for key, _ in CHECKS}
    assert ok(results)


def test_a_well_configured_confidential_client_passes_every_check(fake, transport):
    results = run(fake, transport, client_id="confidential", client_secret=SECRET)
    assert all(r.status == Status.PASS for r in results), [r for r in results if r.status != Status.PASS]
    assert fake.last_token_request["auth_method_used"] == "client_secret_basic"


def test_results_serialise_to_json(fake, transport):
    data = json.loads(json.dumps([r.as_dict() for r in run(fake, transport)]))
    assert data[0] == {
        "key": "discovery",
        "label": "Discovery document reachable",
        "status": "PASS",
        "message": data[0]["message"],
    }


# -- discovery -----------------------------------------------------------------------------------


def test_discovery_reports_the_url_and_the_time_it_took(fake, transport):
    result = check(run(fake, transport), "discovery")
    assert result.status == Status.PASS
    assert f"{fake.issuer}/.well-known/openid-configuration" in result.message
    assert " ms" in result.message


def test_unreachable_provider_fails_discovery_and_skips_the_rest(fake, transport):
    results = run(fake, transport, issuer_uri=f"http://127.0.0.1:{closed_port()}")
    discovery = check(results, "discovery")
    assert discovery.status == Status.FAIL
    assert "Cannot reach" in discovery.message and "connection refused" in discovery.message
    assert "Docker" in discovery.message  # the guide's advice
    assert all(r.status == Status.SKIP for r in results[1:])
    assert not ok(results)


def test_discovery_404_says_to_check_the_issuer_uri(fake, transport):
    fake.discovery_status = 404
    result = check(run(fake, transport), "discovery")
    assert result.status == Status.FAIL
    assert "HTTP 404" in result.message and "Check the Issuer URI" in result.message


def test_discovery_server_error_fails(fake, transport):
    fake.discovery_status = 503
    assert check(run(fake, transport), "discovery").status == Status.FAIL


def test_missing_issuer_uri_fails_discovery_without_a_request(fake, transport):
    results = run(fake, transport, issuer_uri="")
    assert check(results, "discovery").status == Status.FAIL
    assert "Enter the Issuer URI" in check(results, "discovery").message
    assert transport.total == 0


def test_discovery_timeout_is_bounded_by_the_http_timeout(fake, transport):
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        results = run(fake, transport, issuer_uri=f"http://127.0.0.1:{port}", http_timeout=0.2)
    assert check(results, "discovery").status == Status.FAIL
    assert "no answer within 0.2 s" in check(results, "discovery").message


def test_the_total_deadline_skips_checks_once_it_has_passed(fake, transport):
    ticks = iter([0.0, 0.0, 0.1, 0.2] + [100.0] * 50)  # the clock jumps past the budget
    results = run_checks(settings(fake), transport, REDIRECT, budget=30, clock=lambda: next(ticks))
    assert check(results, "discovery").status == Status.PASS
    assert check(results, "jwks").status == Status.SKIP
    assert "30 s" in check(results, "jwks").message


# -- issuer --------------------------------------------------------------------------------------


def test_issuer_exact_match_passes(fake, transport):
    result = check(run(fake, transport), "issuer")
    assert result.status == Status.PASS and "exactly" in result.message


def test_issuer_uri_with_a_trailing_slash_passes_and_explains(fake, transport):
    result = check(run(fake, transport, issuer_uri=fake.issuer + "/"), "issuer")
    assert result.status == Status.PASS
    assert "trailing slash" in result.message and fake.issuer in result.message


def test_provider_issuer_with_a_trailing_slash_passes_and_explains(fake, transport):
    fake.metadata_overrides = {"issuer": fake.issuer + "/"}
    result = check(run(fake, transport), "issuer")
    assert result.status == Status.PASS
    assert "trailing slash" in result.message
    assert f"checked against {fake.issuer}/ exactly" in result.message


def test_issuer_mismatch_fails_and_names_the_reported_issuer(fake, transport):
    fake.metadata_overrides = {"issuer": "https://id.example.test/realms/books"}
    result = check(run(fake, transport), "issuer")
    assert result.status == Status.FAIL
    assert "set the Issuer URI to https://id.example.test/realms/books" in result.message


# -- endpoints and keys --------------------------------------------------------------------------


def test_missing_token_endpoint_fails_and_skips_what_needs_it(fake, transport):
    fake.metadata_overrides = {"token_endpoint": None}
    results = run(fake, transport)
    assert check(results, "endpoints").status == Status.FAIL
    assert "token_endpoint" in check(results, "endpoints").message
    for key in ("jwks", "scopes", "client_auth", "authorize", "end_session"):
        assert check(results, key).status == Status.SKIP


def test_no_userinfo_endpoint_is_mentioned(fake, transport):
    fake.metadata_overrides = {"userinfo_endpoint": None}
    result = check(run(fake, transport), "endpoints")
    assert result.status == Status.PASS and "no userinfo endpoint" in result.message


def test_jwks_with_signing_keys_passes(fake, transport):
    result = check(run(fake, transport), "jwks")
    assert result.status == Status.PASS and "1 signing key(s) (RSA RS256)" in result.message


def test_jwks_without_keys_fails(fake, transport, monkeypatch):
    monkeypatch.setattr(fake, "jwks", lambda: {"keys": []})
    result = check(run(fake, transport), "jwks")
    assert result.status == Status.FAIL and "none usable" in result.message


def test_jwks_with_only_encryption_keys_fails(fake, transport, monkeypatch):
    public = fake.jwks()["keys"][0]
    monkeypatch.setattr(fake, "jwks", lambda: {"keys": [{**public, "use": "enc"}]})
    assert check(run(fake, transport), "jwks").status == Status.FAIL


def test_jwks_unreachable_fails(fake, transport):
    fake.jwks_status = 500
    result = check(run(fake, transport), "jwks")
    assert result.status == Status.FAIL and "HTTP 500" in result.message


# -- response type and PKCE ----------------------------------------------------------------------


def test_response_type_code_missing_fails(fake, transport):
    fake.metadata_overrides = {"response_types_supported": ["id_token", "id_token token"]}
    assert check(run(fake, transport), "response_type").status == Status.FAIL


def test_response_types_not_listed_warns(fake, transport):
    fake.metadata_overrides = {"response_types_supported": None}
    assert check(run(fake, transport), "response_type").status == Status.WARN


def test_no_s256_fails_for_a_public_client(fake, transport):
    fake.metadata_overrides = {"code_challenge_methods_supported": ["plain"]}
    result = check(run(fake, transport), "pkce")
    assert result.status == Status.FAIL and "public client" in result.message


def test_no_s256_warns_for_a_confidential_client(fake, transport):
    fake.metadata_overrides = {"code_challenge_methods_supported": ["plain"]}
    result = check(run(fake, transport, client_id="confidential", client_secret=SECRET), "pkce")
    assert result.status == Status.WARN


def test_pkce_not_advertised_warns(fake, transport):
    fake.metadata_overrides = {"code_challenge_methods_supported": None}
    assert check(run(fake, transport), "pkce").status == Status.WARN


# -- scopes --------------------------------------------------------------------------------------


def test_requested_scopes_all_supported_pass(fake, transport):
    result = check(run(fake, transport), "scopes")
    assert result.status == Status.PASS and "openid profile email groups" in result.message


def test_configured_groups_scope_missing_at_the_provider_warns_what_stops_working(fake, transport):
    fake.metadata_overrides = {"scopes_supported": ["openid", "profile", "email"]}
    result = check(run(fake, transport, scopes="openid profile email groups"), "scopes")
    assert result.status == Status.WARN
    assert "does not list groups" in result.message
    assert "group mapping and allowed groups will not work" in result.message


def test_automatic_scopes_without_groups_warn_when_group_sync_is_on(fake, transport):
    fake.metadata_overrides = {"scopes_supported": ["openid", "profile", "email"]}
    result = check(run(fake, transport, group_sync="replace"), "scopes")
    assert result.status == Status.WARN and "group mapping" in result.message


def test_automatic_scopes_without_groups_pass_with_a_note_when_groups_are_unused(fake, transport):
    fake.metadata_overrides = {"scopes_supported": ["openid", "profile", "email"]}
    result = check(run(fake, transport), "scopes")
    assert result.status == Status.PASS and "group mapping" in result.message


def test_openid_scope_missing_fails(fake, transport):
    fake.metadata_overrides = {"scopes_supported": ["profile", "email"]}
    assert check(run(fake, transport), "scopes").status == Status.FAIL


def test_scopes_not_listed_are_skipped(fake, transport):
    fake.metadata_overrides = {"scopes_supported": None}
    assert check(run(fake, transport), "scopes").status == Status.SKIP


# -- client authentication -----------------------------------------------------------------------


def test_confidential_client_with_the_right_secret_gets_invalid_grant_and_passes(fake, transport):
    result = check(run(fake, transport, client_id="confidential", client_secret=SECRET), "client_auth")
    assert result.status == Status.PASS and "invalid_grant" in result.message
    assert fake.last_token_request["code"].startswith("booklore-oidc-test-connection-")


def test_confidential_client_with_a_wrong_secret_gets_invalid_client_and_fails(fake, transport):
    result = check(run(fake, transport, client_id="confidential", client_secret="wrong"), "client_auth")
    assert result.status == Status.FAIL
    assert "invalid_client" in result.message and "Client Secret" in result.message


def test_client_secret_post_is_used_when_configured(fake, transport):
    results = run(
        fake, transport, client_id="confidential-post", client_secret=SECRET, token_auth_method="client_secret_post"
    )
    assert check(results, "client_auth").status == Status.PASS
    assert fake.last_token_request["auth_method_used"] == "client_secret_post"


def test_public_client_is_probed_without_a_secret(fake, transport):
    result = check(run(fake, transport), "client_auth")
    assert result.status == Status.PASS and "public client" in result.message
    assert fake.last_token_request["auth_method_used"] == "none"


def test_confidential_client_used_without_its_secret_says_to_switch_public_client_on(fake, transport):
    result = check(run(fake, transport, client_id="confidential"), "client_auth")
    assert result.status == Status.FAIL and "Public Client" in result.message


def test_a_secret_sent_for_a_client_registered_as_public_names_the_likely_mismatch(fake, transport):
    result = check(run(fake, transport, client_id="public", client_secret=SECRET), "client_auth")
    assert result.status == Status.FAIL
    assert "registered as public" in result.message and "clear the Client Secret" in result.message


def test_unauthorized_client_with_a_secret_names_the_public_client_mismatch(fake, transport):
    fake.token_error = (400, {"error": "unauthorized_client"})
    result = check(run(fake, transport, client_id="confidential", client_secret=SECRET), "client_auth")
    assert result.status == Status.FAIL and "registered the client as public" in result.message


def test_unauthorized_client_fails(fake, transport):
    fake.token_error = (400, {"error": "unauthorized_client"})
    assert check(run(fake, transport), "client_auth").status == Status.FAIL


def test_an_unexpected_token_answer_warns_naming_only_the_error_code(fake, transport):
    fake.token_error = (400, {"error": "invalid_request", "error_description": "odd"})
    result = check(run(fake, transport), "client_auth")
    assert result.status == Status.WARN and "invalid_request" in result.message
    assert "odd" not in result.message


def test_a_secret_echoed_by_the_provider_is_not_repeated(fake, transport):
    fake.token_error = (401, {"error": "invalid_client", "error_description": f"secret {SECRET} is wrong"})
    results = run(fake, transport, client_id="confidential", client_secret=SECRET)
    assert SECRET not in json.dumps([r.as_dict() for r in results])
    assert "invalid_client" in check(results, "client_auth").message


def test_unreadable_stored_secret_fails_client_authentication(fake, transport):
    result = check(run(fake, transport, client_id="confidential", secret_unreadable=True), "client_auth")
    assert result.status == Status.FAIL and "enter it again" in result.message


def test_token_endpoint_timeout_fails_in_bounded_time(fake, transport):
    fake.token_delay = 0.5
    result = check(run(fake, transport, http_timeout=0.2), "client_auth")
    assert result.status == Status.FAIL and "no answer within" in result.message


def test_without_a_client_id_the_client_checks_are_skipped(fake, transport):
    results = run(fake, transport, client_id="")
    assert check(results, "client_auth").status == Status.SKIP
    assert check(results, "authorize").status == Status.SKIP


# -- Client ID and Redirect URI --------------------------------------------------------------------


def test_accepted_redirect_uri_passes_without_following_the_redirect(fake, transport):
    result = check(run(fake, transport), "authorize")
    assert result.status == Status.PASS and REDIRECT in result.message
    assert fake.last_authorize["prompt"] == "none"
    assert fake.last_authorize["code_challenge_method"] == "S256"
    assert fake.last_authorize["redirect_uri"] == REDIRECT


def test_login_required_answer_passes(fake, transport):
    fake.authorize_error = ("login_required", "no session")
    result = check(run(fake, transport), "authorize")
    assert result.status == Status.PASS and "login_required" in result.message


def test_refused_redirect_uri_fails_without_quoting_the_provider_page(fake, transport):
    results = run_checks(settings(fake), transport, "http://127.0.0.1:9/elsewhere")
    result = check(results, "authorize")
    assert result.status == Status.FAIL
    assert "refused the Client ID or the Redirect URI (HTTP 400)" in result.message
    assert "http://127.0.0.1:9/elsewhere" in result.message
    assert "mismatch" not in result.message


def test_unknown_client_id_fails(fake, transport):
    result = check(run(fake, transport, client_id="nobody"), "authorize")
    assert result.status == Status.FAIL and "Client ID" in result.message


def test_invalid_scope_answer_warns_with_advice(fake, transport):
    fake.authorize_error = ("invalid_scope", "groups not allowed")
    result = check(run(fake, transport), "authorize")
    assert result.status == Status.WARN and "adjust Scopes" in result.message


# -- logout and clock ----------------------------------------------------------------------------


def test_end_session_endpoint_missing_warns(fake, transport):
    fake.metadata_overrides = {"end_session_endpoint": None}
    results = run(fake, transport)
    assert check(results, "end_session").status == Status.WARN
    assert ok(results)  # a warning is not a failure


def test_backchannel_logout_not_supported_warns(fake, transport):
    fake.metadata_overrides = {"backchannel_logout_supported": None}
    assert check(run(fake, transport), "backchannel").status == Status.WARN


def test_frontchannel_logout_with_session_ids_passes(fake, transport):
    fake.metadata_overrides = {"frontchannel_logout_supported": True, "frontchannel_logout_session_supported": True}
    result = check(run(fake, transport), "frontchannel")
    assert result.status == Status.PASS
    assert "Front-channel Logout URI" in result.message


def test_frontchannel_logout_without_session_ids_warns(fake, transport):
    fake.metadata_overrides = {"frontchannel_logout_supported": True, "frontchannel_logout_session_supported": None}
    result = check(run(fake, transport), "frontchannel")
    assert result.status == Status.WARN
    assert "session id (sid)" in result.message


def test_no_sid_in_id_tokens_says_provider_logout_cannot_reach_sessions_by_sid(fake, transport):
    fake.metadata_overrides = {
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": None,
        "frontchannel_logout_supported": None,
    }
    result = check(run(fake, transport), "frontchannel")
    assert result.status == Status.WARN
    assert "cannot reach sessions here by sid" in result.message


def test_backchannel_logout_supported_passes(fake, transport):
    result = check(run(fake, transport), "backchannel")
    assert result.status == Status.PASS and "session ids" in result.message


@pytest.mark.parametrize(("offset", "word"), [(300, "ahead of"), (-300, "behind")])
def test_clock_five_minutes_off_warns(fake, transport, offset, word):
    fake.date_offset = offset
    result = check(run(fake, transport), "clock")
    assert result.status == Status.WARN
    # The Date header has whole seconds: five minutes reads as 299 to 301 s.
    assert re.search(rf"about (299|300|301) s {word} this server's", result.message), result.message
    assert "Clock skew allows 60 s" in result.message


def test_clock_drift_within_the_clock_skew_passes(fake, transport):
    fake.date_offset = 300
    assert check(run(fake, transport, clock_skew=600), "clock").status == Status.PASS


def test_clocks_in_step_pass(fake, transport):
    assert check(run(fake, transport), "clock").status == Status.PASS
