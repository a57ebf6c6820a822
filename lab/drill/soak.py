"""``lab drill soak``: faults from a seeded schedule (lab.drill.nemesis) for as long as asked, the
workload running throughout, each fault healed and the lab converged before the next one's quiet
interval. The history goes to disk as it is recorded (lab.drill.spool) and is checked in one pass
(lab.drill.soakcheck), so a soak of any length runs in bounded memory.

A lab that does not converge after a step stops the soak: that is its finding, written in the
report (not a crash). Ctrl-C or SIGTERM stops the workload, heals the lab, and writes a report that
says it is partial from the history recorded so far; so does a disk that fills up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lab import faults, interrupts
from lab.drill import nemesis
from lab.drill.history import History, Recorder, Workload
from lab.drill.scenarios import FAULT_AT, RECOVERY_TAIL_S, SCENARIOS, Run, check_supported
from lab.drill.soakcheck import SoakResult, check_soak, register_ops_stream
from lab.drill.soakreport import write_soak_report
from lab.drill.spool import NAME, read_spool
from lab.drill.steps import wait_converged
from lab.errors import LabError
from lab.spec import LabSpec

SOAK_WORKLOADS = ("counter", "register")  # the workloads whose check needs no per-key memory
CONVERGE_S = 90.0  # a lab not converged this long after a heal stops the soak
#: Each step is a drill's window: the fault 1 s in, the heal 10 s in (or 3 s after the fault's own
#: steps, if they take longer), as `lab drill SCENARIO` with its default duration.
STEP_WINDOW_S = 10.0


def check_faults(spec: LabSpec, chosen: tuple[str, ...]) -> None:
    """Refuse, before anything starts, a fault this lab's backend or builds cannot inject."""
    for name in chosen:
        check_supported(spec, name, "soak fault")


def run_soak(
    spec: LabSpec,
    *,
    seed: int,
    chosen: tuple[str, ...],
    interval: tuple[float, float],
    duration: float,
    report_dir: Path,
    clients: int = 4,
    workload: str = "counter",
    rate: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> SoakResult:
    """Run the soak; the report goes to ``report_dir`` (its history as ``history.jsonl.gz``)."""
    if workload not in SOAK_WORKLOADS:
        raise LabError(f"a soak runs the {' or '.join(SOAK_WORKLOADS)} workload (their check holds no per-key state)")
    check_faults(spec, chosen)
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / NAME
    recorder = Recorder(spec, Workload(kind=workload, rate=rate), clients, spool=path)
    history = recorder.history
    assert history.spool is not None
    stopped: str | None = None
    interrupted = False
    try:
        with recorder:
            history.add("drill", event="start", scenario="soak", seed=seed)
            for step in nemesis.schedule(seed, chosen, interval):
                if history.clock.seconds() + step.quiet_s > duration:
                    break
                if _quiet(history, step.quiet_s):
                    stopped = history.spool.error
                    break
                stopped = _step(spec, recorder, step, say)
                if stopped:
                    break
            history.add("drill", event="stop", scenario="soak")
            recorder.stop_workload()
            if not stopped:
                recorder.final(wait_converged(spec, timeout=CONVERGE_S))
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: heal, then a partial report from what was recorded
        interrupted = True
        with interrupts.shielded():
            recorder.abort()
            faults.heal(spec, settings=False)
            history.spool.close()
            _write(report_dir, spec, _result(path, seed, chosen, interval, duration, workload, started, True, None))
            interrupts.leave("soak report", f"a partial soak report: {report_dir / 'soak.html'}")
        raise
    history.spool.close()
    result = _result(path, seed, chosen, interval, duration, workload, started, interrupted, stopped)
    _write(report_dir, spec, result)
    return result


def _quiet(history: History, seconds: float) -> bool:
    """The quiet interval before a fault; True if the history could not be written meanwhile."""
    assert history.spool is not None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if history.spool.error:
            return True
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return bool(history.spool.error)


def _step(spec: LabSpec, recorder: Recorder, step: nemesis.Step, say: Callable[[str], None]) -> str | None:
    """One fault: injected as its drill does it, healed, the lab converged. Returns why the soak must
    stop (the lab did not converge), else None."""
    history = recorder.history
    name = f"{step.index} {step.fault}"
    history.add("step", event="start", step=name)
    run = Run(spec, recorder, duration=0.0)
    run.started = history.clock.seconds() - FAULT_AT  # the drill's "1 s into the workload" is now
    SCENARIOS[step.fault].act(run)
    run.at(max(STEP_WINDOW_S, run.elapsed() + RECOVERY_TAIL_S))  # as a drill: the Sentinels act, clients recover
    healing = history.clock.ms()
    history.add("step", event="heal", step=name)
    faults.heal(spec, settings=False)
    for fault in run.injected:
        recorder.fault("revert", fault.kind, fault.node)
    try:
        master = wait_converged(spec, timeout=CONVERGE_S)
    except LabError as exc:
        why = f"step {name}: the lab did not converge within {CONVERGE_S:g} s of the heal: {str(exc).splitlines()[0]}"
        history.add("step", event="end", step=name, converged_ms=None)
        return why
    converged = history.clock.ms() - healing
    history.add("step", event="end", step=name, converged_ms=round(converged, 3))
    say(f"step {name}: healed, converged on {master.name} in {converged / 1000:.2f} s")
    assert history.spool is not None
    return history.spool.error


def _result(
    path: Path,
    seed: int,
    chosen: tuple[str, ...],
    interval: tuple[float, float],
    duration: float,
    workload: str,
    started: float,
    partial: bool,
    stopped: str | None,
) -> SoakResult:
    checking = time.perf_counter()
    findings = check_soak(read_spool(path, skip=("invoke",)))
    findings.partial, findings.stopped = partial, stopped
    linearizable = None
    if workload == "register":
        from lab.drill.linearizable import check

        verdict = check(register_ops_stream(read_spool(path)))
        linearizable = {
            "valid": verdict.valid,
            "keys": verdict.keys,
            "operations": verdict.operations,
            "violations": [v.describe() for v in verdict.violations[:5]],
            "unknown": verdict.unknown,
        }
    findings.check_seconds = round(time.perf_counter() - checking, 3)
    seconds = time.perf_counter() - started
    return SoakResult(findings, seed, chosen, interval, duration, workload, linearizable, seconds, path)


def _write(report_dir: Path, spec: LabSpec, result: SoakResult) -> None:
    started = time.perf_counter()
    write_soak_report(result, spec, report_dir)
    # (the time the report took is in soak.json's "report_seconds", written once more with it)
    _stamp(report_dir, time.perf_counter() - started)


def _stamp(report_dir: Path, seconds: float) -> None:
    import json

    path = report_dir / "soak.json"
    doc = json.loads(path.read_text())
    doc["report_seconds"] = round(seconds, 3)
    path.write_text(json.dumps(doc, indent=2))
