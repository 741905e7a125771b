"""Hostile values: ids that try to change a URL's path, and answers no normaliser expects.

The strategies import hypothesis when called, never at import.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis import strategies as st

#: Ids an attacker or a careless upstream system might send. None is refused by
#: canonical validation (non-empty, valid Unicode), so all of them reach the wire.
HOSTILE_IDS: tuple[str, ...] = (
    "..",
    ".",
    "...",
    "./",
    ".%2E",
    "..;",
    " ..",
    "a/b",
    "/",
    "//",
    "../../admin",
    "..\\..",
    "%2E%2E",
    "%2e%2e",
    "%2F",
    "%",
    "a%20b",
    "a?b=c",
    "?x",
    "a&b=c",
    "a#b",
    "#f",
    "a b",
    "a;b",
    "a\\b",
    "+",
    "~",
    "é",
    "日本",
    "\r\nX-Injected: 1",
    "\x00",
    "\t",
)

#: Answer bodies of every odd kind: empty, scalars, wrong shapes, HTML, cut short.
ODD_BODIES: tuple[str, ...] = (
    "",
    " ",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "[]",
    "{}",
    "[1, 2]",
    '"text"',
    "[null]",
    "[[]]",
    "[{}]",
    '{"success": "yes"}',
    '{"errors": "x"}',
    '{"errors": [1, null, "a"]}',
    '{"errors": [{}]}',
    '{"error": {"code": null}}',
    '{"code": null}',
    '{"status": 7}',
    '{"status": null, "lines": {}}',
    '{"data": null}',
    '{"id": 12}',
    "<html><body>oops</body></html>",
    '{"trunc',
    "\u00ff\u00fe binary-ish",
)
#: Statuses a platform answers with (those core handles itself included: a normaliser
#: reached some other way must not raise on them either).
STATUSES: tuple[int, ...] = (200, 201, 202, 204, 207, 400, 401, 403, 404, 409, 422, 429, 500, 503)
#: Headers answers come with, odd values included.
ODD_HEADERS: tuple[dict[str, str], ...] = (
    {},
    {"Content-Type": "application/json"},
    {"Retry-After": "soon", "Content-Type": "text/html"},
    {"Retry-After": "-5", "X-Request-Id": ""},
)


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, a few levels deep."""
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(["", "0", "CANCELLED", "REJECTED", "ERROR", "null", "[]"]),
    )
    keys = st.one_of(
        st.text(max_size=6),
        st.sampled_from(["status", "errors", "error", "code", "message", "id", "lines", "data"]),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=10,
    )


def mutation_slots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) in ``value``: each place a mutation can land."""
    stack = [value]
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            yield container, key
            if isinstance(item, (dict, list)):
                stack.append(item)


def mutated(seeds: Sequence[Any]) -> st.SearchStrategy[Any]:
    """One of ``seeds`` (parsed JSON answers) with one to three values replaced or removed.

    Mostly shaped like a real answer, so a normaliser reads deep into it before
    meeting the odd value.
    """
    from hypothesis import strategies as st

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value = copy.deepcopy(draw(st.sampled_from(list(seeds))))
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            slots = list(mutation_slots(value)) if isinstance(value, (dict, list)) else []
            if not slots:
                return draw(json_values())
            container, key = draw(st.sampled_from(slots))
            action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "empty"]))
            if action == "delete":
                del container[key]
            elif action == "empty":
                container[key] = (
                    type(container[key])()
                    if isinstance(container[key], (dict, list, str))
                    else None
                )
            else:
                container[key] = draw(json_values())
        return value

    return build()


def answer_texts(seeds: Sequence[Any]) -> st.SearchStrategy[str]:
    """Answer bodies: odd texts, arbitrary JSON, and real answers (``seeds``) mutated."""
    from hypothesis import strategies as st

    choices = [st.sampled_from(ODD_BODIES), json_values().map(json.dumps)]
    if seeds:
        choices += [mutated(seeds).map(json.dumps)] * 3  # weighted: mostly near-real
    return st.one_of(*choices)
