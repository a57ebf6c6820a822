"""The front door and the docs site: the README stays a short tour whose links land, and the site builds in
strict mode (a broken link or anchor fails it)."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert readme.splitlines()[2:6] == [
        "```bash",
        "make lab-up     # a real, authenticated master + 2 replicas + 3 Sentinels on this machine",
        "make test       # the whole suite against real servers: unit, integration, failover drills",
        "```",
    ]
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_docs_page_is_in_the_site_menu() -> None:
    menu = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}" in menu, f"{page.name} is not in mkdocs.yml's nav"


def test_every_table_has_its_header() -> None:
    """A table's rows after a paragraph or a blank line are text, not a table (the reports page's findings
    table was cut in two that way): each run of table lines starts with a header and its ``|---|`` line."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines, fenced = page.read_text().splitlines(), False
        for i, line in enumerate(lines):
            fenced = fenced != line.startswith("```")
            starts = line.startswith("|") and not (i and lines[i - 1].startswith("|"))
            if starts and not fenced:
                below = lines[i + 1] if i + 1 < len(lines) else ""
                assert re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", below), f"{page.name}:{i + 1}: a table without a header"


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    # The home page is the README itself (docs/readme_home.py): every section of it, its links the site's own.
    home = (tmp_path / "site" / "index.html").read_text()
    for heading in re.findall(r"^## (.+)$", (ROOT / "README.md").read_text(), re.M):
        assert html.escape(heading, quote=False) in home, heading
    assert 'href="docs/' not in home and "This page is the tour; the menu has the rest." in home
    assert not (tmp_path / "site" / "readme_home.py").exists()


def test_every_benchmark_is_named_on_the_benchmarks_page() -> None:
    from benchmarks.__main__ import BENCHES

    page = (ROOT / "docs" / "benchmarks.md").read_text()
    listed = re.search(r"runs only those \(([^;]+);", page)
    assert listed, "the benchmarks page lists the names `make bench ONLY=...` takes"
    assert re.findall(r"`([a-z]+)`", listed.group(1)) == list(BENCHES)
