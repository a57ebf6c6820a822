"""`lab drill --junit FILE`: the drill's finding gates as a JUnit XML file, the format CI systems show as
tests (GitHub Actions via a test-report action, GitLab, Jenkins). One test case per ``--fail-on`` gate,
failed when its condition held; without gates, one test case that says the drill ran. The summary is
in the suite's properties and system-out, so a reader of the CI page sees the numbers."""

from __future__ import annotations

import os
import stat
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lab.drill.gates import Gate
from lab.errors import UsageError
from lab.home import claimed


def check_destination(path: Path, home: Path, lab: str | None = None) -> Path:
    """Where the file will go, checked before the drill starts (bad usage: exit 2, nothing touched): a new
    or regular file (never a link, a device or a FIFO, which the rename would replace), outside the lab
    home's labs and locks, in a directory the command can write (tried: a probe file, removed again).
    The absolute path."""
    if path.name in ("", ".."):  # ('' reaches here as '.')
        raise UsageError(f"--junit {str(path)!r}: name a file")
    target = Path(os.path.abspath(path.expanduser()))
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"--junit {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"--junit {path} is a directory, not a file")
    if mode is not None and stat.S_ISLNK(mode):
        raise UsageError(f"--junit {path} is a symbolic link: name the file itself")
    if mode is not None and not stat.S_ISREG(mode):
        raise UsageError(f"--junit {path} is not a regular file (a device, a FIFO or a socket)")
    if why := claimed(target, home, lab):
        raise UsageError(f"--junit {path}: {why}: write it elsewhere")
    if not target.parent.is_dir():
        raise UsageError(f"--junit {path}: {target.parent} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(prefix=".junit-", dir=target.parent):
            pass
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write in {target.parent} ({exc.strerror})") from None
    if mode is not None and not os.access(target, os.W_OK):
        raise UsageError(f"--junit {path}: the file is not writable")
    return target


def document(
    scenario: str, summary: dict[str, Any], gates: list[Gate], seconds: float, report: Path | None
) -> ET.Element:
    """The <testsuites> element: one <testcase> per gate, failed when the gate held."""
    cases: list[ET.Element] = []
    for gate in gates:
        case = ET.Element("testcase", classname=f"lab.drill.{scenario}", name=gate.name, time=f"{seconds:.3f}")
        if gate.holds(summary):
            failure = ET.SubElement(
                case, "failure", message=f"finding over the gate: {gate.worded(summary)}", type="gate"
            )
            failure.text = f"{gate.metric} was {summary[gate.metric]:g}; the gate fails the drill when {gate.name}"
        cases.append(case)
    if not gates:
        cases.append(ET.Element("testcase", classname=f"lab.drill.{scenario}", name="ran", time=f"{seconds:.3f}"))
    failures = sum(1 for c in cases if c.find("failure") is not None)
    root = ET.Element("testsuites", name="lab drill", tests=str(len(cases)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"lab drill {scenario}",
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for key, val in summary.items():
        ET.SubElement(properties, "property", name=key, value=str(val))
    if report is not None:
        ET.SubElement(properties, "property", name="report", value=str(report / "report.html"))
    suite.extend(cases)
    out = ET.SubElement(suite, "system-out")
    out.text = "\n".join(f"{key} {val}" for key, val in summary.items())
    return root


def write(path: Path, root: ET.Element) -> None:
    """Written whole or not at all (a temporary file renamed over the target)."""
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    fd, tmp = tempfile.mkstemp(prefix=".junit-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
