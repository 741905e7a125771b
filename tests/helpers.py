"""Small helpers several test modules share (tests/ is on pytest's ``pythonpath``)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from cancelkit.plugins.mirakl.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

#: The repository root (the ``cancelkit`` package).
ROOT = Path(__file__).resolve().parent.parent


def contract_schema(platform: str, filename: str) -> dict[str, Any]:
    """A published contract shipped with a plugin (``plugins/<platform>/contracts/``)."""
    schema: dict[str, Any] = json.loads(
        (ROOT / "plugins" / platform / "contracts" / filename).read_text(encoding="utf-8")
    )
    return schema


def mirakl_token(box: Any) -> dict[str, Any]:
    """A Mirakl sandbox token answer, fetched with the sandbox client's credentials."""
    answer = requests.post(
        f"{box.base_url('mirakl')}/auth/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
        timeout=5,
    )
    assert answer.status_code == 200
    token: dict[str, Any] = answer.json()
    return token


@contextmanager
def serving(server: socketserver.BaseServer, poll: float = 0.02) -> Iterator[str]:
    """Serve ``server`` (bound to loopback) in a thread; yields its ``http://`` URL."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll})
    thread.daemon = True
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, relative ones with their leading dots."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        "." * node.level + (node.module or "")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ]
    found += [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    return found
