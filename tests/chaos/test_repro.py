"""`lab repro`: the catalogue of reproducers of upstream Sentinel failures, each run on a fresh lab of the default
build (CI runs them all), the verdict it gives, bad input, and an interrupt mid-reproducer."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from lab import procs
from lab.pytest_plugin import require_server
from lab.repro.catalogue import CATALOGUE
from tests.helpers import lab_command, run_lab

pytestmark = [pytest.mark.chaos]

#: Whether a reproducer shows the failure on the default build (Redis 7.0) is known for all but the one whose odds
#: are low (a second failover: 0 of 15 kill drills on the old builds, docs/servers.md): the verdict is data.
ODDS = {"double-failover-after-switch-master"}
NOT_ON_REDIS = {"coordinated-failover-acl-stall"}


def repro(home: Path, *args: str, timeout: float = 180) -> dict[str, Any]:
    done = run_lab("repro", *args, "--json", home=home, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def no_lab_left(home: Path) -> bool:
    """The reproducer's lab (``repro-PID``) is gone: its files and its processes."""
    return not list(home.glob("repro-*")) and left_running(home) == []


def left_running(home: Path) -> list[int]:
    """Server processes working in the home (a reproducer's lab lives there): none once it is done."""
    return procs.servers_under(home)


def injected(state_file: Path) -> bool:
    try:
        return bool(json.loads(state_file.read_text()).get("faults"))
    except (OSError, ValueError):
        return False


def test_the_catalogue_names_ten_cited_reproducers(tmp_path: Path) -> None:
    listed = json.loads(run_lab("repro", "--list", "--json", home=tmp_path).stdout)
    assert len(listed) >= 10 and len({r["name"] for r in listed}) == len(listed)
    for r in listed:
        assert (
            r["reference"].startswith(("https://github.com/", "https://aphyr.com/")) and r["symptom"] and r["builds"]
        ), r


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_reproducer_gives_its_verdict_on_a_fresh_lab_it_removes(name: str, tmp_path: Path) -> None:
    doc = repro(tmp_path, name)
    (verdict,) = doc["verdicts"]
    assert verdict["reproducer"] == name and verdict["reference"] == CATALOGUE[name].reference
    assert verdict["observed"], verdict
    if name in NOT_ON_REDIS:
        assert verdict["status"] == "not applicable" and "Valkey 9.0+" in verdict["observed"], verdict
        assert verdict["seconds"] == 0, "not applicable: no lab started"
        return
    if name in ODDS:
        assert verdict["status"] in ("reproduced", "not reproduced"), verdict
    else:
        assert verdict["status"] == "reproduced", verdict
    assert verdict["evidence"] and verdict["seconds"] < 60, verdict
    if name == "jepsen-2013-partition":  # min-replicas-to-write guards the minority: far fewer writes lost
        figures = verdict["figures"]
        assert 0 < figures["guarded_lost"] < figures["lost"] / 2, figures
    assert no_lab_left(tmp_path)


def test_a_coordinated_failover_without_its_acl_stalls_on_valkey_9(tmp_path: Path) -> None:
    require_server("valkey-9.1")
    (verdict,) = repro(tmp_path, "coordinated-failover-acl-stall", "--server", "valkey-9.1")["verdicts"]
    assert verdict["status"] == "reproduced", verdict
    assert any("client|pause" in line for line in verdict["evidence"]), verdict
    assert no_lab_left(tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nope",), "unknown reproducer 'nope'; known: split-sentinels-different-masters"),
        ((), "name a reproducer (or --all, --list); known: "),
        (("--all", "tilt-blocks-failover"), "--all and --list take no names (got tilt-blocks-failover)"),
        (("bare-failover-loses-writes", "--server", "redis-1.0"), "no server build 'redis-1.0' here"),
        (("bare-failover-loses-writes", "--report", "/etc/hostname"), "--report /etc/hostname is a file"),
    ],
)
def test_bad_input_is_one_line_and_starts_no_lab(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    done = run_lab("repro", *args, home=tmp_path)
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr
    assert no_lab_left(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_mid_reproducer_removes_its_lab_and_its_faults(sig: signal.Signals, tmp_path: Path) -> None:
    # Two Sentinels stopped into TILT, then the master killed: the interrupt comes while the failover waits.
    with lab_command("repro", "tilt-blocks-failover", home=tmp_path) as process:
        deadline = time.monotonic() + 60
        while not any(injected(p / "state.json") for p in tmp_path.glob("repro-*")):
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.2)
        time.sleep(1.0)
        process.send_signal(sig)
        out, err = process.communicate(timeout=90)
    assert process.returncode == 128 + sig, out + err
    last = err.strip().splitlines()[-1]
    assert f"interrupted by {sig.name}" in last and "removed the reproducer's lab repro-" in last, err
    assert "left:" not in last and "could not tell" not in last, err
    assert "Traceback" not in err
    assert no_lab_left(tmp_path)
