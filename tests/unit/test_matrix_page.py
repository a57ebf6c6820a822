"""matrix.html from hand-made cells: what it ran on, the legend, and bad outcomes marked by a class, a
colour and a symbol (never colour alone)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lab.drill.matrix import LEGEND, Cell, matrix_html


def cell(scenario: str, **values: object) -> Cell:
    fields: dict[str, object] = {
        "client": "redis-py", "version": "8.2.0", "settings": "defaults", "scenario": scenario, "ok": 900,
        "unavailable_s": 2.2, "nothing_kept_s": 2.2, "lost": 0, "duplicated": 0, "errored_but_applied": 0,
        "indeterminate": 0, "recovered": True, "failovers": 1, "report": "",
        "errors": {"READONLY": 0, "refused": 3, "timeout": 0, "NOREPLICAS": 0, "other": 2},
    }  # fmt: skip
    return Cell(**{**fields, **values})  # type: ignore[arg-type]


def test_the_matrix_page_says_what_it_ran_on_and_marks_bad_outcomes(tmp_path: Path) -> None:
    doc = {
        "generated_at": "2026-12-06T06:00:00+00:00",
        "backend": "local",
        "servers": ["redis 7.0.15"],
        "node": "20.20.2",
        "machine": {"cpus": 2, "memory_gib": 23.6, "kernel": "Linux 6.18", "python": "3.11.7", "load_1min": 0.5},
        "seconds": 42.0,
        "workers_per_client": 2,
        "valkey_glide": "valkey-glide 2.6.0 has no Sentinel support",
    }
    cells = [
        cell("kill-master", report=str(tmp_path / "kill-master/redis-py-defaults/report.html")),
        cell("freeze-master", lost=28951),
        cell("freeze-sentinel-kill-master", recovered=False),
    ]
    page = matrix_html(cells, doc, tmp_path)
    for expected in ("2026-12-06T06:00:00+00:00", "local backend", "redis 7.0.15", "redis-py 8.2.0", "Node.js 20.20.2"):
        assert expected in page
    assert "2 CPUs, 23.6 GiB, Linux 6.18, Python 3.11.7" in page
    assert all(f"<dt>{name}</dt>" in page for name in LEGEND), "every column is explained"
    assert "<dt>other</dt><dd>every other error" in page
    bad = re.findall(r'<td class="([^"]*\bbad\b[^"]*)"><span class="bad">✗ ([^<]+)</span>', page)
    assert bad == [("num bad", "28,951"), ("bad", "NO")], bad
    assert (
        "3 cells; 2 with a bad outcome (marked ✗):\nredis-py (defaults) in freeze-master: 28,951 acknowledged " in page
    )
    assert (
        "; redis-py (defaults) in freeze-sentinel-kill-master: stuck (a worker had no write acknowledged in the "
        "last 2 s)." in page
    )
    assert 'href="kill-master/redis-py-defaults/report.html"' in page


def test_repeated_cells_are_one_row_with_their_odds(tmp_path: Path) -> None:
    from lab.drill.matrix import markdown

    runs = [
        cell("freeze-sentinel-kill-master", client="ioredis", run=1, unavailable_s=2.5, report=str(tmp_path / "r1")),
        cell("freeze-sentinel-kill-master", client="ioredis", run=2, unavailable_s=9.9, recovered=False, lost=40),
        cell("freeze-sentinel-kill-master", client="ioredis", run=3, unavailable_s=3.1, lost=12),
        cell("kill-master"),
    ]
    table = markdown(runs).splitlines()
    assert len(table) == 4, "a header, a rule, and one row per cell however many runs it had"
    row = table[2]
    assert "| 3.10 (9.90) |" in row, "median (worst) unavailability"
    assert "| 2 of 3 runs, up to 40 |" in row and row.endswith("| NO in 1 of 3 |")
    assert table[3].endswith("| yes |") and "| 0 |" in table[3], "a cell run once reads as before"


def test_a_client_dead_for_good_beside_a_live_one_is_not_recovered() -> None:
    """Seen with ioredis 5.11.1 (failoverDetector): one worker's client ended for good at 2.96 s while
    the other wrote on; judged by the cell's writes, the cell said recovered."""
    from lab.drill.matrix import recovered

    def ok(t: float, p: int) -> dict[str, Any]:
        return {"t": t, "type": "ok", "process": p}

    invokes: list[dict[str, Any]] = [{"t": 0.0, "type": "invoke", "process": p} for p in (0, 1)]
    both = [*invokes, ok(9000.0, 0), ok(9500.0, 1)]
    assert recovered(both, end=10_000.0)
    assert not recovered([*invokes, ok(9000.0, 0), ok(2956.6, 1)], end=10_000.0)
    assert not recovered([], end=10_000.0)
