"""cancelkit's loggers, and the HTTP exchange they show with every secret masked.

Named standard-library loggers, silent unless the application configures logging
(library practice: a ``NullHandler`` on ``cancelkit``, never ``basicConfig``):

* ``cancelkit`` - the parent of all of them;
* ``cancelkit.http`` - every request and answer on the wire (cancel, status, and
  the authenticators' token requests), shown as httpie's ``--print`` shows them:
  INFO records hold the request line and headers, or the status line and headers
  (httpie's ``H`` and ``h``); DEBUG records hold the bodies (``B`` and ``b``);
* ``cancelkit.platform.<name>`` - one per platform (:func:`platform_logger`, or
  ``adapter.logger`` in a plugin): core logs each result there at INFO.

``cancelkit -v`` shows INFO records on stderr, ``-vv`` DEBUG ones too
(:func:`show_on_stderr`). Nothing secret reaches a record: credential headers and
secret body fields are masked by name, every value the client's
:class:`~cancelkit.core.secrets.Scrubber` knows is masked wherever it appears, and
the process-wide :class:`~cancelkit.core.secrets.ScrubbingFilter` sits on each of
these loggers - and on the CLI's handler - as the last line of defence.

Importing this module loads neither requests nor ``logging.config``: ``translate``
imports it (through the adapter base class) and stays cheap.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import jsonutil
from .secrets import MASK, Scrubber, ScrubbingFilter, scrubbed_logger

if TYPE_CHECKING:  # requests loads only when something is sent
    import requests

    from .model import CancelResult

ROOT_LOGGER = "cancelkit"
HTTP_LOGGER = "cancelkit.http"
PLATFORM_LOGGER_PREFIX = "cancelkit.platform."

# Library practice: records go nowhere until the application configures logging,
# and Python's "last resort" handler never prints our warnings on its own.
_root = logging.getLogger(ROOT_LOGGER)
if not any(isinstance(h, logging.NullHandler) for h in _root.handlers):
    _root.addHandler(logging.NullHandler())

http_log = scrubbed_logger(HTTP_LOGGER)

#: Header names whose values never appear in a log, whatever the scrubber knows:
#: the credential after a scheme word (``Bearer``) becomes ``***``, the scheme stays.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)
#: Header or body field names that hold a credential (form and JSON bodies: token
#: requests carry ``client_secret``, token answers ``access_token``).
_SECRET_NAME = re.compile(
    r"secret|passw|token|api[-_]?key|signature|assertion|authorization|cookie|session",
    re.IGNORECASE,
)
#: Names the pattern catches that hold nothing secret.
_NOT_SECRET = frozenset({"token_type", "token_url", "expires_in"})
_HTTP_VERSIONS = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}


def platform_logger(platform: str) -> logging.Logger:
    """The logger of one platform, ``cancelkit.platform.<platform>``, scrubbed."""
    return scrubbed_logger(PLATFORM_LOGGER_PREFIX + platform)


def is_secret_name(name: str) -> bool:
    """True when a header or field called ``name`` carries a credential."""
    return name.lower() not in _NOT_SECRET and _SECRET_NAME.search(name) is not None


# -- the exchange ------------------------------------------------------------------
def log_request(
    request: requests.PreparedRequest, *, platform: str | None, scrubber: Scrubber | None
) -> None:
    """Log one request about to be sent: its request line and headers, then its body."""
    if not http_log.isEnabledFor(logging.INFO):
        return  # the default: build nothing
    scrub = scrubber or Scrubber()
    url = urlsplit(request.url or "")
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    # httpie's order: request line, Host (http.client adds it on the wire), headers.
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {url.netloc}"]
    lines += _header_lines(request.headers, scrub)
    extra = {"platform": platform}
    http_log.info("%s\n", scrub.scrub("\n".join(lines)), extra=extra)
    if request.body and http_log.isEnabledFor(logging.DEBUG):
        content_type = str(request.headers.get("Content-Type") or "")
        http_log.debug("%s\n", render_body(request.body, content_type, scrub), extra=extra)


def log_response(
    response: requests.Response, *, platform: str | None, scrubber: Scrubber | None
) -> None:
    """Log one answer: its status line and headers, then its body."""
    if not http_log.isEnabledFor(logging.INFO):
        return
    scrub = scrubber or Scrubber()
    version = _HTTP_VERSIONS.get(getattr(response.raw, "version", 11), "HTTP/1.1")
    lines = [f"{version} {response.status_code} {response.reason or ''}".rstrip()]
    lines += _header_lines(response.headers, scrub)
    extra = {"platform": platform}
    http_log.info("%s\n", scrub.scrub("\n".join(lines)), extra=extra)
    # The sender never streams: the body has been read by now.
    if response.content and http_log.isEnabledFor(logging.DEBUG):
        content_type = response.headers.get("Content-Type") or ""
        http_log.debug("%s\n", render_body(response.content, content_type, scrub), extra=extra)


def log_no_answer(error: BaseException, *, platform: str | None) -> None:
    """Log that a request got no (complete) answer; the sender says what that means."""
    # Only the exception's type: its text may quote a URL or a header we cannot vet.
    http_log.info("(no answer: %s)\n", type(error).__name__, extra={"platform": platform})


def log_result(result: CancelResult) -> None:
    """One INFO line per result on its platform's logger: outcome, HTTP status, ids."""
    log = platform_logger(result.platform)
    if not log.isEnabledFor(logging.INFO):
        return
    parts = [f"HTTP {result.http_status}"] if result.http_status else []
    request_id = result.details.get("request_id")
    if request_id:
        parts.append(f"request id {request_id}")
    if result.tracking_id:
        parts.append(f"tracking id {result.tracking_id}")
    said = f" ({', '.join(parts)})" if parts else ""
    log.info("%s: %s%s", result.platform, result.outcome, said, extra={"platform": result.platform})


def _header_lines(headers: Mapping[str, Any], scrub: Scrubber) -> list[str]:
    return [f"{name}: {mask_header(name, str(value), scrub)}" for name, value in headers.items()]


def mask_header(name: str, value: str, scrubber: Scrubber) -> str:
    """A header value fit for a log: credentials masked, the rest scrubbed."""
    lowered = name.lower()
    if lowered in SECRET_HEADERS or lowered in scrubber.header_names or is_secret_name(name):
        scheme, space, credential = value.partition(" ")
        # "Bearer abc" -> "Bearer ***", as translate shows it; anything else -> "***".
        return f"{scheme} {MASK}" if space and credential and scheme.isalpha() else MASK
    return scrubber.scrub(value)


def render_body(body: bytes | str, content_type: str, scrubber: Scrubber) -> str:
    """A body as text for a log: JSON indented, secret fields masked, secrets scrubbed."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        value = jsonutil.loads(text) if text.strip()[:1] in ("{", "[") else _NOT_JSON
    except ValueError:
        value = _NOT_JSON
    if value is not _NOT_JSON:
        # Scrub the values before dumping: dumping may escape a character of a secret.
        masked = _mask_fields(scrubber.scrub_value(value))
        return scrubber.scrub(jsonutil.dumps(masked, indent=2))
    if "x-www-form-urlencoded" in content_type:
        pairs = parse_qsl(text, keep_blank_values=True)
        masked_pairs = [(k, MASK if is_secret_name(k) else scrubber.scrub(v)) for k, v in pairs]
        return scrubber.scrub(urlencode(masked_pairs, safe="*"))
    return scrubber.scrub(text)


_NOT_JSON = object()


def _mask_fields(value: Any) -> Any:
    """JSON with the value of every secret-named field (at any depth) masked."""
    if isinstance(value, Mapping):
        return {
            key: MASK
            if isinstance(key, str) and is_secret_name(key) and _is_scalar(item)
            else _mask_fields(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(item) for item in value]
    return value


def _is_scalar(value: Any) -> bool:
    return value not in (None, "") and not isinstance(value, (Mapping, list))


# -- the command line's -v ---------------------------------------------------------
class _WriterHandler(logging.Handler):
    """Hands each formatted record to ``write`` (the CLI's stderr, resolved per call)."""

    def __init__(self, write: Callable[[str], None]):
        super().__init__()
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record; a failure goes to logging's own error reporting."""
        try:
            self._write(self.format(record))
        except Exception:
            self.handleError(record)


def show_on_stderr(verbosity: int, write: Callable[[str], None]) -> Callable[[], None]:
    """Show cancelkit's records through ``write``; returns the function that undoes it.

    ``verbosity`` 1 (``-v``): INFO - request and status lines with headers, and one
    line per result; 2 (``-vv``): DEBUG too - the bodies; 3 and more: urllib3's
    connection records as well. Records are plain text (``%(message)s``), and the
    handler scrubs what reaches it, children's records included.
    """
    handler = _WriterHandler(write)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(ScrubbingFilter())
    level = logging.INFO if verbosity <= 1 else logging.DEBUG
    names = [ROOT_LOGGER] + (["urllib3"] if verbosity >= 3 else [])
    previous = []
    for name in names:
        logger = scrubbed_logger(name)
        previous.append((logger, logger.level))
        logger.setLevel(level)
        logger.addHandler(handler)

    def undo() -> None:
        for logger, old_level in previous:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

    return undo
