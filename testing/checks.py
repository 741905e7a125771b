"""What the conformance tests do, apart from the class that collects them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .clock import ControlledClock

if TYPE_CHECKING:
    from cancelkit.core.http import HttpCall, HttpResponse
    from cancelkit.core.model import CancelRequest
    from cancelkit.core.sandbox.contract import Contract

    from .subject import Subject


def cancel_call(subject: Subject, client: Any, request: CancelRequest) -> HttpCall:
    """The cancel call itself (through the client's hooks), even where a lookup comes first."""
    settings = subject.settings_of(client)
    if subject.adapter.lookup_call(request, settings) is None:
        call: HttpCall = client.translate(request, subject.platform)
        return call
    return subject.adapter.translate(request, settings)


def renderings(subject: Subject, client: Any) -> list[str]:
    """Every way the adapter's calls (and its errors) can be shown, with ``client``'s settings."""
    from cancelkit.core.http import render
    from cancelkit.errors import CancelkitError

    adapter, shown = subject.adapter, []
    try:
        settings = subject.settings_of(client)
        shown += [repr(settings), repr(adapter.authenticator(settings, ControlledClock()))]
        calls: list[HttpCall] = []
        for request in subject.prepared(client):
            calls.append(adapter.translate(request, settings))
            lookup = adapter.lookup_call(request, settings)
            if lookup is not None:
                calls.append(lookup)
        if adapter.capabilities.has_status:
            calls.append(adapter.status_call("T-1", settings))
    except CancelkitError as error:
        return [*shown, str(error), repr(error), str(getattr(error, "errors", ""))]
    for call in calls:
        shown += [repr(call), str(call.to_dict()), call.url]
        shown += [render(call, fmt) for fmt in ("json", "curl", "http")]
    return shown


def without_reasons(request: dict[str, Any]) -> dict[str, Any]:
    """The request with every reason and platform reason removed (lines' too)."""
    request.pop("reason", None)
    request.pop("platform_reason", None)
    for line in request.get("lines") or []:
        if isinstance(line, dict):
            line.pop("reason", None)
            line.pop("platform_reason", None)
    return request


def refusal_problems(
    reason: str, error: Exception, mapped: Mapping[str, str], other: str | None
) -> list[str]:
    """What is wrong with refusing ``reason`` this way (empty when it is right)."""
    errors = getattr(error, "errors", [])
    on_reason = [e for e in errors if e.path == "reason" or e.path.endswith(".reason")]
    if not on_reason:
        return [f"{reason}: refused, but not on the reason field: {error}"]
    if reason in mapped or other:
        return [f"{reason}: refused though it maps to {mapped.get(reason, other)!r}: {error}"]
    message = " ".join(e.message for e in on_reason)
    missing = [r for r in mapped if r not in message]
    if "accepted" not in message or missing:
        return [
            f"{reason}: refused without listing the accepted reasons {sorted(mapped)}: {message}"
        ]
    return []


def contract_problems(
    label: str, call: HttpCall, contract: Contract, definition: str | None
) -> list[str]:
    """How the body of ``call`` breaks ``contract`` (empty when it meets it, or has none)."""
    if call.body is None:
        return []
    body = json.loads(call.body_bytes() or b"null")
    return [
        f"{label}: {violation.field}: {violation.message}"
        for violation in contract.violations(body, definition=definition)
    ]


def contract_breaking(
    body: Any, contract: Contract, definition: str | None
) -> tuple[Any, str] | None:
    """``body`` changed so ``contract`` refuses it, and how; None if no change tried does.

    A property removed (the outermost first, so a required one is found near the
    top), else the whole body as a value of another type.
    """
    from .places import dotted

    for path in _property_paths(body):
        changed = copy.deepcopy(body)
        parent = changed
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
        if contract.violations(changed, definition=definition):
            return changed, f"without {dotted(path)}"
    others: tuple[Any, ...] = ([], "", 0, None)
    for other in others:
        if type(other) is not type(body) and contract.violations(other, definition=definition):
            return other, f"replaced by {json.dumps(other)}"
    return None


def _property_paths(body: Any) -> list[tuple[Any, ...]]:
    """The path of every object property in ``body``, outermost first."""
    found: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), body)]
    while queue:
        path, value = queue.pop(0)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items if isinstance(value, (dict, list)) else ():
            if isinstance(value, dict):
                found.append((*path, key))
            if isinstance(item, (dict, list)):
                queue.append(((*path, key), item))
    return found


def refused_request(
    subject: Subject, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, str]:
    """The request the emulator must refuse, and what it is (or None, and why there is none).

    ``given``, else the first example with its order and fulfillment order ids (with
    neither, its line ids) mirrored: the same shape, ids no emulator seeds.
    """
    if given is not None:
        return copy.deepcopy(dict(given)), "refused_example"
    request = subject.example()
    fields = [f for f in ("order_id", "fulfillment_order_id") if isinstance(request.get(f), str)]
    for name in fields:
        request[name] = mirrored(request[name])
    if fields:
        return request, f"the first example with an unknown {' and '.join(fields)}"
    lines = [
        line
        for line in request.get("lines") or []
        if isinstance(line, dict) and isinstance(line.get("line_id"), str)
    ]
    for line in lines:
        line["line_id"] = mirrored(line["line_id"])
    if lines:
        return request, "the first example with unknown line ids"
    return None, (
        "the first example has no order, fulfillment order or line id to make unknown; "
        "set `refused_example` to a request for an order the emulator does not know"
    )


def mirrored(value: str) -> str:
    """``value`` with each ASCII digit and letter mirrored (``0``-``9``, ``a``-``z``):
    its shape kept, never equal to it (``O-1`` -> ``L-8``)."""
    out = []
    for char in value:
        for first, last in (("0", "9"), ("a", "z"), ("A", "Z")):
            if first <= char <= last:
                char = chr(ord(first) + ord(last) - ord(char))
                break
        out.append(char)
    changed = "".join(out)
    return changed if changed != value else value + "9"


def deliver(subject: Subject, client: Any, call: HttpCall) -> HttpResponse | None:
    """The platform's answer to ``call``, sent as core sends a cancel (credentials added)."""
    sender = client._sender(subject.adapter, subject.settings_of(client))
    response: HttpResponse | None = sender.deliver(call).response
    return response


def strings_of(call: HttpCall) -> set[str]:
    """Every string the call carries: the body's keys and values, header values, and
    the URL's decoded path segments and query values."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    url = urlsplit(call.url)
    found = {unquote(s) for s in url.path.split("/")} | {v for _, v in parse_qsl(url.query)}
    found |= set(call.headers.values())
    stack = [call.body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def send_and_render(
    subject: Subject,
    config: Mapping[str, Mapping[str, str]],
    clock: ControlledClock,
    credential_headers: set[str] | None = None,
) -> str:
    """Send the first example; everything the client lets out, in every rendering.

    ``credential_headers`` gets the lower-case names of the headers the
    authenticator set (what the client's scrubber learnt).
    """
    from cancelkit.core import jsonutil
    from cancelkit.core.schemas import dump_result
    from cancelkit.errors import CancelkitError

    with subject.client(config, clock) as client:
        try:
            result = client.send(subject.example(), subject.platform)
        except CancelkitError as error:
            return f"{error}\n{error!r}\n{getattr(error, 'errors', '')}"
        finally:
            if credential_headers is not None:
                credential_headers |= client.scrubber.header_names
        return f"{result}\n{result!r}\n{jsonutil.dumps(dump_result(result))}"


def json_or_none(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def quietly(call: Callable[[], Any]) -> Any:
    """``call()``, or None when it raises a cancelkit error (seeds are best effort)."""
    from cancelkit.errors import CancelkitError

    try:
        return call()
    except CancelkitError:
        return None
