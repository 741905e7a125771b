"""What a platform adapter is: capabilities as data, plus four small jobs.

Like Libcloud's driver/response split and LiteLLM's per-provider transformation
classes: the adapter knows its platform's URLs, bodies and answers; the shared
sender (:mod:`cancelkit.core.sending`) does the HTTP, retries and auth for all.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from marshmallow import Schema, ValidationError

from ..errors import FieldError, InvalidRequestError
from .auth import Authenticator
from .config import Setting, Settings
from .http import HttpCall, HttpResponse, retry_after_seconds
from .logs import platform_logger
from .model import REASONS, CancelRequest, CancelResult, Line
from .outcomes import unknown_result
from .ratelimit import RateLimiter
from .schemas import flatten_messages


@dataclass(frozen=True)
class Capabilities:
    """What a platform can express, declared as data (shown by ``cancelkit platforms``)."""

    mode: Literal["sync", "async"]
    #: True when a line's quantity may be fractional (goods sold by weight).
    fractional_quantity: bool
    #: Canonical reason -> platform value; empty when the platform takes no reason.
    reasons: Mapping[str, str] = field(default_factory=dict)
    #: Every raw value ``platform_reason`` may carry.
    platform_reasons: tuple[str, ...] = ()
    #: Platform value used (with a warning) for a canonical reason with no faithful match.
    other_reason: str | None = None
    #: Canonical fields this platform needs, e.g. ``order_id``, ``lines[].price``.
    required_fields: tuple[str, ...] = ()
    settings: tuple[Setting, ...] = ()
    rate_limit: str | None = None
    #: True only where the platform deduplicates, so resending after "unknown" is safe.
    resend_safe: bool = False
    #: True when ``status`` can follow up on a tracking id (``status`` is refused otherwise).
    has_status: bool = False
    #: True when ``scope: all_pending`` (cancel every pending line, no list) is possible.
    all_pending: bool = False
    #: Least seconds between two status calls for one tracking id, where the platform
    #: sets one (Mirakl: once a minute per action). Core never asks sooner: it waits.
    status_interval: float | None = None
    #: The names of the calls a cancellation takes, in order, where it takes more than
    #: one (Shopify: ``orderEditBegin``, ``orderEditSetQuantity``, ``orderEditCommit``);
    #: empty for one call. Shown by ``cancelkit platforms`` and ``translate``; the calls
    #: themselves come from :meth:`PlatformAdapter.next_call`.
    calls: tuple[str, ...] = ()

    @property
    def takes_reason(self) -> bool:
        """Whether the platform has a reason field at all."""
        return bool(self.reasons or self.platform_reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; settings listed by name with their secret flag."""
        data = asdict(self)
        data["settings"] = [
            {"name": s.name, "secret": s.secret, "default": s.default} for s in self.settings
        ]
        data["reasons"] = dict(self.reasons)
        data["platform_reasons"] = list(self.platform_reasons)
        data["required_fields"] = list(self.required_fields)
        data["calls"] = list(self.calls)
        return data


class PlatformAdapter(ABC):
    """Base class of every platform adapter. Subclass it in your own plugin."""

    #: Plugin name used on the command line (``-p NAME``).
    name: ClassVar[str]
    #: One line for ``cancelkit platforms``.
    title: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: marshmallow schema for ``options``; unknown keys are refused.
    options_schema: ClassVar[type[Schema] | None] = None
    #: Settings are read as ``CANCELKIT_<settings_name>_*`` (shared by sibling adapters).
    settings_name: ClassVar[str | None] = None
    #: Response headers that carry the platform's id for a request, the first one
    #: present wins; core puts it in ``details["request_id"]`` of every result built
    #: from an answer (quote it to the platform's support). Declare the header your
    #: platform documents; X-Request-Id, the common convention, is only the default.
    request_id_headers: ClassVar[tuple[str, ...]] = ("X-Request-Id",)

    @property
    def logger(self) -> logging.Logger:
        """This platform's logger, ``cancelkit.platform.<name>`` (records are scrubbed)."""
        return platform_logger(self.name)

    # -- checking -----------------------------------------------------------
    def validate(self, request: CancelRequest) -> None:
        """Refuse what this platform cannot express, naming every field and why."""
        problems = self.problems(request)
        if problems:
            raise InvalidRequestError(problems)

    def problems(self, request: CancelRequest) -> list[FieldError]:
        """Every reason this platform cannot take ``request`` (empty when it can)."""
        caps = self.capabilities
        found: list[FieldError] = []
        applied = request.reasons()
        for path in caps.required_fields:
            found.extend(self._missing(request, path, applied))
        for index, (line, reason, raw) in enumerate(applied):
            if line is None:  # scope: all_pending, the request's own reason
                found.extend(self._reason_problems(reason, raw))
                continue
            if not caps.fractional_quantity and line.quantity != line.quantity.to_integral_value():
                found.append(
                    FieldError(
                        f"lines[{index}].quantity", f"{self.name} takes whole quantities only"
                    )
                )
            # Blame the line only when the reason came from the line itself.
            found.extend(
                FieldError(
                    f"lines[{index}].{e.path}" if getattr(line, e.path) else e.path, e.message
                )
                for e in self._reason_problems(reason, raw)
            )
        if request.scope == "all_pending" and not caps.all_pending:
            found.append(
                FieldError("scope", f"{self.name} cannot cancel all pending lines; list the lines")
            )
        found.extend(self._option_problems(request))
        return _dedupe(found)

    def _missing(
        self,
        request: CancelRequest,
        path: str,
        applied: tuple[tuple[Line | None, str | None, str | None], ...],
    ) -> list[FieldError]:
        message = f"required by {self.name}"
        if path == "reason":  # satisfied per line too, or by a raw platform_reason
            given = all(reason or raw for _, reason, raw in applied)
            return [] if given else [FieldError(path, message)]
        if path.startswith("lines[]."):
            attribute = path.removeprefix("lines[].")
            return [
                FieldError(f"lines[{i}].{attribute}", message)
                for i, line in enumerate(request.lines)
                if getattr(line, attribute) in (None, "", ())
            ]
        return [] if getattr(request, path) not in (None, "") else [FieldError(path, message)]

    def _option_problems(self, request: CancelRequest) -> list[FieldError]:
        if self.options_schema is None:
            return [
                FieldError(f"options.{k}", f"unknown option for {self.name}")
                for k in request.options
            ]
        try:
            self.options_schema().load(request.options)
        except ValidationError as error:
            return flatten_messages(error.messages, "options")
        return []

    def options(self, request: CancelRequest) -> dict[str, Any]:
        """``request.options`` loaded through :attr:`options_schema` (defaults filled)."""
        return dict(self.options_schema().load(request.options)) if self.options_schema else {}

    # -- reasons ------------------------------------------------------------
    def reason_value(self, request: CancelRequest, line: Line | None) -> str | None:
        """The platform reason for ``line``: raw ``platform_reason``, else the mapped one.

        Raises InvalidRequestError where there is none (``validate`` has refused such
        requests already).
        """
        return self._platform_value(request.reason_for(line), request.platform_reason_for(line))

    def _reason_problems(self, reason: str | None, raw: str | None) -> list[FieldError]:
        try:
            self._platform_value(reason, raw)
        except InvalidRequestError as error:
            return list(error.errors)
        return []

    def _platform_value(self, reason: str | None, raw: str | None) -> str | None:
        caps = self.capabilities
        if raw is not None:
            # Platforms add reason values (Mirakl's and Carriyo's enums grow): a raw
            # value we do not know yet goes out as given, with a warning. Only a
            # platform with no reason field at all refuses one.
            if not caps.platform_reasons:
                raise InvalidRequestError(
                    FieldError("platform_reason", f"{self.name} takes no cancellation reason")
                )
            return raw
        if not caps.takes_reason or reason is None:
            return None
        if reason in caps.reasons:
            return caps.reasons[reason]
        if caps.other_reason:
            return caps.other_reason
        accepted = ", ".join(r for r in REASONS if r in caps.reasons)
        raise InvalidRequestError(
            FieldError(
                "reason", f"{reason} has no faithful {self.name} equivalent; accepted: {accepted}"
            )
        )

    def warnings(self, request: CancelRequest) -> list[str]:
        """Warnings to put on the result (reasons ignored or approximated)."""
        caps = self.capabilities
        applied = request.reasons()
        reasons = sorted({reason for _, reason, _ in applied if reason})
        if not caps.takes_reason and reasons:
            return [f"{self.name} takes no cancellation reason; {', '.join(reasons)} ignored"]
        found = []
        approximated = [r for r in reasons if r not in caps.reasons]
        if caps.other_reason and approximated:
            found.append(f"{', '.join(approximated)} sent as {caps.other_reason}")
        raw = {raw for _, _, raw in applied if raw}
        unknown = sorted(r for r in raw if r not in caps.platform_reasons)
        if unknown:
            found.append(
                f"platform_reason {', '.join(map(repr, unknown))} is not one cancelkit knows "
                f"for {self.name} (known: {', '.join(caps.platform_reasons)}); sent as given"
            )
        return found

    # -- the platform's own jobs --------------------------------------------
    @abstractmethod
    def translate(self, request: CancelRequest, settings: Settings) -> HttpCall:
        """The exact HTTP call for ``request``, secrets as ``***`` placeholders."""

    @abstractmethod
    def normalise(self, request: CancelRequest, response: HttpResponse) -> CancelResult:
        """The canonical result for the platform's answer to the cancel call."""

    @abstractmethod
    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """How calls to this platform are authenticated; ``clock`` times token expiry."""

    def next_call(
        self, request: CancelRequest, settings: Settings, answers: Sequence[HttpResponse]
    ) -> HttpCall | None:
        """The next call of a cancellation that takes several, or None when it is done.

        Core sends :meth:`translate`'s call first. After each readable 2xx answer it
        asks for the next call, passing every answer so far (oldest first), so a call
        can carry ids from the answers before it (put them in the URL with
        :func:`~cancelkit.core.http.path_segment`). Return None to end the sequence:
        the last answer goes to :meth:`normalise`. An answer that is not 2xx ends the
        sequence by itself and goes to :meth:`normalise`, which reads the error; so does
        a 2xx answer that reports an error in its body (GraphQL ``userErrors``) when
        this returns None for it. The default, None, is one call.

        Every call of the sequence counts as changing the platform: one sent that
        gets no answer, or any failure after the first call left, makes the outcome
        ``unknown`` and nothing is sent again (Shopify's ``orderEditBegin`` opens an
        edit a second send would open twice).
        """
        return None

    def lookup_call(self, request: CancelRequest, settings: Settings) -> HttpCall | None:
        """A read the cancel depends on, sent before it; None (the default) for none.

        Core sends it read-only; a 2xx answer goes to :meth:`complete`, any other
        outcome ends the send with nothing cancelled. Carriyo's ``scope:
        all_pending`` reads the order to list its pending lines this way.
        """
        return None

    def complete(self, request: CancelRequest, answer: HttpResponse) -> CancelRequest:
        """The request to cancel, completed from the 2xx answer to :meth:`lookup_call`.

        What it returns is validated again like any request; raise
        InvalidRequestError when the answer leaves nothing to cancel.
        """
        raise NotImplementedError(f"{self.name} has a lookup_call but no complete")

    def status_call(self, tracking_id: str, settings: Settings) -> HttpCall:
        """The HTTP call that asks about an asynchronous tracking id.

        Only called when ``capabilities.has_status`` is True: override both together.
        """
        raise NotImplementedError(f"{self.name} declares has_status but has no status_call")

    def normalise_status(self, tracking_id: str, response: HttpResponse) -> CancelResult:
        """The canonical result for the answer to :meth:`status_call`."""
        raise NotImplementedError

    def rate_limiter(self, call: HttpCall, settings: Settings) -> RateLimiter | None:
        """The client-side limiter ``call`` must pass before it is sent, if any."""
        return None

    def poll_backoff(self) -> tuple[float, float]:
        """(factor, ceiling in seconds) by which ``send --wait`` stretches its polls."""
        return (1.0, 0.0)

    def is_auth_failure(self, response: HttpResponse) -> bool:
        """True when the answer means our credentials were refused (401 or 403 by default)."""
        return response.status in (401, 403)

    def response_details(self, response: HttpResponse) -> dict[str, Any]:
        """Platform extras worth keeping from any answer (rate-limit headers, say).

        Core adds them to the ``details`` of every result built from an answer,
        whether core or ``normalise`` read it. Never return a secret.
        """
        return {}

    def request_id(self, response: HttpResponse) -> str | None:
        """The platform's id for this request (from :attr:`request_id_headers`), or None.

        Override it where the platform puts the id in the body instead.
        """
        for name in self.request_id_headers:
            value = response.header(name)
            if value and value.strip():
                return value.strip()
        return None

    def is_rate_limited(self, response: HttpResponse) -> bool:
        """True when the platform refused to process the call for now (429 by default).

        Core retries 429 (and 503 with ``Retry-After``) within its bounds; any other
        answer this marks (a platform's own quota error) is reported as rate limited
        at once. Either way the adapter's ``normalise`` never sees it.
        """
        return response.status == 429

    def is_throttled(self, response: HttpResponse) -> bool:
        """True when an answer that looks successful says the call was not run for now.

        GraphQL platforms answer 200 with a ``THROTTLED`` error when a query costs more
        than the bucket holds. Core treats such an answer exactly as a 429: it waits
        :meth:`retry_after`, tries again within its bounds, then reports rate limited;
        ``normalise`` never sees it. Only say True when the platform documents that a
        throttled call changed nothing. False by default.
        """
        return False

    def retry_after(self, response: HttpResponse) -> float | None:
        """Seconds (int, float or Decimal) to wait before the next try, or None for unsaid.

        By default the ``Retry-After`` header (seconds or an HTTP date). Override it where
        the platform says it elsewhere: a GraphQL cost limit's ``throttleStatus`` gives
        what is missing and the restore rate per second.
        """
        return retry_after_seconds(response)

    def answer_is_readable(self, response: HttpResponse) -> bool:
        """True when ``normalise`` can read this answer (by default: its body is JSON).

        Core reports an unreadable answer (empty, HTML, truncated) as an unknown
        outcome without calling ``normalise``.
        """
        return response.json() is not None

    def unknown(
        self, request: CancelRequest, why: str, http_status: int | None, sends: int = 1
    ) -> CancelResult:
        """Result for an answer that leaves the outcome unknown (never resent)."""
        return unknown_result(
            self.name,
            request,
            why,
            http_status,
            self.how_to_check(request),
            sends,
            self.capabilities.resend_safe,
        )

    def how_to_check(self, request: CancelRequest) -> str:
        """Tells a person how to find out whether an unknown cancel was applied."""
        return f"check the order {request.order_id or request.fulfillment_order_id} in {self.title}"

    def poll_interval(self, settings: Settings) -> float:
        """Seconds between status polls for ``send --wait``."""
        return float(settings.get("poll_interval") or 60)


def _dedupe(errors: list[FieldError]) -> list[FieldError]:
    return list(dict.fromkeys(errors))
