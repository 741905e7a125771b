"""cancelkit.testing: the plugin author kit (a pytest plugin and a conformance suite).

Installing cancelkit with the ``testing`` extra gives a plugin's tests:

* fixtures named ``cancelkit_*`` (see :mod:`cancelkit.testing.plugin`): a controlled
  clock, a sandbox with the installed emulators, a client bound to it, cassette
  replay with the network blocked;
* :class:`PlatformConformance`, a base class a test module subclasses with a few
  attributes to get the checks every platform plugin must pass.

Importing this package is cheap (pytest imports it in every run through the
``pytest11`` entry point): each name loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the module of this package that defines it
_EXPORTS = {
    "ControlledClock": ".clock",
    "FAULT_MATRIX": ".faults",
    "FaultCase": ".faults",
    "HOSTILE_IDS": ".hostile",
    "PlatformConformance": ".conformance",
    "Replayer": ".recording",
    "loopback_only": ".network",
    "record_cassette": ".recording",
}


def __getattr__(name: str) -> Any:
    """Import a name of the kit the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "FAULT_MATRIX",
    "HOSTILE_IDS",
    "ControlledClock",
    "FaultCase",
    "PlatformConformance",
    "Replayer",
    "loopback_only",
    "record_cassette",
]

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .clock import ControlledClock
    from .conformance import PlatformConformance
    from .faults import FAULT_MATRIX, FaultCase
    from .hostile import HOSTILE_IDS
    from .network import loopback_only
    from .recording import Replayer, record_cassette
