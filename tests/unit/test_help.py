"""Every `--help` of every shipped command and subcommand works: exit 0, usage on stdout, no traceback
(`check-redis-health --help` once died on a bare `%` in a help string)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.cli import build_parser as lab_parser
from redis_ha_admin.cli import build_parser as admin_parser
from redis_ha_health.check_redis_health import build_parser as health_parser

ROOT = Path(__file__).resolve().parents[2]
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "lab": lab_parser,
    "redis-admin": admin_parser,
    "check-redis-health": health_parser,
}


def _paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _paths(sub, (*prefix, name))


def test_every_console_script_has_a_parser_here() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(PARSERS)


@pytest.mark.parametrize(
    ("tool", "path"), [(tool, path) for tool, make in PARSERS.items() for path in _paths(make())], ids=str
)
def test_help_of_every_subcommand(tool: str, path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        PARSERS[tool]().parse_args([*path, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and "Traceback" not in out


@pytest.mark.parametrize("tool", sorted(PARSERS))
def test_help_of_the_installed_entry_point(tool: str) -> None:
    """As a user runs it: the console script in the venv (imports and all)."""
    exe = shutil.which(tool, path=str(Path(sys.executable).parent))
    assert exe, f"{tool} is not installed beside {sys.executable}"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.startswith("usage:"), result.stdout + result.stderr
    assert result.stderr == ""


def test_the_workload_choices_are_the_drills_workloads() -> None:
    from lab.cliargs import WORKLOADS
    from lab.drill.workloads import KINDS

    assert WORKLOADS == KINDS
