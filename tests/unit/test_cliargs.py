"""The lab CLI's argument types (lab.cliargs): a value is taken exactly when it is in its bounds, and
anything else, in any spelling, exits 2 with one line before a command runs."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab import cli, cliargs

SECONDS: list[tuple[Callable[[str], float], float, float]] = [
    (cliargs.seconds, 0, cliargs.MAX_TIMEOUT_S),
    (cliargs.duration, 0, cliargs.MAX_SOAK_S),
    (cliargs.stall, 0.1, 600),
    (cliargs.period, 0.2, 3600),
    (cliargs.span, 1, 60),
]
#: What a user might type: numbers in every spelling float() takes, and what it does not.
TEXTS = (
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.integers(-(10**7), 10**7).map(str)
    | st.sampled_from(["", " ", "1e400", "-0", "0x10", "1_0", "nan", "-inf", "2.0", "1/2", "½", "٣"])
    | st.text(max_size=6)
)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parsed(kind: Callable[[str], object], text: str) -> object | None:
    try:
        return kind(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc) and repr(text) in str(exc)
        return None


@given(which=st.sampled_from(SECONDS), text=TEXTS)
def test_seconds_are_taken_exactly_when_finite_and_in_bounds(
    which: tuple[Callable[[str], float], float, float], text: str
) -> None:
    kind, least, most = which
    value = _float(text)
    ok = value is not None and math.isfinite(value) and least <= value <= most
    assert _parsed(kind, text) == (value if ok else None)


@given(text=TEXTS)
def test_repeat_is_a_whole_number_of_runs_from_1_to_100(text: str) -> None:
    value = _float(text)
    ok = value is not None and math.isfinite(value) and value == int(value) and 1 <= value <= 100
    assert _parsed(cliargs.repeat, text) == (int(value) if ok and value is not None else None)


@given(text=TEXTS)
def test_a_clock_jump_is_up_to_an_hour_either_way_and_never_0(text: str) -> None:
    value = _float(text)
    ok = value is not None and math.isfinite(value) and value != 0 and abs(value) <= 3600
    assert _parsed(cliargs.jump, text) == (value if ok else None)


@pytest.mark.parametrize(
    "argv",
    [
        ["heal", "--timeout", "-1"],
        ["heal", "--timeout", "nan"],
        ["clock", "sentinel-1", "--stall", "0.05"],
        ["clock", "sentinel-1", "--jump", "0"],
        ["flap", "redis-1", "--period", "inf"],
        ["sweep", "--span", "61"],
        ["drill", "kill-master", "--repeat", "1.5"],
        ["drill", "kill-master", "--clients", "65"],
        ["drill", "kill-master", "--rate", "1e-300"],
        ["drill", "kill-master", "--duration", "1e400"],
        ["clients", "--parallel", "0"],
        ["logs", "redis-1", "-n", "-3"],
        ["kill", "redis-9"],
        ["render", "--out", ""],
        ["lint", ".", "--profile", "lab"],
    ],
)
def test_a_bad_value_exits_2_with_one_line_and_touches_nothing(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    try:
        code = cli.main(["--home", str(home), *argv])
    except SystemExit as exited:  # argparse's refusal
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("lab "), captured.err
    assert not home.exists()


def test_the_bounds_kept_here_for_speed_are_the_drills_own() -> None:
    """cliargs keeps a copy so that `lab --help` imports no drill; it must not drift from the original."""
    from lab.drill import nemesis

    assert cliargs.MAX_SOAK_S == nemesis.MAX_SOAK_S
