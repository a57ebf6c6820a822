"""lab.clockshift's library on a process that is not a server: Python's own time.time() under it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import clockshift


@pytest.fixture
def library(tmp_path: Path) -> Path:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        if os.environ.get("LAB_REQUIRE_FAULTS") == "1":
            pytest.fail("LAB_REQUIRE_FAULTS=1 but there is no C compiler for the clock library")
        pytest.skip("no C compiler")
    return clockshift.library(tmp_path / "cache")


def clock_of(library: Path, clock_file: Path, code: str) -> str:
    env = {**os.environ, "LD_PRELOAD": str(library), "LAB_CLOCK_FILE": str(clock_file)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_the_wall_clock_moves_and_the_monotonic_one_does_not(library: Path, tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    clockshift.write(clock, offset_s=-3600)
    seen = clock_of(library, clock, "import time; print(time.time(), time.monotonic())").split()
    assert abs(float(seen[0]) - (time.time() - 3600)) < 5
    assert abs(float(seen[1]) - time.monotonic()) < 5  # (the same boot clock as this process's)
    assert clockshift.read(clock)[0] == -3600


def test_a_stalled_clock_stands_still_then_shows_the_real_time(library: Path, tmp_path: Path) -> None:
    clock = tmp_path / "clock"
    clockshift.write(clock)
    # The stall starts in the child itself: a loaded machine can take longer than the stall to start Python.
    code = (
        f"import sys, time; sys.path.insert(0, {str(Path(clockshift.__file__).parents[1])!r}); "
        f"from pathlib import Path; from lab import clockshift; clockshift.write(Path({str(clock)!r}), stall_s=1.0); "
        "a = time.time(); time.sleep(0.3); b = time.time(); time.sleep(1.0); print(a, b, time.time())"
    )
    a, b, c = (float(v) for v in clock_of(library, clock, code).split())
    assert a == b and c - a >= 1.0  # standing still, then caught up at once
    assert abs(c - time.time()) < 2


def test_without_its_file_the_clock_is_the_real_one(library: Path, tmp_path: Path) -> None:
    seen = float(clock_of(library, tmp_path / "none", "import time; print(time.time())"))
    assert abs(seen - time.time()) < 2
    assert clockshift.read(tmp_path / "none") == (0.0, 0.0, 0.0)


def test_the_library_is_built_once(library: Path, tmp_path: Path) -> None:
    stamp = library.stat().st_mtime_ns
    assert clockshift.library(tmp_path / "cache") == library and library.stat().st_mtime_ns == stamp
