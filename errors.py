"""Public home of cancelkit's exception hierarchy (``cancelkit.errors``)."""

from .core.errors import (
    AuthenticationError,
    CancelkitError,
    ConfigurationError,
    FieldError,
    InvalidRequestError,
    PluginError,
    TransportError,
    UnknownPlatformError,
)

__all__ = [
    "AuthenticationError",
    "CancelkitError",
    "ConfigurationError",
    "FieldError",
    "InvalidRequestError",
    "PluginError",
    "TransportError",
    "UnknownPlatformError",
]
