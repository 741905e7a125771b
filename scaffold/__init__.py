"""The package template ``cancelkit plugin new NAME`` writes (see ``template/``).

Every file under ``template/`` ends in ``.tmpl`` (so that neither the build, nor
ruff, nor mypy takes the templates for cancelkit's own code) and may use these
placeholders, in its text and in its path:

``{{name}}`` the platform name (``toyshop``); ``{{module}}`` the package
(``cancelkit_toyshop``); ``{{dist}}`` the distribution (``cancelkit-toyshop``);
``{{Class}}`` the class-name prefix (``Toyshop``); ``{{title}}`` the platform's
title; ``{{host}}`` its fictional host label; ``{{ENV}}`` the settings' variable
prefix (``CANCELKIT_TOYSHOP_``); ``{{cancelkit_version}}`` the cancelkit that wrote it.
A file name starting with ``dot-`` is written with a leading dot (``dot-gitignore``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11

#: The suffix every template file carries, dropped when it is written.
SUFFIX = ".tmpl"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def placeholders(name: str, title: str, cancelkit_version: str) -> dict[str, str]:
    """The values of every placeholder for platform ``name``."""
    return {
        "name": name,
        "module": f"cancelkit_{name}",
        "dist": f"cancelkit-{name.replace('_', '-')}",
        "Class": "".join(part.capitalize() for part in name.split("_")),
        "title": title,
        "host": name.replace("_", "-"),
        "ENV": f"CANCELKIT_{name.upper()}_",
        "cancelkit_version": cancelkit_version,
    }


def render(target: Path, values: Mapping[str, str]) -> list[Path]:
    """Write the template into the folder ``target`` (made here); the files written.

    Raises KeyError naming a placeholder no value is given for (a template bug), and
    ValueError when the values make two templates one file.
    """
    written = []
    for relative, template in _templates(resources.files(__package__) / "template", ()):
        path = target.joinpath(*(_fill(part, values) for part in relative))
        if path in written:  # a name that makes two templates one file would lose one
            raise ValueError(f"two template files would both be written to {path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(path)
    return written


def _templates(
    folder: Traversable, parents: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    """(path parts without the suffix, the template) for every file under ``folder``."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _templates(entry, (*parents, entry.name))
        elif entry.name.endswith(SUFFIX):
            name = entry.name.removesuffix(SUFFIX)
            if name.startswith("dot-"):
                name = "." + name.removeprefix("dot-")
            yield (*parents, name), entry


def _fill(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
