"""The findings table's arithmetic and its place in docs/findings.md (pure logic, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.findings import BLOCKS, PAGE, table, write
from lab.drill.repeat import Tally


def _run(**values: float) -> dict[str, float]:
    return {"lost": 0, "unavailable_ms": 0.0, "two_masters_ms": 0.0, "failovers": 1, "errored_but_applied": 0, **values}


def test_odds_count_the_runs_where_a_finding_showed_and_spread_gives_median_and_range() -> None:
    t = Tally("freeze-master", [_run(lost=0), _run(lost=4200, two_masters_ms=2500.0), _run(lost=12)])
    assert t.odds("lost") == "2 of 3" and t.odds("two_masters_ms") == "1 of 3"
    assert t.spread("lost") == "12 (0-4,200)"
    t = Tally("kill-master", [_run(unavailable_ms=2230.0), _run(unavailable_ms=2230.0)])
    assert t.spread("unavailable_ms", 1000.0) == "2.23", "one figure when every run gave the same"
    row = table([t]).splitlines()[-1]
    assert row == "| kill-master | 0 of 2 | 0 | 2.23 | 0 of 2 | 0 of 2 | 0 of 2 |"


def markers(block: str) -> tuple[str, str]:
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


def test_write_replaces_only_what_stands_between_the_markers_of_its_table(tmp_path: Path) -> None:
    page = tmp_path / "findings.md"
    (a, b), (c, d) = markers("findings"), markers("findings-links")
    page.write_text(f"intro\n{a}\nold table\n{b}\nmiddle\n{c}\nold links\n{d}\nafter\n")
    write("new table", "findings", page)
    write("new links", "findings-links", page)
    assert page.read_text() == f"intro\n{a}\nnew table\n{b}\nmiddle\n{c}\nnew links\n{d}\nafter\n"
    page.write_text("no markers\n")
    with pytest.raises(SystemExit, match="has no"):
        write("x", "findings", page)


def test_the_docs_page_has_the_markers_of_both_tables() -> None:
    text = PAGE.read_text()
    for block in BLOCKS:
        start, end = markers(block)
        assert start in text and end in text and text.index(start) < text.index(end)
