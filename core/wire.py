"""What may go on the wire, checked once for every request any plugin makes.

Every HTTP request cancelkit sends - the cancel, a status call, a token request
made by an authenticator - passes through :class:`GuardedSession.send`, which
refuses, before a byte leaves the machine:

* a URL that is not ``http``/``https`` with a host (a configuration error);
* in sandbox mode, any host that is not loopback, so a sandbox run can never
  reach a real platform whatever the settings or a token answer say;
* a URL whose path holds a ``.`` or ``..`` segment, which servers collapse;
* a header value that HTTP cannot carry (a secret with a newline, say).

:func:`prepare` also keeps a translated URL's percent-encoding exactly as the
adapter wrote it: requests "requotes" URLs and turns ``%2E%2E`` back into
``..``, which would let an order id of ``..`` change the path on the wire.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..errors import ConfigurationError, PluginError
from . import logs
from .secrets import Scrubber

#: Printable ASCII but the space: what a URL may carry as it is. quote() with these
#: as "safe" encodes only the rest, so existing escapes such as %2E stay as they are.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def is_loopback(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, loopback_only: bool) -> None:
    """Refuse a URL that must not be requested (see the module docstring)."""
    parts = urlsplit(url)
    where = url.split("?")[0]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{where!r} is not an http(s) URL with a host; check the base URL settings. "
            "Nothing was sent"
        )
    if loopback_only and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"sandbox mode refuses {parts.scheme}://{parts.netloc}: only loopback addresses "
            "are reachable from the sandbox. Nothing was sent"
        )
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise PluginError(
            f"refusing {where!r}: a '.' or '..' path segment would change the path on the "
            "wire (encode ids with cancelkit's path_segment). Nothing was sent"
        )


def check_headers(headers: Any) -> None:
    """Refuse header values HTTP cannot carry; never quotes the value (it may be secret)."""
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if text.isascii() and text.isprintable():  # the usual value: nothing to refuse
            continue
        bad = any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text)
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            bad = True
        if bad:
            raise ConfigurationError(
                f"the {name} header cannot be sent: its value (a credential or setting) holds "
                "a line break, control character or non-Latin-1 character. Nothing was sent"
            )


class _AsPrepared(requests.auth.AuthBase):
    """Leaves a request's headers as cancelkit set them (set, it turns netrc lookup off)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class GuardedSession(requests.Session):
    """A ``requests.Session`` that checks every request before sending it.

    It also logs each exchange on ``cancelkit.http`` (see :mod:`cancelkit.core.logs`),
    masked with ``scrubber``: here, token requests are logged as well as the calls.
    """

    def __init__(
        self,
        *,
        loopback_only: bool = False,
        user_agent: str | None = None,
        platform: str | None = None,
        scrubber: Scrubber | None = None,
    ):
        super().__init__()
        self.loopback_only = loopback_only
        #: The platform this session talks to, and the scrubber its log records use.
        self.platform = platform
        self.scrubber = scrubber
        if loopback_only:
            # No proxy from the environment: sandbox traffic stays on loopback.
            self.trust_env = False
        # Never a credential from ~/.netrc: requests would replace our Authorization.
        self.auth = _AsPrepared()
        if user_agent:
            self.headers["User-Agent"] = user_agent
        # urllib3 must never resend on its own: a cancel sent twice is worse than none.
        no_retries = HTTPAdapter(max_retries=Retry(total=0, connect=0, read=False, redirect=0))
        self.mount("https://", no_retries)
        self.mount("http://", no_retries)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Check the request, then send it (redirects are never followed)."""
        check_url(request.url or "", loopback_only=self.loopback_only)
        check_headers(request.headers)
        kwargs["allow_redirects"] = False
        if logs.http_log.isEnabledFor(logging.INFO):  # off by default: no call, no work
            _never_fails(logs.log_request, request, platform=self.platform, scrubber=self.scrubber)
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException as error:
            _never_fails(logs.log_no_answer, error, platform=self.platform)
            raise
        if logs.http_log.isEnabledFor(logging.INFO):
            # The call went out: whatever the log makes of its answer, the answer is kept.
            _never_fails(
                logs.log_response, response, platform=self.platform, scrubber=self.scrubber
            )
        return response


def _never_fails(log: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """Run a logging call; a failure to render costs a log line, never a result."""
    try:
        log(*args, **kwargs)
    except Exception as error:
        logs.http_log.warning("(could not log this exchange: %s)", type(error).__name__)


def prepare(
    session: requests.Session,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
) -> requests.PreparedRequest:
    """A prepared request whose URL is byte for byte the translated one.

    A bad URL is a configuration error raised here, before anything is sent.
    """
    check_url(url, loopback_only=False)
    try:
        prepared = session.prepare_request(
            requests.Request(method, url, headers=headers, data=body)
        )
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as error:
        raise ConfigurationError(f"cannot send to {url!r}: {error}. Nothing was sent") from None
    # isascii + isprintable + no space: every character is in _URL_SAFE (checked at C speed).
    if url.isascii() and url.isprintable() and " " not in url:
        prepared.url = url  # keep %2E%2E, %2F... exactly as the adapter encoded them
    else:
        # A non-ASCII base URL, say: requests' requoting would also turn %2E%2E back
        # into "..". Take only its scheme and host (IDNA) and encode the rest ourselves.
        ours, theirs = urlsplit(url), urlsplit(prepared.url or "")
        path, query = (quote(part, safe=_URL_SAFE) for part in (ours.path, ours.query))
        prepared.url = urlunsplit((theirs.scheme, theirs.netloc, path, query, ""))
    return prepared
