"""Recent sign-in activity (SPEC §9) and the two versions of the error page (SPEC §10): readers
get what to do and a reference, admins the detail and the guide's advice; the admin finds the
reference on the activity list."""

from __future__ import annotations

import re
from datetime import timedelta

from helpers import SECRET, SignIn, configure, refusal_detail
from settings_helpers import ADMIN, create_user, csrf_token, sign_in
from sqlalchemy import inspect, select

from example_app.models import db
from flask_booklore_oidc import activity
from flask_booklore_oidc.models import Activity, utcnow


def rows(app):
    with app.app_context():
        return activity.recent(db.session, activity.MAX_ROWS)


def test_a_provider_sign_in_is_on_the_activity_list(app, client, op):
    SignIn(client, op)()
    [attempt] = rows(app)
    assert attempt.signed_in and attempt.username == "alice" and attempt.subject == "sub-alice"
    assert attempt.rule == "provisioned" and attempt.client_address == "127.0.0.1"
    assert re.fullmatch(r"[A-Z2-9]{8}", attempt.reference)


def test_a_refused_sign_in_is_on_the_list_with_its_code_and_who_it_was(app, client, op):
    configure(app, auto_provision=False)
    response = SignIn(client, op)()
    [attempt] = rows(app)
    assert attempt.result == "user_not_provisioned" and attempt.username == "alice" and attempt.subject == "sub-alice"
    assert attempt.reference in response.get_data(as_text=True)


def test_local_sign_ins_are_on_the_list_right_or_wrong(app, client):
    create_user(app, *ADMIN, is_admin=True)
    page = client.get("/login?local=true").get_data(as_text=True)
    refused = client.post("/login", data={"username": "admin", "password": "wrong", "csrf_token": csrf_token(page)})
    assert refused.status_code == 401
    sign_in(client, *ADMIN)
    newest, oldest = rows(app)
    assert (oldest.result, oldest.rule, oldest.username) == ("invalid_credentials", "local", "admin")
    assert (newest.result, newest.rule, newest.username) == ("signed_in", "local", "admin")


def test_the_list_keeps_at_most_500_rows(app):
    with app.app_context():
        for n in range(activity.MAX_ROWS + 20):
            db.session.add(Activity(result="signed_in", username=f"u{n}", reference=f"R{n:07d}"))
        db.session.commit()
        activity.record(db.session, "signed_in", username="last")
        assert activity.count(db.session) == activity.MAX_ROWS
        assert activity.recent(db.session, 1)[0].username == "last"


def test_the_list_forgets_attempts_older_than_30_days(app):
    with app.app_context():
        db.session.add(Activity(at=utcnow() - activity.MAX_AGE - timedelta(minutes=1), result="x", reference="OLD"))
        db.session.add(Activity(at=utcnow() - timedelta(days=29), result="y", reference="RECENT"))
        db.session.commit()
        activity.record(db.session, "signed_in")
        assert [a.reference for a in activity.recent(db.session)][1:] == ["RECENT"]


def test_the_list_holds_no_tokens_no_secret_and_no_other_claims(app, client, op):
    configure(app, client_id="confidential-basic", client_secret=SECRET)
    SignIn(client, op)()
    issued = op.issued[-1]
    with app.app_context():
        columns = {c.key for c in inspect(Activity).columns}
        values = [str(v) for row in db.session.scalars(select(Activity)) for v in vars(row).values()]
    assert columns == {"id", "at", "result", "rule", "username", "subject", "client_address", "detail", "reference"}
    text = " ".join(values)
    assert issued["access_token"] not in text and issued["id_token"] not in text
    assert SECRET not in text and "alice@example.test" not in text and "eyJ" not in text


def test_long_values_are_cut_to_the_column_sizes(app):
    with app.app_context():
        activity.record(db.session, "signed_in", username="u" * 1000, subject="s" * 1000, client_address="a" * 100)
        [attempt] = activity.recent(db.session)
    assert (len(attempt.username), len(attempt.subject), len(attempt.client_address)) == (255, 255, 64)


def test_readers_get_the_short_error_page_with_a_reference(app, client, op):
    configure(app, issuer_uri="http://127.0.0.1:9")
    response = client.get("/login/oidc")
    page = response.get_data(as_text=True)
    assert response.status_code == 502
    assert "Sign-in is not available right now" in page and "Try again in a few minutes" in page
    assert "quote it to your administrator" in page
    assert "ConnectionError" not in page and "Docker" not in page and "openid-configuration" not in page
    assert "ConnectionError" in refusal_detail(app, page)


def test_admins_get_the_technical_error_page(app, admin):
    configure(app, issuer_uri="http://127.0.0.1:9")
    page = admin.get("/login/oidc").get_data(as_text=True)
    assert "The sign-in provider cannot be reached" in page
    assert "openid-configuration: ConnectionError" in page and "Check DNS resolution" in page


def test_the_admin_finds_a_readers_reference_on_the_settings_page_and_in_the_cli(app, client, admin, op, run):
    configure(app, auto_provision=False)
    reader = app.test_client()
    page = SignIn(reader, op)().get_data(as_text=True)
    reference = re.search(r"Reference: <code>([A-Z0-9]{8})</code>", page).group(1)
    settings = admin.get("/settings/oidc").get_data(as_text=True)
    assert f'data-reference="{reference}"' in settings and "user_not_provisioned" in settings
    result = run("activity")
    assert result.exit_code == 0 and reference in result.output and "user_not_provisioned" in result.output


def test_the_cli_says_when_there_is_no_activity(run):
    result = run("activity")
    assert result.exit_code == 0 and "No sign-in attempts yet." in result.output


def test_invalid_client_with_a_secret_names_public_versus_confidential(app, client, op):
    configure(app, client_id="confidential-basic", client_secret="not-the-secret")
    SignIn(client, op)()
    [attempt] = rows(app)
    assert attempt.result == "invalid_client"
    assert "registered as public" in attempt.detail and "client authentication method" in attempt.detail


def test_unauthorized_client_with_a_secret_is_the_public_versus_confidential_mismatch(app, client, op):
    configure(app, client_id="confidential-basic", client_secret=SECRET)
    op.token_error = (400, {"error": "unauthorized_client"})
    response = SignIn(client, op)()
    assert response.status_code == 502 and b"invalid_client" in response.data
    [attempt] = rows(app)
    assert "unauthorized_client" in attempt.detail and "registered as public" in attempt.detail


def test_the_admins_invalid_client_page_names_the_client_authentication_method(app, admin, op):
    configure(app, client_id="confidential-basic", client_secret="not-the-secret")
    page = SignIn(admin, op)().get_data(as_text=True)
    assert "Public or confidential" in page and "client authentication method" in page
