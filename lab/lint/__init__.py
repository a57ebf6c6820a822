"""Lint a whole deployment's config files at once (``lab lint``): the rules live in
:mod:`lab.lint.rules`, registered in :data:`RULES` with their id, severity and rationale."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.confparse import UnreadableConfig, parse
from lab.errors import LabError
from lab.lint import rules as _rules  # noqa: F401 - registers every rule
from lab.lint.registry import RULES, Deployment, Finding, Rule, rule_order
from lab.lint.rules import mostly_unknown
from lab.servers import Server

__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "as_json",
    "collect",
    "deployment_of",
    "lint_paths",
    "lint_profile",
    "lint_profile_files",
    "rules_table",
]


def collect(root: Path) -> list[Path]:
    """Config files under ``root`` (a file, or every *.conf below a directory)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise LabError(f"{root}: no such file or directory")
    files = sorted(p for p in root.rglob("*.conf") if p.is_file())
    if not files:
        raise LabError(f"{root}: no *.conf files to lint")
    return files


#: The file names `lab render` writes, one per node directory: DIR/NODE/redis.conf or sentinel.conf.
RENDERED = ("redis.conf", "sentinel.conf")


def deployment_of(path: Path) -> Path:
    """The deployment a config file belongs to: DIR for a rendered DIR/NODE/redis.conf (or sentinel.conf)
    when another node directory beside NODE holds one too, else the file's own directory; a directory
    is its own deployment."""
    path = path.resolve()
    if path.is_dir():
        return path
    node_dir = path.parent
    if path.name in RENDERED and any(
        (d / name).is_file() for d in node_dir.parent.iterdir() if d.is_dir() and d != node_dir for name in RENDERED
    ):
        return node_dir.parent
    return node_dir


def lint_paths(paths: list[Path], lab: bool = False, server: Server | None = None) -> list[Finding]:
    """Read the files as one deployment (meant for ``server`` when given) and run every rule over it."""
    deployment = Deployment(confs=[], lab=lab, server=server)
    for path in paths:
        try:
            conf = parse(path)
        except UnreadableConfig as exc:
            deployment.unreadable.append((path, exc.why))
            continue
        # A file that is not a config at all gets that one finding and takes no part in the rest.
        (deployment.not_configs if mostly_unknown(conf) else deployment.confs).append(conf)
    findings = [f for rule in RULES.values() for f in rule.findings(deployment)]
    return sorted(findings, key=lambda f: (f.file, f.line, f.rule))


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    """`lab lint --json`: the older list form (``--format json`` is the documented document)."""
    keys = ("rule", "severity", "file", "line", "directive", "why")
    return [{key: getattr(f, key) for key in keys} for f in findings]


def rules_table() -> list[dict[str, str]]:
    """The registry as `lab lint --list-rules` prints it."""
    return [{"rule": r.id, "severity": r.severity, "why": r.rationale} for r in sorted(RULES.values(), key=rule_order)]


def lint_profile(name: str, server: Server | None = None) -> list[Finding]:
    """Render a profile (as `lab render` does, for ``server`` when given) into a temporary directory
    and lint the result against that build."""
    return lint_profile_files(name, server)[1]


def lint_profile_files(name: str, server: Server | None = None) -> tuple[list[str], list[Finding]]:
    """:func:`lint_profile`, with the files it linted, named ``PROFILE:NODE/FILE`` like its findings."""
    from lab.profile import load_profile
    from lab.render import render_profile
    from lab.spec import NODE_NAMES

    profile = load_profile(name)
    with tempfile.TemporaryDirectory(prefix="lab-lint-") as tmp:
        out = Path(tmp) / profile.name
        render_profile(profile, out, servers=dict.fromkeys(NODE_NAMES, server) if server else None)
        paths = collect(out)
        findings = lint_paths(paths, lab=profile.seed_sentinel_discovery, server=server)
    prefix = f"{tmp}/"
    files = [f"{profile.name}:{str(p).removeprefix(prefix)}" for p in paths]
    return files, [replace(f, file=f"{profile.name}:{f.file.removeprefix(prefix)}") for f in findings]
