"""One exception hierarchy for everything cancelkit raises: ``cancelkit.errors``.

A business refusal by a platform is a *result* (outcome ``rejected``), never an
exception. Exceptions are for bad input, bad configuration or credentials, and
transport failures before anything was sent. Each class carries the CLI exit code
it maps to, so the command line and the library can never disagree.
"""

from __future__ import annotations

from typing import NamedTuple


class CancelkitError(Exception):
    """Base class of every error cancelkit raises."""

    exit_code = 3


class FieldError(NamedTuple):
    """One problem with one field of the input: ``lines[1].quantity: must be > 0``.

    A named tuple (immutable, hashable, compared by value): errors are imported by
    every command, and a dataclass would load ``dataclasses`` for ``--help`` too.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidRequestError(CancelkitError, ValueError):
    """The canonical request (or a CLI argument) is invalid; nothing was sent."""

    exit_code = 2

    def __init__(self, errors: list[FieldError] | FieldError | str):
        if isinstance(errors, str):
            errors = [FieldError("", errors)]
        elif isinstance(errors, FieldError):
            errors = [errors]
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class UnknownPlatformError(InvalidRequestError):
    """No loaded plugin provides the platform that was asked for."""


class ConfigurationError(CancelkitError):
    """Settings or credentials are missing or malformed; nothing was sent."""

    exit_code = 4


class AuthenticationError(ConfigurationError):
    """The platform refused our credentials (token request failed, 401/403)."""


class ServiceUnavailableError(ConfigurationError):
    """A service cancelkit relies on did not answer: the ledger's database, or the shared
    limiter's Redis. An outage, not a mistake in the settings: trying again later is
    safe (a claim whose call had left is held by the ledger, never sent twice)."""


class TransportError(CancelkitError):
    """The call could not be delivered (connection refused, DNS, TLS).

    Raised only when the platform cannot have received the cancellation, so the
    caller may safely try again later.
    """

    exit_code = 3


class PluginError(CancelkitError):
    """A plugin misbehaved (bad return value from a hook)."""

    exit_code = 3
