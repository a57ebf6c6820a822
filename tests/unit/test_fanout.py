"""`lab clients --parallel`: the order of its cells, where their reports go, its helpers' names, and the lock
a child takes as held for it by its parent (real processes, no server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.drill.fanout import Unit, helper_names, placed, units
from lab.drill.matrix import Cell
from lab.errors import LabError, UsageError
from lab.lock import PARENT_HOLDS, holder_pid, lab_lock


def cell(**changes: object) -> Cell:
    fields: dict[str, object] = {
        "client": "redis-py", "version": "8.2.0", "settings": "defaults", "scenario": "kill-master", "ok": 10,
        "unavailable_s": 1.0, "nothing_kept_s": 1.0, "errors": {}, "lost": 0, "duplicated": 0,
        "errored_but_applied": 0, "indeterminate": 0, "recovered": True, "failovers": 1, "report": "/tmp/x/report.html",
    }  # fmt: skip
    return Cell(**{**fields, **changes})  # type: ignore[arg-type]


def test_units_come_in_the_serial_matrix_order() -> None:
    order = [(u.scenario, u.client, u.setting, u.run) for u in units(["a", "b"], ["s1", "s2"], ["d"], 2)]
    assert order == [
        ("s1", "a", "d", 1), ("s1", "a", "d", 2), ("s1", "b", "d", 1), ("s1", "b", "d", 2),
        ("s2", "a", "d", 1), ("s2", "a", "d", 2), ("s2", "b", "d", 1), ("s2", "b", "d", 2),
    ]  # fmt: skip
    assert [u.index for u in units(["a", "b"], ["s1", "s2"], ["d"], 2)] == list(range(8))


def test_a_cells_report_goes_where_a_serial_matrix_puts_it(tmp_path: Path) -> None:
    unit = Unit(3, "kill-master", "redis-py", "defaults", 2)
    once, where = placed(cell(), unit, tmp_path, repeat=1)
    assert where == tmp_path / "kill-master" / "redis-py-defaults" and once.report == str(where / "report.html")
    repeated, where = placed(cell(), unit, tmp_path, repeat=3)
    assert where == tmp_path / "kill-master" / "redis-py-defaults" / "run-2" and repeated.run == 2
    assert placed(cell(report=""), unit, tmp_path, repeat=1)[0].report == ""


def test_helper_names_and_a_name_with_no_room_for_them() -> None:
    assert helper_names("default", 3) == ["default-2", "default-3"] and helper_names("x", 1) == []
    with pytest.raises(UsageError, match="would need a name over 40 characters"):
        helper_names("a" * 39, 2)


def _child_takes(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from lab.lock import lab_lock\n"
        "with lab_lock(Path(sys.argv[1]), 'lab1', 'child', timeout=0.3): print('held')"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_a_child_takes_a_lab_its_parent_holds_for_it_and_no_other_process_does(tmp_path: Path) -> None:
    with lab_lock(tmp_path, "lab1", "clients --parallel"):
        mine = _child_takes(tmp_path, {**os.environ, PARENT_HOLDS: str(os.getpid())})
        assert mine.returncode == 0 and mine.stdout == "held\n", mine.stderr
        plain = _child_takes(tmp_path, {**os.environ})
        assert plain.returncode != 0 and "lab lab1 is busy" in plain.stderr
        wrong = _child_takes(tmp_path, {**os.environ, PARENT_HOLDS: "1"})  # (a pid that is not its parent)
        assert wrong.returncode != 0 and "lab lab1 is busy" in wrong.stderr


def test_a_run_is_under_way_while_it_holds_the_lock_and_not_after_a_kill_9(tmp_path: Path) -> None:
    """Whose helper a lab is tells a run under way from one a kill -9 ended by the lock it holds, not by a
    pid that the kernel may have given to any other process since."""
    assert holder_pid(tmp_path, "lab1") is None  # (no lock file yet)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom lab.lock import lab_lock\n"
         "with lab_lock(Path(sys.argv[1]), 'lab1', 'clients --parallel'):\n    print('held', flush=True)\n"
         "    time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert holder_pid(tmp_path, "lab1") == holder.pid
        with pytest.raises(LabError, match="busy"), lab_lock(tmp_path, "lab1", "x", timeout=0):
            pass  # (holder_pid did not take the lock away)
    finally:
        holder.kill()
        holder.wait()
    assert holder_pid(tmp_path, "lab1") is None  # the file still names the pid; nobody holds the lock


def test_a_cell_that_breaks_in_its_worker_fails_the_run_instead_of_going_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.drill.fanout import _Fanout

    def broken(self: _Fanout, lab: str, unit: Unit) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(_Fanout, "_run", broken)
    with pytest.raises(LabError, match="the kill-master cell of redis-py on lab a: No space left on device"):
        _Fanout(tmp_path, tmp_path / "m", 1, print).run(["a", "b"], units(["redis-py"], ["kill-master"], ["d"], 1))
