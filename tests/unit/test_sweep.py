"""`lab sweep`'s grid as data (lab.drill.sweep): its options, refused before a lab is touched, and its table
and picture from runs' figures. The sweep against real servers is tests/chaos/test_sweep.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.cli import main
from lab.drill.sweep import Cell, Grid, KillRow, Sweep, heatmap, markdown, parse_grid, parse_setting
from lab.errors import UsageError


def test_a_grid_reads_its_setting_and_strengths() -> None:
    grid = parse_grid("down-after-milliseconds=500, 1000,5000", "5,20.5", None, 8.0, 2)
    assert grid == Grid("down-after-milliseconds", (500, 1000, 5000), "loss", (5.0, 20.5), 8.0, 2)
    assert grid.runs == 3 * (1 + 2) * 2  # a kill and a run per strength, per value, per repeat
    assert grid.label(20.5) == "20.5% loss"
    assert parse_grid("failover-timeout=3000", None, "300", 4.0, 1).label(300.0) == "300 ms delay"


@pytest.mark.parametrize(
    ("setting", "loss", "delay", "says"),
    [
        ("down-after-milliseconds=500", None, None, "--loss P[,P...] or --delay"),
        ("down-after-milliseconds=500", "5", "100", "one of them"),
        ("quorum=2", "5", None, "NAME one of: down-after-milliseconds, failover-timeout"),
        ("down-after-milliseconds", "5", None, "NAME=V1,V2"),
        ("down-after-milliseconds=50", "5", None, "from 100 to 60000"),
        ("down-after-milliseconds=1e3", "5", None, "not a whole number"),
        ("down-after-milliseconds=500,500", "5", None, "named twice"),
        ("down-after-milliseconds=", "5", None, "not a whole number"),
        ("down-after-milliseconds=500", "101", None, "percent from 0.1 to 100"),
        ("down-after-milliseconds=500", "nan", None, "percent from 0.1 to 100"),
        ("down-after-milliseconds=500", "5,,6", None, "percent"),
        ("down-after-milliseconds=500", None, "-1", "milliseconds from 1 to 10000"),
        ("down-after-milliseconds=500", "5,5", None, "named twice"),
        ("down-after-milliseconds=500", "10.0000001,10.0000002", None, "10 is named twice"),
        ("down-after-milliseconds=²", "5", None, "not a whole number"),
        ("down-after-milliseconds=\uff15\uff10\uff10", "5", None, "not a whole number"),  # full-width 500
        ("down-after-milliseconds=" + "9" * 5000, "5", None, "not a whole number"),
        ("down-after-milliseconds=500", ",".join(["5"] * 300), None, "more than 200 values"),
        ("down-after-milliseconds=" + ",".join(str(v) for v in range(100, 1100, 10)), "5,6", None, "at most 200"),
    ],
)
def test_a_bad_grid_is_one_line_before_anything(setting: str, loss: str | None, delay: str | None, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_grid(setting, loss, delay, 8.0, 1)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_refuses_a_bad_grid_with_exit_2_and_touches_no_lab(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    code = main(["--home", str(home), "sweep", "--set", "down-after-milliseconds=500", "--loss", "500"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == ["lab sweep: --loss: '500' is not percent from 0.1 to 100"]
    assert not (home / "default").exists()


@given(st.lists(st.integers(100, 60_000), min_size=1, max_size=6, unique=True))
def test_any_set_of_values_reads_back(values: list[int]) -> None:
    assert parse_setting("down-after-milliseconds=" + ",".join(map(str, values))) == (
        "down-after-milliseconds",
        tuple(values),
    )


def _sweep() -> Sweep:
    grid = Grid("down-after-milliseconds", (500, 3000), "loss", (5.0, 30.0), 6.0, 2)
    kills = [
        KillRow(500, runs=2, with_failover=2, failovers=2, unavailable_s=[2.0, 2.5], failover_s=[1.4, 1.9]),
        KillRow(3000, 2, 2, 1, 1, [5.0, 9.0], 3, failover_s=[4.1]),
    ]
    cells = [
        Cell(500, 2, 0, 0, 0, [0.1, 0.2], 0, strength=5.0),
        Cell(500, 2, 3, 2, 1, [2.5, 3.0], 12, strength=30.0),
        Cell(3000, 2, 0, 0, 0, [0.1, 0.1], 0, strength=5.0),
        Cell(3000, 2, 1, 1, 0, [1.0, 2.0], 0, strength=30.0),
    ]
    return Sweep(grid, kills, cells)


def test_the_table_has_a_row_per_value_and_says_each_cells_odds() -> None:
    lines = markdown(_sweep()).splitlines()
    assert lines[0] == "| down-after-milliseconds | master killed: fails over in (s) | 5% loss | 30% loss |"
    assert lines[2] == (
        "| 500 | 1.65 (1.40-1.90) s; lost 0 | false failovers 0 of 2; unavailable 0.15 (0.10-0.20) s; lost 0 "
        "| false failovers 2 of 2 (3 in all); unavailable 2.75 (2.50-3.00) s; lost 12 |"
    )
    assert (
        "4.10 s; no failover in 1 of 2; a second failover in 1 of 2; lost 3" in lines[3]
        and "false failovers 1 of 2;" in lines[3]
    )


def test_the_heat_map_is_a_picture(tmp_path: Path) -> None:
    heatmap(_sweep(), tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
