"""No id changes the path on the wire (issue 8, item 5): core's part.

``translate`` shows ids percent-encoded, but what counts is the request line the
server receives: requests "requotes" a URL and turns ``%2E%2E`` back into ``..``,
which a server then collapses. Every platform's ids, against every hostile id,
are checked by the conformance suite (tests/test_conformance.py,
``test_every_path_id_arrives_as_one_segment``). Here, core's own guard: a raw
loopback server records the request line byte for byte; a non-ASCII base URL
keeps each platform's ids in place; ``wire.prepare`` and ``wire.check_url`` keep
the adapter's encoding and refuse raw dot segments; a plugin that does not encode
its ids is stopped before anything is sent.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests
from helpers import serving

from cancelkit import HttpCall, PluginRegistry, hookimpl
from cancelkit.core import jsonutil, wire
from cancelkit.core.adapter import PlatformAdapter
from cancelkit.core.client import Client
from cancelkit.core.config import Settings
from cancelkit.core.model import CancelRequest
from cancelkit.errors import PluginError
from cancelkit.testing.wire import Received

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- a raw loopback server (what it records: cancelkit.testing.wire.Received) ----
@dataclass
class Wire:
    """What the raw server has seen, and where it listens."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[Received]:
        with self.lock:
            seen, self.received = self.received, []
        return seen


_NOT_FOUND = json.dumps({"code": "NOT_FOUND", "message": "no such thing"}).encode()


class _Recorder(socketserver.StreamRequestHandler):
    """Reads one request without any URL parsing and answers 404 JSON, then closes.

    http.server would already touch the target (it folds a leading ``//``), so the
    request line is read off the socket as bytes.
    """

    server: _RawServer

    def handle(self) -> None:
        line = self.rfile.readline(65537)
        if not line:
            return
        length = 0
        while True:
            header = self.rfile.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = self.rfile.read(length) if length else b""
        text = line.rstrip(b"\r\n").decode("latin-1")
        parts = text.split(" ")
        # Exactly "METHOD target HTTP/1.1": a raw space or CRLF in an id would break this.
        assert len(parts) == 3, text
        with self.server.wire.lock:  # recorded before answering: the client never outruns it
            self.server.wire.received.append(Received(text, parts[0], parts[1], (), body))
        self.wfile.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(_NOT_FOUND)}\r\nConnection: close\r\n\r\n".encode()
            + _NOT_FOUND
        )


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, wire_state: Wire) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.wire = wire_state


@pytest.fixture(scope="module")
def raw_server() -> Iterator[Wire]:
    state = Wire()
    with serving(_RawServer(state)) as url:
        state.url = url
        yield state


@pytest.fixture
def raw(raw_server: Wire, monkeypatch: pytest.MonkeyPatch) -> Wire:
    """The raw server, emptied; no proxy from the environment stands in between."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    raw_server.take()
    return raw_server


# -- every platform, pointed at the raw server ------------------------------
def _config(url: str, flow_api_name: str | None = None) -> dict[str, dict[str, str]]:
    salesforce = {"instance_url": f"{url}/sf", "access_token": "static-sf-token"}
    flow = dict(salesforce)
    if flow_api_name is not None:
        flow["flow_api_name"] = flow_api_name
    return {
        "mirakl": {"base_url": f"{url}/mirakl", "access_token": "static-mirakl-token"},
        "salesforce": salesforce,
        "salesforce-flow": flow,
        "carriyo": {
            "base_url": f"{url}/carriyo",
            "tenant_id": "static-tenant",
            "api_key": "static-carriyo-key",
            "access_token": "static-carriyo-token",
        },
        "aboutyou": {"base_url": f"{url}/aboutyou", "api_key": "static-aboutyou-key"},
    }


def _example(name: str, **ids: str) -> dict[str, Any]:
    request = jsonutil.loads((EXAMPLES / f"{name}.json").read_text())
    request.update(ids)
    return dict(request)


def _no_waiting(seconds: float) -> None:
    raise AssertionError(f"a 404 answer must not be retried (asked to wait {seconds} s)")


@dataclass(frozen=True)
class Place:
    """Where one id goes: ``path`` (one segment), ``body`` or ``query`` only."""

    name: str
    where: str
    harmless: str
    #: Runs one call with the id in this place.
    call: Callable[[Client, str], object]
    #: The id is a setting (salesforce-flow's flow API name), not a request field.
    setting: bool = False


PLACES = [
    Place(
        "mirakl.order_id",
        "path",
        "SAFE-ORDER",
        lambda c, v: c.send(_example("mirakl", order_id=v), "mirakl"),
    ),
    Place("mirakl.tracking_id", "path", "SAFE-ACTION", lambda c, v: c.status("mirakl", v)),
    Place(
        "salesforce.fulfillment_order_id",
        "path",
        "SAFE-FO",
        lambda c, v: c.send(_example("salesforce", fulfillment_order_id=v), "salesforce"),
    ),
    Place(
        "salesforce-flow.flow_api_name",
        "path",
        "SAFE_FLOW",
        lambda c, _: c.send(_example("salesforce-flow"), "salesforce-flow"),
        setting=True,
    ),
    # The flow takes the fulfillment order id as a flow input, in the body.
    Place(
        "salesforce-flow.fulfillment_order_id",
        "body",
        "SAFE-FO",
        lambda c, v: c.send(_example("salesforce-flow", fulfillment_order_id=v), "salesforce-flow"),
    ),
    Place(
        "carriyo.order_id",
        "path",
        "SAFE-ORDER",
        lambda c, v: c.send(_example("carriyo", order_id=v), "carriyo"),
    ),
    Place(
        "carriyo.fulfillment_order_id",
        "path",
        "SAFE-FO",
        lambda c, v: c.send(_example("carriyo", fulfillment_order_id=v), "carriyo"),
    ),
    # About You puts ids in the body (integers) and the status query only.
    Place("aboutyou.tracking_id", "query", "SAFE-BATCH", lambda c, v: c.status("aboutyou", v)),
]


def _exchange(raw: Wire, place: Place, value: str, base: str = "") -> Received:
    """Run the call once and return the single request the server received.

    ``base`` is appended to every platform's base URL (a non-ASCII path, say).
    """
    config = {
        platform: {k: v + base if k in ("base_url", "instance_url") else v for k, v in s.items()}
        for platform, s in _config(raw.url, value if place.setting else None).items()
    }
    # No ledger: the same request goes out once per hostile id and per setting.
    with Client(config=config, env={}, sleep=_no_waiting, ledger=False) as client:
        place.call(client, value)
    seen = raw.take()
    assert len(seen) == 1, [r.line for r in seen]  # bounded: one call, one request
    return seen[0]


def _assert_in_its_place(place: Place, hostile: str, baseline: Received, got: Received) -> None:
    """``got`` differs from ``baseline`` only by ``hostile`` standing in the id's place."""
    # A raw dot segment is what a server collapses, whatever it decodes to.
    assert not {".", ".."} & set(got.segments), got.line
    if place.where == "path":
        index = baseline.segments.index(place.harmless)
        assert len(got.segments) == len(baseline.segments), got.line
        assert unquote(got.segments[index], errors="strict") == hostile, got.line
        rest = [s for i, s in enumerate(got.segments) if i != index]
        expected = [s for i, s in enumerate(baseline.segments) if i != index]
        assert rest == expected, got.line
        assert got.query == baseline.query, got.line
    elif place.where == "body":
        assert got.target == baseline.target, got.line
        assert json.loads(got.body)["inputs"][0]["fulfillmentOrderId"] == hostile
    else:
        # The path is the fixed one and the id is the whole, only query value.
        assert got.path == baseline.path, got.line
        assert got.path.endswith("/results/cancel-orders"), got.line
        decoded = parse_qsl(got.query, keep_blank_values=True, strict_parsing=True)
        assert decoded == [("batch_request_id", hostile)], got.line


@pytest.mark.parametrize("hostile", ["..", ".", "%2E%2E", "a/b"], ids=ascii)
@pytest.mark.parametrize("place", PLACES, ids=lambda p: p.name)
def test_a_non_ascii_base_url_keeps_ids_in_place(raw: Wire, place: Place, hostile: str) -> None:
    # A non-ASCII URL cannot go out byte for byte; requests' requoting of it turned
    # %2E%2E back into "..", so these ids were refused by the wire guard.
    baseline = _exchange(raw, place, place.harmless, base="-é")
    assert "-%C3%A9/" in baseline.path
    _assert_in_its_place(place, hostile, baseline, _exchange(raw, place, hostile, base="-é"))


# -- the bug guarded against, and the guard itself --------------------------
def test_plain_requests_would_send_a_dot_segment(raw: Wire) -> None:
    """Without cancelkit, requests sends an encoded ``..`` id as a real ``..``."""
    url = f"{raw.url}/v2/orders/%2E%2E/cancel"
    with requests.Session() as plain:
        plain.trust_env = False
        plain.post(url, data=b"{}", timeout=5)
    assert [r.target for r in raw.take()] == ["/v2/orders/../cancel"]

    with wire.GuardedSession() as guarded:
        guarded.send(wire.prepare(guarded, "POST", url, {}, b"{}"), timeout=5)
    assert [r.target for r in raw.take()] == ["/v2/orders/%2E%2E/cancel"]


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        (
            "https://api.example.com/o/%2E%2E/c?k=a%2Bb",
            "https://api.example.com/o/%2E%2E/c?k=a%2Bb",
        ),
        # Only what cannot go as it is gets encoded: the host by IDNA, the rest as UTF-8.
        ("https://bücher.example/é/%2E%2E/c", "https://xn--bcher-kva.example/%C3%A9/%2E%2E/c"),
        (
            "https://api.example.com/a\x01b/%2E?q=日",
            "https://api.example.com/a%01b/%2E?q=%E6%97%A5",
        ),
    ],
)
def test_prepare_keeps_the_adapters_encoding(url: str, sent: str) -> None:
    with wire.GuardedSession() as session:
        assert wire.prepare(session, "GET", url, {}, None).url == sent


RAW_DOT_PATHS = [
    "/orders/../cancel",
    "/orders/./cancel",
    "/orders/..",
    "/orders/.",
    "/../admin",
    "/a/./b/../c",
    "/orders/..?key=order_id",
]


@pytest.mark.parametrize("path", RAW_DOT_PATHS)
def test_check_url_refuses_a_raw_dot_segment(path: str) -> None:
    with pytest.raises(PluginError, match="Nothing was sent"):
        wire.check_url(f"https://api.example.com{path}", loopback_only=False)


@pytest.mark.parametrize(
    "path",
    [
        "/orders/%2E%2E/cancel",
        "/orders/%2e/cancel",
        "/orders/.../cancel",
        "/orders/..a/cancel",
        "/orders/a../cancel",
        "/orders/cancel?next=../x",  # the query is no path
    ],
)
def test_check_url_lets_encoded_and_longer_dots_through(path: str) -> None:
    wire.check_url(f"https://api.example.com{path}", loopback_only=False)


def _only_harmless_arrives(raw: Wire) -> None:
    """Send one harmless request: it must be all the server has seen.

    Requests are recorded before they are answered, so anything sent earlier
    would be in the list too.
    """
    with requests.Session() as plain:
        plain.trust_env = False
        plain.get(f"{raw.url}/harmless", timeout=5)
    assert [r.target for r in raw.take()] == ["/harmless"]


@pytest.mark.parametrize("path", RAW_DOT_PATHS)
def test_a_raw_dot_segment_never_leaves_the_machine(raw: Wire, path: str) -> None:
    with wire.GuardedSession() as session:
        with pytest.raises(PluginError, match="Nothing was sent"):
            wire.prepare(session, "POST", raw.url + path, {}, b"{}")
        # Encoded, the dots pass prepare; a request prepared by requests itself
        # (which requotes %2E back to ".") is checked again in send.
        bare, mark, query = path.partition("?")
        encoded = "/".join(
            s.replace(".", "%2E") if s in (".", "..") else s for s in bare.split("/")
        )
        encoded += mark + query
        requoted = session.prepare_request(requests.Request("POST", raw.url + encoded, data=b"{}"))
        assert not {".", ".."}.isdisjoint(urlsplit(requoted.url or "").path.split("/"))
        with pytest.raises(PluginError, match="Nothing was sent"):
            session.send(requoted, timeout=5)
    _only_harmless_arrives(raw)


class _Unencoded:
    """An outside plugin that builds Mirakl's URL by f-string, without path_segment."""

    @hookimpl(tryfirst=True)
    def cancelkit_translate(
        self, request: CancelRequest, adapter: PlatformAdapter, settings: Settings
    ) -> HttpCall | None:
        if adapter.name != "mirakl":
            return None
        call = adapter.translate(request, settings)
        return replace(call, url=f"{settings['base_url']}/orders/{request.order_id}/cancel")


@pytest.mark.parametrize("order_id", ["..", "."])
def test_a_plugin_that_does_not_encode_ids_is_stopped_before_sending(
    raw: Wire, order_id: str
) -> None:
    registry = PluginRegistry(())
    registry.register(_Unencoded(), "unencoded")
    config = _config(raw.url)
    with Client(
        registry=registry, config=config, env={}, sleep=_no_waiting, ledger=False
    ) as client:
        assert (
            f"/orders/{order_id}/cancel"
            in client.translate(_example("mirakl", order_id=order_id), "mirakl").url
        )
        with pytest.raises(PluginError, match="Nothing was sent"):
            client.send(_example("mirakl", order_id=order_id), "mirakl")
    _only_harmless_arrives(raw)
