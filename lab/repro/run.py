"""Run reproducers: each on a fresh lab per build (started for it, removed after, an interrupt included)."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from lab import control, interrupts, servers
from lab.backends import get_backend
from lab.errors import LabError, UsageError
from lab.faults import unsupported_by_build
from lab.repro.catalogue import CATALOGUE
from lab.repro.verdict import Reproducer, Trial, Verdict
from lab.servers import Server


def lab_name(home: Path) -> str:
    """A lab for one reproducer run, new in ``home``: this command's and random (its addresses follow from its name,
    so runs at once, in one home or two, do not meet; a lab of that name it did not start is never taken)."""
    while True:
        name = f"repro-{os.getpid()}-{secrets.token_hex(3)}"
        if not (home / name).exists():
            return name


@dataclass
class Outcome:
    reproducer: Reproducer
    build: Server
    verdict: Verdict
    seconds: float

    def to_dict(self) -> dict[str, object]:
        r, v = self.reproducer, self.verdict
        return {
            "reproducer": r.name,
            "reference": r.reference,
            "build": self.build.name,
            "version": self.build.release,
            "status": v.status,
            "observed": v.observed,
            "evidence": v.evidence,
            "figures": v.figures,
            "seconds": round(self.seconds, 2),
        }


def chosen(names: Sequence[str], every: bool) -> list[Reproducer]:
    """The reproducers named (all with ``every``); an unknown name is one line listing the known ones."""
    if every:
        if names:
            raise UsageError(f"--all and --list take no names (got {', '.join(names)})")
        return list(CATALOGUE.values())
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown or not names:
        what = f"unknown reproducer {unknown[0]!r}" if unknown else "name a reproducer (or --all, --list)"
        raise UsageError(f"{what}; known: {', '.join(CATALOGUE)}")
    return [CATALOGUE[n] for n in dict.fromkeys(names)]


def builds(names: Sequence[str]) -> list[Server]:
    """The builds named (default: the system's); one that is not here is one line listing those that are."""
    if not names:
        return [servers.system()]
    found = []
    for name in names:
        try:
            found.append(servers.resolve(name))
        except LabError as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    return found


def not_applicable(reproducer: Reproducer, build: Server, backend: str) -> str | None:
    """Why the reproducer cannot run on this build, backend or machine, or None."""
    if why := reproducer.applies(build):
        return why
    if reproducer.needs and (why := get_backend(backend).unsupported(reproducer.needs)):
        return f"the {backend} backend cannot {reproducer.needs} here: {why}"
    if reproducer.needs and backend == "local" and (why := unsupported_by_build(build, reproducer.needs)):
        return f"{reproducer.needs} on a local lab of {why}"
    if reproducer.client:
        from lab.drill.clients import CLIENTS

        if why := CLIENTS[reproducer.client].missing():
            return f"{reproducer.client}: {why}"
    return None


def run_one(reproducer: Reproducer, build: Server, *, home: Path, backend: str, report_dir: Path | None) -> Outcome:
    """On a lab started for it and removed after, whatever happens. A reproducer that fails (a node that never
    answers, a wait that times out) is an ``error`` verdict with the reason: the others still run."""
    started = time.perf_counter()
    if why := not_applicable(reproducer, build, backend):
        return Outcome(reproducer, build, Verdict("not applicable", why), 0.0)
    before = interrupts.registered()
    name = lab_name(home)
    key = f"reproducer lab {name}"
    interrupts.undo_on_interrupt(key, lambda: _remove(home, name, before))
    interrupts.new_lab(home, name)
    try:
        spec = control.up(name, reproducer.profile, backend, home, server=[str(build.server_bin)]).spec
        interrupts.done(f"new lab {name}")
        where = report_dir / reproducer.name / build.name if report_dir else None
        try:
            verdict = reproducer.run(spec, Trial(report_dir=where))
        except (LabError, redis.RedisError, OSError) as exc:
            verdict = Verdict("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        if not interrupts.pending():  # (an interrupt's undo log removes it, and says so)
            control.down(name, home)
            interrupts.forget_since(before)  # (the lab is gone: nothing about it is left to undo)
    return Outcome(reproducer, build, verdict, time.perf_counter() - started)


def _remove(home: Path, name: str, before: set[str]) -> str | None:
    """An interrupt's undo: the lab goes, and with it every fault in it (what the faults' notes would say)."""
    removed = control.down(name, home) is not None
    interrupts.forget_since(before)
    return f"removed the reproducer's lab {name} and its faults" if removed else None


def run_all(
    reproducers: Sequence[Reproducer],
    chosen_builds: Sequence[Server],
    *,
    home: Path,
    backend: str = "local",
    report_dir: Path | None = None,
    progress: Callable[[Outcome], None] = lambda _o: None,
) -> list[Outcome]:
    outcomes = []
    for reproducer in reproducers:
        for build in chosen_builds:
            outcome = run_one(reproducer, build, home=home, backend=backend, report_dir=report_dir)
            progress(outcome)
            outcomes.append(outcome)
    return outcomes
