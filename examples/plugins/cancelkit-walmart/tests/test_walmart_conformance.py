"""Everything every cancelkit platform plugin must do, from cancelkit.testing."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from cancelkit.plugin import Contract
from cancelkit.testing import PlatformConformance

import cancelkit_walmart.plugin as walmart_plugin


class TestWalmartConformance(PlatformConformance):
    platform = "walmart"
    # ClassVar: mypy takes a module assigned in a class body for an instance variable.
    plugin: ClassVar[object] = walmart_plugin
    contract = Contract.packaged(
        "cancelkit_walmart", "contracts/walmart-cancel-order-lines.schema.json"
    )
    cassettes = Path(__file__).resolve().parent.parent / "cassettes"
