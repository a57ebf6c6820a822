"""docs/ci/validate-config.yml, the CI recipe of docs/ci.md: a workflow GitHub can read, with the steps the
page describes, and every `lab` command in it one that this `lab` accepts."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.cli import build_parser

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "validate-config.yml"


def workflow() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["validate"]["steps"]  # type: ignore[no-any-return]


def lab_commands() -> list[list[str]]:
    env = {f"${k}": v for k, v in {**workflow()["env"], "PROFILE": "production"}.items()}
    commands = []
    for step in steps():
        for line in step.get("run", "").replace("\\\n", " ").splitlines():  # a line continued with a backslash
            words = shlex.split(line)
            ends = [i for i, w in enumerate(words) if w in (">", "||", "&&", "|")]
            if words[:1] == ["lab"]:  # the command up to a redirection or the next command
                commands.append([env.get(w, w) for w in words[1 : ends[0] if ends else None]])
    return commands


def test_the_workflow_is_one_job_github_can_run() -> None:
    doc = workflow()
    assert set(doc) >= {"name", True, "permissions", "jobs"}  # YAML 1.1 reads the key `on` as True
    assert doc["permissions"]["security-events"] == "write"
    job = doc["jobs"]["validate"]
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] <= 10
    for step in job["steps"]:
        assert ("uses" in step) != ("run" in step), step
        assert set(step) <= {"name", "uses", "with", "run", "if", "id", "env", "continue-on-error"}, step


def test_the_steps_the_page_describes_in_order() -> None:
    uses = [s["uses"].split("@")[0] for s in steps() if "uses" in s]
    assert uses == [
        "actions/checkout",
        "actions/setup-python",
        "github/codeql-action/upload-sarif",
        "actions/upload-artifact",
    ]
    assert next(s for s in steps() if "setup-python" in s.get("uses", ""))["with"]["python-version"] == "3.11"
    upload = next(s for s in steps() if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == "lint.sarif" and upload["if"].startswith("always()")
    runs = "\n".join(s.get("run", "") for s in steps())
    for expected in (
        "apt-get install",
        "redis-server",
        "pip install",
        "lab render",
        "--format sarif > lint.sarif",
        "lab validate",
        "lab up",
        "--junit drill-junit.xml",
        "lab down",
    ):
        assert expected in runs, expected
    order = [cmd[0] for cmd in lab_commands()]
    assert order == ["render", "lint", "lint", "validate", "up", "drill", "down"]


@pytest.mark.parametrize("argv", lab_commands(), ids=lambda argv: " ".join(argv[:2]))
def test_every_lab_command_in_the_workflow_parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == argv[0]


def test_the_page_links_the_workflow_and_says_what_was_measured() -> None:
    page = (ROOT / "docs" / "ci.md").read_text()
    assert "(ci/validate-config.yml)" in page
    assert "2 cores, Linux, Python 3.11.7" in page


def step_using(action: str) -> dict[str, Any]:
    return next(s for s in steps() if s.get("uses", "").split("@")[0] == action)


def test_the_sarif_upload_runs_only_when_it_can_succeed() -> None:
    """codeql-action v3 is deprecated in December 2026; the upload runs after a failed lint (always()) but
    not when Render failed (no lint.sarif: the step would error) nor on a fork's pull request (a read-only
    token: security-events: write is not granted, the upload fails the job)."""
    upload = step_using("github/codeql-action/upload-sarif")
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    condition = " ".join(upload["if"].split())
    assert condition.startswith("always() && ")
    assert "hashFiles('lint.sarif') != ''" in condition
    assert (
        "(github.event_name != 'pull_request' || "
        "github.event.pull_request.head.repo.full_name == github.repository)" in condition
    )


def test_setup_python_does_not_cache_without_a_dependency_file() -> None:
    """`cache: pip` fails the step in a repository without requirements*.txt or pyproject.toml (the
    LAB_PACKAGE=git+... case): the recipe either names a file that exists or does not cache."""
    setup = step_using("actions/setup-python")["with"]
    assert "cache" not in setup or "cache-dependency-path" in setup


def test_the_drill_report_is_in_the_artifact_and_a_missing_one_is_said() -> None:
    """upload-artifact v4.4.0+ leaves out hidden files and directories (.lab/reports/ uploaded nothing,
    silently with if-no-files-found: ignore): the drill writes its report to a visible --report directory,
    and the artifact names it and its JUnit file."""
    artifact = step_using("actions/upload-artifact")
    paths = [p.strip() for p in artifact["with"]["path"].splitlines() if p.strip()]
    assert all(not part.startswith(".") for p in paths for part in Path(p).parts), paths
    assert artifact["with"].get("include-hidden-files") is not True
    assert artifact["with"]["if-no-files-found"] in ("warn", "error")
    [drill] = [cmd for cmd in lab_commands() if cmd[0] == "drill"]
    args = build_parser().parse_args(drill)
    assert args.report is not None and f"{args.report}/" in paths
    assert str(args.junit) in paths
