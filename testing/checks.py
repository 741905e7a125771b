"""What the conformance tests do, apart from the class that collects them."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .clock import ControlledClock

if TYPE_CHECKING:
    from cancelkit.core.http import HttpCall
    from cancelkit.core.model import CancelRequest

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
    subject: Subject, config: Mapping[str, Mapping[str, str]], clock: ControlledClock
) -> str:
    """Send the first example; everything the client lets out, in every rendering."""
    from cancelkit.core import jsonutil
    from cancelkit.core.schemas import dump_result
    from cancelkit.errors import CancelkitError

    with subject.client(config, clock) as client:
        try:
            result = client.send(subject.example(), subject.platform)
        except CancelkitError as error:
            return f"{error}\n{error!r}\n{getattr(error, 'errors', '')}"
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
