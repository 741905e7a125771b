"""What the plugin API costs at run time: ``python benchmarks/plugin_api.py [--quick]``.

1. ``cancelkit translate -p mirakl examples/mirakl.json`` and ``cancelkit --help``
   wall time, each against ``python -c "import click"`` in the same run
   (interleaved; medians).
2. How many cancelkit modules ``translate`` imports, and whether it loads
   requests, http.server or any emulator.
3. How many times the running code switches between cancelkit modules during
   one ``Client.send`` against the sandbox (a profile hook counts calls whose
   module differs from the previous cancelkit call's).

Point ``PYTHONPATH`` at another checkout (a directory holding ``cancelkit/``) to
measure that one instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "mirakl.json")
TRANSLATE = ["translate", "-p", "mirakl", EXAMPLE]

_IMPORTS = """
import runpy, sys, json
sys.argv = ["cancelkit", *json.loads(sys.argv[1])]
try:
    runpy.run_module("cancelkit.cli", run_name="__main__")
except SystemExit:
    pass
mods = sorted(m for m in sys.modules if m.startswith("cancelkit"))
heavy = sorted(m for m in sys.modules if m in ("requests", "http.server"))
emulators = [m for m in mods if m.endswith(".emulator") and ".plugins." in m]
print(json.dumps({"cancelkit": len(mods), "heavy": heavy, "emulators": emulators}),
      file=sys.stderr)
"""

_SWITCHES = """
import json, sys
import cancelkit
from cancelkit.core import jsonutil
request = jsonutil.loads(open(sys.argv[1]).read())
box = cancelkit.sandbox().__enter__()
client = cancelkit.Client(config=box.client_config())
client.send(request, "mirakl")  # warm: plugins, token, connection
switches, last = 0, None
def profile(frame, event, arg):
    global switches, last
    if event != "call":
        return
    module = frame.f_globals.get("__name__", "")
    if not module.startswith("cancelkit"):
        return
    if module != last:
        switches += 1
        last = module
sys.setprofile(profile)
client.send(request, "mirakl")
sys.setprofile(None)
box.__exit__(None, None, None)
print(json.dumps({"switches": switches}), file=sys.stderr)
"""


def bytecode_cached_env(cache_dir: str) -> dict[str, str]:
    """The environment for timed runs: bytecode cached, as on a user's machine.

    ``PYTHONDONTWRITEBYTECODE`` (set on some CI machines) would make every run
    compile cancelkit from source while click, installed by pip, has its caches:
    not a fair race. Both cache into one scratch directory, warmed before timing.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def wall(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _child(code: str, *args: str) -> dict[str, Any]:
    # Run outside the checkout, so no egg-info in the working directory shadows metadata.
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    return json.loads(done.stderr.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    runs = 3 if parser.parse_args().quick else 9

    cli = [sys.executable, "-m", "cancelkit.cli"]
    click_only = [sys.executable, "-c", "import click"]
    timings: dict[str, list[float]] = {"translate": [], "help": [], "click": []}
    with tempfile.TemporaryDirectory() as cache:
        env = bytecode_cached_env(cache)
        for argv in ([*cli, *TRANSLATE], [*cli, "--help"], click_only):
            wall(argv, env)  # warm the file cache and write the bytecode caches
        for _ in range(runs):  # interleaved, so drift hits all alike
            timings["translate"].append(wall([*cli, *TRANSLATE], env))
            timings["help"].append(wall([*cli, "--help"], env))
            timings["click"].append(wall(click_only, env))
    median = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    print(f"CLI start ({runs} interleaved runs, medians)")
    print(f"  python -c 'import click':   {median['click']:7.1f} ms")
    print(f"  cancelkit translate mirakl: {median['translate']:7.1f} ms  "
          f"{median['translate'] / median['click']:5.2f} x")  # fmt: skip
    print(f"  cancelkit --help:           {median['help']:7.1f} ms  "
          f"{median['help'] / median['click']:5.2f} x")  # fmt: skip

    imports = _child(_IMPORTS, json.dumps(TRANSLATE))
    heavy, emulators = imports["heavy"] or "none", imports["emulators"] or "none"
    print(f"translate imports {imports['cancelkit']} cancelkit modules; "
          f"heavy: {heavy}; emulators: {emulators}")  # fmt: skip
    switches = _child(_SWITCHES, EXAMPLE)
    print(f"one Client.send switches between cancelkit modules {switches['switches']} times")


if __name__ == "__main__":
    main()
