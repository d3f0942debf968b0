"""Property tests (Hypothesis): whatever a browser, a provider or an anonymous caller sends to a
route family, the answer is never a 5xx, nobody is signed in, and nothing unbounded is written
(SPEC §5.11, §13)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import me
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settings_helpers import csrf_token, settings_form
from sqlalchemy import func, select

from example_app.models import User, db
from flask_booklore_oidc.config import FIELDS
from flask_booklore_oidc.models import Identity, LoginRecord, LogoutTokenJti, SettingsRow, Transaction
from flask_booklore_oidc.urls import MAX_NEXT

pytestmark = pytest.mark.both_databases

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: anything a browser can put into a URL or a form: every character but lone surrogates
hostile_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300) | st.sampled_from(
    [
        "",
        "\x00",
        "a" * 5000,
        "http://[",
        "//evil.example",
        "javascript:alert(1)",
        "eyJhbGciOlsibm9uZSJdfQ.e30.",
        '{"alg": {"x": 1}}',
        "%00%0d%0a",
    ]
)


def _counts(app: Any) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            int(db.session.execute(select(func.count()).select_from(model)).scalar_one())
            for model in (User, Identity, LoginRecord, LogoutTokenJti, SettingsRow)
        )


@EXAMPLES
@given(
    query=st.dictionaries(
        st.sampled_from(["state", "code", "iss", "error", "error_description", "session_state"]),
        hostile_text,
        max_size=6,
    )
)
def test_the_callback_answers_anything_with_a_4xx_and_writes_nothing(app, client, query):
    before = _counts(app)
    response = client.get("/oauth2-callback", query_string=query)
    assert 400 <= response.status_code < 500
    assert me(client) is None
    assert _counts(app) == before


@EXAMPLES
@given(
    params=st.dictionaries(st.sampled_from(["next", "iss", "login_hint", "target_link_uri"]), hostile_text, max_size=4),
    method=st.sampled_from(["GET", "POST"]),
)
def test_starting_a_sign_in_never_fails_on_bad_input_and_stores_only_bounded_rows(app, client, op, params, method):
    if "iss" in params:
        params["iss"] = op.issuer if params["iss"] == "" else params["iss"]
    response = client.open(
        "/login/oidc", method=method, **({"query_string": params} if method == "GET" else {"data": params})
    )
    assert response.status_code in (302, 400)
    with app.app_context():
        longest = db.session.execute(select(func.max(func.length(Transaction.next_url)))).scalar_one()
    assert longest is None or longest <= MAX_NEXT


@EXAMPLES
@given(token=hostile_text, extra=st.dictionaries(st.sampled_from(["logout_token", "x"]), hostile_text, max_size=2))
def test_back_channel_logout_refuses_anything_unsigned_and_ends_nothing(app, client, token, extra):
    before = _counts(app)
    response = client.post("/oauth2-backchannel-logout", data={**extra, "logout_token": token})
    assert response.status_code == 400
    assert _counts(app) == before


@EXAMPLES
@given(username=hostile_text, password=hostile_text, next_url=hostile_text)
def test_local_sign_in_with_anything_signs_nobody_in_and_never_fails(app, client, username, password, next_url):
    page = client.get("/login?local=true").get_data(as_text=True)
    before = _counts(app)
    response = client.post(
        "/login", data={"username": username, "password": password, "next": next_url, "csrf_token": csrf_token(page)}
    )
    assert response.status_code in (400, 401, 403, 429)
    assert me(client) is None
    assert _counts(app) == before


TEXT_SETTINGS = [
    f.name for f in FIELDS if f.kind in ("str", "int", "float", "choice", "list") and not f.name.startswith("default_")
]


@EXAMPLES
@given(changes=st.dictionaries(st.sampled_from(TEXT_SETTINGS), hostile_text, min_size=1, max_size=4))
def test_the_settings_form_refuses_or_stores_bounded_values_never_a_5xx(app, admin, changes):
    response = admin.post("/settings/oidc", data=settings_form(admin, **changes))
    assert response.status_code in (302, 400, 409)  # 409: Test Connection failed, asks first
    with app.app_context():
        row = db.session.get(SettingsRow, 1)
        for f in FIELDS:
            value = getattr(row, f.name)
            if isinstance(value, str) and f.max_length:
                assert len(value) <= f.max_length


@EXAMPLES
@given(key=st.sampled_from([f.name for f in FIELDS] + ["nonsense", ""]), value=hostile_text)
def test_the_cli_set_refuses_or_stores_never_crashes(app, run, key, value):
    if "\x00" in value:  # a shell cannot pass NUL in an argument
        value = value.replace("\x00", "")
    result = run("set", key, value, input="")
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@EXAMPLES
@given(query=st.dictionaries(st.sampled_from(["iss", "sid", "x"]), hostile_text, max_size=3))
def test_front_channel_logout_answers_anything_without_a_5xx_and_ends_nothing_unknown(app, client, query):
    before = _counts(app)
    response = client.get("/oauth2-frontchannel-logout", query_string=query)
    assert response.status_code in (200, 400)
    assert _counts(app) == before


@EXAMPLES
@given(password=hostile_text, extra=st.dictionaries(st.sampled_from(["cancel", "next"]), hostile_text, max_size=2))
def test_the_link_page_without_a_pending_link_signs_nobody_in(app, client, password, extra):
    before = _counts(app)
    response = client.post("/login/link", data={"password": password, **extra})
    assert 400 <= response.status_code < 500
    assert me(client) is None
    assert _counts(app) == before
