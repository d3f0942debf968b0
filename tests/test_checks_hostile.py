"""Test Connection against providers that misbehave: it stays within its time budget, stops
sending after the issuer fails, and quotes nothing of what a provider's pages say (SPEC §5.10, §9)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hostile import HostileServer, html_answer, json_answer, trickle

from flask_booklore_oidc.checks import REMAINING, Status, run_checks
from flask_booklore_oidc.settings import Settings

REDIRECT = "http://127.0.0.1:9/oauth2-callback"
WELL_KNOWN = "/.well-known/openid-configuration"
MARKER = "INTERNAL-ADMIN-PANEL"


@pytest.fixture
def server(hostile_server: HostileServer) -> HostileServer:
    return hostile_server


def document(base: str, **changes: Any) -> dict[str, Any]:
    return {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "jwks_uri": base + "/jwks",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        **changes,
    }


def settings(server: HostileServer, **changes: Any) -> Settings:
    return Settings(issuer_uri=server.base_url, client_id="app", http_timeout=2.0, **changes)


def messages(results: list[Any]) -> str:
    return json.dumps([r.as_dict() for r in results])


# -- time --------------------------------------------------------------------------------------------


def test_test_connection_against_a_trickling_provider_returns_within_its_budget(server, transport):
    server.routes[WELL_KNOWN] = json_answer(document(server.base_url))
    for path in ("/jwks", "/token", "/authorize"):
        server.routes[path] = trickle(interval=0.5)
    started = time.monotonic()
    results = run_checks(settings(server), transport, REDIRECT, budget=3)
    assert time.monotonic() - started < 3 + 1.5
    by_key = {r.key: r for r in results}
    assert by_key["jwks"].status == Status.FAIL and "no answer within 2 s" in by_key["jwks"].message
    assert by_key["authorize"].status == Status.SKIP and "3 s in total" in by_key["authorize"].message


def test_a_trickling_discovery_document_fails_discovery_at_the_http_timeout(server, transport):
    server.routes[WELL_KNOWN] = trickle(interval=0.5)
    started = time.monotonic()
    results = run_checks(settings(server), transport, REDIRECT)
    assert time.monotonic() - started < 2 + 1.5
    assert results[0].status == Status.FAIL and "no answer within 2 s" in results[0].message


# -- stopping after the issuer -----------------------------------------------------------------------


def test_after_an_issuer_mismatch_no_further_request_is_sent(server, transport):
    server.routes[WELL_KNOWN] = json_answer(document(server.base_url, issuer="https://elsewhere.example"))
    results = run_checks(settings(server, client_secret="s3cret"), transport, REDIRECT)
    assert transport.total == 1
    assert [(r.key, r.status) for r in results] == [
        ("discovery", Status.PASS),
        ("issuer", Status.FAIL),
        (REMAINING[0], Status.SKIP),
    ]
    assert "fix the issuer first" in results[-1].message


def test_after_a_failed_discovery_one_line_stands_for_the_skipped_checks(server, transport):
    server.routes[WELL_KNOWN] = html_answer(MARKER, 404)
    results = run_checks(settings(server), transport, REDIRECT)
    assert [r.status for r in results] == [Status.FAIL, Status.SKIP]
    assert transport.total == 1


def test_an_issuer_that_is_not_an_address_is_not_quoted(server, transport):
    server.routes[WELL_KNOWN] = json_answer(document(server.base_url, issuer=f"<b>{MARKER}</b>"))
    results = run_checks(settings(server), transport, REDIRECT)
    assert results[1].status == Status.FAIL and "not a plain https or http address" in results[1].message
    assert MARKER not in messages(results)


# -- nothing of a provider's pages is quoted -------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404])
def test_error_pages_of_the_provider_are_never_quoted(server, transport, status):
    server.routes[WELL_KNOWN] = json_answer(document(server.base_url))
    server.routes["/jwks"] = html_answer(MARKER, status)
    server.routes["/token"] = json_answer({"error": "invalid_request", "error_description": MARKER}, 400)
    server.routes["/authorize"] = html_answer(MARKER, status)
    results = run_checks(settings(server), transport, REDIRECT)
    assert transport.total == 4
    assert MARKER not in messages(results)
    assert {r.key: r.status for r in results}["authorize"] == Status.FAIL


def test_a_discovery_error_page_is_never_quoted(server, transport):
    server.routes[WELL_KNOWN] = html_answer(MARKER, 500)
    assert MARKER not in messages(run_checks(settings(server), transport, REDIRECT))


def test_a_token_error_code_that_is_not_a_plain_token_is_not_quoted(server, transport):
    server.routes[WELL_KNOWN] = json_answer(document(server.base_url))
    server.routes["/jwks"] = json_answer({"keys": []})
    server.routes["/token"] = json_answer({"error": f"<h1>{MARKER}</h1>"}, 400)
    results = run_checks(settings(server), transport, REDIRECT)
    assert MARKER not in messages(results)
    assert "HTTP 400" in {r.key: r for r in results}["client_auth"].message


def test_listed_values_of_the_document_that_are_not_plain_names_are_not_quoted(server, transport):
    listed = [f"<i>{MARKER}</i>", "code token"]
    server.routes[WELL_KNOWN] = json_answer(
        document(server.base_url, response_types_supported=listed, code_challenge_methods_supported=listed)
    )
    results = run_checks(settings(server), transport, REDIRECT)
    assert MARKER not in messages(results)
