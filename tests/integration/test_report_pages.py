"""The report pages in a real browser (Debian's chromium, headless, driven by selenium): a real drill's
report.html and a real `lab clients` matrix.html render, log no console error, say what they must (the
opening sentence, the header, the legend) and fetch nothing from anywhere but the file itself.

With LAB_SCREENSHOTS=DIR (`make screenshots`) the tests also write the pictures the docs show into DIR:
report-kill-master.png, matrix.png and drill-kill-master.png (the drill's timeline)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.drill.clients import CLIENTS
from lab.pytest_plugin import require_browser
from lab.spec import LabSpec
from tests.helpers import run_lab
from tests.integration import test_clients

pytestmark = pytest.mark.integration
SCREENSHOTS = Path(os.environ["LAB_SCREENSHOTS"]) if os.environ.get("LAB_SCREENSHOTS") else None
#: A local lab for this module, as the client matrix's tests have (each test asks for the browser first: without
#: one it skips before a lab is started).
local_lab = test_clients.local_lab


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1500")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # Chromium makes its singleton socket's directory (org.chromium.Chromium.*) in TMPDIR and leaves it
    # behind: one a suite run in /tmp. Its own TMPDIR, removed after, leaves the machine as it was.
    with tempfile.TemporaryDirectory(prefix="lab-chromium-") as tmp:
        chrome = webdriver.Chrome(options=options, service=Service(driver, env={**os.environ, "TMPDIR": tmp}))
        try:
            yield chrome
        finally:
            chrome.quit()


def open_page(browser: Any, page: Path) -> str:
    """Open ``page`` from its file and check what every page must: it rendered (its images too), the
    console logged no error, every table's rows have as many cells as its header, and nothing was
    requested from anywhere but the file (and data: URLs). The page's text."""
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get_log("browser"), browser.get_log("performance")  # (what earlier pages left)
    browser.get(page.as_uri())
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return document.readyState") == "complete")
    text: str = browser.execute_script("return document.body.innerText")
    assert text.strip(), f"{page.name}: an empty body"
    images = browser.execute_script("return Array.from(document.images, i => [i.complete, i.naturalWidth])")
    assert all(done and width > 0 for done, width in images), f"{page.name}: an image did not render: {images}"
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('table'), t => Array.from(t.rows, r => r.cells.length))"
    )
    assert all(len(set(rows)) <= 1 for rows in widths), f"{page.name}: a table whose rows and header differ: {widths}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], f"{page.name}: console errors {errors}"
    requested = [
        message["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if (message := json.loads(entry["message"])["message"])["method"] == "Network.requestWillBeSent"
    ]
    assert requested and all(url.startswith(("file:", "data:")) for url in requested), requested
    assert re.findall(r"https?://", browser.page_source) == [], f"{page.name}: a URL that would leave the file"
    return text


def says(text: str, page: str, expected: tuple[str, ...]) -> None:
    """Every one of ``expected`` is in the page's text."""
    missing = [e for e in expected if e not in text]
    assert not missing, f"{page} does not say {missing}"


def keep_screenshot(browser: Any, name: str, width: int, height: int) -> None:
    """Under LAB_SCREENSHOTS: the page as the docs show it, at most 300 KB (a 256-colour PNG)."""
    if SCREENSHOTS is None:
        return
    from PIL import Image

    browser.set_window_size(width, height)
    raw = SCREENSHOTS / f".{name}.raw.png"
    browser.save_screenshot(str(raw))
    with Image.open(raw) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)  # keeps rare colours
        small.save(SCREENSHOTS / name, optimize=True)
    raw.unlink()
    assert (SCREENSHOTS / name).stat().st_size < 300_000, f"{name} is over 300 KB"
    browser.set_window_size(1280, 1500)


def test_a_drill_report_reads_in_a_browser(browser, local_lab: LabSpec, drill) -> None:
    # The docs' pictures come from a drill as `lab drill kill-master` runs it (10 s, unpaced).
    extra: dict[str, Any] = {"duration": 10, "rate": None} if SCREENSHOTS else {"duration": 5}
    result = drill(local_lab, "kill-master", **extra)
    directory = result.report_dir
    assert directory is not None
    doc = json.loads((directory / "report.json").read_text())
    text = open_page(browser, directory / "report.html")
    from selenium.webdriver.common.by import By

    story = browser.find_element(By.ID, "story").text
    assert story == doc["story"], (story, doc["story"])
    # (a loaded machine adds when the kill took effect: "at 2.48 s (in effect at 2.75 s); ")
    assert re.match(r"redis-\d was killed \(SIGKILL\) at \d+\.\d\d s( \(in effect at \d+\.\d\d s\))?; ", story), story
    assert re.search(r"; [\d,]+ acknowledged writes lost\.$", story), story
    says(
        text,
        "report.html",
        (
            "Drill kill-master",
            f"Lab {local_lab.name}",
            "two masters at once (role samples)",
            "longest unavailability",
            "Errors by class",
            "Faults",
            "injection started (s)",
            "Sentinel events",
        ),
    )
    keep_screenshot(browser, "report-kill-master.png", 1280, 1420)
    if SCREENSHOTS is not None:
        shutil.copyfile(directory / "timeline.png", SCREENSHOTS / "drill-kill-master.png")


def test_the_client_matrix_reads_in_a_browser(browser, local_lab: LabSpec, tmp_path: Path) -> None:
    out = tmp_path / "matrix"
    if SCREENSHOTS is None:  # one cell, as test_clients runs it
        clients, scenarios, settings = "redis-py", "kill-sentinel", "recommended"
    else:  # every client here, with a scenario that loses writes with some settings
        clients = ",".join(c for c in CLIENTS if CLIENTS[c].missing() is None)
        scenarios, settings = "kill-master,freeze-master", "defaults,recommended"
    ran = run_lab(
        "clients", "--name", local_lab.name, "--clients", clients, "--scenarios", scenarios,
        "--settings", settings, "--report", str(out), home=local_lab.base_dir.parent, timeout=900,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    doc = json.loads((out / "matrix.json").read_text())
    text = open_page(browser, out / "matrix.html")
    header = [
        f"Generated {doc['generated_at']}",
        "local backend",
        *doc["servers"],
        *(f"{c['client']} {c['version']}" for c in doc["cells"]),
        f"{doc['machine']['cpus']} CPUs",
    ]
    legend = ["Legend", "other", "every other error", "recovered", "NO: a worker had none", "✗"]
    says(text, "matrix.html", (*header, *legend))
    bottom = browser.execute_script(
        "return document.querySelector('main').lastElementChild.getBoundingClientRect().bottom"
    )
    keep_screenshot(browser, "matrix.png", 1400, int(bottom) + 200)  # (the window's height counts its frame too)


def test_a_soak_report_reads_in_a_browser(browser, local_lab: LabSpec, tmp_path: Path) -> None:
    from lab.drill.soak import run_soak

    directory = tmp_path / "soak"
    result = run_soak(
        local_lab, seed=3, chosen=("kill-sentinel",), interval=(1.0, 1.0), duration=14, report_dir=directory
    )
    text = open_page(browser, directory / "soak.html")
    steps = result.findings.steps
    assert steps, "the soak ran at least one step"
    says(
        text,
        "soak.html",
        (
            "Soak, seed 3",
            f"{len(steps)} faults in",
            "Replay it with",
            "--seed 3",
            "longest unavailable (s)",
            "converged in (s)",
            "Sentinel setbacks",
            *(f"{s.index}\t{s.fault}" for s in steps),
        ),
    )
    keep_screenshot(browser, "report-soak.png", 1280, 1400)
