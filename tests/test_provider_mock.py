"""Sign-in against oidc-provider-mock, an independent provider built on Authlib's server side,
running in a thread on loopback (confidential client: the 0.3.x release on Python 3.11 cannot
serve public clients)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from helpers import configure, identity_count, local_path, me
from oidc_provider_mock import User, run_server_in_thread


@pytest.fixture(scope="module")
def mock_issuer() -> Iterator[str]:
    users = [User(sub="mock-carol", claims={"preferred_username": "carol", "email": "carol@example.test", "name": "Carol"})]
    with run_server_in_thread(user_claims=users, require_nonce=True) as server:
        # The mock derives its issuer from the Host header, so "localhost" is used throughout.
        yield f"http://localhost:{server.server_port}"


def test_confidential_client_signs_in_through_oidc_provider_mock(app, client, mock_issuer):
    configure(app, issuer_uri=mock_issuer, client_id="mock-client", client_secret="mock-secret")

    start = client.get("/login/oidc", query_string={"next": "/account"})
    assert start.status_code == 302
    authorize_url = start.headers["Location"]
    assert authorize_url.startswith(mock_issuer + "/oauth2/authorize?")

    # The mock's consent page posts the chosen subject back to the same URL.
    answer = requests.post(authorize_url, data={"sub": "mock-carol"}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    callback = client.get(local_path(answer.headers["Location"]))

    assert callback.status_code == 302, callback.get_data(as_text=True)
    assert callback.headers["Location"] == "/account"
    assert me(client)["username"] == "carol"
    assert identity_count(app) == 1
