"""Example requests that ship inside plugin packages (``cancelkit example PLATFORM``).

Each plugin keeps one canonical request per platform it provides as
``<platform>.example.json`` beside its modules, listed as package data, so the
examples exist wherever the package is installed (a wheel has no ``examples/``
folder). The plugin hands them over with the ``cancelkit_examples`` hook::

    @hookimpl
    def cancelkit_examples():
        return packaged_examples(__package__)
"""

from __future__ import annotations

from typing import Any

#: File name ending of a packaged example: ``mirakl.example.json`` is ``mirakl``'s.
EXAMPLE_SUFFIX = ".example.json"


def packaged_examples(package: str | None) -> dict[str, Any]:
    """Every ``<platform>.example.json`` shipped in ``package``, by platform name.

    ``package`` is the plugin's package name; pass ``__package__`` (typed ``str |
    None``, hence the parameter's type; None raises ValueError). Read with exact
    decimals (``"15.00"`` and ``15.00`` stay as written), fresh on each call, so a
    caller may change what it gets. Raises ValueError for a file that is not JSON
    (the registry then reports the plugin as broken).
    """
    # Imported here: plugins import this module at start-up, translate needs neither.
    from importlib import resources

    from . import jsonutil

    if not package:
        raise ValueError("packaged_examples needs the plugin's package name (__package__)")

    found: dict[str, Any] = {}
    entries = sorted(resources.files(package).iterdir(), key=lambda entry: entry.name)
    for entry in entries:
        if entry.name.endswith(EXAMPLE_SUFFIX) and entry.is_file():
            platform = entry.name.removesuffix(EXAMPLE_SUFFIX)
            try:
                found[platform] = jsonutil.loads(entry.read_text(encoding="utf-8"))
            except ValueError as error:
                raise ValueError(f"{package}: {entry.name} is not valid JSON: {error}") from None
    return found
