"""Installed entry points of one group, read without importing importlib.metadata.

Every cancelkit command must find the outside plugins (the ``cancelkit.plugins``
entry points), but ``importlib.metadata`` costs about 25 ms to import on CPython
3.11 (it loads ``email``, ``zipfile`` and ``csv`` to read any metadata), a tenth
of ``cancelkit translate``. Entry points need none of that: they are the
``entry_points.txt`` file of each ``*.dist-info`` (or ``*.egg-info``) directory on
``sys.path``. This module reads those files with the same rules as
``importlib.metadata.entry_points(group=...)``: path order, the first distribution
of a name wins, names normalised as in PEP 503. Anything it does not handle (a
zip archive on ``sys.path``) hands the whole job back to importlib.metadata, and
a test keeps the two in agreement.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any


class PluginEntryPoint:
    """One ``name = module:attr`` entry, as importlib.metadata's ``EntryPoint``."""

    __slots__ = ("group", "metadata_path", "name", "value")

    def __init__(self, name: str, value: str, group: str, metadata_path: str = "") -> None:
        self.name, self.value, self.group = name, value, group
        #: The ``*.dist-info`` (or ``*.egg-info``) folder that declares it: where its
        #: distribution's name and version are read (``cancelkit platforms``).
        self.metadata_path = metadata_path

    @property
    def module(self) -> str:
        """The module part of the value (``pkg.mod`` of ``pkg.mod:attr [extra]``)."""
        return self.value.split(":", 1)[0].strip()

    def load(self) -> Any:
        """Import the module and return the object the entry point names."""
        module_part, _, attrs = self.value.split("[", 1)[0].partition(":")
        target: Any = importlib.import_module(module_part.strip())
        for attr in filter(None, attrs.strip().split(".")):
            target = getattr(target, attr)
        return target

    def __repr__(self) -> str:
        return f"PluginEntryPoint({self.name!r}, {self.value!r}, {self.group!r})"


def entry_points(group: str, path: Iterable[str] | None = None) -> list[Any]:
    """The entry points of ``group`` installed on ``path`` (``sys.path`` by default)."""
    entries = list(sys.path if path is None else path)
    # A zip archive or an old-style .egg on the path: importlib.metadata's job.
    if any(entry.endswith(".egg") or os.path.isfile(entry) for entry in entries):
        from importlib.metadata import entry_points as metadata_entry_points

        return list(metadata_entry_points(group=group))
    found: list[Any] = []
    seen: set[str] = set()
    for directory in _metadata_directories(entries):
        name = _distribution_name(os.path.basename(directory))
        if name in seen:  # an earlier path entry holds this distribution
            continue
        seen.add(name)
        found.extend(_group_entries(os.path.join(directory, "entry_points.txt"), group))
    return found


def _metadata_directories(entries: Iterable[str]) -> Iterator[str]:
    for entry in entries:
        root = entry or "."
        try:
            names = sorted(os.listdir(root))
        except OSError:  # missing or unreadable path entries are skipped, as importlib does
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                full = os.path.join(root, name)
                if os.path.isdir(full):
                    yield full


def _distribution_name(folder: str) -> str:
    """``My_Plugin-1.0.dist-info`` -> ``my-plugin`` (PEP 503 normalised)."""
    stem = folder.rsplit(".", 1)[0].split("-", 1)[0]
    return re.sub(r"[-_.]+", "-", stem).lower()


def _group_entries(path: str, group: str) -> list[PluginEntryPoint]:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return []
    found, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, value = line.split("=", 1)
            found.append(
                PluginEntryPoint(name.strip(), value.strip(), group, os.path.dirname(path))
            )
    return found
