"""`lab lint --format json|sarif`: the findings as a documented JSON document (docs/lint.md, "Output
formats") and as SARIF 2.1.0 for GitHub code scanning. Both say what the text output says; the exit
code does not depend on the format (1 on any error)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lab.lint.registry import RULES, Finding, Rule, rule_order

#: The JSON document's shape; raised only when a key changes meaning or goes away.
JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL = "lab lint"
#: SARIF levels of lint severities (SARIF also has "note"; lint has no such severity yet).
LEVELS = {"error": "error", "warning": "warning", "note": "note"}


def exit_code(findings: list[Finding]) -> int:
    """1 on any error, else 0 (warnings alone pass), whatever the format."""
    return 1 if any(f.severity == "error" for f in findings) else 0


def summary(findings: list[Finding], files: list[str]) -> dict[str, int]:
    errors = sum(f.severity == "error" for f in findings)
    return {
        "files": len(files),
        "findings": len(findings),
        "errors": errors,
        "warnings": len(findings) - errors,
        "exit_code": exit_code(findings),
    }


def as_document(findings: list[Finding], files: list[str]) -> dict[str, Any]:
    """``lab lint --format json``: every linted file, every finding, the counts and the exit code."""
    return {
        "version": JSON_VERSION,
        "tool": TOOL,
        "files": files,
        "findings": [
            {
                "rule": f.rule,
                "severity": f.severity,
                "file": f.file,
                "line": f.line or None,
                "directive": f.directive,
                "message": f.why,
                "fix": f.fix or None,
            }
            for f in findings
        ],
        "summary": summary(findings, files),
    }


def artifact_uri(file: str) -> str:
    """A finding's file as a SARIF URI: a relative path as given (what code scanning maps onto the
    repository), an absolute one as a file: URI."""
    path = Path(file)
    return path.as_uri() if path.is_absolute() else quote(path.as_posix(), safe="/")


def as_sarif(
    findings: list[Finding], docs_url: str | None = None, uri: Callable[[str], str] = artifact_uri
) -> dict[str, Any]:
    """SARIF 2.1.0 (one run): every registered rule, one result per finding. ``docs_url`` (the lint
    docs page, e.g. on GitHub) becomes each rule's helpUri (``docs_url#rules``)."""
    rules = sorted(RULES.values(), key=rule_order)
    index = {r.id: i for i, r in enumerate(rules)}
    driver: dict[str, Any] = {
        "name": TOOL,
        "version": _version(),
        "rules": [_sarif_rule(r, docs_url) for r in rules],
    }
    if docs_url:
        driver["informationUri"] = docs_url
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "results": [_sarif_result(f, index[f.rule], uri) for f in findings],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def _sarif_rule(rule: Rule, docs_url: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": rule.id,
        "shortDescription": {"text": rule.rationale},
        "fullDescription": {"text": f"{rule.id} ({rule.severity}): {rule.rationale}"},
        "help": {"text": f"{rule.rationale}. The rule table: docs/lint.md of redis-ha-lab."},
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["redis", "configuration"]},
    }
    if docs_url:
        entry["helpUri"] = f"{docs_url}#rules"
    return entry


def _sarif_result(finding: Finding, rule_index: int, uri: Callable[[str], str]) -> dict[str, Any]:
    text = f"[{finding.directive}] {finding.why}"
    if finding.fix:
        text += f". Fix: {finding.fix}"
    location: dict[str, Any] = {"artifactLocation": {"uri": uri(finding.file)}}
    if finding.line >= 1:
        location["region"] = {"startLine": finding.line}
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
    }


def _version() -> str:
    try:
        return importlib.metadata.version("redis-ha-lab")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "0+unknown"
