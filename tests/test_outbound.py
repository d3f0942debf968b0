"""Every outbound request is bounded (SPEC §5.9): a total deadline, a size cap, no redirects; and a
failed discovery is remembered for a while so a hanging provider cannot tie up the workers."""

from __future__ import annotations

import time

import pytest
import requests
from hostile import HostileServer, announce_length, flood, json_answer, redirect, trickle, trickle_headers

from flask_booklore_oidc.discovery import ProviderCache
from flask_booklore_oidc.errors import OIDCError
from flask_booklore_oidc.settings import Settings
from flask_booklore_oidc.transport import CHUNK, MAX_BODY, TooLarge, TooSlow

TIMEOUT = 2.0
MARGIN = 1.5


@pytest.fixture
def server(hostile_server: HostileServer) -> HostileServer:
    return hostile_server


SETTINGS = Settings(http_timeout=TIMEOUT)


# -- the total deadline --------------------------------------------------------------------------


def test_a_body_trickling_one_byte_every_half_second_is_cut_off_at_the_deadline(server, transport):
    server.routes["/slow"] = trickle(interval=0.5, length=100)
    started = time.monotonic()
    with pytest.raises(TooSlow, match=f"within {TIMEOUT:g} s"):
        transport.get(server.base_url + "/slow", SETTINGS)
    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_headers_trickling_one_byte_every_half_second_are_cut_off_at_the_deadline(server, transport):
    server.routes["/slow"] = trickle_headers(interval=0.5)
    started = time.monotonic()
    with pytest.raises(TooSlow):
        transport.get(server.base_url + "/slow", SETTINGS)
    assert time.monotonic() - started < TIMEOUT + MARGIN


def test_a_too_slow_answer_is_a_requests_timeout(server, transport):
    server.routes["/slow"] = trickle(interval=0.5, length=100)
    with pytest.raises(requests.Timeout):
        transport.get(server.base_url + "/slow", SETTINGS, timeout=0.6)


def test_a_shorter_timeout_argument_is_the_whole_deadline(server, transport):
    server.routes["/slow"] = trickle(interval=0.2, length=100)
    started = time.monotonic()
    with pytest.raises(TooSlow):
        transport.get(server.base_url + "/slow", SETTINGS, timeout=0.5)
    assert time.monotonic() - started < 0.5 + MARGIN


def test_a_quick_answer_is_read_whole(server, transport):
    server.routes["/ok"] = json_answer({"issuer": "x"})
    response = transport.get(server.base_url + "/ok", SETTINGS)
    assert response.status_code == 200 and response.json() == {"issuer": "x"}


def test_connections_are_reused_after_a_complete_answer(server, transport):
    server.routes["/ok"] = json_answer({})
    for _ in range(3):
        transport.get(server.base_url + "/ok", SETTINGS)
    assert server.connections == 1


# -- the size cap --------------------------------------------------------------------------------


def test_a_five_mib_body_is_refused_after_reading_at_most_the_cap_and_one_chunk(server, transport):
    server.routes["/big"] = flood(5 * 1024 * 1024, announce=False)
    with pytest.raises(TooLarge) as refused:
        transport.get(server.base_url + "/big", SETTINGS)
    assert MAX_BODY < refused.value.received <= MAX_BODY + CHUNK


def test_the_server_sees_the_client_stop_reading_a_flood(server, transport):
    total = 64 * 1024 * 1024  # more than any socket buffer between the two ends can absorb
    server.routes["/big"] = flood(total, announce=False)
    with pytest.raises(TooLarge):
        transport.get(server.base_url + "/big", SETTINGS)
    # Once the client hung up, no further byte can be sent: the count stays below the total.
    assert server.sent["/big"] < total


def test_a_content_length_of_100_mb_is_refused_without_reading(server, transport):
    server.routes["/huge"] = announce_length(100_000_000)
    with pytest.raises(TooLarge) as refused:
        transport.get(server.base_url + "/huge", SETTINGS)
    assert refused.value.received == 0
    assert "100000000 bytes" in str(refused.value)


def test_a_body_of_exactly_the_cap_is_accepted(server, transport):
    server.routes["/cap"] = flood(MAX_BODY)
    assert len(transport.get(server.base_url + "/cap", SETTINGS).content) == MAX_BODY


def test_too_large_is_a_request_exception(server, transport):
    server.routes["/huge"] = announce_length(100_000_000)
    with pytest.raises(requests.RequestException):
        transport.get(server.base_url + "/huge", SETTINGS)


def test_an_adapter_that_produced_the_body_itself_is_read_against_the_cap(transport):
    class InProcess(requests.adapters.BaseAdapter):
        def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object) -> requests.Response:
            response = requests.Response()
            response.status_code = 200
            response._content = b"x" * (MAX_BODY + 1)
            return response

        def close(self) -> None:
            pass

    transport.mount("http://in-process/", InProcess())
    with pytest.raises(TooLarge):
        transport.get("http://in-process/big", SETTINGS)


# -- redirects -----------------------------------------------------------------------------------


def test_a_redirect_is_returned_and_not_followed(server, transport):
    server.routes["/moved"] = redirect("/target")
    server.routes["/target"] = json_answer({})
    response = transport.get(server.base_url + "/moved", SETTINGS)
    assert response.status_code == 302 and response.headers["Location"] == "/target"
    assert server.hits["/target"] == 0


def test_a_caller_cannot_turn_redirects_on(server, transport):
    server.routes["/moved"] = redirect("/target")
    server.routes["/target"] = json_answer({})
    transport.get(server.base_url + "/moved", SETTINGS, allow_redirects=True)
    assert server.hits["/target"] == 0


# -- a failed discovery is remembered -------------------------------------------------------------

WELL_KNOWN = "/.well-known/openid-configuration"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(transport, clock) -> ProviderCache:
    return ProviderCache(transport, ttl=300, min_refetch=10, clock=clock)


def discovery_document(base: str) -> dict[str, str]:
    return {
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "jwks_uri": base + "/jwks",
    }


def test_a_second_discovery_within_30_s_of_a_failure_sends_no_request(server, transport, cache, clock):
    server.routes[WELL_KNOWN] = json_answer({"error": "down"}, 503)
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    clock.now += 29
    with pytest.raises(OIDCError, match="HTTP 503") as again:
        cache.metadata(settings)
    assert again.value.error_code == "provider_unreachable"
    assert transport.total == 1


def test_a_hanging_provider_costs_one_deadline_per_interval_not_one_per_sign_in(server, transport, cache):
    server.routes[WELL_KNOWN] = trickle(interval=0.5, length=100)
    settings = Settings(issuer_uri=server.base_url, http_timeout=0.6)
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    started = time.monotonic()
    with pytest.raises(OIDCError, match="did not answer in time"):
        cache.metadata(settings)
    assert time.monotonic() - started < 0.1
    assert transport.total == 1


def test_a_bad_discovery_document_is_remembered_too(server, transport, cache, clock):
    server.routes[WELL_KNOWN] = json_answer({**discovery_document(server.base_url), "issuer": "https://elsewhere"})
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    for _ in range(2):
        with pytest.raises(OIDCError) as refused:
            cache.metadata(settings)
        assert refused.value.error_code == "issuer_mismatch"
    assert transport.total == 1


def test_discovery_is_tried_again_once_the_failure_is_30_s_old(server, transport, cache, clock):
    server.routes[WELL_KNOWN] = json_answer({}, 503)
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    server.routes[WELL_KNOWN] = json_answer(discovery_document(server.base_url))
    clock.now += 30
    assert cache.metadata(settings).issuer == server.base_url
    assert transport.total == 2


def test_forget_clears_a_remembered_failure(server, transport, cache):
    server.routes[WELL_KNOWN] = json_answer({}, 503)
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    server.routes[WELL_KNOWN] = json_answer(discovery_document(server.base_url))
    cache.forget()
    assert cache.metadata(settings).issuer == server.base_url


def test_the_failure_interval_is_a_constructor_argument(server, transport, clock):
    cache = ProviderCache(transport, ttl=300, min_refetch=10, failure_ttl=5, clock=clock)
    server.routes[WELL_KNOWN] = json_answer({}, 503)
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    clock.now += 5
    with pytest.raises(OIDCError):
        cache.metadata(settings)
    assert transport.total == 2


def test_a_failure_is_remembered_per_issuer(server, transport, cache):
    server.routes[WELL_KNOWN] = json_answer({}, 503)
    with pytest.raises(OIDCError):
        cache.metadata(Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT))
    server.routes["/other" + WELL_KNOWN] = json_answer(discovery_document(server.base_url + "/other"))
    assert cache.metadata(Settings(issuer_uri=server.base_url + "/other", http_timeout=TIMEOUT))


def test_a_too_large_discovery_document_is_provider_unreachable(server, transport, cache):
    server.routes[WELL_KNOWN] = announce_length(100_000_000)
    with pytest.raises(OIDCError, match="more than 1 MiB") as refused:
        cache.metadata(Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT))
    assert refused.value.error_code == "provider_unreachable"


def test_a_foreign_issuer_that_is_not_a_plain_address_is_not_quoted(server, transport, cache):
    document = {**discovery_document(server.base_url), "issuer": "<b>INTERNAL-ADMIN-PANEL</b>"}
    server.routes[WELL_KNOWN] = json_answer(document)
    with pytest.raises(OIDCError) as refused:
        cache.metadata(Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT))
    assert refused.value.error_code == "issuer_mismatch"
    assert "INTERNAL-ADMIN-PANEL" not in refused.value.detail


def test_a_shorter_max_age_notices_a_provider_that_stopped_while_discovery_is_warm(server, transport, cache, clock):
    server.routes[WELL_KNOWN] = json_answer(discovery_document(server.base_url))
    settings = Settings(issuer_uri=server.base_url, http_timeout=TIMEOUT)
    cache.metadata(settings)
    server.routes[WELL_KNOWN] = json_answer({"error": "down"}, 503)
    clock.now += 30
    assert cache.metadata(settings, max_age=60).issuer == server.base_url  # fresh enough: no request
    clock.now += 31
    with pytest.raises(OIDCError) as stopped:
        cache.metadata(settings, max_age=60)
    assert stopped.value.error_code == "provider_unreachable"
    assert cache.metadata(settings).issuer == server.base_url  # within the TTL for everything else
    assert transport.total == 2
