"""A malformed token is the requester's error (SPEC §5.11): whatever its header and claims hold,
validation ends in ``OIDCError("invalid_token")``, never a TypeError or an OverflowError that
would become a 500."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import JWSRegistry

from flask_booklore_oidc.errors import OIDCError
from flask_booklore_oidc.tokens import (
    BACKCHANNEL_LOGOUT_EVENT,
    Expectations,
    logout_token_expiry,
    validate_id_token,
    validate_logout_token,
)

ISSUER = "https://op.example.test"
CLIENT = "app"
NOW = 1_800_000_000
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
KEYS = KeySet([KEY])
EXPECTED = Expectations(issuer=ISSUER, client_id=CLIENT, nonce="n-1", clock_skew=60)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(header: Any, claims: Any) -> str:
    """A compact JWS of exactly this header and payload, RS256-signed with KEY whatever it says."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode("ascii")
    signature = JWSRegistry(algorithms=["RS256"]).get_alg("RS256").sign(signing_input, KEY)
    return f"{signing_input.decode()}.{b64(signature)}"


def good_id_claims(**changes: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "sub": "s", "aud": CLIENT, "exp": NOW + 300, "iat": NOW, "nonce": "n-1", **changes}


def good_logout_claims(**changes: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": NOW,
        "jti": "j-1",
        "sub": "s",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **changes,
    }


GOOD_HEADER = {"alg": "RS256", "kid": "k1", "typ": "JWT"}


def id_token(token: str) -> dict[str, Any]:
    return validate_id_token(token, EXPECTED, lambda kid: KEYS, now=NOW)


def logout_token(token: str) -> dict[str, Any]:
    return validate_logout_token(token, issuer=ISSUER, client_id=CLIENT, keys_for=lambda kid: KEYS, now=NOW)


def refused(validate: Any, token: str) -> OIDCError:
    with pytest.raises(OIDCError) as error:
        validate(token)
    assert error.value.error_code == "invalid_token"
    return error.value


def test_the_well_formed_tokens_of_these_tests_are_accepted():
    assert id_token(signed(GOOD_HEADER, good_id_claims()))["sub"] == "s"
    assert logout_token(signed(GOOD_HEADER, good_logout_claims()))["jti"] == "j-1"


# -- header members of the wrong type ----------------------------------------------------------------

WRONG_TYPES = [["RS256"], {"a": 1}, 256, None, True]


@pytest.mark.parametrize("member", ["alg", "kid", "typ"])
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_an_id_token_header_member_of_the_wrong_type_is_invalid_token(member, value):
    refused(id_token, signed({**GOOD_HEADER, member: value}, good_id_claims()))


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_a_logout_token_with_alg_of_the_wrong_type_is_invalid_token(value):
    refused(logout_token, signed({**GOOD_HEADER, "alg": value}, good_logout_claims()))


def test_a_crit_header_that_is_not_a_list_is_invalid_token():
    refused(id_token, signed({**GOOD_HEADER, "crit": 5}, good_id_claims()))


def test_a_header_that_is_not_an_object_is_invalid_token():
    refused(id_token, signed(["RS256"], good_id_claims()))


# -- claims of the wrong type or range -------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": 1e20},
        {"exp": True},
        {"exp": "tomorrow"},
        {"iat": "now"},
        {"iat": -1e20},
        {"nbf": 1e300},
        {"aud": 5},
        {"aud": {"app": 1}},
        {"sub": {"id": 1}},
        {"iss": [ISSUER]},
        {"nonce": 5},
    ],
    ids=repr,
)
def test_an_id_token_claim_of_the_wrong_type_or_range_is_invalid_token(changes):
    refused(id_token, signed(GOOD_HEADER, good_id_claims(**changes)))


@pytest.mark.parametrize(
    "changes",
    [{"exp": 1e20}, {"iat": "now"}, {"exp": False}, {"jti": ["j"]}, {"sid": 5}],
    ids=repr,
)
def test_a_logout_token_claim_of_the_wrong_type_or_range_is_invalid_token(changes):
    refused(logout_token, signed(GOOD_HEADER, good_logout_claims(**changes)))


@pytest.mark.parametrize("events", [[BACKCHANNEL_LOGOUT_EVENT], "logout", 5, None], ids=repr)
def test_logout_token_events_that_are_not_an_object_are_invalid_token(events):
    refused(logout_token, signed(GOOD_HEADER, good_logout_claims(events=events)))


def test_a_payload_that_is_not_an_object_is_invalid_token():
    refused(id_token, signed(GOOD_HEADER, ["sub"]))


# -- anything at all -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def mixed(keys: list[str], plausible: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose members are each either the plausible value or anything at all, so that the
    generated tokens get past the early checks often enough to reach the later ones."""
    member = {key: st.one_of(st.just(plausible[key]), json_values) for key in keys}
    return st.fixed_dictionaries({}, optional=member)  # type: ignore[arg-type]


headers = mixed(["alg", "kid", "typ", "crit"], {**GOOD_HEADER, "crit": []}) | json_values
ID_CLAIMS = {**good_id_claims(), "nbf": NOW, "azp": CLIENT, "at_hash": "x", "auth_time": NOW}
LOGOUT_CLAIMS = {**good_logout_claims(), "exp": NOW + 60, "sid": "sid-1", "nonce": "n"}
id_claims = mixed(list(ID_CLAIMS), ID_CLAIMS)
logout_claims = mixed(list(LOGOUT_CLAIMS), LOGOUT_CLAIMS)
PROPERTY = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(header=headers, claims=id_claims)
def test_any_id_token_is_accepted_or_refused_with_invalid_token(header, claims):
    try:
        id_token(signed(header, claims))
    except OIDCError as error:
        assert error.error_code == "invalid_token"


@PROPERTY
@given(header=headers, claims=logout_claims)
def test_any_logout_token_is_accepted_or_refused_with_invalid_token(header, claims):
    try:
            accepted = logout_token(signed(header, claims))
    except OIDCError as error:
        assert error.error_code == "invalid_token"
    else:
        # what the back-channel route computes from an accepted token works too
        datetime.fromtimestamp(logout_token_expiry(accepted), UTC)
