"""Default hook implementations: delegate to the platform's own adapter.

Registered ``trylast`` so any plugin can take over a step with a plain or
``tryfirst`` implementation.
"""

from __future__ import annotations

from .adapter import PlatformAdapter
from .config import Settings
from .hookspecs import hookimpl
from .http import HttpCall, HttpResponse
from .model import CancelRequest, CancelResult


@hookimpl(trylast=True)
def cancelkit_translate(
    request: CancelRequest, adapter: PlatformAdapter, settings: Settings
) -> HttpCall:
    """Ask the adapter for its call."""
    return adapter.translate(request, settings)


@hookimpl(trylast=True)
def cancelkit_normalise(
    request: CancelRequest, response: HttpResponse, adapter: PlatformAdapter
) -> CancelResult:
    """Ask the adapter to read the answer."""
    return adapter.normalise(request, response)


@hookimpl(trylast=True)
def cancelkit_normalise_status(
    tracking_id: str, response: HttpResponse, adapter: PlatformAdapter
) -> CancelResult:
    """Ask the adapter to read the status answer."""
    return adapter.normalise_status(tracking_id, response)
