"""What the two Salesforce adapters share: settings, auth, URLs, error bodies, the OIS note.

Sources: seeds 000 and 001, shared/platforms/salesforce.md, and Salesforce Help
"OAuth 2.0 Client Credentials Flow for Server-to-Server Integration"
(https://help.salesforce.com/apex/HTViewHelpDoc?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

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
#: Answer headers holding Salesforce's id for a request (``details["request_id"]``), the
#: first present wins. Not in the REST API's "Headers" reference (which lists
#: Sforce-Limit-Info and request headers only): X-SFDC-Request-Id is observed on real
#: Salesforce answers (server sfdcedge), with the same value in X-Request-Id, so both
#: are read. UNCONFIRMED in Salesforce's documentation.
REQUEST_ID_HEADERS = ("X-SFDC-Request-Id", "X-Request-Id")
#: cancel-item and the core action exist from API version 48.0 (Spring '20).
MINIMUM_API_VERSION = Decimal("48.0")
#: Where a translated call points when no org URL is configured (``translate`` needs
#: none): Salesforce's own placeholder for a My Domain URL.
PLACEHOLDER_ORG_URL = "https://MyDomainName.my.salesforce.com"
#: The generic login hosts. The client credentials flow is served only on the org's
#: My Domain: these answer ``invalid_grant`` ("request not supported on this domain").
GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")

#: Seeds 000 and 001: cancel-item "doesn't cancel the associated OrderItemSummaries, so
#: reallocate the canceled quantities to a new FulfillmentOrder"; the core action "only
#: reduces their allocated quantities". Every Salesforce result says so.
ORDER_ITEM_SUMMARIES_WARNING = (
    "salesforce: cancel-item (and its Flow core action) only removes quantity from the "
    "fulfillment order, lowering the order item summaries' allocated quantity; it does not "
    "cancel the OrderItemSummaries. Reallocate the quantity to a new fulfillment order, or "
    "cancel it on the order summary (submit-cancel)."
)


def order_item_summaries_details() -> dict[str, Any]:
    """The ``details`` entry every Salesforce result carries (a fresh dict each time)."""
    return {
        "order_item_summaries": {
            "cancelled": False,
            "allocated_quantity": "lowered by each quantity cancel-item removes",
            "next": "reallocate to a new fulfillment order, or POST "
            "/commerce/order-management/order-summaries/{id}/actions/submit-cancel",
        }
    }


SETTINGS = (
    Setting("instance_url", "org URL, e.g. https://mydomain.my.salesforce.com", kind="url"),
    Setting("access_token", "an access token (or session id) given directly", secret=True),
    Setting("client_id", "external client app consumer key (client credentials flow)"),
    Setting("client_secret", "external client app consumer secret", secret=True),
    Setting(
        "login_url",
        "the org's My Domain URL, where client-credential tokens are requested "
        "(default: INSTANCE_URL)",
        kind="url",
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
    """Where calls go before auth: the instance URL, else the login URL, else a placeholder.

    With the client credentials flow the token answer's ``instance_url`` replaces
    this base at send time (see :class:`SalesforceToken`).
    """
    base = settings.get("instance_url") or settings.get("login_url") or PLACEHOLDER_ORG_URL
    return base.rstrip("/")


def data_url(settings: Settings) -> str:
    """``{base}/services/data/v{NN.N}``."""
    return f"{call_base(settings)}/services/data/v{api_version(settings)}"


class SalesforceToken(ClientCredentialsToken):
    """Client credentials at ``{My Domain}/services/oauth2/token``; the answer sets the instance."""

    def __init__(self, settings: Settings, clock: Callable[[], float]):
        fields = {
            "grant_type": "client_credentials",
            "client_id": settings.require("client_id"),
            "client_secret": settings.require("client_secret"),
        }
        super().__init__(
            f"{my_domain(settings)}/services/oauth2/token",
            fields,
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


def my_domain(settings: Settings) -> str:
    """The org's My Domain URL, where the client credentials flow asks for tokens.

    ``LOGIN_URL``, else ``INSTANCE_URL`` (a My Domain org's instance URL is its My
    Domain). Salesforce serves this flow only on My Domain: the generic login hosts
    answer ``invalid_grant`` ("request not supported on this domain"), so they are
    refused here, before anything is sent, naming the setting.
    """
    for name in ("login_url", "instance_url"):
        url = settings.get(name)
        if not url:
            continue
        host = (urlsplit(url).hostname or "").rstrip(".")
        if host in GENERIC_LOGIN_HOSTS:
            raise ConfigurationError(
                f"salesforce: CANCELKIT_SALESFORCE_{name.upper()} ({name} in the config file) is "
                f"{url}, a generic login host: it answers the client credentials flow with "
                "invalid_grant ('request not supported on this domain'), which Salesforce serves "
                "only on the org's My Domain. Set it to your My Domain URL, e.g. "
                f"{PLACEHOLDER_ORG_URL}"
            )
        return url.rstrip("/")
    raise ConfigurationError(
        "salesforce: CANCELKIT_SALESFORCE_CLIENT_ID needs CANCELKIT_SALESFORCE_LOGIN_URL (or "
        "_INSTANCE_URL): the org's My Domain URL, e.g. "
        f"{PLACEHOLDER_ORG_URL}; the client credentials flow is served only there"
    )


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
            "or CANCELKIT_SALESFORCE_CLIENT_ID, _CLIENT_SECRET and _LOGIN_URL (your My Domain URL)"
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
        listed = nested or item.get("errors")
        for error in listed if isinstance(listed, list) else ():
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
    request_id_headers = REQUEST_ID_HEADERS

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

    def warnings(self, request: CancelRequest) -> list[str]:
        """The reason warnings, and on every result: the order item summaries stay."""
        return [*super().warnings(request), ORDER_ITEM_SUMMARIES_WARNING]

    def response_details(self, response: HttpResponse) -> dict[str, Any]:
        """``Sforce-Limit-Info`` of every answer, as ``limit_info``; the OIS note."""
        usage = limit_info(response)
        return {**({"limit_info": usage} if usage else {}), **order_item_summaries_details()}

    def unknown(
        self, request: CancelRequest, why: str, http_status: int | None, sends: int = 1
    ) -> CancelResult:
        """Unknown, with the OIS note even when no answer came (no response details)."""
        result = super().unknown(request, why, http_status, sends)
        return replace(result, details={**result.details, **order_item_summaries_details()})

    @staticmethod
    def post(url: str, body: Any) -> HttpCall:
        """A JSON POST with the masked bearer header."""
        return HttpCall("POST", url, json_headers(BEARER), body)
