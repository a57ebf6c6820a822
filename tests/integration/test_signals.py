"""Ctrl-C and SIGTERM of the commands that change a lab: each reverts what it injected (thaw, iptables
rules, the write pause, settings), deletes the secrets it wrote, says what it undid and exits 130/143.
Each case once left a frozen master, DROP rules, a write-paused master or a password file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from lab import faults, nodes, state
from lab.backends import get_backend
from lab.confparse import parse
from lab.pytest_plugin import lab_name, require_fault, require_server
from lab.spec import LabSpec, Node
from lab.topology import node_client
from lab.waits import wait_for
from tests.helpers import lab_command, require_client, run_lab, sentinel_settings

pytestmark = pytest.mark.integration
GUARD = ("min-replicas-to-write", "min-replicas-max-lag")

#: A drill's workers in these tests: a rate, as the drill fixture's (unpaced, four workers keep a core busy).
RATE = "1000"


def paced_drill(scenario: str, name: str, duration: str, report: Path | None = None) -> tuple[str, ...]:
    """`lab drill` arguments for a drill of ``name`` paced at RATE, with its report under ``report``."""
    args = ("drill", scenario, "--name", name, "--duration", duration, "--rate", RATE)
    return args if report is None else (*args, "--report", str(report))


def interrupt(process: subprocess.Popen[str], sig: signal.Signals) -> str:
    """Send ``sig``; the command's last line on stderr, once it exited 128 + sig: one line that says it
    was interrupted (after the progress lines the command printed before), and no traceback."""
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig, out + err
    lines = err.strip().splitlines()
    assert f"interrupted by {sig.name}" in lines[-1] and "Traceback" not in err, err
    assert not any("interrupted" in line for line in lines[:-1]), err
    return lines[-1]


def wait_recorded(spec: LabSpec, kind: str, process: subprocess.Popen[str]) -> faults.Fault:
    def probe() -> tuple[bool, faults.Fault | str]:
        if process.poll() is not None:
            raise AssertionError(f"the command ended first: {process.communicate()}")
        found = [f for f in faults.recorded(spec) if f.kind == kind]
        return bool(found), found[0] if found else str(faults.recorded(spec))

    fault = wait_for(probe, what=f"a {kind} fault in lab {spec.name}'s state", timeout=30, interval=0.05)
    assert isinstance(fault, faults.Fault)
    return fault


def frozen(spec: LabSpec) -> list[str]:
    backend = get_backend(spec.backend)
    return [n.name for n in spec.nodes if backend.node_state(spec, n) == "frozen"]


def lab_rules(spec: LabSpec) -> list[str]:
    """The lab's DROP rules where its backend puts them (the host's chain; the containers' namespaces)."""
    return get_backend(spec.backend).isolation_rules(spec)


def guard(spec: LabSpec, node: Node) -> dict[str, str]:
    with node_client(spec, node) as conn:
        return {name: str(conn.config_get(name)[name]) for name in GUARD}


def guard_in_file(spec: LabSpec, node: Node) -> dict[str, str]:
    conf = parse(spec.files(node).conf)
    return {name: conf.value(name, "") for name in GUARD}


def write_seconds(spec: LabSpec, node: Node) -> float:
    with node_client(spec, node, timeout=10) as conn:
        started = time.monotonic()
        conn.set("signals:after", "1")
        return time.monotonic() - started


@pytest.mark.one_server
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_drill_thaws_the_frozen_master(healthy_lab, lab_home: Path, tmp_path: Path, sig) -> None:
    spec = healthy_lab
    name = spec.name
    for attempt in range(3):
        args = paced_drill("freeze-master", name, "8", report=tmp_path / f"r{attempt}")
        with lab_command(*args, home=lab_home) as drill:
            fault = wait_recorded(spec, "freeze", drill)
            if fault.node in frozen(spec):  # (a starved test can see the record after the drill's own thaw)
                message = interrupt(drill, sig)
                break
            drill.communicate(timeout=180)
        assert run_lab("heal", "--name", name, home=lab_home).returncode == 0
    else:
        raise AssertionError("the master was never seen frozen in 3 drills: the machine starved this test")
    assert f"undone: thawed {fault.node}" in message, message
    assert frozen(spec) == [] and faults.recorded(spec) == []
    assert run_lab("heal", "--name", name, home=lab_home).returncode == 0


@pytest.mark.one_server
def test_an_interrupted_guarded_drill_removes_its_rules_and_restores_the_settings(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    spec = healthy_lab
    require_fault(spec, "isolate")
    before = {n.name: guard(spec, n) for n in spec.redis_nodes}
    assert before["redis-1"] == {"min-replicas-to-write": "0", "min-replicas-max-lag": "10"}  # the lab profile's
    args = paced_drill("isolate-master-guarded", spec.name, "8", report=tmp_path / "r")
    with lab_command(*args, home=lab_home) as drill:
        # the fault is recorded once its rules are in place; the drill lifts them 6 s later, so the signal
        # goes at once (looking at the rules first took that long in CI, under load on compose)
        fault = wait_recorded(spec, "isolate", drill)
        message = interrupt(drill, signal.SIGTERM)
    assert f"removed the iptables rules isolating {fault.node}" in message, message
    assert "restored min-replicas-to-write 0, min-replicas-max-lag 10 on redis-1" in message, message
    assert lab_rules(spec) == [] and faults.recorded(spec) == []
    assert {n.name: guard(spec, n) for n in spec.redis_nodes} == before
    assert all(guard_in_file(spec, n) == before[n.name] for n in spec.redis_nodes)


@pytest.mark.one_server
def test_a_drill_killed_with_sigkill_leaves_its_settings_for_heal(healthy_lab, lab_home: Path, tmp_path: Path) -> None:
    spec = healthy_lab
    require_fault(spec, "isolate")
    before = {n.name: guard(spec, n) for n in spec.redis_nodes}
    args = paced_drill("isolate-master-guarded", spec.name, "8", report=tmp_path / "r")
    with lab_command(*args, home=lab_home) as drill:
        wait_recorded(spec, "isolate", drill)
        drill.kill()
        drill.communicate(timeout=30)
    recorded = {f.node for f in faults.recorded(spec) if f.kind == "config"}
    assert recorded == {n.name for n in spec.redis_nodes}, faults.recorded(spec)
    assert guard(spec, spec.node("redis-2"))["min-replicas-to-write"] == "1", "kill -9 reverted nothing"
    healed = run_lab("heal", "--name", spec.name, home=lab_home)
    assert healed.returncode == 0, healed.stderr
    assert "undone: config redis-1 (min-replicas-to-write 0, min-replicas-max-lag 10)" in healed.stdout
    assert faults.recorded(spec) == [] and lab_rules(spec) == []
    # heal's REPLICAOF rewrote the demoted master's file with the drill's values; the restore rewrote it back
    assert {n.name: guard(spec, n) for n in spec.redis_nodes} == before
    assert all(guard_in_file(spec, n) == before[n.name] for n in spec.redis_nodes)


@pytest.mark.one_server
def test_interrupted_lab_clients_stops_its_adapter_and_deletes_its_config(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    spec, report = healthy_lab, tmp_path / "matrix"
    args = ("clients", "--name", spec.name, "--clients", "redis-py", "--scenarios", "freeze-master")
    with lab_command(*args, "--settings", "defaults", "--report", str(report), home=lab_home) as matrix:
        fault = wait_recorded(spec, "freeze", matrix)
        message = interrupt(matrix, signal.SIGTERM)
    assert f"thawed {fault.node}" in message and "stopped the redis-py adapter (defaults)" in message, message
    # the unfinished matrix (the cell's adapter files) is removed: a rerun with the same --report is not refused
    assert f"removed the unfinished report {report}" in message and not report.exists(), message
    assert frozen(spec) == []
    adapters = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).find(str(report)) >= 0]
    assert adapters == [], "the adapter process is gone"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.one_server
def test_an_interrupted_failover_lifts_the_write_pause(healthy_lab, lab_home: Path) -> None:
    spec = healthy_lab
    master = nodes.current_master(spec)
    replica = next(n for n in spec.redis_nodes if n != master)
    faults.inject(spec, "freeze", replica.name)  # the failover waits for it to catch up, writes paused
    with node_client(spec, master) as conn:
        conn.set("signals:before", "1")

    def paused() -> tuple[bool, str]:
        try:
            with node_client(spec, master, timeout=0.3) as conn:
                conn.set("signals:probe", "1")
        except redis.TimeoutError:
            return True, "a write waits"
        return False, "writes go through"

    with lab_command("failover", "--name", spec.name, home=lab_home) as command:
        wait_for(paused, what=f"lab failover to pause writes on {master.name}", timeout=20, interval=0.05)
        message = interrupt(command, signal.SIGTERM)
    assert f"undone: lifted the write pause (CLIENT PAUSE WRITE) on {master.name}" in message, message
    assert write_seconds(spec, master) < 2, "the pause was lifted, not left to run out (30 s)"
    faults.heal(spec)


@pytest.mark.one_server
def test_an_interrupted_up_of_a_running_lab_says_it_left_it_as_it_was(healthy_lab, lab_home: Path) -> None:
    spec = healthy_lab
    faults.inject(spec, "freeze", "sentinel-3")  # not healthy: `up` waits
    with lab_command("up", "--name", spec.name, home=lab_home) as up:
        held = lab_home / ".locks" / f"{spec.name}.lock"  # (the holder writes its pid and command there)
        wait_for(lambda: (held.read_text().startswith(f"{up.pid} up"), None), what="up to hold the lock", timeout=20)
        message = interrupt(up, signal.SIGINT)
    assert "nothing needed undoing" in message and f"left: lab {spec.name} as it was" in message, message
    assert "new lab" not in message
    faults.heal(spec)


def test_ctrl_c_while_the_cli_loads_is_one_line(tmp_path: Path) -> None:
    # A SIGINT delivered while lab.cli imports its modules (as from a Ctrl-C right after Enter); lab.servercli is
    # one of those (a command's own imports come later, inside the command: lab.interrupts handles those).
    code = (
        "import os, signal, sys, runpy\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lab.servercli': os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.meta_path.insert(0, Hook())\n"
        "sys.argv = ['lab', 'status']\n"
        "runpy.run_module('lab.cli', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "LAB_HOME": str(tmp_path)}
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "lab: interrupted by SIGINT while starting; nothing was changed"


@pytest.mark.one_server
def test_an_interrupted_upgrade_says_where_the_node_stands(lab_factory, lab_home: Path) -> None:
    require_server("valkey-8.1")
    spec = lab_factory(tag="upgint")
    faults.inject(spec, "freeze", "sentinel-3")  # the moved node is up, the lab not healthy: upgrade waits

    def moved() -> tuple[bool, str]:
        now = state.load(lab_home, spec.name)
        build = now.server(now.node("redis-3"))
        up = get_backend(now.backend).node_state(now, now.node("redis-3")) == "up"
        return build is not None and build.name == "valkey-8.1" and up, str(build)

    with lab_command("upgrade", "--name", spec.name, "redis-3", "--server", "valkey-8.1", home=lab_home) as command:
        wait_for(moved, what="redis-3 to run valkey-8.1", timeout=30, interval=0.05)
        message = interrupt(command, signal.SIGTERM)
    assert "nothing needed undoing; left: redis-3 runs valkey-8.1 now (the lab was not healthy again yet)" in message


def test_an_interrupted_drill_that_started_its_lab_says_it_left_it_running(tmp_path: Path) -> None:
    home, name = tmp_path / "home", lab_name("drnew")
    args = (*paced_drill("freeze-master", name, "8"), "--backend", "local")
    try:
        with lab_command(*args, "--report", str(tmp_path / "r"), home=home) as drill:
            wait_for(lambda: (state.exists(home, name), None), what="the drill's new lab", timeout=60, interval=0.05)
            spec = state.load(home, name)
            fault = wait_recorded(spec, "freeze", drill)
            message = interrupt(drill, signal.SIGINT)
        assert f"undone: thawed {fault.node}" in message, message
        assert f"left: lab {name}, new and healthy, is running (`lab down --name {name}` stops it)" in message
        assert frozen(spec) == []
    finally:
        run_lab("down", "--name", name, home=home)


@pytest.mark.one_backend  # (the adapter's password file is on this machine, whatever runs the lab)
@pytest.mark.one_server
@pytest.mark.parametrize("client", ["redis-py", "ioredis"])
def test_lab_clients_killed_with_sigkill_leaves_no_password_file(
    healthy_lab, lab_home: Path, tmp_path: Path, client: str
) -> None:
    require_client(client)
    spec, report = healthy_lab, tmp_path / "matrix"
    args = ("clients", "--name", spec.name, "--clients", client, "--scenarios", "freeze-master")
    with lab_command(*args, "--settings", "defaults", "--report", str(report), home=lab_home) as matrix:
        wait_recorded(spec, "freeze", matrix)
        matrix.kill()
        matrix.communicate(timeout=30)
    # The adapter deleted its config once it had read it; it ends by itself when its stdin closes.
    assert list(report.rglob("config-*.json")) == []
    wait_for(
        lambda: (not [p for p in Path("/proc").glob("[0-9]*") if str(report) in _cmdline(p)], None),
        what="the orphaned adapter to end",
        timeout=30,
    )
    assert run_lab("heal", "--name", spec.name, home=lab_home).returncode == 0


@pytest.mark.one_server
def test_an_interrupted_heal_says_what_it_reverted_and_what_is_still_recorded(healthy_lab, lab_home: Path) -> None:
    spec = healthy_lab
    faults.inject(spec, "freeze", "redis-2")
    faults.inject(spec, "freeze", "sentinel-3")  # not healed by `heal redis-2`: the lab stays unhealthy
    with lab_command("heal", "--name", spec.name, "redis-2", home=lab_home) as heal:
        wait_for(
            lambda: ([f.node for f in faults.recorded(spec)] == ["sentinel-3"], faults.recorded(spec)),
            what="heal to revert redis-2's fault",
            timeout=20,
            interval=0.05,
        )
        message = interrupt(heal, signal.SIGTERM)
    assert "undone: reverted freeze redis-2" in message, message
    assert f"left: freeze sentinel-3 (recorded: `lab heal --name {spec.name}` reverts it)" in message, message
    assert frozen(spec) == ["sentinel-3"]
    faults.heal(spec)


@pytest.mark.one_server
def test_an_interrupted_kill_drill_leaves_the_killed_master_recorded_for_heal(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    spec = healthy_lab
    args = paced_drill("kill-master", spec.name, "8", report=tmp_path / "r")
    with lab_command(*args, home=lab_home) as drill:
        fault = wait_recorded(spec, "kill", drill)
        message = interrupt(drill, signal.SIGTERM)
    assert "nothing needed undoing" in message, message
    assert f"left: {fault.node} killed (recorded: `lab heal --name {spec.name}` restarts it)" in message, message
    assert faults.recorded(spec) == [fault] and not (tmp_path / "r").exists(), "no half report"
    healed = run_lab("heal", "--name", spec.name, home=lab_home)
    assert healed.returncode == 0 and f"undone: kill {fault.node}" in healed.stdout, healed.stdout + healed.stderr


def role(spec: LabSpec, node: Node) -> tuple[str, str | None]:
    """(role, the master it replicates or None), as the node says."""
    with node_client(spec, node, timeout=5) as conn:
        info = conn.info("replication")
    master = f"{info['master_host']}:{info['master_port']}" if info["role"] == "slave" else None
    return info["role"], master


def wait_state(spec: LabSpec, node: Node, wanted: str, process: subprocess.Popen[str]) -> None:
    backend = get_backend(spec.backend)

    def probe() -> tuple[bool, str]:
        if process.poll() is not None:
            raise AssertionError(f"the command ended first: {process.communicate()}")
        current = backend.node_state(spec, node)
        return current == wanted, current

    wait_for(probe, what=f"{node.name} to be {wanted}", timeout=30, interval=0.02)


@pytest.mark.one_server
def test_an_interrupted_restart_starts_the_node_again_as_a_replica(healthy_lab, lab_home: Path) -> None:
    """Once `lab restart` left the node down, unrecorded, saying `nothing needed undoing` (or up as a second
    master): the node is started again and made a replica, and the message says so."""
    spec = healthy_lab
    master = nodes.current_master(spec)
    node = next(n for n in spec.redis_nodes if n != master)
    with lab_command("restart", "--name", spec.name, node.name, home=lab_home) as restart:
        wait_state(spec, node, "down", restart)
        message = interrupt(restart, signal.SIGTERM)
    assert get_backend(spec.backend).node_state(spec, node) == "up", message
    assert role(spec, node) == ("slave", f"{master.host}:{master.port}"), message
    assert faults.recorded(spec) == []
    # the signal came while it was down: it was started again, by the undo or by the start it interrupted
    assert f"started {node.name} again" in message or "nothing needed undoing" in message, message
    assert "left:" not in message, message


@pytest.mark.one_server
def test_an_interrupted_kill_drill_never_leaves_the_restarted_master_as_a_second_master(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    """Once an interrupt after the drill restarted its killed master said `left: redis-1 killed` (or nothing)
    while that node ran as a writable master beside the new one: it is made a replica, and the message says so."""
    spec = healthy_lab
    args = paced_drill("kill-master", spec.name, "4", report=tmp_path / "r")
    with lab_command(*args, home=lab_home) as drill:
        fault = wait_recorded(spec, "kill", drill)
        node = spec.node(fault.node)
        wait_state(spec, node, "up", drill)  # the drill's heal started it again, from its file
        message = interrupt(drill, signal.SIGTERM)
    assert "killed" not in message, message
    # One master, the one the Sentinels name; the restarted node is its replica, or that master itself when it was
    # back before the Sentinels had failed it over (seen once with both cores busy: +try-failover, then -odown
    # 3 s later with no promotion, as the drill's heal had started it again).
    new = nodes.current_master(spec)
    masters = [n.name for n in spec.redis_nodes if role(spec, n)[0] == "master"]
    assert masters == [new.name], (masters, message)
    assert new == node or role(spec, node) == ("slave", f"{new.host}:{new.port}"), message
    assert faults.recorded(spec) == []
    # Which of three honest lines depends on where the signal fell: the start was finished and the node made
    # a replica by the undo; or Sentinel had already demoted it (the undo only finished the start); or the
    # revert was complete.
    outcomes = (
        f"made {node.name} (up as a second master) a replica of {new.name}",
        f"undone: {node.name} was started again",
        "nothing needed undoing",
    )
    assert any(line in message for line in outcomes), message


@pytest.mark.one_server
def test_an_interrupt_while_a_drill_writes_its_report_removes_the_unfinished_report(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    """Once a half-written report (history.jsonl alone) was left behind, and a rerun refused the directory."""
    from lab.drill.report import check_destination

    spec, report = healthy_lab, tmp_path / "r"
    args = ("drill", "kill-master", "--name", spec.name, "--duration", "2", "--report", str(report))
    with lab_command(*args, home=lab_home) as drill:
        wait_for(
            lambda: ((report / "history.jsonl").exists() or drill.poll() is not None, None),
            what="the drill to write its report",
            timeout=60,
            interval=0.02,
        )
        message = interrupt(drill, signal.SIGTERM)
    assert f"undone: removed the unfinished report {report}" in message, message
    assert not report.exists()
    assert check_destination(report) == report  # a rerun with the same --report is not refused


def sweep_args(spec: LabSpec, report: Path) -> tuple[str, ...]:
    """A one-row sweep: the Sentinels' down-after set to 700 ms, a kill run, then a lossy-master run."""
    return (
        *("sweep", "--name", spec.name, "--set", "down-after-milliseconds=700", "--loss", "10", "--span", "3"),
        *("--report", str(report)),
    )


def wait_sentinels_set(spec: LabSpec, process: subprocess.Popen[str], value: str) -> None:
    wait_recorded(spec, "config", process)
    wait_for(
        lambda: (sentinel_settings(spec, "down-after-milliseconds") == [value] * 3, None),
        what=f"the Sentinels' down-after to be {value}",
        timeout=30,
        interval=0.05,
    )


@pytest.mark.one_server
def test_a_sweep_stopped_by_sigterm_gives_the_sentinels_their_setting_back(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    spec = healthy_lab
    require_fault(spec, "degrade")
    report = tmp_path / "sweep"
    with lab_command(*sweep_args(spec, report), home=lab_home) as sweep:
        wait_sentinels_set(spec, sweep, "700")
        message = interrupt(sweep, signal.SIGTERM)
    for sentinel in spec.sentinels:
        assert f"restored down-after-milliseconds {spec.down_after_ms} on {sentinel.name}" in message, message
    assert sentinel_settings(spec, "down-after-milliseconds") == [str(spec.down_after_ms)] * 3
    assert not report.exists(), "an unfinished sweep's reports are removed"
    # (the signal may land after the kill run killed the master: that stays recorded, for heal, and is said)
    assert all(f.kind == "kill" for f in faults.recorded(spec)), faults.recorded(spec)
    assert run_lab("heal", "--name", spec.name, home=lab_home).returncode == 0


@pytest.mark.one_server
def test_a_sweep_killed_with_sigkill_leaves_the_sentinels_setting_for_heal(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    spec = healthy_lab
    require_fault(spec, "degrade")
    with lab_command(*sweep_args(spec, tmp_path / "sweep"), home=lab_home) as sweep:
        wait_sentinels_set(spec, sweep, "700")
        sweep.kill()
        sweep.communicate(timeout=30)
    recorded = {f.node for f in faults.recorded(spec) if f.kind == "config"}
    assert recorded == {s.name for s in spec.sentinels}, faults.recorded(spec)
    assert sentinel_settings(spec, "down-after-milliseconds") == ["700"] * 3, "kill -9 reverted nothing"
    # the row's drills ran on the row's down-after; the lab's own stays the profile's (a review found it saved)
    assert state.load(lab_home, spec.name).down_after_ms == spec.down_after_ms
    healed = run_lab("heal", "--name", spec.name, home=lab_home)
    assert healed.returncode == 0, healed.stderr
    assert f"undone: config sentinel-1 (down-after-milliseconds {spec.down_after_ms})" in healed.stdout, healed.stdout
    assert sentinel_settings(spec, "down-after-milliseconds") == [str(spec.down_after_ms)] * 3
    assert faults.recorded(spec) == []
    line = f"sentinel down-after-milliseconds {spec.master_name} {spec.down_after_ms}"
    for sentinel in spec.sentinels:  # (SENTINEL SET rewrote each Sentinel's file: the restore wrote it back)
        assert line in spec.files(sentinel).conf.read_text().splitlines(), sentinel.name
