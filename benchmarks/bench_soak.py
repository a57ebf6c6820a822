"""A soak's bounded memory and compact history, against today's design of a drill in the same run.

The same duration, unpaced (4 workers as fast as they go), the counter workload, on one local lab:
``lab drill soak`` (history spooled to disk as gzip JSON lines, checked in one pass) against
``lab drill kill-master`` (history in memory, written as JSON lines, checked from a list). Rows:

- peak RSS of the command (its own process, from wait4): target at most 300 MB whatever the length;
- bytes per operation of the history on disk: target at most 40;
- the check's time per million operations (the same histories, read back and checked here), and
  the soak's checking and reporting as a share of its workload time: target at most 10 %.

``SOAK_BENCH_S`` sets the duration (default 60, at most 120: the drill's own bound).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab.drill.checker import check
from lab.drill.history import read_history
from lab.drill.soakcheck import check_soak
from lab.drill.spool import read_spool

SECONDS = float(os.environ.get("SOAK_BENCH_S", "60"))


def _measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one command run to its end."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)
        code = process.returncode = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} exited {code}: {errors.read().decode()[-500:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def _per_million(seconds: float, operations: int) -> float:
    return seconds / max(operations, 1) * 1e6


def run() -> list[Row]:
    lab = [sys.executable, "-m", "lab.cli"]
    with tempfile.TemporaryDirectory(prefix="lab-bench-soak-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "LAB_HOME": str(home / "labs")}
        subprocess.run([*lab, "up", "--name", "bsoak", "--backend", "local"], env=env, check=True, capture_output=True)
        try:
            soak_dir, drill_dir = home / "soak", home / "drill"
            soak_cmd = [*lab, "drill", "soak", "--name", "bsoak", "--duration", f"{SECONDS:g}", "--seed", "1"]
            soak_cmd += ["--faults", "kill-master,failover", "--interval", "10-15", "--report", str(soak_dir)]
            soak_rss, soak_wall = _measured(soak_cmd, env)
            drill_cmd = [*lab, "drill", "kill-master", "--name", "bsoak", "--duration", f"{SECONDS:g}"]
            drill_cmd += ["--workload", "counter", "--report", str(drill_dir)]
            drill_rss, _ = _measured(drill_cmd, env)
        finally:
            subprocess.run([*lab, "down", "--name", "bsoak"], env=env, check=False, capture_output=True)
        spooled = soak_dir / "history.jsonl.gz"
        started = time.perf_counter()
        soak = check_soak(read_spool(spooled, skip=("invoke",)))
        soak_check = time.perf_counter() - started
        lines = drill_dir / "history.jsonl"
        started = time.perf_counter()
        findings = check(read_history(lines))
        drill_check = time.perf_counter() - started
        drill_ops = sum(v["ok"] + v["fail"] + v["info"] for v in findings.operations.values())
        soak_bytes = spooled.stat().st_size / max(soak.operations, 1)
        drill_bytes = lines.stat().st_size / max(drill_ops, 1)
        doc = json.loads((soak_dir / "soak.json").read_text())
        reporting = doc["check_seconds"] + doc["report_seconds"]  # the soak's own: reading back, checking, reporting
    share = max(reporting, 0.0) / SECONDS
    print(
        f"soak {SECONDS:g} s unpaced: {soak.operations:,} operations, peak {soak_rss:.0f} MB, {soak_bytes:.1f} B/op, "
        f"check {_per_million(soak_check, soak.operations):.2f} s per million, check and report {reporting:.1f} s "
        f"({share:.0%}) of {soak_wall:.1f} s; drill: {drill_ops:,} operations, peak {drill_rss:.0f} MB, "
        f"{drill_bytes:.1f} B/op, check {_per_million(drill_check, drill_ops):.2f} s per million"
    )
    return [
        Row(f"soak peak RSS, {SECONDS:g} s unpaced (MB)", soak_rss, drill_rss, "MB", "a drill of the same length"),
        Row("history on disk per operation (bytes)", soak_bytes, drill_bytes, "B", "a drill's history.jsonl"),
        Row(
            "check time per million operations (s)",
            _per_million(soak_check, soak.operations),
            _per_million(drill_check, drill_ops),
            "s",
            "a drill's checker",
        ),
        Row("checking and reporting, share of the workload time", share, 0.10, "x", "target: 10 %"),
    ]
