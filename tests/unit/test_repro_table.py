"""`lab repro --markdown`'s verdict table and --json's records, from outcomes (no lab)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any, cast

from lab.repro.catalogue import CATALOGUE
from lab.repro.cli import _about, markdown
from lab.repro.run import Outcome
from lab.repro.verdict import Verdict


def outcome(name: str, build: str, status: Any, observed: str) -> Outcome:
    server = cast(Any, SimpleNamespace(name=build, release={"redis-7.0": "7.0.15", "valkey-9.1": "9.1.2"}[build]))
    return Outcome(CATALOGUE[name], server, Verdict(status, observed, ["evidence"], {"lost": 3}), 12.3)


def test_the_table_has_a_row_per_reproducer_and_a_column_per_build_with_the_run_it_came_from() -> None:
    outcomes = [
        outcome("split-sentinels-different-masters", "redis-7.0", "reproduced", "two masters | after 15 s"),
        outcome("split-sentinels-different-masters", "valkey-9.1", "not reproduced", "converged"),
        outcome("coordinated-failover-acl-stall", "redis-7.0", "not applicable", "no COORDINATED"),
    ]
    about = {
        "date": "2026-12-07 13:00 UTC",
        "command": "lab repro --all --server redis-7.0,valkey-9.1 --markdown",
        "builds": {"redis-7.0": "7.0.15", "valkey-9.1": "9.1.2"},
        "machine": {"cpus": 2, "memory_gib": 23.5, "kernel": "Linux 6.18", "python": "3.11.7", "load_1min": 0.5},
    }
    lines = markdown(outcomes, about).splitlines()
    assert lines[0].startswith(
        "Run 2026-12-07 13:00 UTC with `lab repro --all --server redis-7.0,valkey-9.1 --markdown` on 2 CPUs, 23.5 GiB"
    )
    assert "redis-7.0 (7.0.15), valkey-9.1 (9.1.2)" in lines[0]
    assert lines[2] == "| reproducer | upstream | redis-7.0 | valkey-9.1 |"
    split = next(line for line in lines if line.startswith("| `split-sentinels"))
    assert "[redis/redis#12271](https://github.com/redis/redis/issues/12271)" in split
    assert "**reproduced**: two masters \\| after 15 s" in split and "**not reproduced**: converged" in split
    coordinated = next(line for line in lines if line.startswith("| `coordinated"))
    assert coordinated.endswith("| **not applicable**: no COORDINATED |  |")  # (not run on valkey-9.1 here)


def test_a_verdict_record_carries_its_reference_build_and_numbers() -> None:
    record = outcome("bare-failover-loses-writes", "valkey-9.1", "reproduced", "lost").to_dict()
    assert record == {
        "reproducer": "bare-failover-loses-writes",
        "reference": "https://github.com/redis/redis/issues/6062",
        "build": "valkey-9.1",
        "version": "9.1.2",
        "status": "reproduced",
        "observed": "lost",
        "evidence": ["evidence"],
        "figures": {"lost": 3},
        "seconds": 12.3,
    }


def test_the_table_names_the_command_that_made_it() -> None:
    """The header gives the whole command (reproducers, builds), so the table is made again by copying it."""
    redis70 = SimpleNamespace(name="redis-7.0", release="7.0.15")
    valkey91 = SimpleNamespace(name="valkey-9.1", release="9.1.2")
    every = argparse.Namespace(all=True, reproducer=[], server=["redis-7.0, valkey-9.1"], json=False)
    assert _about([redis70, valkey91], every)["command"] == "lab repro --all --server redis-7.0,valkey-9.1 --markdown"
    one = argparse.Namespace(all=False, reproducer=["stale-replica-promoted"], server=[], json=True)
    assert _about([redis70], one)["command"] == "lab repro stale-replica-promoted --json"
