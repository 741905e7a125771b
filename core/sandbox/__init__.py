"""A local, stateful emulator of every platform (like moto's server mode)."""

from .emulator import Emulator, EmuRequest, EmuResponse
from .server import Fault, Sandbox

__all__ = ["EmuRequest", "EmuResponse", "Emulator", "Fault", "Sandbox"]
