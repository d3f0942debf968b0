"""Interop with a certified provider: npm oidc-provider v8 (devprovider/), driven through its
real login page in Chromium. Public client with PKCE and a confidential client; RFC 9207 `iss`;
groups in the ID token and in userinfo only; key rotation between two sign-ins; RP-initiated
logout through its /session/end page; logout started at the provider reaching us by back-channel
(its logout token) and by front-channel (an iframe on its signed-out page; oidc-provider v8 no
longer implements front-channel logout, so devprovider/server.js does, as v7 did)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from livesupport import provider_login

from example_app.models import db
from flask_booklore_oidc.models import GroupMapping


def api_me(page):
    """/api/me as the browser sees it (same cookies)."""
    response = page.request.get(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/api/me")
    return response.json() if response.status == 200 else None


def record_callbacks(page, base):
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if request.url.startswith(base + "/oauth2-callback") else None)
    return seen


def sign_in_with_button(page, live_app, username, password, *, start="/account"):
    page.goto(live_app.url + start)
    page.click("text=Sign in with Pocket ID")
    provider_login(page, username, password)
    page.wait_for_url(live_app.url + start)


@pytest.fixture
def public_setup(live_app, dev_provider):
    provider = dev_provider()
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public", issuer_uri=provider.issuer,
                       auto_provision=True)
    return provider


def test_public_client_with_pkce_signs_in_through_the_real_login_page(page, live_app, public_setup):
    callbacks = record_callbacks(page, live_app.url)
    sign_in_with_button(page, live_app, "reader", "reader")
    assert api_me(page)["username"] == "reader"
    assert page.locator("text=Rita Reader").first.is_visible()
    # RFC 9207: the provider's answer names its issuer, and we accepted it.
    query = parse_qs(urlsplit(callbacks[-1]).query)
    assert query["iss"] == [public_setup.issuer]


def test_the_provider_refuses_a_client_that_sends_no_pkce(live_app, public_setup):
    # Sanity of the interop setup: the certified provider really enforces PKCE, so the sign-in
    # above proves our S256 challenge and verifier are right.
    response = requests.get(
        public_setup.issuer + "/auth",
        params={"client_id": "booklore-public", "response_type": "code", "scope": "openid",
                "redirect_uri": live_app.url + "/oauth2-callback", "state": "s"},
        allow_redirects=False, timeout=5,
    )
    answer = parse_qs(urlsplit(response.headers["Location"]).query)
    assert answer["error"] == ["invalid_request"]
    assert "PKCE" in answer["error_description"][0]


def test_confidential_client_signs_in(page, live_app, dev_provider):
    provider = dev_provider()
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-confidential",
                       client_secret="confidential-secret-123", issuer_uri=provider.issuer, auto_provision=True)
    sign_in_with_button(page, live_app, "uploader", "uploader")
    assert api_me(page)["username"] == "uploader"


def add_mapping(live_app):
    with live_app.app.app_context():
        db.session.add(GroupMapping(group_value="uploaders", description="May upload",
                                    permissions=json.dumps(["upload"]), libraries="[]"))
        db.session.commit()


@pytest.mark.parametrize("groups_in_id_token", [True, False], ids=["groups-in-id-token", "groups-in-userinfo-only"])
def test_groups_reach_the_group_mapping(page, live_app, dev_provider, groups_in_id_token):
    provider = dev_provider(groups_in_id_token=groups_in_id_token)
    add_mapping(live_app)
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public", issuer_uri=provider.issuer,
                       auto_provision=True, group_sync="replace", default_permissions=["read"])
    sign_in_with_button(page, live_app, "uploader", "uploader")
    me = api_me(page)
    assert me["permissions"] == ["read", "upload"]
    assert me["email"] == "uploader@example.com"


def test_key_rotation_between_two_sign_ins(browser, live_app, public_setup):
    first = browser.new_context()
    sign_in_with_button(first.new_page(), live_app, "reader", "reader")
    first.close()

    rotated = requests.post(public_setup.issuer + "/__dev/rotate-keys", timeout=5).json()
    assert len(rotated["keys"]) == 2

    second = browser.new_context()
    page = second.new_page()
    sign_in_with_button(page, live_app, "uploader", "uploader")
    assert api_me(page)["username"] == "uploader"
    second.close()


def test_rp_initiated_logout_through_session_end(page, live_app, public_setup):
    sign_in_with_button(page, live_app, "reader", "reader")
    page.goto(live_app.url + "/logout")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(live_app.url + "/login?logged_out=1*")
    assert page.locator("text=You are signed out").is_visible()
    assert api_me(page) is None
    # The provider's session ended too: the button leads to its login form, not straight back.
    page.click("text=Sign in with Pocket ID")
    page.wait_for_selector("input[name=password]")


def sign_out_at_the_provider(page, provider):
    """The reader signs out at the provider itself, not through this app."""
    page.goto(provider.issuer + "/session/end")
    page.click("button:has-text('Yes, sign me out')")
    page.wait_for_selector("text=You have been signed out.")


def test_signing_out_at_the_provider_ends_the_session_by_backchannel_logout(page, live_app, dev_provider):
    provider = dev_provider(public_client={"backchannel_logout_uri": live_app.url + "/oauth2-backchannel-logout"})
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public", issuer_uri=provider.issuer,
                       auto_provision=True)
    sign_in_with_button(page, live_app, "reader", "reader")
    assert api_me(page)["username"] == "reader"

    sign_out_at_the_provider(page, provider)

    assert api_me(page) is None


def test_signing_out_at_the_provider_ends_the_session_by_frontchannel_logout(page, live_app, dev_provider):
    provider = dev_provider(public_client={"frontchannel_logout_uri": live_app.url + "/oauth2-frontchannel-logout"})
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public", issuer_uri=provider.issuer,
                       auto_provision=True)
    sign_in_with_button(page, live_app, "reader", "reader")
    assert api_me(page)["username"] == "reader"

    with page.expect_response(lambda response: "/oauth2-frontchannel-logout" in response.url) as framed:
        sign_out_at_the_provider(page, provider)

    assert framed.value.status == 200
    assert parse_qs(urlsplit(framed.value.url).query)["iss"] == [provider.issuer]
    # The provider's page may frame ours (frame-ancestors names its origin): our page is in the frame.
    assert page.frame_locator("iframe.frontchannel").locator("p").text_content() == "You are signed out of this app."
    assert api_me(page) is None
