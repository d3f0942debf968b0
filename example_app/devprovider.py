"""Start the local development provider (npm ``oidc-provider`` v8, ``devprovider/server.js``)
as a child process, for ``make demo`` and the test suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "devprovider" / "server.js"


class DevProviderError(RuntimeError):
    pass


class DevProvider:
    """``with DevProvider(config) as provider: provider.issuer``: starts the node process, waits
    for its "listening" line, and stops it on exit."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        startup_timeout: float = 30.0,
        on_exit: Callable[[int | None], None] | None = None,
    ) -> None:
        """``on_exit(returncode)`` is called when the provider ends without :meth:`stop` (it
        crashed, or someone killed it), so a long-running demo can say so."""
        self.config = config
        self.on_exit = on_exit
        self._stopping = False
        self.issuer = str(config.get("issuer") or f"http://{config['host']}:{config['port']}")
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._config_file: str | None = None

    def start(self) -> DevProvider:
        node = shutil.which("node")
        if node is None:
            raise DevProviderError("Node.js is needed for the development provider; install node 20.")
        if not (ROOT / "devprovider" / "node_modules" / "oidc-provider").is_dir():
            raise DevProviderError("Run `npm ci --prefix devprovider` first (make demo and make test do).")
        handle, self._config_file = tempfile.mkstemp(prefix="devprovider-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(self.config, out)
        self._process = subprocess.Popen(
            [node, str(SERVER), "--config", self._config_file],
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
        )
        ready = threading.Event()
        lines: list[str] = []
        ready_before_exit = [False]

        def watch() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                lines.append(line)
                if "devprovider listening on" in line:
                    ready.set()
            ready.set()
            process = self._process
            if process is not None and not self._stopping and ready_before_exit[0] and self.on_exit is not None:
                self.on_exit(process.wait())

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(self.startup_timeout) or self._process.poll() is not None:
            self.stop()
            raise DevProviderError("The development provider did not start: " + "".join(lines[-5:]))
        ready_before_exit[0] = True
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
        self._process = None
        if self._config_file:
            Path(self._config_file).unlink(missing_ok=True)
            self._config_file = None

    def __enter__(self) -> DevProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
