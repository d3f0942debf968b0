"""What readers and admins see, in a real browser (Chromium via Playwright) against the example
app and the development provider. Saves the README's pictures into docs/."""

from __future__ import annotations

import pytest
from livesupport import provider_login, screenshot
from test_interop import api_me


@pytest.fixture
def configured(live_app, dev_provider):
    provider = dev_provider()
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public",
                       issuer_uri=provider.issuer, auto_provision=True, default_permissions=["read"])
    return provider


def test_reader_signs_in_with_the_button_and_lands_on_the_page_they_asked_for(page, live_app, configured):
    page.goto(live_app.url + "/account")
    assert page.url.startswith(live_app.url + "/login")
    button = page.locator("a.bo-oidc-button")
    assert button.inner_text().strip() == "Sign in with Pocket ID"
    screenshot(page, "login.png")
    button.click()
    provider_login(page, "reader", "reader")
    page.wait_for_url(live_app.url + "/account")
    assert page.locator("h1").inner_text() == "Rita Reader"
    assert api_me(page)["permissions"] == ["read"]


def test_oidc_only_mode_sends_the_reader_straight_to_the_provider(page, live_app, configured):
    live_app.configure(only_mode=True)
    page.goto(live_app.url + "/account")
    page.wait_for_selector("input[name=password]")
    assert page.url.startswith(configured.issuer)
    provider_login(page, "reader", "reader")
    page.wait_for_url(live_app.url + "/account")

    admin = page.context.browser.new_context()
    backdoor = admin.new_page()
    backdoor.goto(live_app.url + "/login?local=true")
    assert backdoor.url.startswith(live_app.url + "/login")
    backdoor.fill("#username", "admin")
    backdoor.fill("#password", "admin")
    backdoor.click("form.bo-form button:has-text('Sign in')")
    backdoor.wait_for_url(live_app.url + "/")
    assert api_me(backdoor)["is_admin"] is True
    admin.close()


def test_a_user_who_is_not_provisioned_sees_the_readers_error_page(page, live_app, configured):
    live_app.configure(auto_provision=False)
    page.goto(live_app.url + "/login")
    page.click("text=Sign in with Pocket ID")
    provider_login(page, "stranger", "stranger")
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "You have no account here yet"
    assert "There is no account here for you yet" in page.content()
    assert "create a user here whose username exactly matches" not in page.content()  # the admins' advice
    screenshot(page, "error-user-not-provisioned.png")
    page.click("text=Back to sign-in")
    assert page.url.startswith(live_app.url + "/login")
    assert api_me(page) is None


def test_after_signing_out_the_reader_stays_signed_out(page, live_app, configured):
    live_app.configure(only_mode=True)
    page.goto(live_app.url + "/")
    provider_login(page, "reader", "reader")
    page.wait_for_url(live_app.url + "/")
    page.click("text=Sign out")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(live_app.url + "/login?logged_out=1*")
    assert page.locator("text=You are signed out").is_visible()
    # Even in OIDC-only mode, the page after sign-out does not bounce back to the provider.
    assert page.url.startswith(live_app.url + "/login")
    assert api_me(page) is None


def test_admin_sets_up_oidc_from_an_unconfigured_app_and_a_reader_signs_in(browser, live_app, dev_provider):
    provider = dev_provider()  # its client lists this app's /oauth2-callback, as the guide says
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(live_app.url + "/login")
    assert page.locator("a.bo-oidc-button").count() == 0
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("form.bo-form button:has-text('Sign in')")
    page.click("text=OIDC settings")

    page.fill("#provider_name", "Pocket ID")
    page.fill("#client_id", "booklore-public")
    page.fill("#issuer_uri", provider.issuer)
    page.check("#auto_provision", force=True)
    page.click("#test-connection button[data-bo-test]")
    page.wait_for_selector("#bo-checks .bo-checks-summary")
    badges = page.locator("#bo-checks .bo-badge").all_inner_texts()
    assert badges and "FAIL" not in badges and badges.count("PASS") >= 8
    screenshot(page, "settings-test-connection.png", full_page=False)

    page.click("button[data-copy-target='ref-redirect_uri']")
    assert page.evaluate("navigator.clipboard.readText()") == live_app.url + "/oauth2-callback"

    page.check("#enabled", force=True)
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("text=Settings saved")
    context.close()

    reader = browser.new_context()
    reader_page = reader.new_page()
    reader_page.goto(live_app.url + "/")
    reader_page.click("text=Sign in with Pocket ID")
    provider_login(reader_page, "reader", "reader")
    reader_page.wait_for_url(live_app.url + "/")
    assert api_me(reader_page)["username"] == "reader"
    reader.close()
