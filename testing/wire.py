"""A loopback proxy that records each request exactly as it arrived, byte for byte.

What counts for a path is the request line a server receives, not what
``translate`` shows: an HTTP library may "requote" a URL and turn ``%2E%2E`` back
into ``..``, which a server then collapses. :class:`RecordingProxy` reads the
request line off the socket without parsing the URL, keeps it, and either
forwards the request to the sandbox behind it (so token calls and the emulator's
answers are real) or answers itself (an echo of the request, for the secret
checks). The client under test is pointed at the proxy as if it were the sandbox.
"""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from cancelkit.core.sandbox.emulator import EmuRequest

#: Request headers not passed on as they came: the proxy frames the forwarded request itself.
_HOP_BY_HOP = {"connection", "keep-alive", "content-length", "transfer-encoding", "host"}


@dataclass(frozen=True)
class Received:
    """One request as it arrived: the raw request line, its parts, headers and body."""

    line: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        """The target up to ``?``, still encoded."""
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        """The target after ``?`` (still encoded), or ``""``."""
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    @property
    def segments(self) -> list[str]:
        """The encoded path split on ``/`` (the first item is the empty one before it)."""
        return self.path.split("/")

    def decoded_segments(self) -> tuple[str, ...]:
        """The path as the sandbox reads it: non-empty segments, each decoded on its own."""
        return tuple(unquote(s) for s in self.path.split("/")[1:] if s != "")

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


@dataclass(frozen=True)
class Answer:
    """An answer the proxy sends itself instead of forwarding."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exchange:
    """A request and the answer the client got for it."""

    request: Received
    status: int
    body: bytes


@dataclass
class _State:
    upstream: str
    answer: Callable[[Received], Answer | None]
    url: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingProxy:
    """Serves on a free loopback port; records every request, forwards or answers it.

    ``answer(received)`` returns an :class:`Answer` to send instead of forwarding,
    or None to forward to ``upstream`` (``http://127.0.0.1:PORT``). Forwarded
    answers have every ``upstream`` URL in their body rewritten to the proxy's, so a
    token answer naming the instance URL (Salesforce's) keeps the client on the proxy.
    """

    def __init__(
        self, upstream: str, answer: Callable[[Received], Answer | None] | None = None
    ) -> None:
        self._state = _State(upstream.rstrip("/"), answer or (lambda received: None))
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._state.url

    def take(self) -> list[Exchange]:
        """Every exchange since the last ``take``, in arrival order."""
        with self._state.lock:
            seen, self._state.exchanges = self._state.exchanges, []
        return seen

    def __enter__(self) -> RecordingProxy:
        server = _Server(self._state)
        self._server = server
        host, port = server.server_address[:2]
        self._state.url = f"http://{host!s}:{port}"
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        from cancelkit.core.sandbox.server import read_body

        raw_line = self.rfile.readline(65537)
        if not raw_line:
            return
        headers = http.client.parse_headers(self.rfile)
        try:
            body = read_body(headers, self.rfile)
        except ValueError:
            body = b""
        line = raw_line.rstrip(b"\r\n").decode("latin-1")
        parts = line.split(" ")
        method, target = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
        received = Received(line, method, target, tuple(headers.items()), body)
        state = self.server.state
        if len(parts) != 3:  # a raw space or CRLF in the target: no server would read it
            answer: Answer | None = Answer(400, b"")
        else:
            answer = state.answer(received)
        if answer is None:
            answer = _forward(state.upstream, received)
            answer = Answer(
                answer.status,
                answer.body.replace(state.upstream.encode(), state.url.encode()),
                answer.headers,
            )
        with state.lock:  # recorded before answering: the client never outruns it
            state.exchanges.append(Exchange(received, answer.status, answer.body))
        self.wfile.write(_serialise(answer))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


def _forward(upstream: str, received: Received) -> Answer:
    """Send ``received`` on to ``upstream`` with its request line untouched."""
    address = urlsplit(upstream)
    head = [received.line]
    head += [f"{k}: {v}" for k, v in received.headers if k.lower() not in _HOP_BY_HOP]
    head += [
        f"Host: {address.netloc}",
        f"Content-Length: {len(received.body)}",
        "Connection: close",
    ]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + received.body
    with socket.create_connection((address.hostname, address.port or 80), timeout=30) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=received.method)
        try:
            response.begin()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            return Answer(502, b"")  # the sandbox hung up (an injected reset): pass it on
        kept = tuple(
            (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"date"}
        )
        return Answer(response.status, payload, kept)


def _serialise(answer: Answer) -> bytes:
    reason = http.client.responses.get(answer.status, "Answer")
    head = [f"HTTP/1.1 {answer.status} {reason}"]
    head += [f"{k}: {v}" for k, v in answer.headers]
    head += [f"Content-Length: {len(answer.body)}", "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body


def echo_answer(status: int, received: Received) -> Answer:
    """An answer that repeats the request - every header and the body - back to the client.

    In the body (as an error message, a field error and OAuth's ``error_description``)
    and in headers: what a careless platform or gateway does, and what must never
    carry a credential out of the client.
    """
    headers = "; ".join(f"{k}={v}" for k, v in received.headers)
    echoed = f"{received.line} headers={headers} body={received.body.decode('utf-8', 'replace')}"
    payload = {
        "code": "ECHO",
        "message": echoed,
        "error": "invalid_request",
        "error_description": echoed,
        "errors": [{"code": "ECHO", "message": echoed, "field": echoed}],
    }
    safe = headers.encode("latin-1", "replace").decode("latin-1").replace("\r", " ")
    return Answer(
        status,
        json.dumps(payload).encode(),
        (
            ("Content-Type", "application/json"),
            ("X-Echo-Headers", safe.replace("\n", " ")),
            ("X-Echo-Authorization", received.header("Authorization") or ""),
        ),
    )


def emu_request(received: Received) -> EmuRequest | None:
    """``received`` as the sandbox hands it on (platform prefix kept), or None if unreadable."""
    from cancelkit.core.sandbox.emulator import EmuRequest

    if not received.method:
        return None
    return EmuRequest(
        received.method,
        received.decoded_segments(),
        dict(parse_qsl(received.query)),
        dict(received.headers),
        received.body,
    )


@contextmanager
def proxied(
    upstream: str, answer: Callable[[Received], Answer | None] | None = None
) -> Iterator[RecordingProxy]:
    """A started :class:`RecordingProxy` in front of ``upstream``, stopped afterwards."""
    with RecordingProxy(upstream, answer) as proxy:
        yield proxy
