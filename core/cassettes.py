"""Record cassettes from the sandbox and replay them, with one set of rules.

Record (the one documented command; needs the ``test`` extra for vcrpy)::

    python -m cancelkit.core.cassettes            # every platform, into ./cassettes
    python -m cancelkit.core.cassettes mirakl     # one platform
    python -m cancelkit.core.cassettes --check    # record to a temp dir, compare

Each :class:`Scenario` runs the real client code (translate, auth, HTTP via
requests, normalise) against a fresh sandbox under vcrpy. Before a request is
written, its sandbox URL is rewritten to the platform's production URL, secret
headers become ``***``, and credentials in token requests and answers become
``***`` - so replays exercise production URLs and no cassette holds a secret.
Recording is deterministic (seeded emulators, fixed dates), so re-recording
reproduces the same files. A replayed request gets a recorded answer only if
its method, URL and canonical body (:func:`canonical_body`) are the recorded
ones, so a translation that changes cannot replay green.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import simplejson

from ..errors import CancelkitError
from . import jsonutil
from .client import Client
from .ratelimit import reset_all as reset_limiters
from .registry import PluginRegistry
from .sandbox.emulator import Emulator
from .sandbox.server import Sandbox
from .scenario import Scenario, ScenarioContext
from .secrets import Scrubber, field_names

#: Header names whose values are replaced by ``***`` in cassettes.
SECRET_HEADERS = ("authorization", "x-api-key", "tenant-id", "cookie", "set-cookie")
#: Form or JSON fields replaced by ``***`` in token requests and answers, named in
#: any case with or without ``_`` or ``-`` (``refreshToken``, ``client-secret``).
SECRET_FIELDS = (
    "client_id",
    "client_secret",
    "access_token",
    "refresh_token",
    "password",
    "id_token",
    "api_key",
)
MASK = "***"
#: The sandbox clock while recording: 2026-01-01T00:00:00Z, moved on only by waits.
RECORDING_EPOCH = 1767225600.0
#: What a replayed request must share with a recorded one to be given its answer.
MATCH_ON = ("method", "uri", "match_body")


# -- vcrpy wiring --------------------------------------------------------------
def make_vcr(
    record_mode: str, rewrites: Mapping[str, str], scrubber: Scrubber | None = None
) -> Any:
    """A ``vcr.VCR`` with cancelkit's filters; ``rewrites`` maps URL prefixes to new ones.

    Pass the recording client's ``scrubber``: then every header an authenticator
    filled (whatever its name: translate shows those as ``***``) and every secret
    value - configured, or a token obtained at run time - is masked wherever it
    appears, even when the platform echoes it back. Use it to record against a
    real account too: the same filters apply.
    """
    import vcr  # the test extra; imported here so the library never needs it

    def secret_header(name: str, value: Any) -> bool:
        lowered = name.lower()
        if lowered in SECRET_HEADERS:
            return True
        if scrubber is None:
            return False
        values = value if isinstance(value, list) else [value]
        return lowered in scrubber.header_names or any(str(v) in scrubber for v in values)

    def scrub_text(body: Any) -> Any:
        if scrubber is None or not body:
            return body
        if isinstance(body, bytes):
            return scrubber.scrub(body.decode("utf-8", "replace")).encode("utf-8")
        return scrubber.scrub(body)

    def before_record_request(request: Any) -> Any:
        for sandbox_base, production_base in rewrites.items():
            if request.uri.startswith(sandbox_base):
                request.uri = production_base + request.uri[len(sandbox_base) :]
        request.uri = scrub_text(request.uri)
        for name in list(request.headers):
            if secret_header(name, request.headers[name]):
                request.headers.pop(name)
                request.headers[name.lower()] = MASK
        if request.body:
            request.body = scrub_text(scrub_body(request.body))
        return request

    def before_record_response(response: Any) -> Any:
        for name, values in list(response["headers"].items()):
            if secret_header(name, values):
                response["headers"][name] = [MASK]
        body = response["body"].get("string")
        if body:
            scrubbed = scrub_text(_rewrite_urls(scrub_body(body), rewrites))
            if scrubbed != body:
                # The recorded length would no longer match the masked body.
                response["headers"].pop("Content-Length", None)
            response["body"]["string"] = scrubbed
        return response

    recorder = vcr.VCR(
        record_mode=record_mode,
        before_record_request=before_record_request,
        before_record_response=before_record_response,
        decode_compressed_response=True,
        match_on=MATCH_ON,
    )
    # vcrpy passes the live request through before_record_request before matching,
    # so both sides are compared with the same secrets masked.
    recorder.register_matcher("match_body", match_body)
    return recorder


_SECRET_FIELD = re.compile(field_names(SECRET_FIELDS), re.IGNORECASE)
# A JSON string value is masked whole, escaped quotes (\") included.
_JSON_SECRET = re.compile(
    r'("(?:' + field_names(SECRET_FIELDS) + r')"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)


def scrub_body(body: bytes | str) -> bytes | str:
    """Mask secret fields in a JSON or form body, keeping its type."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if text.lstrip().startswith(("{", "[")):
        scrubbed = _JSON_SECRET.sub(lambda m: f'{m.group(1)}"{MASK}"', text)
    elif _is_form(text):
        pairs = parse_qsl(text, keep_blank_values=True)
        scrubbed = urlencode([(k, MASK if _SECRET_FIELD.fullmatch(k) else v) for k, v in pairs])
    else:
        scrubbed = text
    return scrubbed.encode("utf-8") if isinstance(body, bytes) else scrubbed


def _is_form(text: str) -> bool:
    return "=" in text and " " not in text


def canonical_body(body: bytes | str | None) -> str:
    """A request body reduced to what it means, for matching on replay.

    JSON: keys sorted, no whitespace, numbers exactly as written (``15.00`` is
    not ``15.0``, ``1`` is not ``true``). A form (token requests): its fields,
    sorted. Anything else: the text. Empty or absent: ``""``.
    """
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        value = jsonutil.loads(text)
    except ValueError:
        pass
    else:
        # jsonutil.loads keeps every decimal exact; sort_keys is what jsonutil lacks.
        return "json " + simplejson.dumps(
            value, use_decimal=True, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
    if _is_form(text):
        return "form " + urlencode(sorted(parse_qsl(text, keep_blank_values=True)))
    return "text " + text


def match_body(live: Any, recorded: Any) -> None:
    """vcrpy matcher: the two requests' bodies mean the same (:func:`canonical_body`)."""
    left, right = canonical_body(live.body), canonical_body(recorded.body)
    if left != right:
        raise AssertionError(f"body {left} != {right}")


def _rewrite_urls(body: bytes | str, rewrites: Mapping[str, str]) -> bytes | str:
    """Sandbox URLs inside a body (Salesforce's token ``instance_url``) -> production."""
    for sandbox_base, production_base in rewrites.items():
        if isinstance(body, bytes):
            body = body.replace(sandbox_base.encode(), production_base.encode())
        else:
            body = body.replace(sandbox_base, production_base)
    return body


def replay_config(emulators: Iterable[Emulator]) -> dict[str, dict[str, str]]:
    """Client settings for replay: production URLs, placeholder credentials.

    A URL setting becomes the production URL that recording rewrote it to (the
    emulator's ``production_bases``: a platform without a production default, such
    as a Salesforce org's My Domain, needs it), or is dropped (the adapter's
    production default applies); the poll interval is kept, and every other value
    becomes ``replay-<name>``.
    """
    base = "http://replay.invalid"
    config: dict[str, dict[str, str]] = {}
    for emulator in emulators:
        rewrites = {f"{base}/{k}": v for k, v in emulator.production_bases.items()}
        settings: dict[str, str] = {}
        for key, value in emulator.client_settings(base).items():
            if not value.startswith("http"):
                settings[key] = value if key == "poll_interval" else f"replay-{key}"
                continue
            production = _rewrite_urls(value, rewrites)
            if production != value:
                settings[key] = str(production)
        config[emulator.platform] = settings
    return config


def scenarios(registry: PluginRegistry, platforms: Iterable[str] = ()) -> list[Scenario]:
    """Every registered scenario, optionally only those of ``platforms``."""
    wanted = set(platforms)
    found = [s for group in registry.hook.cancelkit_cassette_scenarios() for s in group]
    return [s for s in found if not wanted or s.platform in wanted]


def installed_plugins(builtin_only: bool = False) -> PluginRegistry:
    """The plugin registry scenarios run with: every installed plugin, or built-ins only.

    cancelkit's own suite uses ``builtin_only``: an outside plugin installed next
    to cancelkit neither adds scenarios to it nor hooks into its replays.
    """
    return PluginRegistry(entry_points_to_load=() if builtin_only else None)


def _client(
    plugins: tuple[object, ...],
    config: Mapping[str, Any],
    sleep: Callable[[float], None],
    builtin_only: bool,
    clock: Callable[[], float],
    registry_factory: Callable[[], PluginRegistry] | None = None,
) -> Client:
    registry = registry_factory() if registry_factory else installed_plugins(builtin_only)
    for index, plugin in enumerate(plugins):
        registry.register(plugin, f"scenario-plugin-{index}")
    # No ledger: a cassette records what the platform answers, repeats included (About
    # You's answer to a duplicate is a scenario); the ledger's part is tested apart.
    return Client(registry=registry, config=config, env={}, sleep=sleep, clock=clock, ledger=False)


class _VirtualClock:
    """Replay's time: moves only when the client waits, so waits cost nothing."""

    def __init__(self) -> None:
        self.now = RECORDING_EPOCH

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _outcome(scenario: Scenario, context: ScenarioContext) -> str:
    """Run a scenario: its result's outcome, or the name of the cancelkit error raised."""
    try:
        return scenario.run(context).outcome
    except CancelkitError as error:
        return type(error).__name__


def record(
    scenario: Scenario,
    directory: Path,
    box: Sandbox,
    builtin_only: bool = False,
    registry_factory: Callable[[], PluginRegistry] | None = None,
) -> str:
    """Run ``scenario`` against ``box`` and write its cassette under ``directory``.

    ``registry_factory`` makes the client's plugin registry (default: the installed
    plugins); cancelkit.testing passes the plugin under test this way.
    """
    box.reset()
    reset_limiters()  # no client-side minute or status pacing carries over between scenarios
    emulator = box.emulators[scenario.platform]
    base = box.base_url(scenario.platform)
    rewrites = {f"{base}/{k}": v for k, v in emulator.production_bases.items()}
    path = directory / scenario.cassette
    path.unlink(missing_ok=True)
    # The client's waits move the sandbox clock instead of sleeping, and the client
    # reads that clock (its rate limits and status pacing see the waits): recording is
    # quick, and asynchronous work finishes after the time the platform would take.
    client = _client(
        scenario.plugins, box.client_config(), box.advance, builtin_only, box.now, registry_factory
    )
    context = ScenarioContext(client, scenario.platform, box.inject, box.advance)
    with make_vcr("all", rewrites, client.scrubber).use_cassette(str(path)):
        outcome = _outcome(scenario, context)
    client.close()
    return outcome


def replay(
    scenario: Scenario,
    directory: Path,
    builtin_only: bool = False,
    registry_factory: Callable[[], PluginRegistry] | None = None,
) -> str:
    """Run ``scenario`` from its cassette only (record mode ``none``).

    A request whose method, URL or canonical body is not in the cassette fails
    with vcrpy's ``CannotOverwriteExistingCassetteException``. ``registry_factory``
    as for :func:`record`.
    """
    make = registry_factory or (lambda: installed_plugins(builtin_only))
    emulators = make().emulators()
    clock = _VirtualClock()
    client = _client(
        scenario.plugins, replay_config(emulators), clock.sleep, builtin_only, clock, make
    )
    context = ScenarioContext(client, scenario.platform, lambda *a, **k: None)
    # The client's scrubber masks its placeholder credentials as the recorder masked
    # the sandbox's, so bodies that carry one still match.
    with make_vcr("none", {}, client.scrubber).use_cassette(str(directory / scenario.cassette)):
        outcome = _outcome(scenario, context)
    client.close()
    return outcome


def record_all(
    directory: Path, platforms: Iterable[str] = (), builtin_only: bool = False
) -> list[tuple[Scenario, str]]:
    """Record every scenario; returns (scenario, outcome) pairs."""
    registry = installed_plugins(builtin_only)
    done = []
    # A fixed clock: timestamps the emulators derive from it are the same every run,
    # and every scenario starts at the epoch (record() resets the sandbox, which undoes
    # the waits of the scenarios before): one platform records as it does among all.
    with Sandbox(registry.emulators(), clock=lambda: RECORDING_EPOCH) as box:
        for scenario in scenarios(registry, platforms):
            outcome = record(scenario, directory, box, builtin_only)
            if outcome != scenario.expected_outcome:
                raise AssertionError(
                    f"{scenario.cassette}: expected {scenario.expected_outcome}, got {outcome}"
                )
            done.append((scenario, outcome))
    return done


def main(argv: list[str] | None = None) -> int:
    """Command line: record cassettes, or ``--check`` that re-recording reproduces them."""
    parser = argparse.ArgumentParser(prog="python -m cancelkit.core.cassettes")
    parser.add_argument("platforms", nargs="*", help="only these platforms")
    parser.add_argument("--out", type=Path, default=Path("cassettes"))
    parser.add_argument(
        "--check",
        action="store_true",
        help="record to a temporary directory and compare with --out",
    )
    args = parser.parse_args(argv)
    if not args.check:
        for scenario, outcome in record_all(args.out, args.platforms):
            print(f"recorded {args.out / scenario.cassette} ({outcome})")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        recorded = record_all(Path(tmp), args.platforms)
        different = [
            s.cassette
            for s, _ in recorded
            if not (args.out / s.cassette).is_file()
            or not filecmp.cmp(Path(tmp) / s.cassette, args.out / s.cassette, shallow=False)
        ]
    for name in different:
        print(f"differs: {name}")
    print(f"{len(recorded) - len(different)} of {len(recorded)} cassettes reproduced")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
