"""Our pages speak the reader's language when the host uses Flask-Babel, and English when it
does not (issue 17): one gettext domain of our own, complete German and French catalogs, and
compiled .mo files that match them."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from flask import Flask, request
from flask_babel import Babel
from helpers import REDIRECT_URI, SignIn, add_user, configure, local_path, settings_for
from i18n_helpers import (
    LANGUAGES,
    PLACEHOLDER,
    POT,
    TRANSLATIONS,
    english_sentences,
    message_ids,
    page_strings,
    po_path,
    read_catalog,
)
from settings_helpers import csrf_token, page_text, settings_form

from flask_booklore_oidc import i18n
from flask_booklore_oidc.checks import run_checks
from flask_booklore_oidc.config import FIELDS_BY_NAME
from flask_booklore_oidc.errors import ERRORS, OIDCError
from flask_booklore_oidc.settings import Settings
from flask_booklore_oidc.state import current_state
from flask_booklore_oidc.views import sign_in_label, too_many_attempts

ROOT = Path(__file__).resolve().parent.parent
CALLBACK_PATH = "/" + REDIRECT_URI.split("/", 3)[3]


@pytest.fixture
def babel_app(app: Flask) -> Iterator[Flask]:
    """The example app, as a host that uses Flask-Babel and picks the reader's language from
    ``?lang=`` or Accept-Language."""

    def locale() -> str | None:
        return request.args.get("lang") or request.accept_languages.best_match(["en", "de", "fr"])

    Babel(app, locale_selector=locale)
    yield app


def _in(language: str) -> dict[str, str]:
    return {"Accept-Language": language}


# -- with Flask-Babel: the reader's language ------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "title", "advice", "detail"),
    [
        (
            "de",
            "Dieser Anmeldelink ist abgelaufen oder wurde bereits verwendet",
            "Starten Sie die Anmeldung erneut auf der Anmeldeseite.",
            "Die Antwort des Anbieters enthält keinen state-Parameter.",
        ),
        (
            "fr",
            "Ce lien de connexion a expiré ou a déjà été utilisé",
            "Recommencez la connexion depuis la page de connexion.",
            "La réponse du fournisseur ne contient pas de paramètre state.",
        ),
    ],
)
def test_error_page_title_advice_and_detail_are_in_the_admins_language(
    babel_app, admin, language, title, advice, detail
):
    response = admin.get(CALLBACK_PATH, headers=_in(language))
    assert response.status_code == 400
    text = page_text(response)
    assert title in text and advice in text and detail in text
    assert "This sign-in link has expired" not in text


@pytest.mark.parametrize(
    ("language", "heading", "text"),
    [
        (
            "de",
            "Dieser Anmeldelink ist abgelaufen oder wurde bereits verwendet",
            "Starten Sie die Anmeldung erneut auf der Anmeldeseite und schließen Sie sie innerhalb von 10 Minuten",
        ),
        (
            "fr",
            "Ce lien de connexion a expiré ou a déjà été utilisé",
            "Recommencez la connexion depuis la page de connexion et terminez-la en moins de 10 minutes",
        ),
    ],
)
def test_a_readers_error_page_is_in_the_readers_language(babel_app, language, heading, text):
    response = babel_app.test_client().get(CALLBACK_PATH, headers=_in(language))
    assert response.status_code == 400
    shown = page_strings(response.get_data(as_text=True))
    assert heading in shown and text in shown
    assert english_sentences(shown) == []


def test_the_host_locale_selector_decides_per_request(babel_app):
    client = babel_app.test_client()
    assert "Ce lien de connexion a expiré" in page_text(client.get(CALLBACK_PATH + "?lang=fr", headers=_in("de")))
    assert "This sign-in link has expired" in page_text(client.get(CALLBACK_PATH, headers=_in("en")))


def test_a_regional_locale_uses_its_language_and_an_unknown_one_english(babel_app):
    client = babel_app.test_client()
    assert "Dieser Anmeldelink ist abgelaufen" in page_text(client.get(CALLBACK_PATH + "?lang=de_AT"))
    assert "This sign-in link has expired" in page_text(client.get(CALLBACK_PATH + "?lang=es"))


def test_babel_default_locale_applies_when_the_selector_has_no_answer(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "de"
    Babel(app)
    assert "Dieser Anmeldelink ist abgelaufen" in page_text(app.test_client().get(CALLBACK_PATH))


def test_test_connection_labels_and_messages_are_in_german(babel_app):
    with babel_app.test_request_context(headers=_in("de")):
        results = run_checks(Settings(client_id="x"), current_state().transport, REDIRECT_URI)
    assert results[0].label == "Discovery-Dokument erreichbar"
    assert results[0].message == (
        "Geben Sie die Issuer URI ein: die Basis-URL des Anbieters, z. B. https://pocket-id.example.com."
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_line_of_a_full_test_connection_is_translated(babel_app, op, language):
    settings = Settings(**{**settings_for(op), "client_secret": ""})

    def run(language: str) -> list[tuple[str, str, str, str]]:
        with babel_app.test_request_context(headers=_in(language)):
            results = run_checks(settings, current_state().transport, REDIRECT_URI)
        return [(r.key, str(r.status), r.label, r.message) for r in results]

    english, translated = run("en"), run(language)
    assert [r[:2] for r in translated] == [r[:2] for r in english]
    for (key, _, label, message), (_, _, english_label, english_message) in zip(translated, english, strict=True):
        assert label != english_label, key
        assert message != english_message, key
        assert not english_sentences(message), (key, message)


def test_test_connection_json_has_no_english_sentence_in_french(babel_app, admin, op):
    data = settings_form(admin, issuer_uri=op.issuer)
    response = admin.post("/settings/oidc/test", data=data, headers={"Accept": "application/json", **_in("fr")})
    assert response.status_code == 200
    body = response.get_json()
    assert body["checks"][0]["label"] == "Document de découverte accessible"
    assert not english_sentences(json.dumps(body, ensure_ascii=False))


def test_a_settings_validation_message_is_in_german(babel_app):
    with babel_app.test_request_context(headers=_in("de")):
        with pytest.raises(ValueError, match=re.escape("HTTP-Timeout (Sekunden): Zahl erwartet, erhalten: 'soon'.")):
            FIELDS_BY_NAME["http_timeout"].parse("soon")
        with pytest.raises(ValueError, match="Issuer URI muss eine https://-URL sein"):
            FIELDS_BY_NAME["issuer_uri"].parse("http://pocket-id.example.com")


def test_the_settings_page_shows_validation_messages_and_headings_in_french(babel_app, admin):
    data = settings_form(admin, http_timeout="bientôt")
    response = admin.post("/settings/oidc", data=data, headers=_in("fr"))
    assert response.status_code == 400
    text = page_text(response)
    assert "Délai HTTP (secondes) : nombre attendu, reçu 'bientôt'." in text
    assert "Méthodes de connexion" in text and "Session et options avancées" in text


@pytest.mark.parametrize(
    ("language", "label"), [("de", "Anmelden mit Pocket ID"), ("fr", "Se connecter avec Pocket ID")]
)
def test_the_login_button_text_is_in_the_readers_language(babel_app, language, label):
    with babel_app.test_request_context(headers=_in(language)):
        assert sign_in_label("Pocket ID") == label


def test_plural_forms_follow_the_language(babel_app):
    with babel_app.test_request_context(headers=_in("de")):
        assert too_many_attempts(60) == "Zu viele Versuche; versuchen Sie es in 1 Minute erneut."
        assert too_many_attempts(180) == "Zu viele Versuche; versuchen Sie es in 3 Minuten erneut."
    with babel_app.test_request_context(headers=_in("fr")):
        assert too_many_attempts(60) == "Trop de tentatives ; réessayez dans 1 minute."


def test_tables_built_at_import_are_read_in_the_locale_of_the_moment(babel_app):
    title = ERRORS["oidc_disabled"].title
    with babel_app.test_request_context(headers=_in("de")):
        assert str(title) == "Single Sign-On ist nicht aktiviert"
        assert f"{title}" == "Single Sign-On ist nicht aktiviert"
        assert OIDCError("oidc_disabled").title == "Single Sign-On ist nicht aktiviert"
    with babel_app.test_request_context(headers=_in("fr")):
        assert str(title) == "L'authentification unique n'est pas activée"


def test_the_log_stays_english_while_the_page_is_german(babel_app, admin, caplog):
    with caplog.at_level("WARNING", logger="flask_booklore_oidc"):
        response = admin.get(CALLBACK_PATH, headers=_in("de"))
    assert "Die Antwort des Anbieters enthält keinen state-Parameter." in page_text(response)
    assert "invalid_state: The provider's answer carries no state parameter." in caplog.text
    assert "Anbieter" not in caplog.text


def test_a_token_failure_is_explained_in_german(babel_app):
    from flask_booklore_oidc.tokens import read_header

    with babel_app.test_request_context(headers=_in("de")):
        with pytest.raises(OIDCError) as refused:
            read_header("not-a-jwt")
        assert str(refused.value.detail).startswith("Das ID-Token ist kein wohlgeformtes signiertes JWT (")
        assert str(refused.value).startswith("invalid_token: The ID token is not a well-formed signed JWT (")


def test_a_username_problem_is_explained_in_french(babel_app):
    from flask_booklore_oidc.names import username_problem

    with babel_app.test_request_context(headers=_in("fr")):
        assert str(username_problem(" admin")) == "commence ou se termine par un blanc"


def test_a_cached_provider_failure_is_shown_in_each_admins_language(babel_app, admin, op):
    with babel_app.test_request_context():
        babel_app.extensions["booklore_oidc"].save_settings({"issuer_uri": "http://127.0.0.1:9"})
    german = page_text(admin.get("/login/oidc", headers=_in("de")))
    french = page_text(admin.get("/login/oidc", headers=_in("fr")))  # from the failure cache
    where = "http://127.0.0.1:9/.well-known/openid-configuration"
    assert f"Der Discovery-Endpunkt unter {where} ist nicht erreichbar: ConnectionError." in german
    assert f"Impossible de joindre le endpoint de découverte à l'adresse {where} : ConnectionError." in french


# -- the acceptance test of issue 17: the same pages in German hold no English sentence of ours --


def _no_english(response, status: int = 200) -> str:
    """The page's strings, after checking the status and that none of our English is left."""
    page = response.get_data(as_text=True)
    assert response.status_code == status, page
    shown = page_strings(page)
    assert english_sentences(shown) == [], shown
    return " ".join(shown.split())


def _rich_settings(app: Flask, client, op) -> None:
    """A settings page with everything on it: a group mapping row, a linked identity (alice,
    signed in through the provider) and activity rows (that sign-in, a wrong password)."""
    configure(app, auto_provision=True)
    SignIn(app.test_client(), op)()
    page = app.test_client().get("/login?local=true").get_data(as_text=True)
    app.test_client().post("/login", data={"username": "admin", "password": "falsch", "csrf_token": csrf_token(page)})
    token = csrf_token(client.get("/settings/oidc").get_data(as_text=True))
    added = client.post(
        "/settings/oidc/groups",
        data={
            "group-new-csrf_token": token,
            "group-new-group_value": "leser",
            "group-new-description": "Alle Leser",
            "group-new-permissions": ["read"],
        },
    )
    assert added.status_code == 302


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_settings_page_has_no_english_sentence(babel_app, admin, op, language):
    _rich_settings(babel_app, admin, op)
    text = _no_english(admin.get("/settings/oidc?groups=added&saved=1&ended=2", headers=_in(language)))
    assert "leser" in text and "alice" in text  # the row, the identity and the activity are there
    assert ("Letzte Anmeldeaktivität" if language == "de" else "Activité de connexion récente") in text


def _ask(client, page: str, action: str):
    """Press the button of the form posting to ``action`` on ``page`` (the first press asks)."""
    form = re.search(rf'action="{re.escape(action)}">\s*<input[^>]*name="([^"]+)" type="hidden" value="([^"]+)"', page)
    assert form, action
    return client.post(action, data={form.group(1): form.group(2)}, headers=_in("de"))


def test_the_settings_page_asks_before_deleting_and_unlinking_in_german(babel_app, admin, op):
    _rich_settings(babel_app, admin, op)
    page = admin.get("/settings/oidc", headers=_in("de")).get_data(as_text=True)
    [row] = re.findall(r'action="(/settings/oidc/groups/\d+/delete)"', page)
    [identity] = re.findall(r'action="(/settings/oidc/identities/\d+/unlink)"', page)
    assert "Die Zeile für leser löschen?" in _no_english(_ask(admin, page, row))
    unlinking = _ask(admin, page, identity)
    asked = _no_english(unlinking, unlinking.status_code)
    assert "Die Verknüpfung der Identität von alice aufheben?" in asked or "alice hat kein lokales Passwort" in asked


def test_the_login_page_has_no_english_sentence(babel_app):
    client = babel_app.test_client()
    text = _no_english(client.get("/login", headers=_in("de")))
    assert "Anmelden mit Pocket ID" in text and "oder mit Ihrem Passwort anmelden" in text
    _no_english(client.get("/login?logged_out=1", headers=_in("de")))


def test_a_wrong_password_is_answered_in_german(babel_app):
    client = babel_app.test_client()
    page = client.get("/login?local=true", headers=_in("de")).get_data(as_text=True)
    refused = client.post(
        "/login", data={"username": "niemand", "password": "x", "csrf_token": csrf_token(page)}, headers=_in("de")
    )
    _no_english(refused, 401)


def test_the_error_page_has_no_english_sentence_for_readers_and_admins(babel_app, admin):
    _no_english(babel_app.test_client().get(CALLBACK_PATH, headers=_in("de")), 400)
    text = _no_english(admin.get(CALLBACK_PATH, headers=_in("de")), 400)
    assert "Was Sie versuchen können" in text and "Referenz" in text


def test_the_test_sign_in_report_has_no_english_sentence(babel_app, admin, op):
    configure(babel_app, auto_provision=True)
    started = admin.get("/settings/oidc/preview", headers=_in("de"))
    assert started.status_code == 302
    report = admin.get(local_path(op.authorize(started.headers["Location"])), headers=_in("de"))
    text = _no_english(report)
    assert "Test-Anmeldung" in text and "Claim-Zuordnungen" in text


def test_the_link_page_and_its_wrong_password_answer_have_no_english_sentence(babel_app, client, op):
    add_user(babel_app, "admin", is_admin=True, password="admin-pw")
    op.id_token_claims_update = {"preferred_username": "admin"}
    op.userinfo_update = {"preferred_username": "admin"}
    assert SignIn(client, op)().headers["Location"] == "/login/link"
    page = client.get("/login/link", headers=_in("de"))
    text = _no_english(page)
    assert "Wir haben ein vorhandenes Konto namens admin gefunden" in text
    wrong = client.post(
        "/login/link",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "password": "geraten", "submit": "1"},
        headers=_in("de"),
    )
    assert "Falsches Passwort" in _no_english(wrong, wrong.status_code)


def test_the_sign_out_page_has_no_english_sentence(babel_app, admin):
    text = _no_english(admin.get("/logout", headers={"Referer": "http://localhost/account", **_in("de")}))
    assert "Abmelden?" in text and "angemeldet bleiben" in text
    assert "Sie sind abgemeldet" in _no_english(babel_app.test_client().get("/logout", headers=_in("de")))


@pytest.mark.parametrize("language", LANGUAGES)
def test_test_connections_html_fragment_has_no_english_sentence(babel_app, admin, op, language):
    data = settings_form(admin, issuer_uri=op.issuer)
    headers = {"Accept": "text/html", "X-Requested-With": "fetch", **_in(language)}
    response = admin.post("/settings/oidc/test", data=data, headers=headers)
    text = _no_english(response)
    assert ("Discovery-Dokument erreichbar" if language == "de" else "Document de découverte accessible") in text


def test_the_unavailable_page_names_its_language(babel_app):
    with babel_app.test_request_context(headers=_in("de")):
        page = babel_app.jinja_env.get_template("booklore_oidc/unavailable.html").render()
    assert '<html lang="de">' in page and "Kurz nicht verfügbar" in page
    assert english_sentences(page_strings(page)) == []


def test_the_unavailable_page_is_english_when_the_locale_selector_needs_the_database(app):
    from sqlalchemy.exc import OperationalError

    from flask_booklore_oidc.views import render_unavailable

    down = OperationalError("SELECT locale FROM users", {}, ConnectionRefusedError())

    def locale() -> str:
        raise down  # Calibre-Web's selector reads the signed-in user's language from the database

    Babel(app, locale_selector=locale)
    with app.test_request_context(headers=_in("de")):
        response = render_unavailable(down)
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert '<html lang="en">' in page and "Briefly unavailable" in page


def test_the_language_is_the_catalogs_not_the_requested_region(babel_app):
    with babel_app.test_request_context("/?lang=de_AT"):
        assert i18n.language() == "de"
    with babel_app.test_request_context("/?lang=es"):
        assert i18n.language() == "en"


def test_a_value_is_escaped_inside_a_translated_template_message(babel_app):
    with babel_app.test_request_context(headers=_in("de")):
        html = i18n.template_gettext("Password of %(username)s", username="<b>x</b>")
    assert html == "Passwort von &lt;b&gt;x&lt;/b&gt;"


# -- without Flask-Babel, or without a reader: English ---------------------------------------------


def test_without_flask_babel_everything_stays_english(app):
    assert "babel" not in app.extensions
    text = page_text(app.test_client().get(CALLBACK_PATH, headers=_in("de")))
    assert "This sign-in link has expired or was already used" in text
    with app.test_request_context(headers=_in("de")):
        assert sign_in_label("Pocket ID") == "Sign in with Pocket ID"
        assert str(ERRORS["oidc_disabled"].title) == "Single sign-on is not enabled"


def test_without_flask_babel_the_same_pages_are_english(app, admin, op):
    assert "babel" not in app.extensions
    _rich_settings(app, admin, op)
    de = _in("de")
    pages = {
        "settings": admin.get("/settings/oidc", headers=de),
        "login": app.test_client().get("/login", headers=de),
        "error": admin.get(CALLBACK_PATH, headers=de),
        "logout": admin.get("/logout", headers=de),
        "test connection": admin.post(
            "/settings/oidc/test",
            data=settings_form(admin, issuer_uri=op.issuer),
            headers={"Accept": "text/html", "X-Requested-With": "fetch", **de},
        ),
    }
    expected = {
        "settings": "On each sign-in, the rows whose group the user is in are merged.",
        "login": "or sign in with your password",
        "error": "Start the sign-in again from the login page.",
        "logout": "stay signed in",
        "test connection": "Discovery document reachable",
    }
    for name, response in pages.items():
        shown = " ".join(page_strings(response.get_data(as_text=True)).split())
        assert expected[name] in shown, name
    assert english_sentences(page_strings(pages["settings"].get_data(as_text=True)))  # the check finds English


def test_outside_a_request_messages_stay_english_even_with_a_german_default(app):
    app.config["BABEL_DEFAULT_LOCALE"] = "de"
    Babel(app)
    with app.app_context():  # the CLI's situation: no reader, so no reader's language
        assert i18n.gettext("Sign in with %(name)s", name="X") == "Sign in with X"
        assert OIDCError("oidc_disabled").title == "Single sign-on is not enabled"


def test_another_extension_named_babel_is_left_alone(app):
    app.extensions["babel"] = object()  # Flask-BabelEx, say
    with app.test_request_context(headers=_in("de")):
        assert sign_in_label("Pocket ID") == "Sign in with Pocket ID"


def test_lazy_strings_behave_like_the_text_they_stand_for(babel_app):
    lazy = i18n.lazy_gettext("Sign in with %(name)s", name="Pocket ID")
    assert lazy == "Sign in with Pocket ID" and isinstance(lazy, str)
    with babel_app.test_request_context(headers=_in("de")):
        assert lazy == "Anmelden mit Pocket ID"
        assert "%s!" % lazy == "Anmelden mit Pocket ID!"  # noqa: UP031 - %-formatting is what is tested
        assert "» " + lazy == "» Anmelden mit Pocket ID"
        assert lazy + " »" == "Anmelden mit Pocket ID »"
        assert lazy.__html__() == "Anmelden mit Pocket ID"
        assert json.dumps(str(lazy)) == '"Anmelden mit Pocket ID"'
        assert {lazy: 1}["Anmelden mit Pocket ID"] == 1


# -- the catalogs -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation(language):
    template = {m.id for m in read_catalog(POT) if m.id}
    catalog = read_catalog(po_path(language), language)
    translated = {m.id for m in catalog if m.id}
    assert translated == template, "run `make messages` and translate the new entries"
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings), message.id
        assert not message.fuzzy, message.id


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_keeps_the_placeholders(language):
    for message in read_catalog(po_path(language), language):
        if not message.id:
            continue
        english = message.id[-1] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert sorted(PLACEHOLDER.findall(string)) == sorted(PLACEHOLDER.findall(english)), message.id
            # and it formats: no stray % that would break the substitution
            if PLACEHOLDER.search(english) and "%(" in english:
                string % {name: "x" for name in re.findall(r"%\((\w+)\)", english)}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_matches_its_po_file(language):
    catalog = read_catalog(po_path(language), language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    fresh = read_mo(compiled)
    mo = TRANSLATIONS / language / "LC_MESSAGES" / "flask_booklore_oidc.mo"
    with mo.open("rb") as file:
        shipped = read_mo(file)
    assert _messages(shipped) == _messages(fresh), "run `make translations`"


def _messages(catalog: Catalog) -> dict[object, object]:
    """A compiled catalog's messages (a plural's forms come back as lists)."""
    frozen = lambda value: tuple(value) if isinstance(value, list) else value  # noqa: E731
    return {frozen(m.id): frozen(m.string) for m in catalog}


def test_the_template_catalog_lists_every_message_of_the_code():
    method_map, options_map = parse_mapping_cfg(io.StringIO((ROOT / "babel.cfg").read_text()))
    keywords = {
        **DEFAULT_KEYWORDS,
        "lazy_gettext": None,
        "booklore_oidc_gettext": None,
        "booklore_oidc_ngettext": (1, 2),
    }
    found: set[str] = set()
    for folder in ("flask_booklore_oidc", "templates"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map, options_map, keywords=keywords
        ):
            found.update(message if isinstance(message, tuple) else [message])
    assert found == set(message_ids()), "run `make messages`: the .pot differs from the code"
