"""The settings page as an admin uses it, in a real browser (Debian's Chromium via Playwright),
against the example app and the development provider (issue 16, SPEC §9, §10): nothing typed or
stored is lost on a redraw, keyboard focus never hides under the sticky bar, no sideways scroll
on a phone, Test sign-in keeps unsaved edits, a Save that would break sign-in asks first, and
axe-core finds no violations on the pages readers and admins see."""

from __future__ import annotations

from pathlib import Path

import pytest
from livesupport import provider_login

from flask_booklore_oidc.mapping import MappingRow

AXE = Path(__file__).resolve().parent.parent / "devprovider" / "node_modules" / "axe-core" / "axe.min.js"
ROWS = (
    MappingRow("readers", "Everyone who may read", False, frozenset({"read", "download"}), frozenset({"1"})),
    MappingRow("uploaders", "", False, frozenset({"upload"}), frozenset({"1", "2"})),
)


@pytest.fixture
def configured(live_app, dev_provider):
    provider = dev_provider()
    live_app.configure(enabled=True, provider_name="Pocket ID", client_id="booklore-public",
                       issuer_uri=provider.issuer, auto_provision=True, default_permissions=["read"],
                       group_sync="replace")
    with live_app.app.test_request_context():
        oidc = live_app.app.extensions["booklore_oidc"]
        for row in ROWS:
            oidc.save_group_mapping(row)
    return provider


def admin_page(browser, live_app, *, width=1280, height=800, javascript=True):
    context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(live_app.url + "/login?local=true")
    page.fill("#username", "admin")
    page.fill("#password", "admin")
    page.click("form.bo-form button:has-text('Sign in')")
    page.wait_for_url(live_app.url + "/")
    page.goto(live_app.url + "/settings/oidc")
    return page


def assert_group_rows_intact(page):
    """Every stored row is shown with its labels, and each edit form holds the stored values."""
    table = page.locator("#group-mappings table").inner_text()
    assert "Download books, Read books\tFiction" in table, table
    assert "Upload books\tFiction, Science" in table, table
    for row_id, row in enumerate(ROWS, start=1):
        assert page.input_value(f"#group-{row_id}-group_value") == row.group
        for permission in row.permissions:
            assert page.locator(f"input[name='group-{row_id}-permissions'][value='{permission}']").is_checked()
        for library in row.libraries:
            assert page.locator(f"input[name='group-{row_id}-libraries'][value='{library}']").is_checked()
    checked = page.locator("input[name='group-2-permissions']:checked").count()
    assert checked == len(ROWS[1].permissions)


def test_a_refused_save_keeps_every_group_row_and_every_typed_value(browser, live_app, configured):
    page = admin_page(browser, live_app)
    page.fill("#provider_name", "Typed, not saved")
    page.fill("#client_id", " booklore-public")  # a leading space: refused
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("text=Nothing was saved")
    assert page.input_value("#provider_name") == "Typed, not saved"
    assert_group_rows_intact(page)
    page.context.close()


def test_test_connection_without_javascript_keeps_every_group_row_and_typed_value(browser, live_app, configured):
    page = admin_page(browser, live_app, javascript=False)
    page.fill("#provider_name", "Typed, not saved")
    page.click("#test-connection button[data-bo-test]")
    page.wait_for_selector("#bo-checks .bo-checks-summary")
    assert page.input_value("#provider_name") == "Typed, not saved"
    assert_group_rows_intact(page)
    page.context.close()


def reader_signs_in(browser, live_app):
    """A reader signs in through the provider: a linked identity and a row of activity."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url + "/login")
    page.click("text=Sign in with Pocket ID")
    provider_login(page, "reader", "reader")
    page.wait_for_url(live_app.url + "/")
    context.close()


def test_tab_never_leaves_focus_under_the_sticky_bar(browser, live_app, configured):
    reader_signs_in(browser, live_app)
    page = admin_page(browser, live_app)
    assert page.locator("#linked-identities tbody tr").count() == 1
    assert page.locator("#activity tbody tr").count() >= 2
    page.locator("#group-mappings details").first.evaluate("d => d.open = true")
    hidden = []
    first = None
    for _ in range(400):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => {
            const el = document.activeElement;
            const bar = document.querySelector('.bo-actions');
            if (!el || el === document.body) return null;
            const r = el.getBoundingClientRect(), b = bar.getBoundingClientRect();
            const label = (el.id || el.name || el.textContent || '').trim().slice(0, 40);
            // Taller than the room above the bar (a scrolling table): it must at least start above it.
            const tall = r.height > b.top - 16;
            const overlaps = r.right > b.left && r.left < b.right &&
                (tall ? r.top >= b.top : r.bottom > b.top && r.top < b.bottom);
            return {label, inBar: bar.contains(el), overlaps, key: el.outerHTML.slice(0, 120),
                    top: r.top, barTop: b.top};
        }""")
        if info is None:
            continue
        if info["key"] == first:
            break
        first = first or info["key"]
        if not info["inBar"] and info["overlaps"]:
            hidden.append((info["label"], info["top"], info["barTop"]))
    assert hidden == []
    page.context.close()


@pytest.mark.parametrize("path", ["/settings/oidc", "/login?local=true", "/account", "/"])
def test_no_sideways_scrolling_on_a_390px_phone(browser, live_app, configured, path):
    page = admin_page(browser, live_app, width=390, height=844)
    page.click("#test-connection button[data-bo-test]")
    page.wait_for_selector("#bo-checks .bo-checks-summary")
    page.goto(live_app.url + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()


def test_test_sign_in_keeps_an_unsaved_edit_and_a_reload_of_its_report_is_no_error(browser, live_app, configured):
    page = admin_page(browser, live_app)
    page.fill("#provider_name", "Unsaved name")
    page.click("button:has-text('Test sign-in'):not([name])")
    provider_login(page, "reader", "reader")
    page.wait_for_selector("h1:has-text('Test sign-in')")
    assert "Signs in" in page.locator("#bo-decision-title").inner_text() or page.locator(".bo-decision").count()
    page.reload()
    page.wait_for_selector("text=This test sign-in was already shown")
    assert "invalid_state" not in page.content()
    page.click("text=Back to the OIDC settings")
    page.wait_for_selector("#provider_name")
    assert page.input_value("#provider_name") == "Unsaved name"
    assert live_app.app.extensions["booklore_oidc"] is not None
    page.context.close()


def test_test_sign_in_as_another_user_asks_the_provider_to_sign_in_afresh(browser, live_app, configured):
    page = admin_page(browser, live_app)
    page.click("button:has-text('Test sign-in'):not([name])")
    provider_login(page, "reader", "reader")
    page.wait_for_selector("h1:has-text('Test sign-in')")
    page.click("text=Back to the OIDC settings")
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.click("button[name=another_user]")
    provider_login(page, "uploader", "uploader")  # the provider asks again despite its session
    page.wait_for_selector("h1:has-text('Test sign-in')")
    assert any("prompt=login" in url and "max_age=0" in url for url in requests)
    assert "uploader" in page.content()
    page.context.close()


def test_a_save_that_test_connection_fails_asks_first(browser, live_app, configured):
    page = admin_page(browser, live_app)
    page.fill("#issuer_uri", "http://127.0.0.1:9")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("button:has-text('Save anyway')")
    assert "Nothing was saved" in page.content() and page.locator("#bo-checks .bo-badge-fail").count() >= 1
    with live_app.app.test_request_context():
        assert live_app.app.extensions["booklore_oidc"].settings().issuer_uri == configured.issuer
    page.click("button:has-text('Save anyway')")
    page.wait_for_selector("text=Settings saved")
    with live_app.app.test_request_context():
        assert live_app.app.extensions["booklore_oidc"].settings().issuer_uri == "http://127.0.0.1:9"
    page.context.close()


def test_the_test_sign_in_report_and_a_readers_error_page_fit_a_390px_phone(browser, live_app, configured):
    page = admin_page(browser, live_app, width=390, height=844)
    page.click("button:has-text('Test sign-in'):not([name])")
    provider_login(page, "reader", "reader")
    page.wait_for_selector("h1:has-text('Test sign-in')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()
    live_app.configure(auto_provision=False)
    reader = browser.new_context(viewport={"width": 390, "height": 844})
    error_page = reader.new_page()
    error_page.goto(live_app.url + "/login")
    error_page.click("text=Sign in with Pocket ID")
    provider_login(error_page, "stranger", "stranger")
    error_page.wait_for_selector("text=quote it to your administrator")
    assert error_page.evaluate("document.documentElement.scrollWidth") <= 390
    reader.close()


# -- axe-core --------------------------------------------------------------------------------------


def axe_violations(page):
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result]


def test_axe_finds_nothing_on_the_admin_pages(browser, live_app, configured):
    page = admin_page(browser, live_app)
    assert axe_violations(page) == []
    page.click("#test-connection button[data-bo-test]")
    page.wait_for_selector("#bo-checks .bo-checks-summary")
    assert axe_violations(page) == []
    page.click("button:has-text('Test sign-in'):not([name])")
    provider_login(page, "reader", "reader")
    page.wait_for_selector("h1:has-text('Test sign-in')")
    assert axe_violations(page) == []
    page.goto(live_app.url + "/settings/oidc")  # the confirmation steps
    page.click("button:has-text('Delete group mapping readers')")
    page.wait_for_selector("text=Delete the row for readers?")
    assert axe_violations(page) == []
    page.fill("#issuer_uri", "http://127.0.0.1:9")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("button:has-text('Save anyway')")
    assert axe_violations(page) == []
    for path in ("/", "/account", "/admin/users", "/logout"):
        page.goto(live_app.url + path)
        assert axe_violations(page) == [], path
    page.context.close()


def test_axe_finds_nothing_on_the_readers_pages(page, live_app, configured):
    page.goto(live_app.url + "/login")
    assert axe_violations(page) == []
    live_app.configure(auto_provision=False)
    page.click("text=Sign in with Pocket ID")
    provider_login(page, "stranger", "stranger")
    page.wait_for_selector("h1")
    assert "quote it to your administrator" in page.content()
    assert axe_violations(page) == []
    page.goto(live_app.url + "/logout")
    assert axe_violations(page) == []
