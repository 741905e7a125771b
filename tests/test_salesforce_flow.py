"""The shipped flow: valid Flow metadata, wired right, named as Salesforce names things.

No Salesforce org or XSD validator is available to the tests, so the Metadata API's
own definition of the Flow type (Metadata API Developer Guide, "Flow", WSDL segment)
is transcribed below for every element the flow uses: each complex type's children
in sequence order with their multiplicity, and the enumerations. The checker also
does what a deploy would: every connector target exists, every referenced variable
is declared, every element is reachable. Tests then attack the checker with broken
copies of the flow, so it cannot pass by accident.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import contract_schema

from cancelkit.cli import main
from cancelkit.plugins.salesforce import flow as flow_adapter
from cancelkit.plugins.salesforce.flowdef import (
    NAMESPACE,
    FlowDefinition,
    read_flow,
    shipped_flow_files,
    shipped_flows,
)

M = f"{{{NAMESPACE}}}"


def words(text: str) -> list[str]:
    """Names as the WSDL lists them, one string for a long list."""
    return text.split()


[FLOW_FILE] = shipped_flow_files()

# -- the Flow type, as the Metadata API WSDL defines it ----------------------------
# (child, type, multiplicity): "1" required once, "?" optional once, "*" any number.
# Types not used by the shipped flow are "-": present at all, they fail the check.
Seq = list[tuple[str, str, str]]
BASE: Seq = [("processMetadataValues", "FlowMetadataValue", "*")]
ELEMENT: Seq = [*BASE, ("description", "string", "?"), ("name", "string", "?")]
NODE: Seq = [
    *ELEMENT,
    ("elementSubtype", "-", "?"),
    ("group", "string", "?"),
    ("label", "string", "?"),
    ("locationX", "int", "1"),
    ("locationY", "int", "1"),
]
FLOW_CHILDREN = words(
    "actionCalls apexPluginCalls apiVersion areMetricsLoggedToDataCloud assignments choices "
    "collectionFilterCriteria collectionProcessors constants customErrors customProperties "
    "dataSpace decisions description dynamicChoiceSets environments exitRules experiments "
    "formulas groups interviewLabel isAdditionalPermissionRequiredToRun isOverridable isTemplate "
    "label loops migratedFromWorkflowRuleName orchestratedStages overriddenFlow "
    "processMetadataValues processType recordCreates recordDeletes recordLookups "
    "recordRollbacks recordUpdates runInMode screens sourceTemplate stages start "
    "startElementReference status steps subflows textTemplates timeZoneSidKey transforms "
    "triggerOrder variables waits"
)
FLOW_USED = {
    "actionCalls": ("FlowActionCall", "*"),
    "apiVersion": ("double", "?"),
    "assignments": ("FlowAssignment", "*"),
    "decisions": ("FlowDecision", "*"),
    "description": ("string", "?"),
    "interviewLabel": ("string", "?"),
    "label": ("string", "1"),
    "loops": ("FlowLoop", "*"),
    "processMetadataValues": ("FlowMetadataValue", "*"),
    "processType": ("FlowProcessType", "?"),
    "start": ("FlowStart", "?"),
    "status": ("FlowVersionStatus", "?"),
    "variables": ("FlowVariable", "*"),
}
START_CHILDREN = words(
    "activation activationTemplate capabilityTypes conditionLogic conditions connector "
    "dataGraph dataTypeMappings doesRequireRecordChangedToMeetCriteria entryType eventName "
    "eventType fanOutAction filterFormula filterLogic filters flowRunAsUser form "
    "individualObjectRelatedField inputs isAsync object objectContainer "
    "prioritizedContactPointsList publishSegment recordTriggerType schedule scheduledPaths "
    "segment sendMsgToOneContactPtPerIndv triggerType triggeringDataGraph "
    "triggeringDataModelObjectPath versionString"
)
VALUE_CHILDREN = words(
    "apexValue booleanValue collectionElements complexValue complexValueType dateTimeValue "
    "dateValue elementReference formulaDataType formulaExpression inputConfiguratorMode "
    "isReverseValueMapping numberValue setupReference setupReferenceType sobjectValue "
    "stringValue timeValue transform transformValueReference valueMapName"
)
VALUE_USED = {
    "booleanValue": "boolean",
    "elementReference": "string",
    "numberValue": "double",
    "stringValue": "string",
}
TYPES: dict[str, Seq] = {
    "Flow": [(c, *FLOW_USED[c]) if c in FLOW_USED else (c, "-", "*") for c in FLOW_CHILDREN],
    "FlowActionCall": [
        *NODE,
        ("actionCallPaths", "-", "*"),
        ("actionName", "string", "?"),
        ("actionType", "InvocableActionType", "?"),
        ("connector", "FlowConnector", "?"),
        ("dataTypeMappings", "-", "*"),
        ("faultConnector", "FlowConnector", "?"),
        ("flowTransactionModel", "FlowTransactionModel", "?"),
        ("inputParameters", "FlowActionCallInputParameter", "*"),
        ("isWaitUntilCompleted", "boolean", "?"),
        ("nameSegment", "string", "?"),
        ("offset", "int", "?"),
        ("offsetUnit", "-", "?"),
        ("outputParameters", "FlowActionCallOutputParameter", "*"),
        ("storeOutputAutomatically", "boolean", "?"),
        ("timeoutConnector", "FlowConnector", "?"),
        ("timeoutPathUsage", "-", "?"),
        ("versionString", "string", "?"),
    ],
    "FlowActionCallInputParameter": [
        *BASE,
        ("name", "string", "1"),
        ("value", "FlowElementReferenceOrValue", "?"),
    ],
    "FlowActionCallOutputParameter": [
        *BASE,
        ("assignToReference", "string", "1"),
        ("name", "string", "1"),
    ],
    "FlowAssignment": [
        *NODE,
        ("assignmentItems", "FlowAssignmentItem", "*"),
        ("connector", "FlowConnector", "?"),
    ],
    "FlowAssignmentItem": [
        *BASE,
        ("assignToReference", "string", "?"),
        ("operator", "FlowAssignmentOperator", "?"),
        ("value", "FlowElementReferenceOrValue", "?"),
    ],
    "FlowConnector": [*BASE, ("isGoTo", "boolean", "?"), ("targetReference", "string", "1")],
    "FlowDecision": [
        *NODE,
        ("attributes", "-", "*"),
        ("defaultConnector", "FlowConnector", "?"),
        ("defaultConnectorLabel", "string", "?"),
        ("rules", "FlowRule", "*"),
    ],
    "FlowRule": [
        *ELEMENT,
        ("attributes", "-", "*"),
        ("conditionLogic", "string", "1"),
        ("conditions", "FlowCondition", "*"),
        ("connector", "FlowConnector", "?"),
        ("doesRequireRecordChangedToMeetCriteria", "boolean", "?"),
        ("label", "string", "1"),
    ],
    "FlowCondition": [
        *BASE,
        ("aggregationOperator", "-", "?"),
        ("conditionLogic", "string", "?"),
        ("conditionType", "-", "?"),
        ("conditions", "FlowCondition", "*"),
        ("leftValueReference", "string", "?"),
        ("operator", "FlowComparisonOperator", "1"),
        ("rightValue", "FlowElementReferenceOrValue", "?"),
    ],
    "FlowLoop": [
        *NODE,
        ("assignNextValueToReference", "string", "?"),
        ("collectionReference", "string", "?"),
        ("iterationOrder", "IterationOrder", "?"),
        ("nextValueConnector", "FlowConnector", "?"),
        ("noMoreValuesConnector", "FlowConnector", "?"),
    ],
    "FlowMetadataValue": [("name", "string", "1"), ("value", "FlowElementReferenceOrValue", "?")],
    "FlowStart": [
        *NODE,
        *[(c, "FlowConnector" if c == "connector" else "-", "?") for c in START_CHILDREN],
    ],
    "FlowVariable": [
        *ELEMENT,
        ("apexClass", "string", "?"),
        ("dataType", "FlowDataType", "1"),
        ("isCollection", "boolean", "?"),
        ("isInput", "boolean", "?"),
        ("isOutput", "boolean", "?"),
        ("objectType", "string", "?"),
        ("scale", "int", "?"),
        ("value", "FlowElementReferenceOrValue", "?"),
    ],
    "FlowElementReferenceOrValue": [
        (c, VALUE_USED.get(c, "-"), "*" if c == "collectionElements" else "?")
        for c in VALUE_CHILDREN
    ],
}
ENUMS: dict[str, set[str]] = {
    "FlowAssignmentOperator": set(
        words(
            "None Assign Add Subtract AddItem RemoveFirst RemoveBeforeFirst RemoveAfterFirst "
            "RemoveAll AddAtStart RemoveUncommon AssignCount RemovePosition"
        )
    ),
    "FlowComparisonOperator": set(
        words(
            "None EqualTo NotEqualTo GreaterThan LessThan GreaterThanOrEqualTo LessThanOrEqualTo "
            "StartsWith EndsWith Contains IsNull IsChanged WasSet WasSelected WasVisited In NotIn "
            "IsBlank IsEmpty HasError"
        )
    ),
    "FlowDataType": set(
        words(
            "Currency Date Number String Boolean SObject DateTime Time Picklist Multipicklist Apex"
        )
    ),
    "FlowTransactionModel": {"Automatic", "NewTransaction", "CurrentTransaction"},
    "FlowVersionStatus": {"Active", "Draft", "Obsolete", "InvalidDraft", "UnderReview"},
    "IterationOrder": {"Asc", "Desc"},
    # Only the values this flow may use (the WSDL lists many more).
    "FlowProcessType": {"AutoLaunchedFlow"},
    "InvocableActionType": {"cancelFulfillmentOrderItem"},
}
#: Apex-defined types the flow may use, with their documented fields (seed 001, Apex
#: reference). Spelled as in the SOM StartUp Kit flow (cancelkit issue 10).
APEX_FIELDS = {
    "ConnectApi__FulfillmentOrderLineItemsToCancelInputRepresentation": {
        "fulfillmentOrderLineItemsToCancel"
    },
    "ConnectApi__FulfillmentOrderLineItemInputRepresentation": {
        "fulfillmentOrderLineItemId",
        "quantity",
    },
}
#: The core action's input parameters, by API name (SOM StartUp Kit flow, issue 10).
ACTION_INPUTS = {"fulfillmentOrderId", "fulfillmentOrderLineItemsToCancelInput"}
CONNECTORS = {
    "connector",
    "faultConnector",
    "defaultConnector",
    "nextValueConnector",
    "noMoreValuesConnector",
}
NODES = {"actionCalls", "assignments", "decisions", "loops"}


def _simple_problem(kind: str, text: str) -> str | None:
    if kind == "string":
        return None
    if kind == "boolean":
        return None if text in ("true", "false") else "not a boolean"
    if kind in ("int", "double"):
        try:
            (int if kind == "int" else float)(text)
        except ValueError:
            return f"not an {kind}"
        return None
    return None if text in ENUMS[kind] else f"{text!r} is not a {kind} value"


def structure_problems(element: ET.Element, kind: str, path: str) -> list[str]:
    """Where ``element`` breaks type ``kind``: order, multiplicity, unknown children, values."""
    if kind == "-":
        return [f"{path}: element not expected in this flow"]
    text = (element.text or "").strip()
    if kind not in TYPES:
        if list(element):
            return [f"{path}: a {kind} has no children"]
        problem = _simple_problem(kind, text)
        return [f"{path}: {problem}"] if problem else []
    problems = [f"{path}: text {text!r} in a {kind}"] if text else []
    sequence = TYPES[kind]
    position, counts = 0, dict.fromkeys(range(len(sequence)), 0)
    for child in element:
        tag = child.tag.removeprefix(M)
        at = next((i for i in range(position, len(sequence)) if sequence[i][0] == tag), None)
        if at is None:
            where = "out of order" if any(s[0] == tag for s in sequence) else "unknown"
            problems.append(f"{path}/{tag}: {where} in a {kind}")
            continue
        position, counts[at] = at, counts[at] + 1
        if counts[at] > 1 and sequence[at][2] != "*":
            problems.append(f"{path}/{tag}: at most once in a {kind}")
        problems += structure_problems(child, sequence[at][1], f"{path}/{tag}")
    for i, (tag, _, many) in enumerate(sequence):
        if many == "1" and counts[i] == 0:
            problems.append(f"{path}: a {kind} needs {tag}")
    return problems


def wiring_problems(root: ET.Element) -> list[str]:
    """What a deploy would refuse: dangling connectors and references, unreachable nodes."""
    problems = []
    nodes = {n.findtext(f"{M}name"): n for tag in NODES for n in root.findall(f"{M}{tag}")}
    variables = {v.findtext(f"{M}name"): v for v in root.findall(f"{M}variables")}
    names = [*nodes, *variables]
    problems += [f"name {n} used twice" for n in set(names) if names.count(n) > 1]
    targets = [t.text for t in root.iter(f"{M}targetReference")]
    problems += [f"connector to missing element {t}" for t in targets if t not in nodes]
    references = [
        r.text or ""
        for tag in (
            "elementReference",
            "assignToReference",
            "leftValueReference",
            "collectionReference",
            "assignNextValueToReference",
        )
        for r in root.iter(f"{M}{tag}")
    ]
    for reference in references:
        if reference.startswith("$Flow."):  # Flow's own globals ($Flow.FaultMessage)
            continue
        base, _, field = reference.partition(".")
        variable = variables.get(base)
        if variable is None and base not in nodes:
            problems.append(f"reference to undeclared {reference}")
        elif field and variable is not None:
            apex = variable.findtext(f"{M}apexClass") or ""
            if field not in APEX_FIELDS.get(apex, set()):
                problems.append(f"{reference}: {apex or 'the variable'} has no field {field}")
    for variable in variables.values():
        apex = variable.findtext(f"{M}apexClass")
        if apex is not None and apex not in APEX_FIELDS:
            problems.append(f"unconfirmed Apex type {apex}")
    for action in root.findall(f"{M}actionCalls"):
        inputs = {p.findtext(f"{M}name") for p in action.findall(f"{M}inputParameters")}
        if inputs != ACTION_INPUTS:
            problems.append(
                f"core action inputs {sorted(map(str, inputs))}, not the confirmed ones"
            )
        if action.findall(f"{M}outputParameters"):
            problems.append("reads a core action output parameter, whose name is unconfirmed")
    # Everything is reachable from the start.
    seen: set[str] = set()
    todo = [root.findtext(f"{M}start/{M}connector/{M}targetReference")]
    while todo:
        name = todo.pop()
        if name is None or name in seen or name not in nodes:
            continue
        seen.add(name)
        for tag in CONNECTORS:
            for connector in nodes[name].iter(f"{M}{tag}"):
                todo.append(connector.findtext(f"{M}targetReference"))
    problems += [f"{n} is unreachable" for n in nodes if n not in seen]
    return problems


def flow_problems(root: ET.Element) -> list[str]:
    """Every way ``root`` fails as the flow cancelkit ships."""
    if root.tag != f"{M}Flow":
        return [f"root element {root.tag} is not Flow"]
    return structure_problems(root, "Flow", "Flow") + wiring_problems(root)


def shipped_root() -> ET.Element:
    return ET.parse(FLOW_FILE).getroot()


def the(root: ET.Element, tag: str, name: str) -> ET.Element:
    [element] = [e for e in root.findall(f"{M}{tag}") if e.findtext(f"{M}name") == name]
    return element


# -- the shipped flow passes ---------------------------------------------------------
def test_the_shipped_flow_is_valid_flow_metadata() -> None:
    assert flow_problems(shipped_root()) == []


def test_it_calls_the_core_action_with_its_confirmed_input_names() -> None:
    [action] = shipped_root().findall(f"{M}actionCalls")
    assert action.findtext(f"{M}actionType") == "cancelFulfillmentOrderItem"
    inputs = {p.findtext(f"{M}name") for p in action.findall(f"{M}inputParameters")}
    assert inputs == ACTION_INPUTS
    # Nothing depends on the action's output parameter, whose API name is unconfirmed.
    assert action.findall(f"{M}outputParameters") == []
    assert action.findtext(f"{M}storeOutputAutomatically") == "false"


def test_it_reports_its_own_outcome_on_both_paths() -> None:
    root = shipped_root()
    flow = read_flow(FLOW_FILE)
    assert {n: (v.data_type, v.is_collection) for n, v in flow.outputs.items()} == {
        "cancelled": ("Boolean", False),
        "errorMessage": ("String", False),
    }
    assert the(root, "variables", "cancelled").findtext(f"{M}value/{M}booleanValue") == "false"
    [action] = flow.action_calls

    def assigned(name: str) -> dict[str, str | None]:
        node = the(root, "assignments", name)
        return {
            item.findtext(f"{M}assignToReference") or "": item.findtext(f"{M}value/{M}booleanValue")
            or item.findtext(f"{M}value/{M}elementReference")
            for item in node.findall(f"{M}assignmentItems")
        }

    assert action.connector and action.fault_connector
    assert assigned(action.connector) == {"cancelled": "true"}
    assert assigned(action.fault_connector) == {
        "cancelled": "false",
        "errorMessage": "$Flow.FaultMessage",
    }


def test_it_is_an_active_autolaunched_flow_the_adapter_calls_by_default() -> None:
    flow = read_flow(FLOW_FILE)
    assert (flow.process_type, flow.status) == ("AutoLaunchedFlow", "Active")
    assert flow.api_name == flow_adapter.DEFAULT_FLOW_API_NAME
    assert flow_adapter.FLOW_FILE == FLOW_FILE


def test_the_adapter_reads_the_outputs_the_flow_declares() -> None:
    outputs = read_flow(FLOW_FILE).outputs
    assert outputs[flow_adapter.OUTPUT_CANCELLED].data_type == "Boolean"
    assert outputs[flow_adapter.OUTPUT_ERROR_MESSAGE].data_type == "String"


# -- the checker catches broken flows ---------------------------------------------------
def broken(change: Any) -> list[str]:
    root = copy.deepcopy(shipped_root())
    change(root)
    return flow_problems(root)


def set_text(root: ET.Element, tag: str, name: str, path: str, text: str) -> None:
    found = the(root, tag, name).find(path)
    assert found is not None, path
    found.text = text


def _rename_action_input(root: ET.Element) -> None:
    for name in root.iter(f"{M}name"):
        if name.text == "fulfillmentOrderLineItemsToCancelInput":
            name.text = "cancelFulfillmentOrderLineItemsInput"  # the Apex method's name


def _read_an_action_output(root: ET.Element) -> None:
    [action] = root.findall(f"{M}actionCalls")
    output = ET.SubElement(action, f"{M}outputParameters")
    ET.SubElement(output, f"{M}assignToReference").text = "errorMessage"
    ET.SubElement(output, f"{M}name").text = "cancelFulfillmentOrderLineItemsOutput"


def _swap_first_two_children(root: ET.Element) -> None:
    second = root[1]
    root.remove(second)
    root.insert(0, second)


def _dangling_connector(root: ET.Element) -> None:
    path = f"{M}nextValueConnector/{M}targetReference"
    set_text(root, "loops", "Each_Quantity", path, "Nowhere")


def _undeclared_variable(root: ET.Element) -> None:
    root.remove(the(root, "variables", "idCount"))


def _unconfirmed_apex_spelling(root: ET.Element) -> None:
    spelling = "ConnectApi.FulfillmentOrderLineItemsToCancelInputRepresentation"
    set_text(root, "variables", "cancelInput", f"{M}apexClass", spelling)


def _missing_location(root: ET.Element) -> None:
    node = the(root, "assignments", "Report_Cancelled")
    location = node.find(f"{M}locationX")
    assert location is not None
    node.remove(location)


def _bad_operator(root: ET.Element) -> None:
    path = f"{M}assignmentItems/{M}operator"
    set_text(root, "assignments", "Count_Inputs", path, "Count")


def _unknown_field(root: ET.Element) -> None:
    path = f"{M}assignmentItems/{M}assignToReference"
    set_text(root, "assignments", "Add_Line_Item", path, "lineItem.qty")


def _unreachable(root: ET.Element) -> None:
    set_text(root, "decisions", "Same_Count", f"{M}defaultConnector/{M}targetReference",
             "Each_Line_Item_Id")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_rename_action_input, "not the confirmed ones"),
        (_read_an_action_output, "output parameter, whose name is unconfirmed"),
        (_swap_first_two_children, "out of order in a Flow"),
        (_dangling_connector, "connector to missing element Nowhere"),
        (_undeclared_variable, "reference to undeclared idCount"),
        (_unconfirmed_apex_spelling, "unconfirmed Apex type"),
        (_missing_location, "needs locationX"),
        (_bad_operator, "'Count' is not a FlowAssignmentOperator value"),
        (_unknown_field, "has no field qty"),
        (_unreachable, "Report_Count_Mismatch is unreachable"),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_the_checker_refuses_a_broken_flow(change: Any, expected: str) -> None:
    root = copy.deepcopy(shipped_root())
    change(root)
    problems = flow_problems(root)
    assert any(expected in p for p in problems), problems


# -- the published invocation contract agrees with the flow -------------------------------
JSON_TYPES = {"String": "string", "Number": "number", "Boolean": "boolean"}


def test_the_invocation_schema_describes_exactly_the_flows_inputs() -> None:
    schema = contract_schema("salesforce", "salesforce-flow-invocation.schema.json")
    item = schema["properties"]["inputs"]["items"]
    inputs = read_flow(FLOW_FILE).inputs
    assert set(item["properties"]) == set(inputs)
    assert item["additionalProperties"] is False
    for name, variable in inputs.items():
        declared = item["properties"][name]
        if variable.is_collection:
            assert declared["type"] == "array", name
            declared = declared["items"]
        assert declared["type"] == JSON_TYPES[variable.data_type], name
    # What the adapter must send, all of it (Flow itself would take a missing input as null).
    assert set(item["required"]) == set(inputs)


def test_flowdef_reads_every_shipped_flow() -> None:
    flows = shipped_flows()
    assert list(flows) == [flow_adapter.DEFAULT_FLOW_API_NAME]
    flow = flows[flow_adapter.DEFAULT_FLOW_API_NAME]
    assert isinstance(flow, FlowDefinition)
    assert set(flow.inputs) == {"fulfillmentOrderId", "fulfillmentOrderLineItemIds", "quantities"}


def test_flowdef_refuses_what_is_not_flow_metadata(tmp_path: Path) -> None:
    path = tmp_path / "Other.flow-meta.xml"
    path.write_text('<Package xmlns="http://soap.sforce.com/2006/04/metadata"/>')
    with pytest.raises(ValueError, match="not Flow metadata"):
        read_flow(path)


# -- cancelkit salesforce flow-package ---------------------------------------------------
def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def test_flow_package_writes_a_deployable_project(tmp_path: Path) -> None:
    result = run("salesforce", "flow-package", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    project = json.loads((tmp_path / "p" / "sfdx-project.json").read_text())
    [package_dir] = project["packageDirectories"]
    assert package_dir == {"path": "force-app", "default": True}
    assert project["sourceApiVersion"] == read_flow(FLOW_FILE).api_version
    name = flow_adapter.DEFAULT_FLOW_API_NAME
    flow = tmp_path / "p" / "force-app" / "main" / "default" / "flows" / f"{name}.flow-meta.xml"
    assert flow.read_text() == FLOW_FILE.read_text()
    manifest = ET.parse(tmp_path / "p" / "manifest" / "package.xml").getroot()
    assert manifest.findtext(f"{M}types/{M}members") == name
    assert manifest.findtext(f"{M}types/{M}name") == "Flow"
    assert manifest.findtext(f"{M}version") == "66.0"
    # The steps a user needs: deploy from the project, and activation in production.
    assert "sf project deploy start --manifest manifest/package.xml" in result.output
    assert "Deploy processes and flows as active" in result.output
    assert "FlowDefinitionView" in result.output


def test_flow_package_renames_the_flow_and_says_which_setting_to_set(tmp_path: Path) -> None:
    result = run("salesforce", "flow-package", str(tmp_path), "--api-name", "Acme_Cancel")
    assert result.exit_code == 0, result.output
    flow = tmp_path / "force-app/main/default/flows/Acme_Cancel.flow-meta.xml"
    assert read_flow(flow).api_name == "Acme_Cancel"
    assert flow_adapter.DEFAULT_FLOW_API_NAME not in flow.read_text()
    assert flow_problems(ET.parse(flow).getroot()) == []
    assert "CANCELKIT_SALESFORCE_FLOW_API_NAME=Acme_Cancel" in result.output


@pytest.mark.parametrize("name", ["1flow", "two__underscores", "trailing_", "has-dash", "x" * 81])
def test_flow_package_refuses_an_impossible_api_name(tmp_path: Path, name: str) -> None:
    result = run("salesforce", "flow-package", str(tmp_path), "--api-name", name)
    assert result.exit_code == 2
    assert not any(tmp_path.iterdir())


def test_flow_package_never_overwrites_other_content_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "sfdx-project.json").write_text("{}")
    refused = run("salesforce", "flow-package", str(tmp_path))
    assert refused.exit_code == 2
    assert "sfdx-project.json exists with other content" in refused.output
    assert (tmp_path / "sfdx-project.json").read_text() == "{}"
    assert run("salesforce", "flow-package", str(tmp_path), "--force").exit_code == 0
    assert run("salesforce", "flow-package", str(tmp_path)).exit_code == 0  # same content: fine


@pytest.mark.parametrize("args", [["salesforce"], ["salesforce", "flow-package"]])
def test_the_salesforce_commands_have_help_with_an_example(args: list[str]) -> None:
    result = run(*args, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "cancelkit salesforce flow-package" in result.output
