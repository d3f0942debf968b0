"""A provider's description is shown only after removing the secret in every encoding it could
take, control characters, and all but the first 300 characters (SPEC §5.10)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from helpers import SECRET, configure

from flask_booklore_oidc import signals
from flask_booklore_oidc.errors import MAX_PROVIDER_TEXT, error_code, scrub

CANARY = "Can&ry<7Q>+/x%!=z9 é"
CLIENT = "client id/1"


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def encodings(secret: str, client_id: str) -> dict[str, str]:
    return {
        "plain": secret,
        "quote_plus": quote_plus(secret, safe=""),
        "quote": quote(secret, safe=""),
        "quote, default safe": quote(secret),
        "lower-case percent-encoding": quote_plus(secret, safe="").lower(),
        "Basic, form-encoded": basic(quote_plus(client_id, safe=""), quote_plus(secret, safe="")),
        "Basic, plain": basic(client_id, secret),
        "Basic, without padding": basic(client_id, secret).rstrip("="),
        "Basic, URL-safe": base64.urlsafe_b64encode(f"{client_id}:{secret}".encode()).decode(),
    }


@pytest.mark.parametrize("form", list(encodings(CANARY, CLIENT)))
def test_scrub_removes_the_secret_in_each_encoding(form):
    encoded = encodings(CANARY, CLIENT)[form]
    shown = scrub(f"you sent {encoded} which is wrong", CANARY, CLIENT)
    assert encoded not in shown and CANARY not in shown
    assert shown == "you sent [secret] which is wrong"


def test_scrub_removes_a_secret_split_by_control_characters():
    assert scrub("bad s3cr\x00et\x1b!", "s3cret!") == "bad [secret]"


def test_scrub_removes_control_and_format_characters():
    assert scrub("line one\r\nline\ttwo\x07\u202e", "") == "line one line two"


def test_scrub_caps_the_length():
    shown = scrub("a" * 5000, "")
    assert len(shown) == MAX_PROVIDER_TEXT and shown.endswith("…")


def test_scrub_without_a_secret_keeps_the_text():
    assert scrub("unknown code", "") == "unknown code"


def test_scrub_removes_the_secret_before_capping():
    text = "x" * (MAX_PROVIDER_TEXT - 5) + CANARY
    assert CANARY[:5] not in scrub(text, CANARY)


@pytest.mark.parametrize("value", ["invalid_client", "server.error-1"])
def test_a_plain_error_code_is_repeated(value):
    assert error_code(value) == value


@pytest.mark.parametrize("value", ["<html>", "two words", "x" * 65, "", None, 5, ["invalid_client"]])
def test_anything_but_a_plain_error_code_is_not_repeated(value):
    assert error_code(value) is None


# -- the token exchange ------------------------------------------------------------------------------


@pytest.fixture
def failures(app: Any) -> Iterator[list[str]]:
    """The detail of every failed sign-in, as the login_failed signal reports it."""
    details: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        details.append(kwargs["detail"])

    with signals.login_failed.connected_to(record, app):
        yield details


@pytest.mark.parametrize("client_id", ["confidential-basic", "confidential-post"])
def test_a_token_endpoint_echoing_the_encoded_secret_does_not_make_us_show_it(app, op, signin, failures, client_id):
    configure(app, client_id=client_id, client_secret=SECRET)
    echoed = " | ".join(encodings(SECRET, client_id).values())
    op.token_error = (400, {"error": "invalid_grant", "error_description": f"request was {echoed}"})
    page = signin().get_data(as_text=True)
    assert len(failures) == 1 and failures[0].startswith("The token endpoint answered invalid_grant: request was")
    for form, encoded in encodings(SECRET, client_id).items():
        assert encoded not in failures[0], form
        assert encoded not in page, form


def test_a_token_error_that_is_not_a_plain_code_is_not_repeated(app, op, signin, failures):
    configure(app, client_id="confidential-basic", client_secret=SECRET)
    op.token_error = (400, {"error": "<script>alert(1)</script>"})
    signin()
    assert failures == ["The token endpoint answered HTTP 400."]
