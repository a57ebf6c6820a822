"""Every reproducer, by name (lab.repro.sentinels, lab.repro.writes, lab.repro.jepsen)."""

from __future__ import annotations

from lab.repro import jepsen, sentinels, writes
from lab.repro.verdict import Reproducer

CATALOGUE: dict[str, Reproducer] = {
    r.name: r for r in (*sentinels.REPRODUCERS, *writes.REPRODUCERS, *jepsen.REPRODUCERS)
}
