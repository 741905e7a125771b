"""Start-up shortcuts keep their promises: nothing they defer behaves differently."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, re, sys
real_compile = re.compile
import cancelkit.core  # installs the deferral
import marshmallow.validate as validate
domain = validate.Email.DOMAIN_REGEX
before = repr(domain)
email = validate.Email()
accepted = email("someone@bücher.example")
try:
    email("not an address")
    refused = False
except Exception:
    refused = True
print(json.dumps({
    "deferred_at_import": "not compiled yet" in before,
    "compiled_after_use": "(compiled)" in repr(domain),
    "accepted": accepted,
    "refused": refused,
    "re_compile_restored": re.compile is real_compile,
    "finder_gone": not any(type(f).__name__ == "_Finder" for f in sys.meta_path),
}))
"""


def test_marshmallow_email_patterns_compile_on_first_use_and_still_validate() -> None:
    # A fresh interpreter: in this one marshmallow is imported already.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == {
        "deferred_at_import": True,
        "compiled_after_use": True,
        "accepted": "someone@bücher.example",
        "refused": True,
        "re_compile_restored": True,
        "finder_gone": True,
    }


@pytest.mark.parametrize("command", ["translate", "validate"])
def test_translate_and_validate_load_no_sandbox_recorder_or_metadata_module(
    command: str,
) -> None:
    probe = (
        "import json, sys; from cancelkit.cli import main\n"
        "sys.argv = ['cancelkit', sys.argv[2], '-p', 'mirakl', sys.argv[1]]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    from helpers import ROOT

    done = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "examples" / "mirakl.json"), command],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    unwanted = {
        "importlib.metadata",
        "iso4217",
        "requests",
        "http.server",
        "jsonschema",
        "cancelkit.core.sandbox.server",
        "cancelkit.core.sandbox.emulator",
        "cancelkit.core.scenario",
        "cancelkit.core.cassettes",
    }
    assert loaded & unwanted == set()
    assert ('"url"' if command == "translate" else "ok") in done.stdout  # and it did the job
