"""One exception family for every failure of the sign-in (SPEC §10).

Each error is a value with a stable ``code``; the HTTP status, the title shown to the reader and
the troubleshooting advice follow from the code, so a view only says *what* went wrong.
:class:`OIDCError` subclasses :class:`werkzeug.exceptions.HTTPException`. Our routes render it
with ``booklore_oidc/error.html``, unless the host registered ``@app.errorhandler(OIDCError)``:
then the host's handler renders it (after our log line and ``login_failed`` signal).
"""

from __future__ import annotations

import base64
import html
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import quote, quote_plus

from werkzeug.exceptions import HTTPException

from .i18n import lazy_gettext, untranslated

#: every error code of SPEC §10 (and ``account_inactive``, for a host that refuses a sign-in, and
#: ``invalid_username``, for a provider username that cannot be compared exactly, §6)
ErrorCode = Literal[
    "provider_unreachable",
    "issuer_mismatch",
    "invalid_state",
    "invalid_request",
    "provider_error",
    "invalid_client",
    "token_exchange_failed",
    "invalid_token",
    "access_denied_group",
    "user_not_provisioned",
    "invalid_username",
    "account_conflict",
    "account_inactive",
    "local_login_disabled",
    "oidc_disabled",
]


@dataclass(frozen=True)
class ErrorInfo:
    """What follows from an error code: the status, the technical ``title`` and ``advice`` (the
    guide's troubleshooting, for admins and the log), and what a reader is told: ``reader``, what
    to do, under ``reader_title`` (default: ``title``)."""

    status: int
    title: str
    advice: tuple[str, ...]
    reader: str = ""
    reader_title: str = ""

    @property
    def heading_for_readers(self) -> str:
        return self.reader_title or self.title


_REDIRECT_ADVICE = (
    lazy_gettext(
        "The Callback URL registered at the provider must match the Redirect URI shown in the "
        "Provider Configuration Reference panel of the OIDC settings exactly."
    ),
    lazy_gettext(
        "If the provider treats this app as a public client (no secret), make sure Public Client is switched on there."
    ),
    lazy_gettext("Verify the Client ID has no extra spaces."),
)

ERRORS: dict[ErrorCode, ErrorInfo] = {
    "provider_unreachable": ErrorInfo(
        502,
        lazy_gettext("The sign-in provider cannot be reached"),
        (
            lazy_gettext(
                "This server could not reach the provider's discovery endpoint, or the provider did not answer in time."
            ),
            lazy_gettext(
                "If both run in Docker, make sure they are on the same network or that the external "
                "URL is reachable from this app's container."
            ),
            lazy_gettext("Check DNS resolution: can this server resolve the provider's hostname?"),
            lazy_gettext("Check firewall rules between the two services."),
        ),
        reader=lazy_gettext(
            "The sign-in service cannot be reached. Try again in a few minutes; if it keeps happening, ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("Sign-in is not available right now"),
    ),
    "issuer_mismatch": ErrorInfo(
        502,
        lazy_gettext("The provider's issuer does not match the configured Issuer URI"),
        (
            lazy_gettext(
                "Make sure the Issuer URI matches your provider's URL exactly; Test Connection in "
                "the OIDC settings shows the issuer the provider reports."
            ),
            lazy_gettext(
                "A single trailing slash is tolerated; any other difference (http vs https, a path, a port) is not."
            ),
        ),
        reader=lazy_gettext(
            "Sign-in is not set up correctly at the moment. Please ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("Sign-in is not available right now"),
    ),
    "invalid_state": ErrorInfo(
        400,
        lazy_gettext("This sign-in link has expired or was already used"),
        (
            lazy_gettext("Start the sign-in again from the login page."),
            lazy_gettext(
                "Sign-ins must be finished within 10 minutes, in the same browser that started "
                "them, and each one can be used only once."
            ),
        ),
        reader=lazy_gettext(
            "Start the sign-in again from the login page, and finish it within 10 minutes in this browser."
        ),
    ),
    "invalid_request": ErrorInfo(
        400,
        lazy_gettext("This sign-in link is not valid for this app"),
        (
            lazy_gettext("Start the sign-in from this app's login page."),
            lazy_gettext(
                "If the link came from your provider's app dashboard, the Client Launch URL registered "
                "there must be the one shown in the Provider Configuration Reference of the OIDC settings."
            ),
        ),
    ),
    "provider_error": ErrorInfo(
        400,
        lazy_gettext("The provider did not sign you in"),
        _REDIRECT_ADVICE,
        reader=lazy_gettext(
            "Try signing in again. If it keeps happening, ask your administrator for help and quote the code and reference below."
        ),
    ),
    "invalid_client": ErrorInfo(
        502,
        lazy_gettext("The provider does not accept this app's client credentials"),
        (
            lazy_gettext("Double-check the Client ID: copy it fresh from the provider."),
            lazy_gettext("Make sure the Issuer URI matches your provider's URL exactly."),
            lazy_gettext(
                "Public or confidential: a Client Secret set here for a client the provider registered as "
                "public (Pocket ID: Public Client on) is refused, because the client authentication method "
                "differs. Remove the secret here, or make the client confidential at the provider."
            ),
            lazy_gettext(
                "For a confidential client, re-enter the Client Secret; for a public client, leave "
                "it empty and switch Public Client on at the provider."
            ),
        ),
        reader=lazy_gettext(
            "Sign-in is not set up correctly at the moment. Please ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("Sign-in is not available right now"),
    ),
    "token_exchange_failed": ErrorInfo(
        502,
        lazy_gettext("The provider refused to complete the sign-in"),
        (*_REDIRECT_ADVICE, lazy_gettext("Make sure the clocks of this server and the provider are correct.")),
        reader=lazy_gettext(
            "Try signing in again. If it keeps happening, ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("Sign-in could not be completed"),
    ),
    "invalid_token": ErrorInfo(
        401,
        lazy_gettext("The provider's answer could not be verified"),
        (
            lazy_gettext("The identity token failed a security check, so nobody was signed in."),
            lazy_gettext(
                "Make sure the Issuer URI and Client ID match the provider exactly, and that the "
                "clocks of this server and the provider are correct."
            ),
            lazy_gettext("If the provider recently changed its signing keys, try again in a minute."),
        ),
        reader=lazy_gettext(
            "Try signing in again in a minute. If it keeps happening, ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("Sign-in could not be completed"),
    ),
    "access_denied_group": ErrorInfo(
        403,
        lazy_gettext("Your account is not allowed to use this app"),
        (
            lazy_gettext(
                "Only members of the allowed groups may sign in. Ask an administrator to add you to "
                "one of them at the provider."
            ),
        ),
        reader=lazy_gettext(
            "Your account is not in a group that may use this app. If you should have access, ask your administrator for help and quote the code and reference below."
        ),
    ),
    "user_not_provisioned": ErrorInfo(
        403,
        lazy_gettext("User not provisioned"),
        (
            lazy_gettext(
                "Auto-provisioning is off by default. Either enable it in the OIDC settings, or "
                "create a user here whose username exactly matches the provider's username "
                "(case-sensitive)."
            ),
        ),
        reader=lazy_gettext(
            "There is no account here for you yet. Please ask your administrator for help and quote the code and reference below."
        ),
        reader_title=lazy_gettext("You have no account here yet"),
    ),
    "invalid_username": ErrorInfo(
        403,
        lazy_gettext("The provider's username cannot be used here"),
        (
            lazy_gettext(
                "Usernames are compared exactly: a username that starts or ends with a space, or "
                "contains a tab, a line break or another invisible character, is refused rather "
                "than trimmed, so it cannot be mistaken for another account's name."
            ),
            lazy_gettext("Change the username at the provider (or ask its administrator to), then sign in again."),
        ),
    ),
    "account_conflict": ErrorInfo(
        409,
        lazy_gettext("This account conflicts with an existing one"),
        (
            lazy_gettext(
                "An existing account uses the same username or email, or a name that looks like it, "
                "or is already linked to another identity at this provider. An administrator can "
                "unlink or rename it."
            ),
            lazy_gettext(
                "An administrator account is never linked automatically: an administrator links it "
                "to the provider's user (flask booklore-oidc link)."
            ),
        ),
        reader=lazy_gettext(
            "Your sign-in matches an account that is already in use. Please ask your administrator for help and quote the code and reference below."
        ),
    ),
    "account_inactive": ErrorInfo(
        403,
        lazy_gettext("This account is not active"),
        (
            lazy_gettext(
                "The provider signed you in, but this app does not let this account in: it may be "
                "disabled or waiting for approval. Ask an administrator to activate it."
            ),
        ),
        reader=lazy_gettext(
            "Your account is disabled or waiting for approval. Please ask your administrator for help and quote the code and reference below."
        ),
    ),
    "local_login_disabled": ErrorInfo(
        403,
        lazy_gettext("Local sign-in is disabled"),
        (lazy_gettext("Use the sign-in button of your provider."),),
        reader=lazy_gettext("Use the sign-in button on the login page."),
    ),
    "oidc_disabled": ErrorInfo(
        404,
        lazy_gettext("Single sign-on is not enabled"),
        (
            lazy_gettext(
                "OIDC Login is switched off (or FORCE_DISABLE_OIDC is set), or the provider is not "
                "configured yet. Sign in with your username and password."
            ),
        ),
        reader=lazy_gettext("Sign in with your username and password on the login page."),
    ),
}


class OIDCError(HTTPException):
    """A failed sign-in step. ``code`` is one of :data:`ERRORS`; ``detail`` says what happened.

    ``title``, ``advice`` and a ``detail`` made with :func:`~.i18n.lazy_gettext` are rendered in
    the reader's language; ``str(error)``, what the log shows, stays English.

    >>> raise OIDCError("user_not_provisioned", "No account for 'alice'.")
    """

    #: who was signing in, when known (for the activity list; set by the sign-in service)
    username: str = ""
    subject: str = ""
    #: the activity list's reference of this failure, once the error page recorded it
    reference: str = ""

    def __init__(self, error_code: ErrorCode, detail: str = "") -> None:
        info = ERRORS[error_code]
        self.info = info
        self.error_code = error_code
        self.code = info.status
        # Lazy: rendered in the locale of the page that shows them.
        self.title = info.title
        self.advice = info.advice
        self.detail = detail
        super().__init__(description=detail or self.title)

    def __str__(self) -> str:
        return f"{self.error_code}: {untranslated(self.detail or self.title)}"


assert set(get_args(ErrorCode)) == set(ERRORS), "every error code has its entry in ERRORS"

#: how much of a provider's own description we show, at most
MAX_PROVIDER_TEXT = 300
#: an OAuth error code we are willing to repeat (RFC 6749 §5.2 codes are all of this shape)
ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def error_code(value: object) -> str | None:
    """``value`` if it looks like an OAuth error code (a short token), else None: the only text
    of a provider's error body we repeat verbatim."""
    return value if isinstance(value, str) and ERROR_CODE.fullmatch(value) else None


def secret_forms(secret: str, client_id: str = "") -> list[str]:
    """Every form in which ``secret`` may come back from a provider that echoes our request:
    plain, form-encoded (``quote_plus``, ``quote``), HTML-escaped, and inside HTTP Basic
    credentials (base64 of ``id:secret``, with and without RFC 6749 §2.3.1 form-encoding,
    standard and URL-safe alphabet, with and without padding). Longest first."""
    if not secret:
        return []
    forms = {secret, quote_plus(secret, safe=""), quote(secret, safe=""), quote(secret), html.escape(secret)}
    for user, password in ((client_id, secret), (quote_plus(client_id, safe=""), quote_plus(secret, safe=""))):
        pair = f"{user}:{password}".encode()
        for encoded in (base64.b64encode(pair), base64.urlsafe_b64encode(pair)):
            text = encoded.decode("ascii")
            forms.update({text, text.rstrip("=")})
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secret: str, client_id: str = "") -> str:
    """A provider's text made fit to show: control and format characters removed (first, so
    they cannot hide the secret), the secret replaced by ``[secret]`` in every form of
    :func:`secret_forms` (case-insensitively), whitespace collapsed, at most
    :data:`MAX_PROVIDER_TEXT` characters.

    >>> scrub("bad secret s3cr%21t\\x07", "s3cr!t")
    'bad secret [secret]'
    """
    text = "".join(
        " " if ch in "\t\n\r\v\f" else ch for ch in text if ch in "\t\n\r\v\f" or unicodedata.category(ch)[0] != "C"
    )
    for form in secret_forms(secret, client_id):
        text = re.sub(re.escape(form), "[secret]", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    if len(text) > MAX_PROVIDER_TEXT:
        text = text[: MAX_PROVIDER_TEXT - 1].rstrip() + "…"
    return text
