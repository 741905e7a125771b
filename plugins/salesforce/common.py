"""What the two Salesforce adapters share: settings, auth, URLs and error bodies.

Sources: seeds 000 and 001, shared/platforms/salesforce.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from cancelkit.plugin import (
    BEARER,
    Authenticator,
    CancelRequest,
    CancelResult,
    ClientCredentialsToken,
    ConfigurationError,
    HttpCall,
    HttpResponse,
    PlatformAdapter,
    ResultError,
    Setting,
    Settings,
    StaticHeaders,
    json_headers,
    rejected_result,
)

#: Default API version: the newest generally available version in the docs read
#: (v66.0, Spring '26; v67.0 was in preview). Override with CANCELKIT_SALESFORCE_API_VERSION.
DEFAULT_API_VERSION = "66.0"
#: cancel-item and the core action exist from API version 48.0 (Spring '20).
MINIMUM_API_VERSION = Decimal("48.0")
DEFAULT_LOGIN_URL = "https://login.salesforce.com"

SETTINGS = (
    Setting("instance_url", "org URL, e.g. https://mydomain.my.salesforce.com", kind="url"),
    Setting("access_token", "an access token (or session id) given directly", secret=True),
    Setting("client_id", "connected app consumer key (client credentials flow)"),
    Setting("client_secret", "connected app consumer secret", secret=True),
    Setting(
        "login_url", "where tokens are requested (My Domain URL)", DEFAULT_LOGIN_URL, kind="url"
    ),
    Setting("api_version", "REST API version, 48.0 or later", DEFAULT_API_VERSION),
    Setting("flow_api_name", "API name of the flow that wraps cancelFulfillmentOrderItem"),
    Setting("timeout", "read timeout in seconds", kind="seconds"),
)


def api_version(settings: Settings) -> str:
    """The configured API version, refused below 48.0 or when malformed."""
    raw = settings["api_version"].removeprefix("v")
    try:
        version = Decimal(raw)
    except ArithmeticError:
        version = Decimal("NaN")
    if not version.is_finite() or version < MINIMUM_API_VERSION:
        raise ConfigurationError(
            f"salesforce: api_version {settings['api_version']!r} is not supported; "
            f"cancel-item needs {MINIMUM_API_VERSION} or later (e.g. {DEFAULT_API_VERSION})"
        )
    return f"{version:.1f}"


def call_base(settings: Settings) -> str:
    """Where calls go before auth: the instance URL, else the login URL.

    With the client credentials flow the token answer's ``instance_url`` replaces
    this base at send time (see :class:`SalesforceToken`).
    """
    return (settings.get("instance_url") or settings["login_url"]).rstrip("/")


def data_url(settings: Settings) -> str:
    """``{base}/services/data/v{NN.N}``."""
    return f"{call_base(settings)}/services/data/v{api_version(settings)}"


class SalesforceToken(ClientCredentialsToken):
    """Client credentials at ``{login_url}/services/oauth2/token``; the answer sets the instance."""

    def __init__(self, settings: Settings, clock: Callable[[], float]):
        super().__init__(
            f"{settings['login_url'].rstrip('/')}/services/oauth2/token",
            {
                "grant_type": "client_credentials",
                "client_id": settings.require("client_id"),
                "client_secret": settings.require("client_secret"),
            },
            platform="salesforce",
            clock=clock,
            # Salesforce does not say how long a token lives: keep it until a 401.
            default_lifetime=None,
        )
        self._base = call_base(settings)

    def rebase(self, call: HttpCall) -> HttpCall:
        """Send to the ``instance_url`` the token answer named."""
        instance = self.answer.get("instance_url")
        if isinstance(instance, str) and instance and call.url.startswith(self._base):
            return HttpCall(
                call.method,
                instance.rstrip("/") + call.url[len(self._base) :],
                call.headers,
                call.body,
            )
        return call


def make_authenticator(settings: Settings, clock: Callable[[], float]) -> Authenticator:
    """An access token given directly (with ``instance_url``), else client credentials."""
    if settings.get("access_token"):
        if not settings.get("instance_url"):
            raise ConfigurationError(
                "salesforce: CANCELKIT_SALESFORCE_ACCESS_TOKEN needs "
                "CANCELKIT_SALESFORCE_INSTANCE_URL"
            )
        return StaticHeaders({"Authorization": f"Bearer {settings['access_token']}"})
    if not (settings.get("client_id") or settings.get("client_secret")):
        raise ConfigurationError(
            "salesforce: no credentials; set CANCELKIT_SALESFORCE_ACCESS_TOKEN and _INSTANCE_URL, "
            "or CANCELKIT_SALESFORCE_CLIENT_ID and _CLIENT_SECRET (and _LOGIN_URL)"
        )
    return SalesforceToken(settings, clock)


# -- answers -------------------------------------------------------------------
def refuses_credentials(response: HttpResponse) -> bool:
    """401, and 403 unless it is the org's API limit (which is a rate limit)."""
    if response.status == 401:
        return True
    return response.status == 403 and "REQUEST_LIMIT_EXCEEDED" not in error_codes(response)


def error_codes(response: HttpResponse) -> set[str]:
    """Every ``errorCode`` / ``statusCode`` in a Salesforce error body."""
    return {e.code for e in error_items(response.json()) if e.code}


def error_items(payload: Any) -> tuple[ResultError, ...]:
    """Errors from any Salesforce error shape.

    Handles the generic ``[{"errorCode", "message"}]`` array, "Error with Output"
    (``{"message", "enhancedErrorType", "output": {"errors", "success"}}``, alone or
    inside an array), and ``{"errors": [...], "success": false}`` output bodies.
    """
    items = payload if isinstance(payload, list) else [payload]
    found: list[ResultError] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        output = item.get("output")
        nested = output.get("errors") if isinstance(output, Mapping) else None
        if item.get("errorCode") or (item.get("message") and not nested):
            found.append(_one(item))
        for error in nested or item.get("errors") or ():
            if isinstance(error, Mapping):
                found.append(_one(error))
    return tuple(found)


def _one(error: Mapping[str, Any]) -> ResultError:
    code = error.get("errorCode") or error.get("statusCode")
    fields = error.get("fields")
    return ResultError(
        str(error.get("message") or code or "error"),
        str(code) if code else None,
        ",".join(str(f) for f in fields) if isinstance(fields, list) and fields else None,
    )


def limit_info(response: HttpResponse) -> dict[str, str]:
    """``Sforce-Limit-Info: api-usage=10018/100000`` -> ``{"api-usage": "10018/100000"}``."""
    raw = response.header("Sforce-Limit-Info") or ""
    pairs = (part.strip().split("=", 1) for part in raw.split(",") if "=" in part)
    return {key: value for key, value in pairs}


def refused(platform: str, request: CancelRequest, response: HttpResponse) -> CancelResult:
    """The shared reading of a non-2xx answer core passed on: the platform's refusal."""
    status = response.status
    errors = error_items(response.json())
    if not errors:
        errors = (ResultError(f"HTTP {status} without a Salesforce error body", f"HTTP_{status}"),)
    return rejected_result(platform, request, errors, status)


class SalesforceAdapter(PlatformAdapter):
    """What both Salesforce adapters share: one org's settings, auth and answer handling."""

    settings_name = "salesforce"

    def authenticator(self, settings: Settings, clock: Callable[[], float]) -> Authenticator:
        """Access token + instance URL, or client credentials (one org for both plugins)."""
        return make_authenticator(settings, clock)

    def is_auth_failure(self, response: HttpResponse) -> bool:
        """403 REQUEST_LIMIT_EXCEEDED is a rate limit, not a credentials problem."""
        return refuses_credentials(response)

    def is_rate_limited(self, response: HttpResponse) -> bool:
        """429, and the org's spent API limit: 403 ``REQUEST_LIMIT_EXCEEDED``."""
        if response.status == 429:
            return True
        return response.status == 403 and "REQUEST_LIMIT_EXCEEDED" in error_codes(response)

    def response_details(self, response: HttpResponse) -> dict[str, Any]:
        """``Sforce-Limit-Info`` of every answer, as ``limit_info``."""
        usage = limit_info(response)
        return {"limit_info": usage} if usage else {}

    @staticmethod
    def post(url: str, body: Any) -> HttpCall:
        """A JSON POST with the masked bearer header."""
        return HttpCall("POST", url, json_headers(BEARER), body)
