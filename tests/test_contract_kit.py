"""The sandbox kit's contract checker and clock, which every emulator relies on."""

from __future__ import annotations

import pytest
import requests

from cancelkit.core.sandbox.server import Sandbox
from cancelkit.plugin import Contract, Violation

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$ref": "#/$defs/Request",
    "$defs": {
        "Request": {
            "type": "object",
            "required": ["lines"],
            "properties": {"lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}},
        },
        "Line": {
            "type": "object",
            "required": ["id", "quantity"],
            "properties": {"id": {"type": "string"}, "quantity": {"type": "integer"}},
        },
    },
}


def test_a_conforming_body_has_no_violations() -> None:
    assert Contract(SCHEMA).violations({"lines": [{"id": "a", "quantity": 1}]}) == []


def test_violations_name_the_field_and_the_reason() -> None:
    found = Contract(SCHEMA).violations({"lines": [{"id": 7, "quantity": "2"}]})
    assert found == [
        Violation("lines[0].id", "7 is not of type 'string'"),
        Violation("lines[0].quantity", "'2' is not of type 'integer'"),
    ]


def test_a_missing_field_is_reported_at_its_parent() -> None:
    (violation,) = Contract(SCHEMA).violations({})
    assert violation.field == "(body)" and "'lines' is a required property" in violation.message


def test_a_definition_can_be_checked_on_its_own() -> None:
    contract = Contract(SCHEMA)
    assert contract.conforms({"id": "a", "quantity": 1}, definition="Line")
    assert not contract.conforms({"id": "a"}, definition="Line")
    with pytest.raises(ValueError, match="no definition 'Nope'"):
        contract.violations({}, definition="Nope")


def test_every_shipped_contract_is_a_valid_schema() -> None:
    from helpers import ROOT

    shipped = sorted(ROOT.glob("plugins/*/contracts/*.schema.json"))
    assert len(shipped) == 5
    for path in shipped:
        package = f"cancelkit.plugins.{path.parent.parent.name}"
        contract = Contract.packaged(package, f"contracts/{path.name}")
        contract.conforms({})  # builds (and so checks) the schema


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_sandbox_clock_is_injectable_and_advances() -> None:
    clock = FakeClock()
    box = Sandbox([], clock=clock)
    assert box.now() == 1_000_000.0
    box.advance(90)
    clock.now += 10
    assert box.now() == 1_000_100.0
    for bad in (-1, float("nan"), float("inf"), 1e308):
        with pytest.raises(ValueError, match="advance"):
            box.advance(bad)


def test_reset_takes_the_clock_back_to_its_source() -> None:
    clock = FakeClock()
    box = Sandbox([], clock=clock)
    box.advance(300)
    box.reset()
    assert box.now() == clock.now


def test_the_clock_advances_over_http() -> None:
    with Sandbox([], clock=FakeClock()) as box:
        answer = requests.post(f"{box.url}/_sandbox/clock", json={"advance": 60}, timeout=5)
        assert answer.status_code == 200 and answer.json() == {"now": 1_000_060.0}
        refused = requests.post(f"{box.url}/_sandbox/clock", json={"advance": -5}, timeout=5)
        assert refused.status_code == 400 and "advance" in refused.json()["message"]
