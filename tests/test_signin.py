"""The happy paths of the sign-in (SPEC §5) against the programmable fake provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import SECRET, configure, identity_count, me, user_count

pytestmark = pytest.mark.both_databases


def test_public_client_signs_in_with_pkce_and_lands_on_next(app, client, op, signin):
    authorize_url = signin.start(next="/account")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 22 and len(query["nonce"][0]) >= 22

    response = client.get(signin.provider_answer(authorize_url))

    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert me(client)["username"] == "alice"
    assert op.last_token_request["auth_method_used"] == "none"
    assert "code_verifier" in op.last_token_request
    assert user_count(app) == 1 and identity_count(app) == 1


def test_confidential_client_secret_basic(app, client, op, signin):
    configure(app, client_id="confidential-basic", client_secret=SECRET, token_auth_method="client_secret_basic")
    response = signin(next="/account")
    assert response.headers["Location"] == "/account"
    assert op.last_token_request["auth_method_used"] == "client_secret_basic"
    assert me(client)["email"] == "alice@example.test"


def test_confidential_client_secret_post(app, client, op, signin):
    configure(app, client_id="confidential-post", client_secret=SECRET, token_auth_method="client_secret_post")
    response = signin(next="/account")
    assert response.headers["Location"] == "/account"
    assert op.last_token_request["auth_method_used"] == "client_secret_post"
    assert me(client)["username"] == "alice"


def test_behind_a_reverse_proxy_the_public_url_is_the_redirect_uri_on_both_legs(app, client, op, signin):
    op.add_client("proxied", redirect_uris=["https://books.example.com/oauth2-callback"], auth_method="none")
    configure(app, client_id="proxied", public_url="https://books.example.com/")
    authorize_url = signin.start()
    assert parse_qs(urlsplit(authorize_url).query)["redirect_uri"] == ["https://books.example.com/oauth2-callback"]
    response = client.get(signin.provider_answer(authorize_url))
    assert response.status_code == 302
    assert op.last_token_request["redirect_uri"] == "https://books.example.com/oauth2-callback"
    assert me(client)["username"] == "alice"


def test_a_next_url_too_long_to_keep_lands_on_the_default_page(app, client, signin):
    response = signin(next="/account?" + "q" * 2500)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert me(client)["username"] == "alice"
