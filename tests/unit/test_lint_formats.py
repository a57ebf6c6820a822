"""`lab lint --format text|json|sarif`: the documented JSON document, and SARIF 2.1.0 that validates
against the official schema (tests/data/sarif-schema-2.1.0.json) and follows what GitHub code scanning
requires; the exit code is the same in every format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lab.cli import main
from lab.lint import RULES, deployment_of
from tests.helpers import run_lab
from tests.unit.test_lint import append, rendered, sub

SCHEMA = json.loads((Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["lint", *args])
    return code, capsys.readouterr().out


def lint_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out = lint(capsys, *args)
    return code, json.loads(out)


def valid_sarif(doc: dict[str, Any]) -> dict[str, Any]:
    """The official schema, then what GitHub code scanning needs beyond it; the run."""
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert doc["version"] == "2.1.0" and doc["$schema"].startswith("https://")
    [run] = doc["runs"]
    driver = run["tool"]["driver"]
    ids = [r["id"] for r in driver["rules"]]
    assert driver["name"] == "lab lint" and driver["version"] and set(ids) == set(RULES)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["defaultConfiguration"]["level"] in ("error", "warning")
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert "region" not in physical or physical["region"]["startLine"] >= 1
    return run  # type: ignore[no-any-return]


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A production render, as a relative path from the working directory, with an error on a line
    (ACL010), an error without one (ACL008: the master has no masterauth) and a warning (L003)."""
    root = rendered(tmp_path, "production")
    sub(root, "redis-1", r"^masteruser .*\nmasterauth .*\n", "")
    sub(root, "sentinel-2", r"^sentinel auth-user .*\n", "")
    append(root, "redis-3", "maxclients 1000")
    monkeypatch.chdir(tmp_path)
    return Path("production")


def test_text_is_the_default_and_unchanged(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = lint(capsys, str(broken))
    assert (code, lint(capsys, str(broken), "--format", "text")) == (1, (1, text))
    lines = text.splitlines()
    assert lines[-1] == "2 error(s), 1 warning(s)"
    assert lines[0].startswith("production/redis-1/redis.conf:0: error ACL008 [masterauth] no masterauth")


def test_json_document(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = lint_json(capsys, str(broken), "--format", "json")
    assert code == 1
    assert set(doc) == {"version", "tool", "files", "findings", "summary"} and doc["version"] == 1
    assert doc["files"] == [
        f"production/{n}"
        for n in (
            "redis-1/redis.conf",
            "redis-2/redis.conf",
            "redis-3/redis.conf",
            "sentinel-1/sentinel.conf",
            "sentinel-2/sentinel.conf",
            "sentinel-3/sentinel.conf",
        )
    ]
    assert doc["summary"] == {"files": 6, "findings": 3, "errors": 2, "warnings": 1, "exit_code": 1}
    by_rule = {f["rule"]: f for f in doc["findings"]}
    assert set(by_rule) == {"ACL008", "ACL010", "L003"}
    for finding in doc["findings"]:
        assert set(finding) == {"rule", "severity", "file", "line", "directive", "message", "fix"}
    assert by_rule["ACL008"]["line"] is None, "no line to point at: null, not 0"
    assert "+psync +replconf +ping" in by_rule["ACL008"]["fix"]
    assert by_rule["L003"]["fix"] is None and by_rule["L003"]["severity"] == "warning"
    line = by_rule["ACL010"]["line"]
    assert (broken / "sentinel-2" / "sentinel.conf").read_text().splitlines()[line - 1].startswith("sentinel auth-pass")


def test_warnings_alone_exit_0_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path
    (root / "redis.conf").write_text("bind 127.0.0.1\nport 6379\nmaxclients 10\nmaxclients 20\n")
    for form in ("text", "json", "sarif"):
        assert lint(capsys, str(root), "--format", form)[0] == 0, form
    assert lint_json(capsys, str(root), "--format", "json")[1]["summary"]["exit_code"] == 0


def test_sarif_validates_and_locates_every_finding(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = lint_json(capsys, str(broken), "--format", "sarif")
    assert code == 1
    run = valid_sarif(doc)
    results = {r["ruleId"]: r for r in run["results"]}
    assert {r: results[r]["level"] for r in results} == {"ACL008": "error", "ACL010": "error", "L003": "warning"}
    # A finding without a line is located at the file, without a region; the others at their line.
    assert results["ACL008"]["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "production/redis-1/redis.conf"}
    }
    acl010 = results["ACL010"]["locations"][0]["physicalLocation"]
    assert acl010["artifactLocation"]["uri"] == "production/sentinel-2/sentinel.conf"
    assert acl010["region"]["startLine"] >= 1
    assert "Fix: set sentinel auth-user" in results["ACL010"]["message"]["text"]
    assert all("helpUri" not in r for r in run["tool"]["driver"]["rules"]), "no docs URL given: no helpUri"


def test_sarif_of_a_clean_deployment_a_profile_and_the_rule_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = rendered(tmp_path, "production")
    code, doc = lint_json(capsys, str(clean), "--format", "sarif", "--docs-url", "https://example.org/docs/lint/")
    assert code == 0 and valid_sarif(doc)["results"] == []
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert {r["helpUri"] for r in rules} == {"https://example.org/docs/lint/#rules"}
    code, doc = lint_json(capsys, "--list-rules", "--format", "sarif")
    assert code == 0 and valid_sarif(doc)["results"] == []
    # An absolute path becomes a file: URI; a profile's files are PROFILE/NODE/FILE as `lab render --out` writes.
    sub(clean, "redis-2", r"^masterauth .*\n", "")
    [result] = valid_sarif(lint_json(capsys, str(clean), "--format", "sarif")[1])["results"]
    assert (
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == (clean / "redis-2" / "redis.conf").as_uri()
    )
    code, doc = lint_json(capsys, "--profile", "production", "--format", "sarif")
    assert code == 0 and valid_sarif(doc)["results"] == []
    code, doc = lint_json(capsys, "--profile", "production", "--format", "json")
    assert doc["files"][0] == "production:production/redis-1/redis.conf" and doc["summary"]["files"] == 6


def test_the_schema_catches_what_code_scanning_would_refuse() -> None:
    """The vendored schema is the real one: a result without a message is refused."""
    doc = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"ruleId": "A"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SCHEMA).validate(doc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--format", "xml"), "argument --format: invalid choice: 'xml' (choose from 'text', 'json', 'sarif')"),
        (("--format", "json", "--json"), "argument --json: not allowed with argument --format"),
        (("--docs-url", "https://example.org"), "--docs-url goes with --format sarif"),
    ],
)
def test_bad_format_usage_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_lab("lint", "--profile", "production", *args, home=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert message in line


def test_several_targets_are_one_deployment_and_deployments_lints_each_whole(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the pre-commit hook runs: the changed files' deployments, each whole and on its own."""
    clean = rendered(broken.resolve().parent / "second", "production")
    one = broken / "redis-2" / "redis.conf"
    alone = lint_json(capsys, str(one), "--format", "json")[1]
    assert {"REPL002"} <= {f["rule"] for f in alone["findings"]}, "one file of a deployment is not the deployment"
    files = [str(p) for p in sorted(broken.glob("*/*.conf"))]
    assert lint_json(capsys, *files, "--format", "json")[1]["summary"]["findings"] == 3
    code, doc = lint_json(
        capsys, "--deployments", str(one), str(clean / "sentinel-1" / "sentinel.conf"), "--format", "json"
    )
    assert code == 1 and doc["summary"] == {"files": 12, "findings": 3, "errors": 2, "warnings": 1, "exit_code": 1}
    assert doc["files"][:6] == [str(p) for p in sorted(broken.glob("*/*.conf"))]


def test_the_deployment_of_a_file(tmp_path: Path) -> None:
    root = rendered(tmp_path, "production")
    assert deployment_of(root / "redis-2" / "redis.conf") == root.resolve()
    assert deployment_of(root / "sentinel-1" / "sentinel.conf") == root.resolve()
    assert deployment_of(root) == root.resolve()
    # Hand-written files side by side, next to other software's configs: their own directory, nothing above.
    etc = tmp_path / "etc"
    for name in ("redis/redis-a.conf", "redis/redis-b.conf", "nginx/nginx.conf", "redis2/redis.conf"):
        (etc / name).parent.mkdir(parents=True, exist_ok=True)
        (etc / name).write_text("port 6379\n")
    assert deployment_of(etc / "redis" / "redis-a.conf") == (etc / "redis").resolve()
    assert deployment_of(etc / "redis2" / "redis.conf") == (etc / "redis2").resolve()
