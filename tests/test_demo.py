"""``make demo``: it installs only what the demo needs and says so when its provider dies."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest

from example_app.devprovider import DevProvider

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = [{"client_id": "demo", "client_secret": None, "token_endpoint_auth_method": "none",
            "redirect_uris": ["http://localhost/oauth2-callback"]}]


def test_make_demo_installs_the_package_without_the_test_and_lint_tools():
    makefile = (ROOT / "Makefile").read_text()
    demo_rule = re.search(r"^demo: (.*)$", makefile, re.MULTILINE).group(1)
    assert "$(STAMP)" not in demo_rule.split() and "$(DEMO_STAMP)" in demo_rule.split()
    install = re.search(r"^\$\(DEMO_STAMP\):.*\n\t(.*)\n", makefile, re.MULTILINE).group(1)
    assert install.endswith("pip install --quiet -e .")


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed for the development provider")
def test_the_demo_hears_when_its_provider_dies():
    from livesupport import _free_port, demo_users

    exited = threading.Event()
    codes: list[int | None] = []

    def on_exit(code):
        codes.append(code)
        exited.set()

    port = _free_port()
    provider = DevProvider({"host": "127.0.0.1", "port": port, "issuer": f"http://localhost:{port}",
                            "clients": CLIENTS, "users": demo_users()}, on_exit=on_exit).start()
    try:
        provider._process.kill()
        assert exited.wait(10)
        assert codes and codes[0] != 0
    finally:
        provider.stop()


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed for the development provider")
def test_stopping_the_provider_is_not_reported_as_a_death():
    from livesupport import _free_port, demo_users

    called = []
    port = _free_port()
    provider = DevProvider({"host": "127.0.0.1", "port": port, "issuer": f"http://localhost:{port}",
                            "clients": CLIENTS, "users": demo_users()}, on_exit=called.append).start()
    provider.stop()
    assert called == []
