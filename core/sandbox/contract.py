"""A platform's published request contract, for emulators to judge bodies by.

An emulator must refuse what the real platform would refuse, whatever the plugin
believes. So it checks every request body against the platform's *published*
schema (shipped beside the plugin as ``contracts/*.schema.json``, copied from the
platform's own document with the source named in ``$comment``), never against
constants imported from the adapter: a test whose judge shares the code under test
cannot disagree with it.

jsonschema is imported on first use, so only a running sandbox pays for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from .emulator import EmuRequest
    from .refusal import Refusal

#: jsonschema's message for a missing property, reported at the parent object.
_MISSING = re.compile(r"'(?P<name>[^']+)' is a required property")


@dataclass(frozen=True)
class Violation:
    """One way a body breaks the contract: where (``cancelations[0].quantity``) and why."""

    field: str
    message: str

    @property
    def missing(self) -> str | None:
        """The name of the missing property, when this violation is one."""
        found = _MISSING.fullmatch(self.message)
        return None if found is None else found["name"]

    @property
    def target(self) -> str:
        """Where the violation is, naming a missing property itself.

        jsonschema reports ``'price' is a required property`` at ``cancelations[0]``;
        platforms name ``cancelations[0].price``.
        """
        missing = self.missing
        if missing is None:
            return self.field
        return missing if self.field == "(body)" else f"{self.field}.{missing}"


class Contract:
    """A JSON Schema (draft 2020-12) that request bodies are checked against."""

    def __init__(self, schema: Mapping[str, Any], *, name: str = "contract") -> None:
        self.schema = schema
        self.name = name

    @classmethod
    def packaged(cls, package: str, filename: str) -> Contract:
        """The schema ``filename`` shipped as data of ``package``.

        ``Contract.packaged("cancelkit.plugins.mirakl", "contracts/cancel.schema.json")``.
        """
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
        return cls(json.loads(text), name=filename)

    @cached_property
    def _validators(self) -> dict[str | None, Validator]:
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(self.schema)
        validators: dict[str | None, Validator] = {None: Draft202012Validator(self.schema)}
        for name in self.schema.get("$defs", {}):
            # The definition as its own root, its siblings still reachable by $ref.
            rooted = {"$defs": self.schema["$defs"], "$ref": f"#/$defs/{name}"}
            validators[name] = Draft202012Validator(rooted)
        return validators

    def violations(self, body: Any, *, definition: str | None = None) -> list[Violation]:
        """Every violation of ``body``, in document order; empty when it conforms.

        ``definition`` checks against ``#/$defs/<definition>`` instead of the root.
        """
        try:
            validator = self._validators[definition]
        except KeyError:
            raise ValueError(f"{self.name} has no definition {definition!r}") from None
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        return [Violation(_dotted(error.absolute_path), error.message) for error in errors]

    def conforms(self, body: Any, *, definition: str | None = None) -> bool:
        """True when ``body`` satisfies the contract."""
        return not self.violations(body, definition=definition)

    def check(
        self,
        body: Any,
        refuse: Callable[[Sequence[Violation]], Refusal],
        *,
        definition: str | None = None,
    ) -> None:
        """Raise ``refuse(violations)``, the platform's answer, if ``body`` breaks the contract."""
        violations = self.violations(body, definition=definition)
        if violations:
            raise refuse(violations)

    def checked_body(
        self,
        request: EmuRequest,
        *,
        refuse: Callable[[Sequence[Violation]], Refusal],
        not_json: Refusal,
        definition: str | None = None,
    ) -> Any:
        """The request's JSON body once it meets the contract; else raises the platform's Refusal.

        ``not_json`` is raised (a copy) for a body that is not JSON, ``refuse(violations)``
        for one that breaks the contract.
        """
        try:
            body = request.json()
        except ValueError:
            raise not_json.copy() from None
        self.check(body, refuse, definition=definition)
        return body


def _dotted(path: Any) -> str:
    """``["cancelations", 0, "quantity"]`` -> ``cancelations[0].quantity``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"
