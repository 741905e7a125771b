"""Read the shipped flow's metadata: its variables, its action call, its status.

The flow in ``flows/`` is the published contract of the ``salesforce-flow``
platform: Salesforce accepts exactly the flow's input variables in
``POST /actions/custom/flow/{name}`` and answers with its output variables
(Actions Developer Guide, "Flow Actions": "Input values vary according to the
input variables in that flow ... The response to an invocation includes
Flow__InterviewStatus and any output variables defined in the flow").
The emulator and the tests read the flow through this module; the adapter keeps
its own names, so the three can disagree and a test will say so.

Only the standard library: the emulator and ``cancelkit salesforce flow-package``
use it, ``translate`` never does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The Metadata API namespace every ``.flow-meta.xml`` uses.
NAMESPACE = "http://soap.sforce.com/2006/04/metadata"
FLOWS_DIR = Path(__file__).parent / "flows"
SUFFIX = ".flow-meta.xml"


@dataclass(frozen=True)
class FlowVariable:
    """One ``<variables>`` element (Metadata API type FlowVariable)."""

    name: str
    data_type: str
    is_collection: bool = False
    is_input: bool = False
    is_output: bool = False
    apex_class: str | None = None
    scale: int | None = None


@dataclass(frozen=True)
class ActionCall:
    """One ``<actionCalls>`` element: which action, and what feeds each parameter."""

    name: str
    action_type: str
    #: action input parameter name -> the flow resource it is given
    inputs: Mapping[str, str]
    #: action output parameter name -> the flow variable it is stored in
    outputs: Mapping[str, str]
    connector: str | None
    fault_connector: str | None


@dataclass(frozen=True)
class FlowDefinition:
    """What the org knows of a deployed flow."""

    api_name: str
    label: str
    status: str
    process_type: str
    api_version: str
    variables: tuple[FlowVariable, ...]
    action_calls: tuple[ActionCall, ...]

    @property
    def inputs(self) -> dict[str, FlowVariable]:
        """Variables marked ``isInput``: the only keys an invocation may carry."""
        return {v.name: v for v in self.variables if v.is_input}

    @property
    def outputs(self) -> dict[str, FlowVariable]:
        """Variables marked ``isOutput``: what ``outputValues`` reports."""
        return {v.name: v for v in self.variables if v.is_output}


def _text(element: ET.Element, tag: str) -> str | None:
    return element.findtext(f"{{{NAMESPACE}}}{tag}")


def _flag(element: ET.Element, tag: str) -> bool:
    return _text(element, tag) == "true"


def _reference(parameter: ET.Element) -> str:
    """The element reference a ``<value>`` points at ('' for a literal)."""
    return parameter.findtext(f"{{{NAMESPACE}}}value/{{{NAMESPACE}}}elementReference") or ""


def _target(element: ET.Element, tag: str) -> str | None:
    return element.findtext(f"{{{NAMESPACE}}}{tag}/{{{NAMESPACE}}}targetReference")


def read_flow(path: Path) -> FlowDefinition:
    """Parse ``<ApiName>.flow-meta.xml``; the API name is the file name, as in a project."""
    root = ET.parse(path).getroot()
    if root.tag != f"{{{NAMESPACE}}}Flow":
        raise ValueError(f"{path}: not Flow metadata (root element {root.tag})")
    variables = tuple(
        FlowVariable(
            name=_text(v, "name") or "",
            data_type=_text(v, "dataType") or "",
            is_collection=_flag(v, "isCollection"),
            is_input=_flag(v, "isInput"),
            is_output=_flag(v, "isOutput"),
            apex_class=_text(v, "apexClass"),
            scale=int(_text(v, "scale") or 0) if _text(v, "scale") is not None else None,
        )
        for v in root.findall(f"{{{NAMESPACE}}}variables")
    )
    calls = tuple(
        ActionCall(
            name=_text(a, "name") or "",
            action_type=_text(a, "actionType") or "",
            inputs={
                _text(p, "name") or "": _reference(p)
                for p in a.findall(f"{{{NAMESPACE}}}inputParameters")
            },
            outputs={
                _text(p, "name") or "": _text(p, "assignToReference") or ""
                for p in a.findall(f"{{{NAMESPACE}}}outputParameters")
            },
            connector=_target(a, "connector"),
            fault_connector=_target(a, "faultConnector"),
        )
        for a in root.findall(f"{{{NAMESPACE}}}actionCalls")
    )
    return FlowDefinition(
        api_name=path.name.removesuffix(SUFFIX),
        label=_text(root, "label") or "",
        status=_text(root, "status") or "Draft",
        process_type=_text(root, "processType") or "",
        api_version=_text(root, "apiVersion") or "",
        variables=variables,
        action_calls=calls,
    )


def shipped_flow_files() -> list[Path]:
    """Every flow shipped in ``flows/``, by name."""
    return sorted(FLOWS_DIR.glob(f"*{SUFFIX}"))


def shipped_flows() -> dict[str, FlowDefinition]:
    """Every shipped flow, by API name."""
    return {d.api_name: d for d in map(read_flow, shipped_flow_files())}
