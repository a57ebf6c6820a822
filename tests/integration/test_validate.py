"""`lab validate`: every shipped profile forms a healthy lab and every rendered directive is live."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.profile import available_profiles
from lab.pytest_plugin import require_server
from tests.helpers import run_lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("profile", available_profiles())
def test_validate_profile_against_real_servers(tmp_path: Path, profile: str, lab_server: str) -> None:
    """Every profile, rendered for each build under test, forms a healthy lab on that build and runs
    every directive it sets."""
    require_server(lab_server)
    result = run_lab("validate", "--profile", profile, "--server", lab_server, home=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(f"{profile}: OK")


@pytest.mark.one_server
def test_validate_reports_a_value_the_server_does_not_run(tmp_path: Path) -> None:
    """Redis silently lowers maxclients to what the open-file limit allows: validate names it."""
    profile = tmp_path / "odd.yaml"
    source = Path(__file__).resolve().parents[2] / "conf" / "profiles" / "lab.yaml"
    profile.write_text(source.read_text().replace("maxclients: 10000", "maxclients: 4000000"))
    result = run_lab("validate", "--profile", str(profile), home=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "maxclients rendered '4000000', server runs" in result.stdout
