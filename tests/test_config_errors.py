"""Configuration errors (issue 8, item 8): exit 4, a message naming the setting,
file or profile, never "internal error" or a traceback, never a secret's value,
and nothing sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import cancelkit
from cancelkit.cli import main
from cancelkit.core.config import env_prefix
from cancelkit.core.sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PLATFORMS = ["mirakl", "salesforce", "salesforce-flow", "carriyo", "aboutyou"]

CONFIG = """
[default.mirakl]
client_id = "file-client"

[staging.mirakl]
base_url = "https://file-staging.test/api"
"""


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def translate(*options: str, platform: str = "mirakl") -> Result:
    example = str(EXAMPLES / f"{platform}.json")
    return cli(*options, "translate", "-p", platform, example)


def assert_configuration_error(result: Result, *named: str) -> None:
    """Exit 4, one clean message naming each of ``named``."""
    assert result.exit_code == 4, result.output
    assert "internal error" not in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # reported, not raised through click
    for text in named:
        assert text in result.output, result.output


def settings_prefix(platform: str) -> str:
    adapter = cancelkit.PluginRegistry().platform(platform)
    return env_prefix(adapter.settings_name or adapter.name)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


# -- profiles -------------------------------------------------------------------
COMMANDS = {
    "translate": ["translate", "-p", "mirakl", str(EXAMPLES / "mirakl.json")],
    "send": ["send", "-p", "mirakl", str(EXAMPLES / "mirakl.json")],
    "status": ["status", "-p", "mirakl", "1ba5fc4b-c4fd-4251-880b-3052e301bbd4"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_profile_option_is_refused_by_every_command(
    command: str, config_file: Path
) -> None:
    result = cli("--config", str(config_file), "--profile", "nope", *COMMANDS[command])
    assert_configuration_error(result, "'nope'", str(config_file), "default, staging")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_profile_in_the_environment_is_refused(
    command: str, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CANCELKIT_CONFIG", str(config_file))
    monkeypatch.setenv("CANCELKIT_PROFILE", "nope")
    result = cli(*COMMANDS[command])
    assert_configuration_error(result, "'nope'", "$CANCELKIT_PROFILE", "default, staging")


def test_a_profile_without_any_config_file_is_refused() -> None:
    assert_configuration_error(translate("--profile", "staging"), "'staging'", "no config file")


def test_the_implicit_default_profile_may_be_absent(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[staging.mirakl]\nbase_url = "https://file-staging.test/api"\n')
    assert translate("--config", str(path)).exit_code == 0
    assert translate("--config", str(path), "--profile", "default").exit_code == 0
    assert translate().exit_code == 0  # and no config file at all is fine too


# -- the config file --------------------------------------------------------------
def test_a_missing_config_option_file_is_exit_4_not_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert_configuration_error(translate("--config", str(missing)), str(missing), "does not exist")


def test_a_missing_config_file_in_the_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("CANCELKIT_CONFIG", str(missing))
    assert_configuration_error(translate(), str(missing), "$CANCELKIT_CONFIG", "does not exist")


def test_a_directory_as_config_file_is_refused(tmp_path: Path) -> None:
    assert_configuration_error(translate("--config", str(tmp_path)), str(tmp_path), "not a file")


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b'[default.mirakl]\nclient_id = "caf\xe9"\n', ["not UTF-8", "0xe9"]),
        (b"[default.mirakl\n", ["not valid TOML"]),
        (b"default = 3\n", ["'default'", "must be a profile table"]),
        (b'[default]\nmirakl = "x"\n', ["[default] mirakl", "must be a table"]),
        (b"[default.mirakl]\ntimeout = [30]\n", ["[default.mirakl] timeout", "an array"]),
        (b"[default.mirakl]\nclient_id = true\n", ["[default.mirakl] client_id", "a boolean"]),
    ],
    ids=["not-utf8", "not-toml", "top-level-value", "platform-value", "array", "boolean"],
)
def test_a_malformed_config_file_names_the_file_and_the_key(
    content: bytes, named: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    assert_configuration_error(translate("--config", str(path)), str(path), *named)


# -- values: seconds and URLs -------------------------------------------------------
BAD_SECONDS = ["0", "-1", "soon", "30s", "nan", "inf", "1e999", "1e10", " 30"]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("value", BAD_SECONDS)
def test_a_timeout_that_is_not_a_positive_number_is_refused(
    platform: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = settings_prefix(platform) + "TIMEOUT"
    monkeypatch.setenv(name, value)
    assert_configuration_error(translate(platform=platform), name, "positive number of seconds")


def test_a_timeout_in_the_file_is_named_by_file_table_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[default.carriyo]\ntimeout = -5\n")
    result = translate("--config", str(path), platform="carriyo")
    assert_configuration_error(result, str(path), "[default.carriyo] timeout", "'-5'")


@pytest.mark.parametrize("value", ["0.05", "30", "2.5", "1e-3"])
def test_a_positive_timeout_is_accepted(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_TIMEOUT", value)
    assert translate().exit_code == 0


@pytest.mark.parametrize(
    ("setting", "platform"),
    [
        ("CANCELKIT_MIRAKL_BASE_URL", "mirakl"),
        ("CANCELKIT_MIRAKL_TOKEN_URL", "mirakl"),
        ("CANCELKIT_SALESFORCE_INSTANCE_URL", "salesforce"),
        ("CANCELKIT_SALESFORCE_LOGIN_URL", "salesforce-flow"),
        ("CANCELKIT_CARRIYO_BASE_URL", "carriyo"),
        ("CANCELKIT_ABOUTYOU_BASE_URL", "aboutyou"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "ftp://example.test/api",
        "file:///etc/passwd",
        "example.test/api",
        "https://",
        "http://h:99999",
    ],
)
def test_a_url_that_is_not_http_or_https_with_a_host_is_refused(
    setting: str, platform: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(setting, value)
    assert_configuration_error(translate(platform=platform), setting, "http:// or https:// URL")


def test_a_url_carrying_credentials_is_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://me:pw-canary-4711@example.test/api")
    result = translate()
    assert_configuration_error(result, "CANCELKIT_MIRAKL_BASE_URL", "credentials")
    assert "pw-canary-4711" not in result.output


# -- against a sandbox that logs every request: nothing is sent ----------------------
@pytest.fixture
def logged() -> Iterator[tuple[Sandbox, list[str]]]:
    """An in-process sandbox, reached as a real platform would be, logging each request."""
    lines: list[str] = []
    with Sandbox(cancelkit.PluginRegistry().emulators(), log=lines.append) as box:
        yield box, lines


def point_at(box: Sandbox, platform: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the environment so a plain (non ``--sandbox``) send reaches ``box``."""
    adapter = cancelkit.PluginRegistry().platform(platform)
    settings: dict[str, str] = dict(box.client_config()[adapter.settings_name or platform])
    for key, value in settings.items():
        monkeypatch.setenv(settings_prefix(platform) + key.upper(), value)
    return settings


def send(platform: str, *options: str) -> Result:
    return cli("send", "-p", platform, str(EXAMPLES / f"{platform}.json"), *options)


@pytest.mark.parametrize("platform", ["mirakl", "aboutyou"])
@pytest.mark.parametrize("value", ["0", "-2", "soon", "nan", "1e999"])
def test_an_invalid_poll_interval_is_refused_before_the_cancel_is_sent(
    platform: str, value: str, logged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    point_at(box, platform, monkeypatch)
    name = settings_prefix(platform) + "POLL_INTERVAL"
    monkeypatch.setenv(name, value)
    assert_configuration_error(send(platform, "--wait"), name, "positive number of seconds")
    assert lines == []  # not even a token request reached the platform


@pytest.mark.parametrize("platform", ["mirakl", "aboutyou"])
def test_the_same_send_with_a_valid_poll_interval_reaches_the_platform(
    platform: str, logged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    point_at(box, platform, monkeypatch)
    monkeypatch.setenv(settings_prefix(platform) + "POLL_INTERVAL", "0.01")
    result = send(platform, "--wait")
    assert result.exit_code in (0, 1), result.output
    assert lines  # the control: this setup does reach the sandbox


def secret_settings() -> list[tuple[str, str]]:
    """(platform, setting) for every secret setting each built-in platform declares."""
    registry = cancelkit.PluginRegistry()
    return [
        (platform, s.name)
        for platform in PLATFORMS
        for s in registry.platform(platform).capabilities.settings
        if s.secret
    ]


BAD_SECRETS = {
    "crlf": "canary-7f3a9\r\nX-Injected: 1",
    "lf": "canary-7f3a9\n",
    "tab": "canary\t7f3a9",
    "not-latin-1": "canary-7f3a9-\u20ac",
    "leading-space": " canary-7f3a9",
}


@pytest.mark.parametrize(("platform", "setting"), secret_settings())
@pytest.mark.parametrize("bad", sorted(BAD_SECRETS))
def test_a_secret_that_cannot_go_in_a_header_is_refused_unseen_and_unsent(
    platform: str, setting: str, bad: str, logged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    point_at(box, platform, monkeypatch)
    name = settings_prefix(platform) + setting.upper()
    monkeypatch.setenv(name, BAD_SECRETS[bad])
    result = send(platform)
    assert_configuration_error(result, name, "HTTP header", "not shown")
    assert "canary" not in result.output
    assert lines == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_sandbox_settings_as_environment_do_reach_the_sandbox(
    platform: str, logged: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, lines = logged
    point_at(box, platform, monkeypatch)
    result = send(platform)
    assert result.exit_code in (0, 1), result.output
    assert lines  # the control for the secret test above


@pytest.mark.parametrize("escaped", ["\\r\\nX-Injected: 1", "\\u0000", "\\u20ac"])
def test_a_bad_secret_in_the_file_is_named_by_file_and_key_not_shown(
    escaped: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[default.carriyo]\napi_key = "canary-7f3a9{escaped}"\n')
    result = translate("--config", str(path), platform="carriyo")
    assert_configuration_error(result, str(path), "[default.carriyo] api_key", "HTTP header")
    assert "canary" not in result.output


def test_a_bad_value_passed_in_code_is_a_configuration_error() -> None:
    client = cancelkit.Client(config={"mirakl": {"poll_interval": "0"}}, env={})
    with pytest.raises(cancelkit.errors.ConfigurationError, match="poll_interval"):
        client.settings("mirakl")
