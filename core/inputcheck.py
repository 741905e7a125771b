"""The input guard: hostile shapes are refused before marshmallow or a plugin sees them.

Whatever enters through :func:`cancelkit.core.schemas.load_request` is walked once,
iteratively (never recursively), and refused with a field path when it holds:

- containers nested deeper than :data:`MAX_DEPTH` (a self-referencing structure
  built in code counts as too deep);
- a string, or a key, that is not valid Unicode (a lone surrogate such as
  ``\\ud800`` cannot be encoded as UTF-8, so it could never go on the wire);
- a number that is not finite, or has more than :data:`MAX_INTEGER_DIGITS` digits
  before the decimal point or :data:`MAX_DECIMAL_PLACES` after it. Checked on the
  number's digits and exponent, before anything converts it to ``int``:
  ``int(Decimal("1e1000000"))`` alone costs most of a minute of CPU.

Decimal fields that arrive as strings (``"quantity": "1e5000"``) are checked by the
same :func:`number_problem` once marshmallow has read them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..errors import FieldError

#: Containers nested deeper than this are refused. A canonical request needs 4
#: (request, lines, line, taxes, tax); 32 leaves room for plugins' options.
MAX_DEPTH = 32
#: At most this many digits before the decimal point: every integer fits in a
#: signed 64-bit integer, and no quantity or amount is anywhere near it.
MAX_INTEGER_DIGITS = 18
#: At most this many digits after the decimal point (money needs 2 to 4).
MAX_DECIMAL_PLACES = 12

_INTEGER_LIMIT = 10**MAX_INTEGER_DIGITS
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUMBER_RANGE = (
    f"number out of range (at most {MAX_INTEGER_DIGITS} digits before the decimal point "
    f"and {MAX_DECIMAL_PLACES} after it)"
)


def number_problem(value: int | float | Decimal) -> str | None:
    """Why ``value`` cannot be a number in a request, or None when it can.

    Looks at digits and exponent only, so it costs nothing whatever the value.
    """
    if isinstance(value, int):
        return None if -_INTEGER_LIMIT < value < _INTEGER_LIMIT else _NUMBER_RANGE
    if isinstance(value, float):
        if not math.isfinite(value):
            return "must be a finite number"
        value = Decimal(str(value))  # as marshmallow reads a float
    if not value.is_finite():
        return "must be a finite number"
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if value.adjusted() >= MAX_INTEGER_DIGITS or exponent < -MAX_DECIMAL_PLACES:
        return _NUMBER_RANGE
    return None


def bounded_decimal(value: Decimal) -> None:
    """A marshmallow validator: a loaded decimal within the bounds, else ValidationError.

    Numeric strings (``"1e1000000"``) become decimals only in the schema, past
    :func:`check_input`, so quantity and money fields check again here.
    """
    problem = number_problem(value)
    if problem is not None:
        # Imported here: jsonutil (and so ``cancelkit --help``) uses this module too.
        from marshmallow import ValidationError

        raise ValidationError(problem)


def string_problem(value: str) -> str | None:
    """Why ``value`` cannot be a string in a request (not UTF-8 encodable), or None."""
    found = _SURROGATE.search(value)
    if found is None:
        return None
    return f"not valid Unicode: lone surrogate {found.group()!a} at position {found.start()}"


def join_path(prefix: str, key: object) -> str:
    """``lines`` + 0 -> ``lines[0]``; ``options`` + ``item_ids`` -> ``options.item_ids``."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{prefix}[{key}]"
    text = key if isinstance(key, str) and string_problem(key) is None else ascii(key)
    return f"{prefix}.{text}" if prefix else text


def check_input(data: Any) -> list[FieldError]:
    """Every hostile part of ``data`` (parsed JSON, or plain data built in code).

    Mappings, lists and tuples are walked; anything else is left to the schema.
    A shared container is walked again only when met deeper than before, so
    structures built in code cost at most ``MAX_DEPTH`` visits per container.
    """
    # Every request passes here, so the common case is kept cheap: leaves are checked
    # where they are met (never stacked), a leaf's path is built only for a problem,
    # and an ASCII string (nearly all of them) cannot hold a surrogate.
    problems: list[FieldError] = []
    deepest: dict[int, int] = {}  # id(container) -> deepest level it was walked at
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, level = stack.pop()
        if not isinstance(value, (dict, list, tuple)) and not isinstance(value, Mapping):
            _leaf(problems, path, _NO_KEY, value)  # only the top level can be a leaf here
            continue
        if level >= MAX_DEPTH:
            problems.append(FieldError(path, f"nested deeper than {MAX_DEPTH} levels"))
            continue
        if deepest.get(id(value), -1) >= level:
            continue
        deepest[id(value)] = level
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and not (type(key) is str and key.isascii()):
                _add(problems, join_path(path, key), string_problem(key))
            if isinstance(item, (dict, list, tuple)) or (
                not isinstance(item, (str, int, float, Decimal)) and isinstance(item, Mapping)
            ):
                stack.append((join_path(path, key), item, level + 1))
            else:
                _leaf(problems, path, key, item)
    # The walk pops from the end; report in reading order.
    return sorted(problems, key=lambda e: e.path)


_NO_KEY = object()


def _leaf(problems: list[FieldError], prefix: str, key: object, value: Any) -> None:
    """Check a string or number met under ``prefix`` + ``key`` (its path, if refused)."""
    kind = type(value)
    if kind is str:
        problem = None if value.isascii() else string_problem(value)
    elif kind is int:
        problem = None if -_INTEGER_LIMIT < value < _INTEGER_LIMIT else _NUMBER_RANGE
    elif isinstance(value, str):
        problem = string_problem(value)
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        problem = number_problem(value)
    else:
        return
    if problem is not None:
        problems.append(FieldError(prefix if key is _NO_KEY else join_path(prefix, key), problem))


def _add(problems: list[FieldError], path: str, message: str | None) -> None:
    if message is not None:
        problems.append(FieldError(path, message))


def too_deep_path(text: str | bytes) -> str:
    """The path of the first container of JSON ``text`` nested deeper than ``MAX_DEPTH``.

    Used when the parser itself gave up on deep nesting, so a refusal still names
    where. A token scan, not a parse: it assumes ``text`` is roughly JSON.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # One frame per open container: [is_object, current key or index, expecting a key]
    frames: list[list[Any]] = []
    for token in _TOKENS.finditer(text):
        kind = token.group()
        if kind in "{[":
            if len(frames) >= MAX_DEPTH:
                return _frames_path(frames)
            frames.append([kind == "{", 0, kind == "{"])
        elif kind in "}]":
            if frames:
                frames.pop()
        elif kind == ",":
            if frames and frames[-1][0]:
                frames[-1][2] = True
            elif frames:
                frames[-1][1] += 1
        elif kind.startswith('"') and frames and frames[-1][0] and frames[-1][2]:
            frames[-1][1] = _key(kind)
            frames[-1][2] = False
    return ""


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],]')


def _key(token: str) -> str:
    from . import jsonutil  # a JSON string token is itself JSON

    try:
        key = jsonutil.loads(token)
    except ValueError:
        return token
    return key if isinstance(key, str) else token


def _frames_path(frames: list[list[Any]]) -> str:
    path = ""
    for _, label, _expecting in frames:
        path = join_path(path, label)
    return path
