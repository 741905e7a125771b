"""Settings: explicit > environment > TOML profile > defaults; unknown keys refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cancelkit
from cancelkit.cli import main
from cancelkit.core.client import Client
from cancelkit.errors import ConfigurationError

CONFIG = """
[default.mirakl]
base_url = "https://file-default.test/api"
client_id = "file-client"

[staging.mirakl]
base_url = "https://file-staging.test/api"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("CANCELKIT_CONFIG", str(path))
    return path


@pytest.mark.usefixtures("config_file")
def test_file_default_profile_is_read() -> None:
    settings = Client().settings("mirakl")
    assert settings["base_url"] == "https://file-default.test/api"
    assert settings["client_id"] == "file-client"
    assert settings["token_url"] == "https://auth.mirakl.net/oauth/token"  # default kept


@pytest.mark.usefixtures("config_file")
def test_profile_is_chosen_by_option_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Client(profile="staging").settings("mirakl")["base_url"] == (
        "https://file-staging.test/api"
    )
    monkeypatch.setenv("CANCELKIT_PROFILE", "staging")
    assert Client().settings("mirakl")["base_url"] == "https://file-staging.test/api"


@pytest.mark.usefixtures("config_file")
def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://env.test/api")
    assert Client().settings("mirakl")["base_url"] == "https://env.test/api"


@pytest.mark.usefixtures("config_file")
def test_explicit_config_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://env.test/api")
    client = Client(config={"mirakl": {"base_url": "https://explicit.test/api"}})
    assert client.settings("mirakl")["base_url"] == "https://explicit.test/api"


def test_unknown_setting_in_the_file_is_a_configuration_error(config_file: Path) -> None:
    config_file.write_text('[default.mirakl]\napi_secret = "x"\n')
    with pytest.raises(ConfigurationError, match="unknown setting 'api_secret'"):
        Client().settings("mirakl")


def test_malformed_file_is_a_configuration_error(config_file: Path) -> None:
    config_file.write_text("[default.mirakl\n")
    with pytest.raises(ConfigurationError, match="config file"):
        Client().settings("mirakl")


def test_cli_config_and_profile_options(config_file: Path, example: Any) -> None:
    result = CliRunner().invoke(
        main,
        ["--config", str(config_file), "--profile", "staging", "translate", "-p", "mirakl", "-"],
        input=cancelkit.core.jsonutil.dumps(example("mirakl")),
    )
    assert result.exit_code == 0, result.output
    assert "https://file-staging.test/api/v2/orders/" in result.output


def test_cli_configuration_error_exits_4(config_file: Path, example: Any) -> None:
    config_file.write_text("[default.mirakl]\nnope = 1\n")
    result = CliRunner().invoke(
        main,
        ["translate", "-p", "mirakl", "-"],
        input=cancelkit.core.jsonutil.dumps(example("mirakl")),
    )
    assert result.exit_code == 4
    assert "unknown setting 'nope'" in result.output


def test_secret_settings_are_masked_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_CLIENT_SECRET", "very-secret-value-123")
    shown = repr(Client().settings("mirakl"))
    assert "very-secret-value-123" not in shown
    assert "'client_secret': '***'" in shown


def test_a_client_reads_settings_once(example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like a requests Session: configured at first use, not on every call."""
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://first.test/api")
    client = Client()
    assert client.translate(example("mirakl"), "mirakl").url.startswith("https://first.test/")
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://second.test/api")
    assert client.translate(example("mirakl"), "mirakl").url.startswith("https://first.test/")


def test_module_level_calls_follow_the_environment_and_the_file(
    example: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://first.test/api")
    assert cancelkit.translate(example("mirakl"), "mirakl").url.startswith("https://first.test/")
    monkeypatch.setenv("CANCELKIT_MIRAKL_BASE_URL", "https://second.test/api")
    assert cancelkit.translate(example("mirakl"), "mirakl").url.startswith("https://second.test/")
    monkeypatch.delenv("CANCELKIT_MIRAKL_BASE_URL")
    path = tmp_path / "config.toml"
    path.write_text('[default.mirakl]\nbase_url = "https://from-file.test/api"\n')
    monkeypatch.setenv("CANCELKIT_CONFIG", str(path))
    assert cancelkit.translate(example("mirakl"), "mirakl").url.startswith("https://from-file.")
    path.write_text('[default.mirakl]\nbase_url = "https://edited-file.test/api"\n')
    assert cancelkit.translate(example("mirakl"), "mirakl").url.startswith("https://edited-file.")
