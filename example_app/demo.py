"""``make demo``: the example library with a local development provider already configured as
Pocket ID would be in the guide: a public client with PKCE. Ctrl-C stops both."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from .devprovider import DevProvider, DevProviderError

APP_PORT = int(os.environ.get("DEMO_PORT", "5000"))
PROVIDER_PORT = int(os.environ.get("DEMO_PROVIDER_PORT", "9000"))
APP_URL = f"http://localhost:{APP_PORT}"
ISSUER = f"http://localhost:{PROVIDER_PORT}"
CLIENT_ID = "booklore-demo"

#: (username, password, display name, groups)
DEMO_USERS = [
    ("reader", "reader", "Rita Reader", ["readers"]),
    ("uploader", "uploader", "Uli Uploader", ["readers", "uploaders"]),
    ("librarian", "librarian", "Lara Librarian", ["readers", "library-admins"]),
]


def provider_config() -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": PROVIDER_PORT,
        "issuer": ISSUER,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": None,
                "token_endpoint_auth_method": "none",
                "redirect_uris": [f"{APP_URL}/oauth2-callback"],
                "post_logout_redirect_uris": [f"{APP_URL}/login?logged_out=1"],
                "backchannel_logout_uri": f"{APP_URL}/oauth2-backchannel-logout",
            }
        ],
        "users": [
            {
                "sub": f"demo-{name}",
                "username": name,
                "password": password,
                "email": f"{name}@example.com",
                "email_verified": True,
                "name": display,
                "groups": groups,
            }
            for name, password, display, groups in DEMO_USERS
        ],
        "groups_in_id_token": True,
    }


def configure_demo(app: object) -> None:
    """Store the guide's setup in the database, as an admin would on the settings page, with
    group mapping rows that show the feature."""
    from flask import Flask

    from flask_booklore_oidc import MappingRow

    from . import oidc
    from .models import Library, db
    from .seed import seed_demo

    assert isinstance(app, Flask)
    with app.test_request_context(base_url=APP_URL):
        seed_demo()
        library = {lib.name: str(lib.id) for lib in db.session.query(Library)}
        oidc.save_settings(
            {
                "enabled": True,
                "provider_name": "Pocket ID (demo)",
                "client_id": CLIENT_ID,
                "issuer_uri": ISSUER,
                "auto_provision": True,
                "default_permissions": ["read"],
                "default_libraries": [library["Fiction"]],
                "group_sync": "replace",
                "public_url": APP_URL,
            }
        )
        rows = [
            (
                "readers",
                "Everyone who reads",
                False,
                ["read", "download", "koreader_sync", "kobo_sync"],
                ["Fiction", "Poetry"],
            ),
            ("uploaders", "May add books", False, ["upload", "edit_metadata"], ["Science"]),
            (
                "library-admins",
                "Runs the library",
                True,
                ["manage_library", "delete_book"],
                ["Fiction", "Science", "Poetry"],
            ),
        ]
        for group, description, admin, permissions, libraries in rows:
            oidc.save_group_mapping(
                MappingRow(
                    group,
                    description,
                    admin,
                    frozenset(permissions),
                    frozenset(library[name] for name in libraries),
                )
            )


def main() -> int:
    from . import create_app

    def provider_died(returncode: int | None) -> None:
        print(
            f"\ndemo: the development provider at {ISSUER} stopped (exit code {returncode}): signing in "
            "with it fails until you restart `make demo`. Local sign-in still works (/login?local=true).\n",
            file=sys.stderr,
            flush=True,
        )

    try:
        provider = DevProvider(provider_config(), on_exit=provider_died).start()
    except DevProviderError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    try:
        # The demo starts from a fresh database each time, so it always shows the guide's setup.
        database = Path(__file__).resolve().parent.parent / "instance" / "demo.sqlite"
        database.parent.mkdir(exist_ok=True)
        database.unlink(missing_ok=True)
        # A fresh key per run, like the fresh database: nothing the demo signs outlives it.
        secret_key = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32)
        app = create_app({"SECRET_KEY": secret_key, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
        configure_demo(app)
        users = "\n".join(
            f"      {name:<10} password {pw:<10} groups: {', '.join(groups)}" for name, pw, _, groups in DEMO_USERS
        )
        print(
            f"""
  Example Library with flask-booklore-oidc
  ----------------------------------------
  Open {APP_URL}/ and click "Sign in with Pocket ID (demo)".

  Demo provider users ({ISSUER}):
{users}
  Local admin (for /login?local=true and the OIDC settings at {APP_URL}/settings/oidc):
      admin      password admin

  Press Ctrl-C to stop the app and the provider.
""",
            flush=True,
        )
        app.run(host="localhost", port=APP_PORT, debug=False, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
