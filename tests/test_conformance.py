"""The conformance suite (cancelkit.testing) run on every built-in platform.

Each class is what an outside plugin writes in its own tests: a few attributes,
and the inherited tests check translation against the published contract, secrets,
ids on the wire, reasons, normalisers under hostile answers, the fault matrix and
the cassettes.
"""

from __future__ import annotations

from pathlib import Path

from cancelkit.core import jsonutil
from cancelkit.plugin import Contract
from cancelkit.plugins.aboutyou import plugin as aboutyou
from cancelkit.plugins.carriyo import plugin as carriyo
from cancelkit.plugins.mirakl import plugin as mirakl
from cancelkit.plugins.salesforce import plugin as salesforce
from cancelkit.testing import PlatformConformance

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"


def examples(*names: str) -> list[dict[str, object]]:
    """``examples/<name>.json``, exact decimals kept."""
    return [jsonutil.loads((ROOT / "examples" / f"{name}.json").read_text()) for name in names]


def contract(folder: str, filename: str) -> Contract:
    """A contract shipped with a built-in plugin."""
    return Contract.packaged(f"cancelkit.plugins.{folder}", f"contracts/{filename}")


class TestMiraklConformance(PlatformConformance):
    platform = "mirakl"
    plugin = mirakl
    contract = contract("mirakl", "mirakl-connect.schema.json")
    examples = examples("mirakl", "mirakl-shipped")
    cassettes = CASSETTES


class TestSalesforceConformance(PlatformConformance):
    platform = "salesforce"
    plugin = salesforce
    contract = contract("salesforce", "salesforce-cancel-item.schema.json")
    cassettes = CASSETTES


class TestSalesforceFlowConformance(PlatformConformance):
    platform = "salesforce-flow"
    plugin = salesforce
    contract = contract("salesforce", "salesforce-flow-invocation.schema.json")
    # One emulated org serves both Salesforce platforms: the flow's scenarios are
    # recorded under salesforce/ (flow_*.yaml), replayed by TestSalesforceConformance.
    cassettes = None


class TestCarriyoConformance(PlatformConformance):
    platform = "carriyo"
    plugin = carriyo
    contract = contract("carriyo", "carriyo-cancel-line-items.schema.json")
    examples = examples("carriyo", "carriyo-out-of-stock")
    cassettes = CASSETTES


class TestAboutYouConformance(PlatformConformance):
    platform = "aboutyou"
    plugin = aboutyou
    contract = contract("aboutyou", "aboutyou-cancel.schema.json")
    examples = examples("aboutyou", "aboutyou-item-ids")
    cassettes = CASSETTES
