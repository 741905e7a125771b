"""One scrubber for every secret: configured ones and tokens obtained at run time.

Each :class:`~cancelkit.core.client.Client` owns a :class:`Scrubber`. It learns
the values of every setting a platform declares ``secret`` when the settings are
loaded, and every credential an authenticator puts on the wire (whatever the
header is called), when it is put there. The client passes every result and
every exception through it before they leave the library, the cassette recorder
masks with it, and a logging filter applies the secrets of every scrubber in the
process to the records of cancelkit, requests and urllib3 - so no plugin has to
remember any of this.

Secrets shorter than :data:`MIN_SECRET_LENGTH` characters are not searched for
in free text: masking every ``ab`` would garble messages, and such a value
protects nothing. They are still never shown as setting values or headers.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4
#: Loggers whose records are scrubbed (a filter on a logger does not see its children's).
SCRUBBED_LOGGERS = (
    "cancelkit",
    "cancelkit.http",
    "requests",
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)

T = TypeVar("T")

# Every secret any scrubber in the process has seen, for the logging filter.
_process_secrets: set[str] = set()
_process_pattern: re.Pattern[str] | None = None
_process_lock = threading.Lock()


def field_names(names: Iterable[str]) -> str:
    """A regex alternation matching each snake_case name as platforms spell it.

    Compile it with ``re.IGNORECASE``: ``refresh_token`` then matches
    ``refreshToken``, ``RefreshToken``, ``refresh-token`` and ``refreshtoken``.
    """
    return "|".join("[_-]?".join(re.escape(part) for part in n.split("_")) for n in names)


def _variants(value: str) -> set[str]:
    """The forms a secret takes in text: as is, URL-encoded, JSON-escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return {value, quote(value), quote(value, safe=""), quote_plus(value), escaped}


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so a secret that contains another is masked whole.
    ordered = sorted(secrets, key=len, reverse=True)
    return re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


class Scrubber:
    """Knows a set of secret values and masks them wherever they appear."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        #: Lower-case names of headers that carried a credential (cassettes mask them).
        self.header_names: set[str] = set()
        self._lock = threading.Lock()
        self._compiled: re.Pattern[str] | None = None
        #: Values whose forms are all in ``_secrets`` already (``add`` skips them).
        self._added: set[str] = set()

    def add(self, *values: str | None) -> None:
        """Remember secret values (and their encoded forms)."""
        # The same token comes back with every call: a set lookup, not five encodings.
        if all(v is None or (type(v) is str and v in self._added) for v in values):
            return
        fresh = set()
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
                fresh |= {v for v in _variants(value) if len(v) >= MIN_SECRET_LENGTH}
        if not fresh - self._secrets:
            with self._lock:
                self._added.update(v for v in values if type(v) is str)
            return
        with self._lock:
            self._secrets |= fresh
            self._compiled = _pattern(self._secrets)
            self._added.update(v for v in values if type(v) is str)
        global _process_pattern
        with _process_lock:
            _process_secrets.update(fresh)
            _process_pattern = _pattern(_process_secrets)

    def add_headers(self, headers: Mapping[str, str]) -> None:
        """Remember credential headers: each value, and the credential after a scheme."""
        for name, value in headers.items():
            self.header_names.add(name.lower())
            scheme, _, credential = value.partition(" ")
            if credential == MASK:
                # A placeholder already masked (a replayed cassette's "Bearer ***"):
                # learning it would turn every later "Bearer ***" into "***".
                continue
            self.add(value, credential if scheme and credential else None)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.scrub(text) != text

    def scrub(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        pattern = self._compiled
        if pattern is None or not text or pattern.search(text) is None:
            return text  # the same object: callers can tell nothing changed
        return pattern.sub(MASK, text)

    def scrub_value(self, value: T) -> T:
        """Strings, mappings, sequences and dataclasses, scrubbed all the way down."""
        if self._compiled is None:  # no secret known yet: nothing to look for
            return value
        return _scrub_any(value, self.scrub)  # type: ignore[no-any-return]

    def scrub_error(self, error: BaseException) -> BaseException:
        """The same exception, its message and field errors scrubbed, its chain cut.

        The chain is cut because a cause (a requests error, say) may quote a
        header or a body we cannot see into.
        """
        error.args = tuple(_scrub_any(arg, self.scrub) for arg in error.args)
        errors = getattr(error, "errors", None)
        if isinstance(errors, list):
            error.errors = [_scrub_any(e, self.scrub) for e in errors]  # type: ignore[attr-defined]
        error.__cause__ = None
        error.__suppress_context__ = True
        return error


_PLAIN = frozenset({int, float, bool, Decimal, type(None)})


def _scrub_any(value: Any, scrub: Any) -> Any:
    """``value`` with secrets masked; the very same object when nothing changed."""
    kind = type(value)
    # Exact types first (every result and call passes here): no ABC checks for them.
    if kind is str:
        return scrub(value)
    if kind in _PLAIN:  # numbers hold no secret (and ABC checks are slow)
        return value
    if kind is dict:
        return _scrub_mapping(value, scrub)
    if kind is list or kind is tuple:
        scrubbed = [_scrub_any(v, scrub) for v in value]
        return value if _all_same(scrubbed, value) else kind(scrubbed)
    names = _DATACLASS_FIELDS.get(kind)
    if names is not None:
        return _scrub_dataclass(value, names, scrub)
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return _scrub_mapping(value, scrub)
    if isinstance(value, (list, tuple)):
        scrubbed = [_scrub_any(v, scrub) for v in value]
        if _all_same(scrubbed, value):
            return value
        if hasattr(value, "_fields"):  # a named tuple (FieldError) takes its fields one by one
            return type(value)(*scrubbed)
        return type(value)(scrubbed)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value) if f.init)
        _DATACLASS_FIELDS[kind] = names  # a class's fields do not change
        return _scrub_dataclass(value, names, scrub)
    return value


#: Dataclass type -> the names of its ``init`` fields (looked up once per class).
_DATACLASS_FIELDS: dict[type, tuple[str, ...]] = {}


def _all_same(scrubbed: list[Any], original: Any) -> bool:
    return all(a is b for a, b in zip(scrubbed, original, strict=True))


def _scrub_mapping(value: Mapping[Any, Any], scrub: Any) -> Any:
    items = [(_scrub_any(k, scrub), _scrub_any(v, scrub)) for k, v in value.items()]
    same = all(a is k and b is v for (a, b), (k, v) in zip(items, value.items(), strict=True))
    return value if same else dict(items)


def _scrub_dataclass(value: Any, names: tuple[str, ...], scrub: Any) -> Any:
    changes = {}
    for name in names:
        old = getattr(value, name)
        new = _scrub_any(old, scrub)
        if new is not old:
            changes[name] = new
    return dataclasses.replace(value, **changes) if changes else value


def scrub_process_wide(text: str) -> str:
    """``text`` with every secret known to any scrubber in this process masked."""
    pattern = _process_pattern
    return pattern.sub(MASK, text) if pattern is not None else text


class ScrubbingFilter(logging.Filter):
    """Masks every known secret in a log record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        message = record.getMessage()
        scrubbed = scrub_process_wide(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_FILTER = ScrubbingFilter()


def install_log_filter() -> None:
    """Attach the scrubbing filter to cancelkit's, requests' and urllib3's loggers (once)."""
    for name in SCRUBBED_LOGGERS:
        scrubbed_logger(name)


def scrubbed_logger(name: str) -> logging.Logger:
    """The logger ``name``, with the scrubbing filter attached (once).

    A logger's filters see only the records logged on it, not its children's, so
    every logger cancelkit logs on (``cancelkit.platform.<name>`` included) gets
    its own.
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
