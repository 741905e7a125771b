"""cancelkit: one canonical order-line cancellation, every commerce platform.

::

    import cancelkit

    call = cancelkit.translate(request_dict, "mirakl")      # preview, sends nothing
    result = cancelkit.send(request_dict, "mirakl")         # perform it
    later = cancelkit.status("mirakl", result.tracking_id)  # async follow-up
    final = cancelkit.wait(result)                          # or poll until final

    with cancelkit.sandbox() as box:                        # no account needed
        client = cancelkit.Client(config=box.client_config())
        client.send(request_dict, "mirakl")

Names are imported on first use, so ``import cancelkit`` (and ``cancelkit --help``)
stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "translate": "cancelkit.core.api",
    "send": "cancelkit.core.api",
    "status": "cancelkit.core.api",
    "wait": "cancelkit.core.api",
    "sandbox": "cancelkit.core.api",
    "Client": "cancelkit.core.client",
    "CancelRequest": "cancelkit.core.model",
    "CancelResult": "cancelkit.core.model",
    "Line": "cancelkit.core.model",
    "LineResult": "cancelkit.core.model",
    "ResultError": "cancelkit.core.model",
    "Tax": "cancelkit.core.model",
    "HttpCall": "cancelkit.core.http",
    "Capabilities": "cancelkit.core.adapter",
    "PlatformAdapter": "cancelkit.core.adapter",
    "PluginRegistry": "cancelkit.core.registry",
    "Sandbox": "cancelkit.core.sandbox.server",
    "hookimpl": "cancelkit.core.hookspecs",
    "load_request": "cancelkit.core.schemas",
    "dump_result": "cancelkit.core.schemas",
    "errors": "cancelkit.errors",
}

__all__ = [
    "CancelRequest",
    "CancelResult",
    "Capabilities",
    "Client",
    "HttpCall",
    "Line",
    "LineResult",
    "PlatformAdapter",
    "PluginRegistry",
    "ResultError",
    "Sandbox",
    "Tax",
    "dump_result",
    "errors",
    "hookimpl",
    "load_request",
    "sandbox",
    "send",
    "status",
    "translate",
    "wait",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cancelkit' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if name == "errors" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from . import errors
    from .core.adapter import Capabilities, PlatformAdapter
    from .core.api import sandbox, send, status, translate, wait
    from .core.client import Client
    from .core.hookspecs import hookimpl
    from .core.http import HttpCall
    from .core.model import CancelRequest, CancelResult, Line, LineResult, ResultError, Tax
    from .core.registry import PluginRegistry
    from .core.sandbox.server import Sandbox
    from .core.schemas import dump_result, load_request
