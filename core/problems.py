"""Every problem of a request in one pass: the schema's, then the platform's.

:func:`~cancelkit.core.schemas.load_request` stops at the first phase that fails
(hostile input before the schema, the schema before the platform), because
nothing may be sent from a request that failed any check. ``cancelkit validate``
wants the whole list instead, so :func:`request_problems` keeps going: it sets
aside what the schema refused (a top-level field, a line's optional field, or a
line whose ``line_id`` or ``quantity`` is unusable), loads what is left, and runs
the platform's checks on that. A platform problem about a field already reported
is not repeated; with no usable line at all, only the request-level platform
checks run. Nothing is sent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from ..errors import FieldError, InvalidRequestError
from .model import CancelRequest
from .schemas import load_request

#: Schema rounds at most: hostile input, then the schema, then what setting parts
#: aside uncovered (each round removes something, so few are ever needed).
_ROUNDS = 6
_LINE = re.compile(r"^lines\[(\d+)\](?:\.([^.\[]+))?")
_TOP = re.compile(r"^([^.\[]+)")
#: A line without these cannot be checked at all: the line is set aside whole.
_LINE_KEYS = ("line_id", "quantity")


def request_problems(
    data: Any, check: Callable[[CancelRequest], object] | None = None
) -> list[FieldError]:
    """Every problem of ``data`` (parsed JSON): schema problems, then ``check``'s.

    ``check`` runs the platform's checks on a loaded request and raises
    :class:`InvalidRequestError` (e.g. ``lambda r: client.prepare(r, "mirakl")``).
    Returns an empty list when the request is valid.
    """
    found: list[FieldError] = []
    salvage = _Salvage(data)
    loaded: CancelRequest | None = None
    for _ in range(_ROUNDS):
        try:
            loaded = load_request(salvage.data)
            break
        except InvalidRequestError as error:
            for problem in error.errors:
                _add(found, salvage.original(problem))
            if not salvage.set_aside(error.errors):
                return found  # nothing left to take apart: the request-level shape is wrong
    if loaded is None or check is None:
        return found
    try:
        check(loaded)
    except InvalidRequestError as error:
        reported = [problem.path for problem in found]
        for problem in error.errors:
            original = salvage.original(problem)
            if original is not None and not _covered(original.path, reported):
                _add(found, original)
    return found


class _Salvage:
    """A copy of the request with the parts the schema refused set aside."""

    def __init__(self, data: Any):
        self.data = copy.deepcopy(data)
        #: Current line index -> the index the user wrote; None until lines move.
        self._line_index: list[int] | None = None
        #: The lines were replaced by a placeholder: problems about lines mean nothing.
        self._no_lines = False

    def original(self, problem: FieldError) -> FieldError | None:
        """``problem`` with its line index as the user wrote it (None: a placeholder's)."""
        match = _LINE.match(problem.path)
        if match is None:
            return problem
        if self._no_lines:
            return None
        if self._line_index is None:
            return problem
        index = self._line_index[int(match.group(1))]
        rest = problem.path[len(f"lines[{match.group(1)}]") :]
        return FieldError(f"lines[{index}]{rest}", problem.message)

    def set_aside(self, problems: list[FieldError]) -> bool:
        """Remove what ``problems`` name; False when nothing could be removed."""
        if not isinstance(self.data, dict):
            return False
        before = copy.deepcopy(self.data)
        lines = self.data.get("lines")
        drop: set[int] = set()
        for problem in problems:
            match = _LINE.match(problem.path)
            top = _TOP.match(problem.path)
            if match is not None and isinstance(lines, list) and not self._no_lines:
                index, key = int(match.group(1)), match.group(2)
                line = lines[index] if index < len(lines) else None
                if key is None or key in _LINE_KEYS or not isinstance(line, dict):
                    drop.add(index)
                else:
                    line.pop(key, None)
            elif top is None:
                return False  # the request as a whole (not an object): nothing to salvage
            elif top.group(1) == "lines":
                self._placeholder_lines()
            else:
                self.data.pop(top.group(1), None)
        if drop and isinstance(lines, list) and not self._no_lines:
            keep = [i for i in range(len(lines)) if i not in drop]
            known = self._line_index or list(range(len(lines)))
            self.data["lines"] = [lines[i] for i in keep]
            self._line_index = [known[i] for i in keep]
            if not keep:
                self._placeholder_lines()
        return self.data != before

    def _placeholder_lines(self) -> None:
        """Lines that load, so request-level platform checks can still run."""
        self._no_lines = True
        if self.data.get("scope") == "all_pending":
            self.data.pop("lines", None)
        else:
            self.data["lines"] = [{"line_id": "-", "quantity": 1}]


def _covered(path: str, reported: list[str]) -> bool:
    """True when a problem at ``path`` repeats one already reported (same field or inside).

    A field the schema refused was set aside, so the platform may call it missing
    (``order_id: required by mirakl`` after ``order_id: not a valid string``).
    """
    return any(path == seen or path.startswith((seen + ".", seen + "[")) for seen in reported)


def _add(found: list[FieldError], problem: FieldError | None) -> None:
    if problem is not None and problem not in found:
        found.append(problem)
