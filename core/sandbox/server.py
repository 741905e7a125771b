"""The sandbox HTTP server: routes ``/<platform>/...`` to emulators, injects faults.

Faults are queued, in-process with :meth:`Sandbox.inject` or over HTTP with
``POST /_sandbox/faults {"kind": "429", "platform": "mirakl", "count": 1}``, and
hit the next matching API requests (token endpoints are left alone; ``after: N``
lets N matching requests through first, to fail a later step of a cancellation
that takes several calls):

=========  ==============================================================
kind       what the client gets
=========  ==============================================================
429        429 with ``Retry-After: <retry_after>`` (not processed; no header
           when ``retry_after`` is None)
503        503 with ``Retry-After: <retry_after>`` (not processed)
500        500 with a JSON error body (not processed)
401        401: the token is treated as expired (not processed)
quota      the platform's daily/API quota is spent (not processed; only where
           the emulator declares it, e.g. Salesforce's 403)
redirect   302 to ``Location: <base>/moved/...`` (not processed)
slow       the request IS processed, then the answer waits ``delay`` seconds
           (by default longer than a sandbox client's read timeout)
html       the request IS processed, the answer is an HTML error page (502)
malformed  the request IS processed, the answer is truncated JSON (200)
empty      the request IS processed, the answer is a 200 with no body
partial    the request IS processed, half the answer arrives, then the
           connection closes
reset      the request IS processed, the connection closes without an answer
=========  ==============================================================

Time: emulators see the sandbox clock (``EmuRequest.now``), wall-clock time plus
whatever :meth:`Sandbox.advance` or ``POST /_sandbox/clock {"advance": 60}`` added,
so asynchronous work finishes after the time the platform would take.

A fault aimed at a platform names the plugin platform (``salesforce-flow`` hits
the Salesforce emulator); one that cannot apply there is refused with ValueError.

``POST /_sandbox/reset`` restores every emulator's seeded demo data, clears the
queued faults and undoes ``advance``; ``GET /_sandbox`` lists every platform's
client settings and the fault kinds. Request bodies are read by
``Content-Length`` or ``Transfer-Encoding: chunked`` (what requests sends for a
generator body); one that cannot be framed gets a 400 and the connection closes.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigurationError
from .emulator import Emulator, EmuRequest, EmuResponse
from .faults import FAULT_KINDS, REFUSING_KINDS, Fault
from .isolation import SandboxConfig
from .refusal import Refusal
from .state import StateFile

CONTROL_PREFIX = "_sandbox"


class _Server(ThreadingHTTPServer):
    """A threading HTTP server whose listen queue holds a bulk run's connections: the
    default (5) refused some under ``--concurrency 64``, which read as unknown outcomes."""

    request_queue_size = 128


#: The most one advance may move the clock (a year): beyond, timestamps lose their
#: seconds to float rounding and pending work could never finish.
MAX_ADVANCE = 365 * 24 * 3600.0


class Sandbox:
    """Serves every registered emulator on one loopback port, in a background thread."""

    def __init__(
        self,
        emulators: Iterable[Emulator],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: Path | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.emulators = {e.platform: e for e in emulators}
        self._host, self._port = host, port
        self._state = StateFile(state_path) if state_path else None
        self._log = log
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Wall-clock time (not monotonic): the state file carries timestamps between
        # processes, and `send` then a later `status` must see the time in between.
        self._clock = clock
        self._offset = 0.0
        #: Requests answered since start or reset: numbers the request ids.
        self._served = 0
        #: Temporary folder of the ledger of a sandbox without a state file.
        self._scratch: str | None = None

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> Sandbox:
        """Load saved state (if any), bind, and serve in a daemon thread."""
        self._load_state()
        self._server = _Server((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval keeps stop() (and every test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; state changed outside requests is saved (if a state file was given)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            self._save_state()
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def serve_forever(self, ready: Callable[[], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (``cancelkit sandbox``).

        ``ready`` is called once the port is bound, before the first request is
        served: :attr:`url` then names the port actually bound (the one picked when
        ``port`` was 0). Clients that connect meanwhile wait in the listen queue.
        """
        self._load_state()
        self._server = _Server((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        try:
            if ready is not None:
                ready()
            self._server.serve_forever()
        finally:
            # Not stop(): its shutdown() waits for a serve_forever loop to end, and in
            # this thread none runs any more - or never ran, when Ctrl-C or SIGTERM came
            # during ``ready`` - so it would wait forever.
            self._server.server_close()
            self._server = None
            self.stop()  # saves the state

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "sandbox not started"
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def base_url(self, platform: str) -> str:
        """Where ``platform``'s emulator is served."""
        return f"{self.url}/{platform}"

    def client_config(self) -> SandboxConfig:
        """Settings for every emulated platform, ready for ``Client(config=...)``.

        A client given this config is a sandbox client: it ignores every other
        source of settings and reaches loopback hosts only.
        """
        config = SandboxConfig(
            {p: e.client_settings(self.base_url(p)) for p, e in self.emulators.items()}
        )
        config.ledger_url = self.ledger_url
        return config

    @property
    def ledger_url(self) -> str:
        """The sandbox's own ledger: beside the state file, else in a temporary folder
        removed when the sandbox stops (each in-memory sandbox starts with an empty one)."""
        from ..ledger.location import sandbox_ledger_path, sqlite_url

        if self._state is not None:
            return sqlite_url(sandbox_ledger_path(self._state.path))
        if self._scratch is None:
            import tempfile

            self._scratch = tempfile.mkdtemp(prefix="cancelkit-sandbox-ledger-")
        return sqlite_url(Path(self._scratch) / "ledger.sqlite3")

    def emulator_for(self, platform: str) -> Emulator:
        """The emulator that answers for plugin ``platform``; ValueError if none does."""
        for emulator in self.emulators.values():
            if platform in emulator.platforms():
                return emulator
        known = sorted(p for e in self.emulators.values() for p in e.platforms())
        raise ValueError(f"the sandbox emulates no {platform!r}; it emulates {', '.join(known)}")

    # -- time -------------------------------------------------------------
    def now(self) -> float:
        """The sandbox clock: ``clock()`` plus every :meth:`advance` so far."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox clock on by ``seconds`` (pending actions may finish)."""
        if not (0 <= seconds <= MAX_ADVANCE):  # also refuses nan
            raise ValueError(f"advance takes 0 to {MAX_ADVANCE:g} seconds, not {seconds!r}")
        self._offset += seconds

    # -- faults and state ---------------------------------------------------
    def inject(self, kind: str, platform: str | None = None, **params: Any) -> None:
        """Queue a fault (see the module docstring for the kinds).

        ``platform`` is a plugin platform (``salesforce-flow`` hits the Salesforce
        emulator) or None for any. Raises ValueError for a fault that cannot apply:
        an unknown kind, a platform the sandbox does not emulate, or a kind that
        platform's emulator does not produce.
        """
        fault = Fault(kind, platform, **params)
        targets = [self.emulator_for(platform)] if platform else list(self.emulators.values())
        for emulator in targets:
            if kind not in emulator.faults:
                raise ValueError(
                    f"fault {kind!r} does not apply to {platform or emulator.platform}; "
                    f"it takes: {', '.join(emulator.faults)}"
                )
        # Queued under the emulator's prefix, which is what dispatch matches on.
        prefix = targets[0].platform if platform else None
        self._faults.append(replace(fault, platform=prefix))

    def reset(self) -> None:
        """Every emulator back to its seeded demo data; faults cleared; the clock's
        :meth:`advance` undone (so each recorded scenario starts at the same time)."""
        with self._lock:
            self._faults.clear()
            self._offset = 0.0
            self._served = 0  # so each recorded scenario gets the same request ids
            for emulator in self.emulators.values():
                emulator.reset()
            self._save_state()
        self._clear_ledger()

    def _clear_ledger(self) -> None:
        """Forget the sandbox ledger's sends: the seeded orders are back, uncancelled."""
        from ..ledger.location import sandbox_ledger_path

        if self._state is not None:
            clear_ledger_file(sandbox_ledger_path(self._state.path))
        elif self._scratch is not None:
            clear_ledger_file(Path(self._scratch) / "ledger.sqlite3")

    def _take_fault(self, platform: str) -> Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.platform in (None, platform):
                if fault.after > 0:  # this request passes; the fault waits for a later one
                    self._faults[index] = replace(fault, after=fault.after - 1)
                    return None
                self._faults.remove(fault)
                if fault.count > 1:
                    self._faults.appendleft(replace(fault, count=fault.count - 1))
                return fault
        return None

    def _load_state(self) -> None:
        # At start: a corrupt file raises ConfigurationError here, before serving.
        if self._state is not None:
            with self._state.locked():
                if not self._state.path.exists():  # seeded orders: their sends are forgotten
                    self._clear_ledger()
                self._state.load(self.emulators)

    def _save_state(self) -> None:
        # Every request saves already; this catches changes made outside requests
        # (reset, a caller editing an emulator) and writes nothing otherwise.
        if self._state is not None:
            with self._state.locked():
                self._state.save(self.emulators)

    @contextmanager
    def _state_synced(self) -> Iterator[None]:
        """Around one request: the file's latest state in, the new state out, under its lock.

        Other processes share the file, so the state loaded at start may be stale by
        now; without a state file this does nothing.
        """
        if self._state is None:
            yield
            return
        with self._state.locked():
            self._state.load(self.emulators)
            yield
            self._state.save(self.emulators)

    # -- dispatch -----------------------------------------------------------
    def dispatch(self, request: EmuRequest) -> tuple[EmuResponse, float]:
        """Answer one request; returns the answer and how long to hold it back.

        Every answer of an emulator, an injected fault's included, carries its
        ``request_id_header``, as a platform's gateway stamps every answer.
        """
        response, delay = self._dispatch(request)
        emulator = self.emulators.get(request.segments[0]) if request.segments else None
        header = emulator.request_id_header if emulator is not None else None
        if emulator is None or header is None or header in response.headers:
            return response, delay
        with self._lock:
            self._served += 1
            serial = self._served
        request_id = emulator.request_id(self.now(), serial)
        return replace(response, headers={**response.headers, header: request_id}), delay

    def _dispatch(self, request: EmuRequest) -> tuple[EmuResponse, float]:
        if not request.segments:
            return _not_found(), 0.0
        head, rest = request.segments[0], request.segments[1:]
        sub = replace(request, segments=rest, base_url=f"{self.url}/{head}", now=self.now())
        if head == CONTROL_PREFIX:
            return self._control(sub), 0.0
        emulator = self.emulators.get(head)
        if emulator is None:
            return _not_found(), 0.0
        fault = None if emulator.is_token_request(sub) else self._take_fault(head)
        if fault and fault.kind in REFUSING_KINDS:
            return emulator.fault_response(fault) or _refusal(fault, sub), 0.0
        try:
            with self._lock, self._state_synced():
                try:
                    response = emulator.handle(sub)
                except Refusal as refusal:  # inside: what changed before the refusal is saved
                    response = refusal.response
        except ConfigurationError as error:  # the state file went bad while serving
            response = EmuResponse.json(500, {"code": "SANDBOX_STATE", "message": str(error)})
        if fault is None:
            return response, 0.0
        if fault.kind == "slow":
            return response, fault.delay
        return _spoiled(fault.kind, response), 0.0

    def _control(self, request: EmuRequest) -> EmuResponse:
        if request.segments == ("faults",) and request.method == "POST":
            try:
                spec = request.json()
                self.inject(**spec)
            except (ValueError, TypeError) as error:
                return EmuResponse.json(400, {"message": str(error)})
            return EmuResponse.json(201, {"queued": [asdict(f) for f in self._faults]})
        if request.segments == ("clock",) and request.method == "POST":
            try:
                self.advance(float(request.json()["advance"]))
            except (ValueError, TypeError, KeyError) as error:
                return EmuResponse.json(400, {"message": f"advance: {error}"})
            return EmuResponse.json(200, {"now": self.now()})
        if request.segments == ("reset",) and request.method == "POST":
            self.reset()
            return EmuResponse.json(200, {"reset": sorted(self.emulators)})
        if request.segments == () and request.method == "GET":
            return EmuResponse.json(
                200, {"platforms": self.client_config(), "faults": list(FAULT_KINDS)}
            )
        return _not_found()


def clear_ledger_file(path: Path) -> None:
    """Empty the sandbox ledger at ``path``; remove it when it cannot be read (corrupt)."""
    if not path.exists():
        return
    from ...errors import ConfigurationError
    from ..ledger.location import sqlite_url
    from ..ledger.store import Ledger

    try:
        with Ledger(sqlite_url(path)) as ledger:
            ledger.clear()
    except ConfigurationError:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def _refusal(fault: Fault, request: EmuRequest) -> EmuResponse:
    retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if fault.kind in ("429", "503"):
        return EmuResponse.json(
            int(fault.kind),
            {
                "code": "TOO_MANY_REQUEST" if fault.kind == "429" else "UNAVAILABLE",
                "message": "sandbox fault",
            },
            retry,
        )
    if fault.kind == "401":
        return EmuResponse.json(401, {"code": "UNAUTHORIZED", "message": "token expired"})
    if fault.kind == "quota":
        return EmuResponse.json(429, {"code": "QUOTA_EXCEEDED", "message": "sandbox fault"}, retry)
    if fault.kind == "redirect":
        moved = f"{request.base_url}/moved/{'/'.join(request.segments)}"
        return EmuResponse(302, b"", {"Location": moved})
    return EmuResponse.json(500, {"code": "UNEXPECTED", "message": "sandbox fault"})


def _spoiled(kind: str, response: EmuResponse) -> EmuResponse:
    """The processed request's answer, spoiled the way fault ``kind`` says."""
    if kind == "html":
        return EmuResponse(502, _HTML, {"Content-Type": "text/html"})
    if kind == "empty":
        return EmuResponse(200, b"", {"Content-Type": "application/json"})
    if kind in ("partial", "reset"):
        return EmuResponse(response.status, response.body, response.headers, cut=kind)
    return EmuResponse(200, b'{"action_id": "trunc', {"Content-Type": "application/json"})


def _not_found() -> EmuResponse:
    return EmuResponse.json(404, {"code": "NOT_FOUND", "message": "no such sandbox route"})


_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


#: The largest request body the sandbox reads (no platform call comes close).
MAX_BODY = 16 * 1024 * 1024
#: The longest chunk-size or trailer line of a chunked body, and how many trailers.
_MAX_LINE, _MAX_TRAILERS = 4096, 100
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Readable(Protocol):
    """What the body readers need of a stream (a socket file, ``io.BytesIO``)."""

    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


def read_body(headers: Message, stream: Readable) -> bytes:
    """The request body, framed by ``Transfer-Encoding: chunked`` or ``Content-Length``.

    requests sends a generator or file-like body of unknown length chunked, so
    reading ``Content-Length`` alone would see an empty body. Raises ValueError
    (the server answers 400 and closes) for a body it cannot frame.
    """
    encoding = headers.get("Transfer-Encoding")
    if encoding:  # it wins over Content-Length (RFC 9112, 6.3)
        codings = [c.strip().lower() for c in encoding.split(",")]
        if codings != ["chunked"]:
            raise ValueError(f"Transfer-Encoding {encoding!r} is not supported; use chunked")
        return read_chunked(stream)
    text = headers.get("Content-Length") or "0"
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"Content-Length {text!r} is not a number")
    length = int(text)
    if length > MAX_BODY:
        raise ValueError(f"larger than {MAX_BODY} bytes")
    body = stream.read(length) if length else b""
    if len(body) < length:
        raise ValueError(f"cut short: {len(body)} of {length} bytes")
    return body


def read_chunked(stream: Readable, limit: int = MAX_BODY) -> bytes:
    """Decode a chunked body (RFC 9112, 7.1): sizes in hex, extensions and trailers ignored."""
    body = bytearray()
    while True:
        line = stream.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE or not line.endswith(b"\n"):
            raise ValueError("chunk size line cut short or too long")
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise ValueError(f"chunk size {size_text[:40]!r} is not hexadecimal")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise ValueError(f"larger than {limit} bytes")
        chunk = stream.read(size)
        if len(chunk) < size:
            raise ValueError(f"chunk cut short: {len(chunk)} of {size} bytes")
        body += chunk
        if stream.readline(3) not in (b"\r\n", b"\n"):
            raise ValueError("chunk data not followed by CRLF")
    for _ in range(_MAX_TRAILERS):  # the trailer section ends with an empty line
        line = stream.readline(_MAX_LINE + 1)
        if line in (b"\r\n", b"\n", b""):
            return bytes(body)
        if len(line) > _MAX_LINE:
            raise ValueError("trailer line too long")
    raise ValueError(f"more than {_MAX_TRAILERS} trailer fields")


def _handler_for(sandbox: Sandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's
            # algorithm and delayed ACKs add ~40 ms to every keep-alive answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def version_string(self) -> str:
            return "cancelkit-sandbox"

        def _serve(self) -> None:
            url = urlsplit(self.path)
            # Decode each segment on its own: "%2F" inside an id must not split it.
            segments = tuple(unquote(s) for s in url.path.split("/")[1:] if s != "")
            try:
                body = read_body(self.headers, self.rfile)
            except ValueError as error:
                # The stream cannot be framed any more: answer, then hang up.
                self.close_connection = True
                if sandbox._log:
                    sandbox._log(f"{self.command} {self.path} -> 400 ({error})")
                refusal = {"code": "BAD_REQUEST", "message": f"request body: {error}"}
                self._answer(
                    EmuResponse.json(400, refusal, {"Connection": "close"}), response_body=None
                )
                return
            request = EmuRequest(
                self.command,
                segments,
                dict(parse_qsl(url.query)),
                dict(self.headers.items()),
                body,
            )
            response, delay = sandbox.dispatch(request)
            if sandbox._log:  # before answering, so a client never outruns the log
                sandbox._log(f"{self.command} {self.path} -> {response.status}")
            if delay:
                time.sleep(delay)
            if response.cut == "reset":  # processed, then the connection drops
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = response.body
            if response.cut == "partial":  # promise the whole body, send half, hang up
                self.close_connection = True
                body = body[: len(body) // 2]
            self._answer(response, response_body=body)

        def _answer(self, response: EmuResponse, *, response_body: bytes | None) -> None:
            """Send ``response``; ``response_body`` (None: the whole body) may be cut short."""
            try:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body if response_body is None else response_body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a "slow" fault): that is the point

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def date_time_string(self, timestamp: float | None = None) -> str:
            # A fixed Date keeps recorded cassettes identical run to run.
            return "Thu, 01 Jan 2026 00:00:00 GMT"

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
