"""``cancelkit salesforce flow-package DIR``: the flow ``salesforce-flow`` calls, ready to deploy.

Why a project and not a bare file: ``sf project deploy start`` deploys from a
Salesforce DX project (``sfdx-project.json``), in source format
(``force-app/main/default/flows/<ApiName>.flow-meta.xml``); a ``package.xml``
manifest names what to deploy. The REST endpoint runs only an *active*
autolaunched flow (Actions Developer Guide, "Flow Actions"), and a production org
deploys an active flow as inactive unless "Deploy processes and flows as active"
is on and Apex tests cover the flow (Salesforce Help, "Deploy Processes and Flows
as Active"), so the command ends by saying how to check and activate it.

Registered through ``cancelkit_register_commands``; only click is imported here,
the flow is read when the command runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from .flowdef import SUFFIX, read_flow, shipped_flow_files

#: A flow API name: a letter first, then letters, digits and single underscores,
#: no trailing underscore, at most 80 characters (Metadata API ``fullName`` rules).
API_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*$")
PROJECT_NAME = "cancelkit-salesforce-flow"


@click.group("salesforce")
def salesforce_group() -> None:
    """Salesforce helpers: package the flow that the salesforce-flow platform calls.

    \b
    Example:
      cancelkit salesforce flow-package ./cancelkit-flow
    """


@salesforce_group.command("flow-package")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--api-name",
    metavar="NAME",
    help="Deploy the flow under this API name (then set CANCELKIT_SALESFORCE_FLOW_API_NAME).",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist with other content.")
def flow_package(directory: Path, api_name: str | None, force: bool) -> None:
    """Write a minimal Salesforce DX project (DIR) that deploys the flow.

    \b
    DIR gets:
      sfdx-project.json
      manifest/package.xml
      force-app/main/default/flows/<NAME>.flow-meta.xml
    and the steps to deploy and activate it are printed.

    \b
    Example:
      cancelkit salesforce flow-package ./cancelkit-flow
      cd cancelkit-flow && sf project deploy start --manifest manifest/package.xml -o my-org
    """
    [source] = shipped_flow_files()
    flow = read_flow(source)
    name = api_name or flow.api_name
    if len(name) > 80 or not API_NAME.match(name) or name.endswith("_"):
        raise click.BadParameter(
            "a flow API name starts with a letter and has only letters, digits and single "
            "underscores (not at the end), at most 80 characters",
            param_hint="--api-name",
        )
    # The file name is the API name; the description names the endpoint it answers on.
    flow_text = source.read_text(encoding="utf-8").replace(flow.api_name, name)
    files = {
        Path("sfdx-project.json"): json.dumps(_project(flow.api_version), indent=2) + "\n",
        Path("manifest/package.xml"): _manifest(name, flow.api_version),
        Path("force-app/main/default/flows") / f"{name}{SUFFIX}": flow_text,
    }
    clashes = [
        directory / path
        for path, text in files.items()
        if (directory / path).exists() and (directory / path).read_text(encoding="utf-8") != text
    ]
    if clashes and not force:
        raise click.UsageError(
            f"{', '.join(map(str, clashes))} exists with other content; use --force to overwrite"
        )
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        click.echo(f"wrote {target}")
    click.echo(_next_steps(directory, name, flow.api_version, renamed=name != flow.api_name))


def _project(api_version: str) -> dict[str, object]:
    """``sfdx-project.json``: one package directory, the flow's API version."""
    return {
        "packageDirectories": [{"path": "force-app", "default": True}],
        "name": PROJECT_NAME,
        "namespace": "",
        "sourceApiVersion": api_version,
    }


def _manifest(name: str, api_version: str) -> str:
    """``package.xml`` naming the one flow."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Package xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <types>\n"
        f"        <members>{name}</members>\n"
        "        <name>Flow</name>\n"
        "    </types>\n"
        f"    <version>{api_version}</version>\n"
        "</Package>\n"
    )


def _next_steps(directory: Path, name: str, api_version: str, *, renamed: bool) -> str:
    query = f"SELECT ApiName, ActiveVersionId FROM FlowDefinitionView WHERE ApiName = '{name}'"
    steps = [
        "",
        "Deploy it with the Salesforce CLI (sf):",
        f"  cd {directory}",
        "  sf org login web --instance-url https://MyDomainName.my.salesforce.com --alias my-org",
        "  sf project deploy start --manifest manifest/package.xml --target-org my-org",
        "The REST endpoint runs only an ACTIVE flow:",
        "  - sandbox, scratch and developer orgs deploy it as Active;",
        "  - a production org deploys it as inactive unless Setup > Process Automation Settings >",
        '    "Deploy processes and flows as active" is on and Apex tests that run the flow are',
        "    part of the deployment (--test-level RunSpecifiedTests --tests <YourFlowTest>);",
        f"    otherwise activate it once in Setup > Flows > {name} > Activate.",
        "Check (ActiveVersionId must not be empty):",
        f'  sf data query --target-org my-org --query "{query}"',
        f"It answers on POST /services/data/v{api_version}/actions/custom/flow/{name}.",
    ]
    if renamed:
        steps.append(f"Set CANCELKIT_SALESFORCE_FLOW_API_NAME={name}")
    return "\n".join(steps)
