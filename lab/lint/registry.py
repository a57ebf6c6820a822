"""The lint registry: one small function per rule, registered with its id, severity and the reason it
exists. ``lab lint --list-rules`` prints it; the docs' table (docs/lint.md) and the tests' broken deployment per
rule are checked against it, so a rule cannot exist without a test and a line in the docs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lab.confparse import ConfFile, Directive
from lab.servers import Server

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    file: str
    line: int
    directive: str
    why: str
    fix: str = ""  # what to change, when the rule knows (lab lint --format json/sarif show it)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} {self.rule} [{self.directive}] {self.why}"


@dataclass(frozen=True)
class Hit:
    """What a rule found: where (a file, and the directive when there is one) and why."""

    conf: ConfFile | Path
    where: Directive | None
    directive: str
    why: str
    line: int = 0  # when there is no directive to point at
    fix: str = ""


@dataclass
class Deployment:
    """Every file of one deployment, read once; rules look at it together."""

    confs: list[ConfFile]  # the files that are Redis or Sentinel configs
    lab: bool = False  # the files are a lab's: seeded Sentinel state is expected
    server: Server | None = None  # the build the files are meant for (`lab lint --server`)
    not_configs: list[ConfFile] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def data(self) -> list[ConfFile]:
        return [c for c in self.confs if not c.is_sentinel]

    @property
    def sentinels(self) -> list[ConfFile]:
        return [c for c in self.confs if c.is_sentinel]

    @functools.cached_property
    def passwords(self) -> set[str]:
        return {c.value("requirepass") for c in self.data}

    @functools.cached_property
    def targets(self) -> set[str]:
        """host:port every replica follows."""
        return {replicaof(c) for c in self.data if replicaof(c)}

    @functools.cached_property
    def known(self) -> set[str]:
        """host:port of every data node that binds a specific address."""
        return {f"{a}:{client_port(c)}" for c in self.data for a in specific_binds(c)}


Check = Callable[[Deployment], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    rationale: str
    check: Check

    def findings(self, deployment: Deployment) -> Iterator[Finding]:
        for hit in self.check(deployment):
            if hit.where is not None:
                file, line = str(hit.where.file), hit.where.line
            else:
                file, line = str(hit.conf if isinstance(hit.conf, Path) else hit.conf.path), hit.line
            yield Finding(self.id, self.severity, file, line, hit.directive, hit.why, hit.fix)


RULES: dict[str, Rule] = {}


def rule_order(rule: Rule) -> tuple[str, int]:
    """ACL001 < ACL010 < AUTH001: by prefix, then by number."""
    prefix = rule.id.rstrip("0123456789")
    return prefix, int(rule.id[len(prefix) :])


def rule(rule_id: str, severity: Severity, rationale: str) -> Callable[[Check], Check]:
    """Register a deployment-wide check."""

    def register(check: Check) -> Check:
        if rule_id in RULES:
            raise ValueError(f"lint rule {rule_id} registered twice")
        RULES[rule_id] = Rule(rule_id, severity, rationale, check)
        return check

    return register


FileCheck = Callable[[ConfFile, Deployment], Iterable[Hit]]


def each(kind: Literal["file", "data", "sentinel"]) -> Callable[[FileCheck], Check]:
    """Turn a check of one file (every file, data nodes only, or Sentinels only) into a deployment check."""

    def wrap(check: FileCheck) -> Check:
        @functools.wraps(check)
        def over(deployment: Deployment) -> Iterator[Hit]:
            confs = {"file": deployment.confs, "data": deployment.data, "sentinel": deployment.sentinels}[kind]
            for conf in confs:
                yield from check(conf, deployment)

        return over

    return wrap


def replicaof(conf: ConfFile) -> str:
    d = conf.get("replicaof") or conf.get("slaveof")
    return f"{d.args[0]}:{d.args[1]}" if d and len(d.args) == 2 else ""


def client_port(conf: ConfFile) -> str:
    """The port clients (and replicas, and Sentinel) reach a node on: tls-port when port is 0."""
    port = conf.value("port", "6379")
    return conf.value("tls-port", port) if port == "0" else port


def specific_binds(conf: ConfFile) -> list[str]:
    addrs = [a.lstrip("-") for d in conf.all("bind") for a in d.args]
    return [a for a in addrs if a not in ("*", "0.0.0.0", "::", "::*")]
