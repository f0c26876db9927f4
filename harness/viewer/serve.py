"""Start `harness view`: check the store and the port, then serve the app with uvicorn."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from pathlib import Path

from harness.errors import ConfigError, require
from harness.store.db import Store
from harness.viewer.app import create_app

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def check_store(path: Path) -> int:
    """Open the store once read-only (without migrating it): a missing, foreign, damaged or
    too-new store is a StoreError (exit 2) before anything listens. Returns its run count."""
    with Store(path, read_only=True, migrate=False) as store:
        return store.query("SELECT count(*) AS n FROM runs")[0]["n"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one), or exit 2 when the port is taken."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use", hint="pass another --port (or --port 0 for any free one)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="pass another --host or --port") from None
    sock.listen(128)
    return sock


def make_server(store_path: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
    """(uvicorn server, its listening socket, the runs page's URL) for the store: checked and
    bound, not yet serving. Serve with `server.run(sockets=[sock])`; stop with `server.should_exit = True`."""
    require("uvicorn", "harness view", "view")
    import uvicorn

    runs = check_store(store_path)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{actual}/runs"
    log.info("%s: %d runs", store_path, runs)
    server = uvicorn.Server(uvicorn.Config(create_app(store_path), log_level="warning", access_log=False))
    return server, sock, url


def serve(store_path: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT, open_browser: bool = True) -> None:
    """Serve the viewer until interrupted, opening the runs page in the browser once it answers."""
    server, sock, url = make_server(store_path, host, port)
    print(f"harness view: {store_path}, read-only, at {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        def opened() -> None:
            import time
            import webbrowser

            while not server.started:
                time.sleep(0.05)
            webbrowser.open(url)

        threading.Thread(target=opened, daemon=True).start()
    server.run(sockets=[sock])
