"""The fault kinds the sandbox can inject, as plain constants.

Apart from :mod:`.faults` so that ``cancelkit --help`` can offer them as choices
without building the ``Fault`` dataclass.
"""

#: See :mod:`cancelkit.core.sandbox.server` for what each kind does.
FAULT_KINDS = (
    "429",
    "503",
    "500",
    "401",
    "quota",
    "redirect",
    "slow",
    "html",
    "malformed",
    "empty",
    "partial",
    "reset",
)
#: Faults answered instead of the request: the emulator never processes it.
REFUSING_KINDS = ("429", "503", "500", "401", "quota", "redirect")
