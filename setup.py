"""Build hook: discover cancelkit's packages (the repository root *is* the package).

``[tool.setuptools.packages.find]`` names what it finds relative to its ``where``
(``core``, ``plugins.mirakl``), and this root is ``cancelkit`` itself, so the
prefix is added here. Every regular package under the root ships - a new
``plugins/<name>/`` with an ``__init__.py`` too - but not the project's tooling.
"""

from __future__ import annotations

from setuptools import find_packages, setup

#: Folders under the root that never ship, whatever they hold.
NOT_SHIPPED = ("tests", "benchmarks", "examples", "cassettes", "build")


def packages() -> list[str]:
    """``cancelkit`` and every package below it, tooling excluded."""
    excluded = [pattern for top in NOT_SHIPPED for pattern in (top, f"{top}.*")]
    return ["cancelkit", *(f"cancelkit.{name}" for name in find_packages(".", exclude=excluded))]


if __name__ == "__main__":  # run by the build backend; importing it does nothing
    # Named so that build_py recognises this file as the setup script and leaves it
    # out of the package (PEP 517 frontends otherwise name their own hook script).
    setup(packages=packages(), script_name="setup.py")
