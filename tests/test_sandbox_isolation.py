"""Issue 8, item 1: the sandbox stays in the sandbox.

Real-looking credentials for all five platforms are configured in every place a
real run reads them (environment variables, the default config file, a file
named by ``--config`` / ``$CANCELKIT_CONFIG`` with a profile chosen by
``--profile`` / ``$CANCELKIT_PROFILE``, and all of these at once). Every URL
setting points at a stand-in "production" server on loopback that records every
request it gets. Then ``send --sandbox``, ``send --sandbox --dry-run``,
``status --sandbox`` and ``cancelkit.sandbox()`` run for every platform and must
leave the stand-in untouched, send no canary to the sandbox, print none, and get
the answer a normal sandbox run gets.

The loopback guard is proved separately: a sandbox client pointed (by its
settings, by an emulator, or by a Salesforce token answer) at a host that is not
loopback gets a configuration error (exit 4) before any socket is opened. Socket
calls are recorded and non-loopback ones refused, so no test can reach the
network even if the guard breaks.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner, Result
from helpers import serving

import cancelkit
from cancelkit.cli import main
from cancelkit.core import jsonutil
from cancelkit.core.client import Client
from cancelkit.core.registry import PluginRegistry
from cancelkit.core.sandbox.emulator import EmuRequest, EmuResponse
from cancelkit.core.sandbox.isolation import SandboxConfig
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.wire import is_loopback
from cancelkit.errors import AuthenticationError, ConfigurationError
from cancelkit.plugins.salesforce.emulator import SalesforceEmulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLATFORMS = ("mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou")
ASYNC = ("mirakl", "aboutyou")
#: What a normal sandbox send of ``examples/<platform>.json`` gets on fresh state.
EXPECTED = {
    "mirakl": "accepted",
    "salesforce": "cancelled",
    "salesforce-flow": "cancelled",
    "carriyo": "cancelled",
    "aboutyou": "accepted",
}
#: Where a platform's settings live (salesforce-flow shares salesforce's).
SETTINGS_OF = {p: "salesforce" if p == "salesforce-flow" else p for p in PLATFORMS}
#: A documentation address (RFC 5737): never routed, never connected to here.
FOREIGN_HOST = "198.51.100.7"


# -- the stand-in "production" ------------------------------------------------
@dataclass(frozen=True)
class Seen:
    """One request as a server received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Production:
    """A loopback server standing in for every real platform; answers 200 ``{}``."""

    url: str
    requests: list[Seen] = field(default_factory=list)


@pytest.fixture
def production() -> Iterator[Production]:
    stand_in = Production("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            stand_in.requests.append(Seen(self.command, self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_CONNECT = _record

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll keeps each test's teardown (shutdown waits one poll) quick.
    with serving(server, poll=0.01) as url:
        stand_in.url = url
        yield stand_in


# -- what the sandbox received ------------------------------------------------
@dataclass
class SandboxTraffic:
    """Every request any sandbox dispatched, and the URL of every sandbox started."""

    requests: list[EmuRequest] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> SandboxTraffic:
    """Records at class level, so the CLI's own in-process sandboxes are seen too."""
    seen = SandboxTraffic()
    dispatch, start = Sandbox.dispatch, Sandbox.start

    def recording_dispatch(self: Sandbox, request: EmuRequest) -> tuple[EmuResponse, float]:
        seen.requests.append(request)
        return dispatch(self, request)

    def recording_start(self: Sandbox) -> Sandbox:
        box = start(self)
        seen.urls.append(box.url)
        return box

    monkeypatch.setattr(Sandbox, "dispatch", recording_dispatch)
    monkeypatch.setattr(Sandbox, "start", recording_start)
    return seen


def wire_text(request: EmuRequest | Seen) -> str:
    """Everything a request carried, with HTTP Basic credentials decoded (they hide canaries)."""
    if isinstance(request, EmuRequest):
        parts = [request.method, *request.segments, json.dumps(dict(request.query))]
    else:
        parts = [request.method, request.target]
    for name, value in request.headers.items():
        parts += [name, value]
        scheme, _, credential = value.partition(" ")
        if scheme.lower() == "basic":
            parts.append(base64.b64decode(credential + "==").decode("latin-1"))
    parts.append(request.body.decode("latin-1"))
    return "\n".join(parts)


# -- socket calls -------------------------------------------------------------
@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Records every name lookup and connect; refuses any that is not loopback.

    Refusing (rather than passing on) means a broken guard shows up here as a
    recorded attempt, never as traffic to a real address.
    """
    attempts: list[tuple[str, str]] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo
    create_connection = socket.create_connection

    def host_of(address: Any) -> str:
        return str(address[0]) if isinstance(address, tuple) else str(address)

    def guarded_connect(self: socket.socket, address: Any) -> None:
        attempts.append(("connect", host_of(address)))
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(host_of(address)):
            raise OSError(f"test: refused to connect to {address!r}")
        connect(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(("getaddrinfo", str(host)))
        if not is_loopback(str(host)):
            raise socket.gaierror(f"test: refused to resolve {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    def guarded_create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(("create_connection", host_of(address)))
        if not is_loopback(host_of(address)):
            raise OSError(f"test: refused to connect to {address!r}")
        return create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)
    return attempts


# -- canary credentials in every source --------------------------------------
def canary(tag: str, settings_platform: str, name: str) -> str:
    """A distinct, real-looking secret per source, platform and setting."""
    return f"live_{tag}_{settings_platform}_{name}_7Hq2Zx9Lw4Kd"


def canary_settings(tag: str, prod: str) -> dict[str, dict[str, str]]:
    """Every setting of every platform: URLs at the stand-in, secrets as canaries."""

    def c(platform: str, *names: str) -> dict[str, str]:
        return {name: canary(tag, platform, name) for name in names}

    return {
        "mirakl": {
            "base_url": f"{prod}/{tag}/mirakl/api",
            "token_url": f"{prod}/{tag}/mirakl/oauth/token",
            **c("mirakl", "access_token", "client_id", "client_secret", "audience"),
            "timeout": "41",
            "poll_interval": "43",
        },
        "salesforce": {
            "instance_url": f"{prod}/{tag}/salesforce/instance",
            "login_url": f"{prod}/{tag}/salesforce/login",
            **c("salesforce", "access_token", "client_id", "client_secret", "flow_api_name"),
            "api_version": "49.0",
            "timeout": "41",
        },
        "carriyo": {
            "base_url": f"{prod}/{tag}/carriyo",
            "environment": "demo",
            **c("carriyo", "tenant_id", "api_key", "access_token", "client_id", "client_secret"),
            "timeout": "41",
        },
        "aboutyou": {
            "base_url": f"{prod}/{tag}/aboutyou/api/v1",
            **c("aboutyou", "api_key"),
            "timeout": "41",
            "poll_interval": "43",
        },
    }


def every_canary(prod: str) -> list[str]:
    """Every canary any source holds (URLs included: each names its source's path)."""
    values = []
    for tag in ("env", "default", "prod"):
        for table in canary_settings(tag, prod).values():
            values += [v for v in table.values() if v.startswith(("live_", prod))]
    return values


def toml(profiles: dict[str, dict[str, dict[str, str]]]) -> str:
    lines = []
    for profile, platforms in profiles.items():
        for platform, table in platforms.items():
            lines.append(f"[{profile}.{platform}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Source:
    """Where the canaries are configured, and which source a real run would use."""

    name: str
    env: bool = False  # CANCELKIT_<PLATFORM>_<FIELD>
    default_file: bool = False  # $XDG_CONFIG_HOME/cancelkit/config.toml, profile default
    file_flags: bool = False  # --config FILE --profile prod (library: config_path, profile)
    file_env: bool = False  # $CANCELKIT_CONFIG, $CANCELKIT_PROFILE=prod
    winner: str = "env"  # whose canaries a real (non-sandbox) run sends


SOURCES = (
    Source("env", env=True, winner="env"),
    Source("default-file", default_file=True, winner="default"),
    Source("config-flags", file_flags=True, winner="prod"),
    Source("config-env", file_env=True, winner="prod"),
    Source("all", env=True, default_file=True, file_flags=True, file_env=True, winner="env"),
)


@dataclass(frozen=True)
class Armed:
    """The configured canaries, ready to be passed to the CLI or the library."""

    cli_args: tuple[str, ...]
    config_path: Path | None
    profile: str | None
    canaries: tuple[str, ...]


def arm(source: Source, prod: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Armed:
    """Configure canary credentials for all five platforms in ``source``."""
    if source.env:
        for platform, table in canary_settings("env", prod).items():
            for name, value in table.items():
                monkeypatch.setenv(f"CANCELKIT_{platform.upper()}_{name.upper()}", value)
    # Both profiles in every file: a sandbox run must read neither.
    profiles = {"default": canary_settings("default", prod), "prod": canary_settings("prod", prod)}
    document = toml(profiles)
    if source.default_file:
        default = tmp_path / "xdg-config" / "cancelkit" / "config.toml"  # conftest's XDG home
        default.parent.mkdir(parents=True, exist_ok=True)
        default.write_text(document)
    named = tmp_path / "real-credentials.toml"
    named.write_text(document)
    if source.file_env:
        monkeypatch.setenv("CANCELKIT_CONFIG", str(named))
        monkeypatch.setenv("CANCELKIT_PROFILE", "prod")
    flags = ("--config", str(named), "--profile", "prod") if source.file_flags else ()
    return Armed(
        flags,
        named if source.file_flags else None,
        "prod" if source.file_flags else None,
        tuple(every_canary(prod)),
    )


# -- helpers -------------------------------------------------------------------
def run(args: list[str] | tuple[str, ...]) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def is_loopback_url(url: str) -> bool:
    return is_loopback(urlsplit(url).hostname)


def output_of(result: Result) -> str:
    return result.output + result.stderr


def example_file(platform: str) -> str:
    return str(EXAMPLES / f"{platform}.json")


def example(platform: str) -> dict[str, Any]:
    loaded: dict[str, Any] = jsonutil.loads((EXAMPLES / f"{platform}.json").read_text())
    return loaded


class FreshState:
    """A new sandbox state file on each call: the demo stock is finite."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self._dir, self._monkeypatch, self._count = tmp_path, monkeypatch, 0

    def __call__(self) -> None:
        self._count += 1
        state = self._dir / f"sandbox-state-{self._count}.json"
        self._monkeypatch.setenv("CANCELKIT_SANDBOX_STATE", str(state))


@pytest.fixture
def fresh_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FreshState:
    return FreshState(tmp_path, monkeypatch)


def assert_no_canary(texts: list[str], canaries: tuple[str, ...], where: str) -> None:
    leaked = sorted({c for c in canaries for text in texts if c in text})
    assert not leaked, f"{len(leaked)} configured value(s) reached {where}: {leaked[:5]}"


# -- the trap is armed ---------------------------------------------------------
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_without_sandbox_the_canaries_reach_production(
    source: Source,
    platform: str,
    production: Production,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Control: the same configuration, without --sandbox, does reach the stand-in.

    So the zero counts below mean the sandbox ignored these settings, not that
    the settings were never read.
    """
    armed = arm(source, production.url, tmp_path, monkeypatch)
    run([*armed.cli_args, "send", "-p", platform, example_file(platform)])
    assert production.requests, "a real send did not reach the stand-in production"
    seen = "\n".join(wire_text(r) for r in production.requests)
    winner = canary(source.winner, SETTINGS_OF[platform], "access_token")
    if platform == "aboutyou":
        winner = canary(source.winner, "aboutyou", "api_key")
    assert winner in seen


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_sandbox_settings_replace_every_other_source(
    source: Source, production: Production, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sandbox client resolves exactly the settings it resolves with nothing configured."""
    with cancelkit.sandbox() as box:
        with Client(config=box.client_config()) as clean:
            expected = {p: dict(clean.settings(p)) for p in PLATFORMS}
        armed = arm(source, production.url, tmp_path, monkeypatch)
        with Client(
            config=box.client_config(), config_path=armed.config_path, profile=armed.profile
        ) as client:
            assert client.sandbox
            for platform in PLATFORMS:
                assert dict(client.settings(platform)) == expected[platform], platform
                assert all(is_loopback_url(v) for k, v in expected[platform].items() if "url" in k)


# -- the proof: 0 requests, 0 canaries, the normal sandbox answer --------------
@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_sandbox_never_reaches_production_nor_sends_a_real_credential(
    source: Source,
    platform: str,
    production: Production,
    traffic: SandboxTraffic,
    fresh_state: FreshState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    armed = arm(source, production.url, tmp_path, monkeypatch)
    outputs: list[str] = []
    prod_port = production.url.rsplit(":", 1)[1]

    # send --sandbox: plain output for the synchronous platforms; --json for the
    # asynchronous ones, whose tracking id status --sandbox then asks about (same state).
    fresh_state()
    if platform not in ASYNC:
        sent = run([*armed.cli_args, "send", "--sandbox", "-p", platform, example_file(platform)])
        outputs.append(output_of(sent))
        assert sent.exit_code == 0, output_of(sent)
        assert sent.stdout.startswith(f"{EXPECTED[platform]}  {platform}")
    else:
        sent = run(
            [*armed.cli_args, "send", "--sandbox", "--json", "-p", platform, example_file(platform)]
        )
        outputs.append(output_of(sent))
        assert sent.exit_code == 0, output_of(sent)
        tracking_id = json.loads(sent.stdout)["tracking_id"]
        assert json.loads(sent.stdout)["outcome"] == EXPECTED[platform]
        asked = run([*armed.cli_args, "status", "--sandbox", "--json", "-p", platform, tracking_id])
        outputs.append(output_of(asked))
        assert asked.exit_code == 0, output_of(asked)
        assert json.loads(asked.stdout)["outcome"] == "accepted"  # pending on the first poll

    # send --sandbox --dry-run: the call shown is the sandbox's
    before = len(traffic.requests)
    shown = run(
        [*armed.cli_args, "send", "--sandbox", "--dry-run", "-p", platform, example_file(platform)]
    )
    outputs.append(output_of(shown))
    assert shown.exit_code == 0, output_of(shown)
    url = json.loads(shown.stdout)["url"]
    assert url.startswith(f"{traffic.urls[-1]}/{SETTINGS_OF[platform]}/"), url
    assert f":{prod_port}" not in shown.output
    assert len(traffic.requests) == before, "a dry run sent something"

    # the library: cancelkit.sandbox() + Client(config=box.client_config())
    with cancelkit.sandbox() as box:
        config = box.client_config()
        with Client(config=config, config_path=armed.config_path, profile=armed.profile) as client:
            done = client.send(example(platform), platform)
            outputs.append(repr(done))
            assert done.outcome == EXPECTED[platform], done
            if platform in ASYNC:
                assert done.tracking_id
                later = client.status(platform, done.tracking_id)
                outputs.append(repr(later))
                assert later.outcome == "accepted", later
            previewed = client.translate(example(platform), platform)
            assert previewed.url.startswith(box.url), previewed.url
            outputs.append(repr(previewed))

    assert production.requests == [], "the sandbox reached the stand-in production"
    # The sends went to this platform's emulator, and carried nothing configured.
    assert {r.segments[0] for r in traffic.requests} == {SETTINGS_OF[platform]}
    assert_no_canary([wire_text(r) for r in traffic.requests], armed.canaries, "the sandbox")
    # Output is scrubbed of loaded secrets, so this mainly catches ids and URLs; the
    # wire check above is the one that sees a secret even if it was loaded.
    assert_no_canary(outputs, armed.canaries, "the output")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_module_level_functions_with_a_sandbox_config_stay_in_the_sandbox(
    platform: str,
    production: Production,
    traffic: SandboxTraffic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cancelkit.send/status/translate(config=box.client_config())`` are sandbox clients too."""
    armed = arm(SOURCES[-1], production.url, tmp_path, monkeypatch)
    with cancelkit.sandbox() as box:
        call = cancelkit.translate(example(platform), platform, config=box.client_config())
        assert call.url.startswith(box.url)
        done = cancelkit.send(example(platform), platform, config=box.client_config())
        assert done.outcome == EXPECTED[platform], done
        if platform in ASYNC:
            assert done.tracking_id
            later = cancelkit.status(platform, done.tracking_id, config=box.client_config())
            assert later.outcome == "accepted", later
    assert production.requests == []
    assert traffic.requests
    assert_no_canary([wire_text(r) for r in traffic.requests], armed.canaries, "the sandbox")
    assert_no_canary([repr(call), repr(done)], armed.canaries, "the result")


# -- things outside cancelkit's settings that requests reads from the environment
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_proxy_in_the_environment_does_not_take_sandbox_traffic_off_loopback(
    platform: str,
    production: Production,
    fresh_state: FreshState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A corporate proxy setting must not carry sandbox calls to another host.

    The stand-in plays the proxy: every request it gets left the sandbox's path.
    """
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, production.url)
    fresh_state()
    sent = run(["send", "--sandbox", "-p", platform, example_file(platform)])
    assert [r.target for r in production.requests] == [], "sandbox calls went via the proxy"
    assert sent.exit_code == 0, output_of(sent)
    with cancelkit.sandbox() as box, Client(config=box.client_config()) as client:
        done = client.send(example(platform), platform)
    assert production.requests == []
    assert done.outcome == EXPECTED[platform]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_netrc_credential_is_not_sent_to_the_sandbox(
    platform: str,
    traffic: SandboxTraffic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("default login live_netrc_user password live_netrc_password_7Hq2Zx9Lw4Kd\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with cancelkit.sandbox() as box, Client(config=box.client_config()) as client:
        try:
            outcome = client.send(example(platform), platform).outcome
        except AuthenticationError as error:  # the netrc credential replaced the token
            outcome = f"refused: {error}"
    assert_no_canary(
        [wire_text(r) for r in traffic.requests],
        ("live_netrc_user", "live_netrc_password_7Hq2Zx9Lw4Kd"),
        "the sandbox",
    )
    assert outcome == EXPECTED[platform]


# -- the loopback guard ------------------------------------------------------------
#: (platform, sandbox settings aimed elsewhere, the operation) per case.
FOREIGN_CASES: dict[str, tuple[str, dict[str, str], str]] = {
    "mirakl-base-url": (
        "mirakl",
        {"base_url": f"http://{FOREIGN_HOST}/api", "access_token": "x-sandbox-token"},
        "send",
    ),
    "mirakl-status": (
        "mirakl",
        {"base_url": "https://miraklconnect.com/api", "access_token": "x-sandbox-token"},
        "status",
    ),
    "mirakl-token-url": (
        "mirakl",
        {
            "base_url": "http://127.0.0.1:9/api",  # never reached: the token comes first
            "token_url": "https://auth.mirakl.net/oauth/token",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        "send",
    ),
    "salesforce-instance-url": (
        "salesforce",
        {"instance_url": "http://[2001:db8::1]", "access_token": "x-sandbox-token"},
        "send",
    ),
    "salesforce-login-url": (
        "salesforce",
        {
            # A production My Domain (the generic login hosts are refused before this).
            "login_url": "https://cancelkit-prod.my.salesforce.com",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        "send",
    ),
    "salesforce-flow-instance-url": (
        "salesforce-flow",
        {"instance_url": "https://example.my.salesforce.com", "access_token": "x-sandbox-token"},
        "send",
    ),
    "carriyo-base-url": (
        "carriyo",
        {
            "base_url": "https://api.carriyo.com",
            "tenant_id": "sandbox-tenant",
            "api_key": "sandbox-key",
            "access_token": "x-sandbox-token",
        },
        "send",
    ),
    "carriyo-unspecified-address": (
        "carriyo",
        {
            "base_url": "http://0.0.0.0:8470/carriyo",
            "tenant_id": "sandbox-tenant",
            "api_key": "sandbox-key",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
        "send",
    ),
    "aboutyou-lookalike-name": (
        "aboutyou",
        {"base_url": "http://localhost.cancelkit-test.invalid/api/v1", "api_key": "sandbox-key"},
        "send",
    ),
    "aboutyou-status": (
        "aboutyou",
        {"base_url": "https://partner.aboutyou.com/api/v1", "api_key": "sandbox-key"},
        "status",
    ),
}


@pytest.mark.parametrize("marker", ["SandboxConfig", "sandbox=True"])
@pytest.mark.parametrize("case", list(FOREIGN_CASES))
def test_a_sandbox_client_refuses_a_host_that_is_not_loopback(
    case: str, marker: str, connections: list[tuple[str, str]]
) -> None:
    platform, settings, operation = FOREIGN_CASES[case]
    config = {SETTINGS_OF[platform]: settings}
    client = (
        Client(config=SandboxConfig(config))
        if marker == "SandboxConfig"
        else Client(config=config, sandbox=True)
    )
    with client, pytest.raises(ConfigurationError) as raised:
        if operation == "send":
            client.send(example(platform), platform)
        else:
            client.status(platform, "1ba5fc4b-c4fd-4251-880b-3052e301bbd4")
    assert raised.value.exit_code == 4
    assert "sandbox mode refuses" in str(raised.value)
    assert "Nothing was sent" in str(raised.value)
    assert connections == [], "a socket was used although the host was refused"


def foreign_emulators(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every emulator's ``client_settings`` names a non-loopback host instead of the sandbox."""
    for emulator in PluginRegistry().emulators():
        cls = type(emulator)
        original = cls.client_settings

        def elsewhere(
            self: Any, base_url: str, _original: Callable[..., dict[str, str]] = original
        ) -> dict[str, str]:
            settings = _original(self, base_url)
            return {k: v.replace("127.0.0.1", FOREIGN_HOST) for k, v in settings.items()}

        monkeypatch.setattr(cls, "client_settings", elsewhere)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_cli_sandbox_aimed_elsewhere_is_a_configuration_error_and_sends_nothing(
    platform: str,
    traffic: SandboxTraffic,
    fresh_state: FreshState,
    connections: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    foreign_emulators(monkeypatch)
    fresh_state()
    commands = [["send", "--sandbox", "-p", platform, example_file(platform)]]
    if platform in ASYNC:
        commands.append(["status", "--sandbox", "-p", platform, "x-tracking-id"])
    for args in commands:
        result = run(args)
        assert result.exit_code == 4, output_of(result)
        assert "sandbox mode refuses" in result.stderr
        assert "Nothing was sent" in result.stderr
    with cancelkit.sandbox() as box, Client(config=box.client_config()) as client:
        assert f"://{FOREIGN_HOST}" in json.dumps(box.client_config())
        with pytest.raises(ConfigurationError) as raised:
            client.send(example(platform), platform)
        assert raised.value.exit_code == 4
    assert traffic.requests == []
    assert connections == []


@pytest.mark.parametrize("platform", ["salesforce", "salesforce-flow"])
def test_a_token_answer_naming_a_foreign_instance_is_refused(
    platform: str,
    traffic: SandboxTraffic,
    fresh_state: FreshState,
    connections: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sandbox's own token answer cannot send the cancel to another host."""
    handle = SalesforceEmulator.handle

    def foreign_instance(self: SalesforceEmulator, request: EmuRequest) -> EmuResponse:
        response = handle(self, request)
        if not self.is_token_request(request) or response.status != 200:
            return response
        answer = json.loads(response.body)
        answer["instance_url"] = "https://cancelkit-prod.my.salesforce.com"
        return EmuResponse.json(200, answer)

    monkeypatch.setattr(SalesforceEmulator, "handle", foreign_instance)

    fresh_state()
    result = run(["send", "--sandbox", "-p", platform, example_file(platform)])
    assert result.exit_code == 4, output_of(result)
    assert "sandbox mode refuses https://cancelkit-prod.my.salesforce.com" in result.stderr
    with cancelkit.sandbox() as box, Client(config=box.client_config()) as client:
        with pytest.raises(ConfigurationError) as raised:
            client.send(example(platform), platform)
        assert raised.value.exit_code == 4

    # Only the token requests reached the sandbox; the cancel went nowhere.
    assert [r.segments[1:] for r in traffic.requests] == [
        ("login", "services", "oauth2", "token")
    ] * 2
    assert all(is_loopback(host) for _, host in connections), connections


def test_a_production_default_url_is_refused_in_sandbox_mode(
    connections: list[tuple[str, str]],
) -> None:
    """A platform the sandbox gave no URL falls back to its production default: refused."""
    config = SandboxConfig({"aboutyou": {"api_key": "sandbox-key"}})
    with Client(config=config) as client, pytest.raises(ConfigurationError) as raised:
        client.send(example("aboutyou"), "aboutyou")
    assert raised.value.exit_code == 4
    assert "sandbox mode refuses https://partner.aboutyou.com" in str(raised.value)
    assert connections == []
