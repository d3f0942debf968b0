"""Password guesses are throttled (issue 11, SPEC §8): per account name and per client address,
in the database (so across processes and app instances), the admin backdoor and the link-proof
page included; the answer and its timing do not tell whether an account exists or has a
password."""

from __future__ import annotations

import statistics
import time

import pytest
from helpers import add_user, configure, identity_count, me
from settings_helpers import csrf_token
from sqlalchemy import delete, select
from werkzeug.security import generate_password_hash

from example_app.models import User, db
from flask_booklore_oidc import throttle
from flask_booklore_oidc.models import Throttle, utcnow

ADDRESS = {"REMOTE_ADDR": "198.51.100.7"}


def post_login(client, username, password, *, environ=ADDRESS, path="/login"):
    page = client.get("/login?local=true", environ_base=environ)
    return client.post(
        path,
        data={"username": username, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))},
        environ_base=environ,
    )


def fail_times(client, username, count, *, environ=ADDRESS):
    for _ in range(count):
        assert post_login(client, username, "wrong", environ=environ).status_code in (401, 403)


@pytest.fixture
def checks(monkeypatch):
    """Counts the password checks of the example app's users."""
    calls = []
    original = User.check_password

    def counted(self, password):
        calls.append(self.username)
        return original(self, password)

    monkeypatch.setattr(User, "check_password", counted)
    return calls


def clear_throttle(app):
    with app.app_context():
        db.session.execute(delete(Throttle))
        db.session.commit()


# -- the delay --------------------------------------------------------------------------------------


def test_attempts_wait_a_growing_delay_after_five_failures_up_to_fifteen_minutes():
    assert [throttle.delay_after(n, "user") for n in range(4, 10)] == [0, 1, 2, 4, 8, 16]
    assert throttle.delay_after(40, "user") == 15 * 60
    assert throttle.delay_after(19, "ip") == 0 and throttle.delay_after(20, "ip") == 1


def test_keys_are_fixed_length_hashes_that_store_no_name_or_address():
    keys = throttle.keys_for("Admin" * 100, "2001:db8::1")
    assert [len(k.hash) for k in keys] == [64, 64]
    assert throttle.keys_for("ADMIN", None)[0] == throttle.keys_for("admin", None)[0]


# -- local sign-in ----------------------------------------------------------------------------------


def test_after_five_failures_even_the_right_password_waits_and_is_not_checked(app, client, checks):
    add_user(app, "admin", password="admin-pw", is_admin=True)
    fail_times(client, "admin", 5)
    checks.clear()
    response = post_login(client, "admin", "admin-pw")
    assert response.status_code == 429
    assert "Too many attempts; try again in 1 minute." in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert checks == [] and me(client) is None


def test_the_delay_grows_with_each_further_failure(app, client):
    add_user(app, "admin", password="admin-pw")
    fail_times(client, "admin", 5)
    with app.app_context():
        row = db.session.scalar(select(Throttle).where(Throttle.key_hash == throttle.keys_for("admin", None)[0].hash))
        row.locked_until = utcnow()  # the first wait is over
        db.session.commit()
    assert post_login(client, "admin", "wrong").status_code == 401
    response = post_login(client, "admin", "admin-pw")
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"


def test_a_right_password_before_the_limit_ends_the_accounts_streak(app, client):
    add_user(app, "admin", password="admin-pw")
    fail_times(client, "admin", 4)
    assert post_login(client, "admin", "admin-pw").status_code == 302
    client.get("/logout")
    fail_times(app.test_client(), "admin", 4)
    assert post_login(app.test_client(), "admin", "admin-pw").status_code == 302


def test_throttling_holds_across_two_app_instances_sharing_one_database(app, client, restart):
    add_user(app, "admin", password="admin-pw")
    fail_times(client, "admin", 5)
    other = restart()
    response = post_login(other.test_client(), "admin", "admin-pw")
    assert response.status_code == 429
    assert "Too many attempts" in response.get_data(as_text=True)


def test_the_admin_backdoor_is_throttled_in_oidc_only_mode(app, client, checks):
    add_user(app, "admin", password="admin-pw", is_admin=True)
    configure(app, only_mode=True)
    for _ in range(5):
        assert post_login(client, "admin", "wrong").status_code == 403
    checks.clear()
    response = post_login(client, "admin", "admin-pw")
    assert response.status_code == 429 and checks == []
    assert me(client) is None


def test_one_client_address_is_throttled_across_account_names(app, client):
    add_user(app, "somebody")  # the failures cost a check of its (cheap) hash, not of scrypt's
    for n in range(20):
        assert post_login(client, f"nobody-{n}", "wrong").status_code == 401
    assert post_login(client, "someone-else", "wrong").status_code == 429
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    assert post_login(app.test_client(), "someone-else", "wrong", environ=elsewhere).status_code == 401


def test_the_throttled_answer_is_the_same_for_unknown_passwordless_and_password_accounts(app):
    add_user(app, "has-password", password="pw")
    add_user(app, "no-password", password=None)
    answers = []
    for n, name in enumerate(("unknown-name", "no-password", "has-password")):
        environ = {"REMOTE_ADDR": f"192.0.2.{n + 1}"}
        client = app.test_client()
        fail_times(client, name, 5, environ=environ)
        response = post_login(client, name, "wrong", environ=environ)
        answers.append((response.status_code, response.headers.get("Retry-After")))
    assert answers == [(429, "1")] * 3


def test_old_rows_are_purged(app):
    now = utcnow()
    with app.app_context():
        db.session.add(Throttle(key_hash="a" * 64, failures=3, last_failure=now - throttle.FORGET_AFTER * 2))
        db.session.add(Throttle(key_hash="b" * 64, failures=3, last_failure=now))
        db.session.commit()
        throttle.purge(db.session)
        db.session.commit()
        assert list(db.session.scalars(select(Throttle.key_hash))) == ["b" * 64]


# -- timing -------------------------------------------------------------------------------------------


def test_failures_take_as_long_for_unknown_passwordless_and_password_accounts(app):
    """A real hash cost (pbkdf2, 60 000 rounds), so a path that skipped the check would stand out."""
    with app.app_context():
        db.session.add(User(username="has-password", password_hash=generate_password_hash("pw", "pbkdf2:sha256:60000")))
        db.session.add(User(username="no-password", password_hash=None))
        db.session.commit()
    client = app.test_client()
    page = client.get("/login")
    token = csrf_token(page.get_data(as_text=True))
    timings: dict[str, list[float]] = {"unknown-name": [], "no-password": [], "has-password": []}
    for _ in range(15):
        for name, samples in timings.items():
            clear_throttle(app)
            started = time.perf_counter()
            response = client.post("/login", data={"username": name, "password": "wrong", "csrf_token": token})
            samples.append(time.perf_counter() - started)
            assert response.status_code == 401
    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    for a in medians.values():
        for b in medians.values():
            assert 0.5 <= a / b <= 2.0, medians


# -- the link-proof page --------------------------------------------------------------------------


def test_the_link_proof_page_is_throttled_like_local_sign_in(app, client, op, signin, checks):
    add_user(app, "admin", password="admin-pw", is_admin=True)
    op.id_token_claims_update = {"preferred_username": "admin"}
    # Guesses at the local form count for the account, whichever page they came through.
    fail_times(app.test_client(), "admin", 5, environ={"REMOTE_ADDR": "127.0.0.1"})
    assert signin().headers["Location"] == "/login/link"
    page = client.get("/login/link")
    checks.clear()
    response = client.post(
        "/login/link",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "password": "admin-pw", "submit": "1"},
    )
    assert response.status_code == 429 and "Too many attempts" in response.get_data(as_text=True)
    assert checks == [] and me(client) is None and identity_count(app) == 0
