"""The recorded cassettes hold no credential in any form, and recording reproduces them."""

from __future__ import annotations

import base64
from pathlib import Path

from cancelkit.cli import main
from click.testing import CliRunner

from cancelkit_walmart.emulator import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from cancelkit_walmart.scenarios import SCENARIOS

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def test_no_cassette_holds_a_credential_in_any_form() -> None:
    basic = base64.b64encode(f"{SANDBOX_CLIENT_ID}:{SANDBOX_CLIENT_SECRET}".encode()).decode()
    files = sorted((CASSETTES / "walmart").glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        assert "marketplace.walmartapis.com" in text  # rewritten to production
        for secret in (SANDBOX_CLIENT_SECRET, basic, basic[:20], "sbx-walmart-token"):
            assert secret not in text, (path.name, secret[:8])
        if "/v3/token" in text:
            assert "authorization:\n      - '***'" in text and '"access_token":"***"' in text


def test_recording_again_reproduces_every_cassette() -> None:
    """Numbered correlation ids in the sandbox, fixed clock: byte for byte the same."""
    result = CliRunner().invoke(main, ["cassettes", "check", "walmart", "--out", str(CASSETTES)])
    assert result.exit_code == 0, result.output
    assert f"{len(SCENARIOS)} of {len(SCENARIOS)} cassettes reproduced" in result.output
