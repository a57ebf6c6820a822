"""Check a list-append history, in the manner of Elle's list-append: clients RPUSH unique values onto
a few lists and read them back whole (LRANGE), now and then and once more after the heal. Because
each value is unique and a list keeps its order, every read shows the order the server applied
the appends in, and what it lost.

Anomalies, per list (``final`` is the read after the heal, on the converged master):

- ``lost``: an acknowledged append missing from the final read;
- ``read_then_lost``: a value whose append was never acknowledged (it timed out, or was in flight)
  that some read saw and the final read does not hold: someone saw it, then it was gone (the
  acknowledged ones are ``lost`` already);
- ``duplicated``: a value twice in one read (a client resent an append that had landed);
- ``phantom``: a value no client ever appended;
- ``failed_present``: a value whose append the client was told had failed, in the final read;
- ``reordered``: a read that holds two values in the opposite order to the final read;
- ``stale``: a read that misses a value whose append was acknowledged before the read was sent,
  though the final read has it (the read was behind, not the data lost);
- ``non_monotonic``: a read that misses a value an earlier read by the same client saw;
- ``read_your_writes``: a read that misses the reading client's own acknowledged append.

The last three are counted apart for reads served by a replica (``replica=True``), where
asynchronous replication makes them expected, and by the master, where they are violations.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple


class Append(NamedTuple):
    process: int
    key: str
    value: int
    invoke: float
    complete: float | None  # None: the outcome is unknown
    ok: bool | None  # True: acknowledged; False: the client was told it failed; None: unknown


class Read(NamedTuple):
    process: int
    key: str
    values: tuple[int, ...]
    invoke: float
    complete: float
    replica: bool = False  # served by a replica
    final: bool = False  # the read after the heal


ANOMALIES = ("lost", "read_then_lost", "duplicated", "phantom", "failed_present", "reordered")
READ_ANOMALIES = ("stale", "non_monotonic", "read_your_writes")


@dataclass
class ListFindings:
    """Counts per anomaly (values for the first group, reads for the read anomalies), and up to
    ``EXAMPLES`` examples of each, as sentences."""

    keys: int = 0
    appends: int = 0
    reads: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ANOMALIES, 0))
    master_reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(READ_ANOMALIES, 0))
    replica_reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(READ_ANOMALIES, 0))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def note(self, anomaly: str, count: int, example: str) -> None:
        if count <= 0:
            return
        self.counts[anomaly] += count
        if len(self.examples[anomaly]) < EXAMPLES:
            self.examples[anomaly].append(example)

    def note_read(self, anomaly: str, read: Read, example: str) -> None:
        (self.replica_reads if read.replica else self.master_reads)[anomaly] += 1
        name = f"{'replica' if read.replica else 'master'}_{anomaly}"
        if len(self.examples[name]) < EXAMPLES:
            self.examples[name].append(example)

    @property
    def valid(self) -> bool:
        """No anomaly that a linearizable list allows none of (replica reads may be behind)."""
        return not any(self.counts.values()) and not any(self.master_reads.values())


EXAMPLES = 5


def check(appends: Iterable[Append], reads: Iterable[Read]) -> ListFindings:
    """Every list of the history; ``appends`` and ``reads`` in any order."""
    findings = ListFindings()
    by_key: dict[str, list[Append]] = defaultdict(list)
    for append in appends:
        by_key[append.key].append(append)
    reads_by_key: dict[str, list[Read]] = defaultdict(list)
    for read in reads:
        reads_by_key[read.key].append(read)
    for key in sorted(by_key.keys() | reads_by_key.keys()):
        check_key(key, by_key.get(key, []), reads_by_key.get(key, []), findings)
    findings.keys = len(by_key.keys() | reads_by_key.keys())
    return findings


def _s(ms: float | None) -> str:
    return "?" if ms is None else f"{ms / 1000:.3f} s"


def check_key(key: str, appends: list[Append], reads: list[Read], findings: ListFindings) -> None:
    findings.appends += len(appends)
    findings.reads += len(reads)
    appended = {a.value: a for a in appends}
    reads = sorted(reads, key=lambda r: (r.final, r.invoke))
    finals = [r for r in reads if r.final]
    final = finals[-1] if finals else (reads[-1] if reads else None)
    in_final = {v: i for i, v in enumerate(final.values)} if final else {}

    if final is not None:
        lost = [a for a in appends if a.ok and a.value not in in_final]
        findings.note(
            "lost",
            len(lost),
            f"{key}: {len(lost)} acknowledged appends are not in the final read, the first "
            f"{lost[0].value if lost else ''} (acknowledged at {_s(lost[0].complete) if lost else ''})",
        )
        failed = [a for a in appends if a.ok is False and a.value in in_final]
        findings.note(
            "failed_present",
            len(failed),
            f"{key}: the append of {failed[0].value if failed else ''} was reported failed and is in the final read",
        )
    seen_then_gone: set[int] = set()
    for read in reads:
        counts = Counter(read.values)
        twice = [v for v, n in counts.items() if n > 1]
        findings.note(
            "duplicated", len(twice), f"{key}: the read at {_s(read.invoke)} holds {twice[:3]} more than once"
        )
        phantom = [v for v in counts if v not in appended]
        findings.note(
            "phantom", len(phantom), f"{key}: the read at {_s(read.invoke)} holds {phantom[:3]}, never appended"
        )
        if final is not None and read is not final:
            seen_then_gone |= {v for v in counts if v not in in_final and v in appended and not appended[v].ok}
            positions = [in_final[v] for v in read.values if v in in_final]
            for before, after in itertools.pairwise(positions):
                if after < before:
                    findings.note(
                        "reordered",
                        1,
                        f"{key}: the read at {_s(read.invoke)} has {final.values[before]} before "
                        f"{final.values[after]}; the final read has them the other way round",
                    )
                    break
    findings.note(
        "read_then_lost",
        len(seen_then_gone),
        f"{key}: {len(seen_then_gone)} values never acknowledged were read and are not in the final read, "
        f"e.g. {sorted(seen_then_gone)[:3]}",
    )
    _read_anomalies(key, appends, [r for r in reads if not r.final], in_final, findings)


def _read_anomalies(
    key: str, appends: list[Append], reads: list[Read], in_final: dict[int, int], findings: ListFindings
) -> None:
    """Reads that were behind: compared with the acknowledged appends before them, the final read,
    and what the same client read before."""
    acked = sorted((a.complete, a.value, a.process) for a in appends if a.ok and a.complete is not None)
    seen_by: dict[int, set[int]] = defaultdict(set)
    for read in sorted(reads, key=lambda r: r.invoke):
        held = set(read.values)
        behind = [v for t, v, _p in acked if t < read.invoke and v not in held and v in in_final]
        if behind:
            findings.note_read(
                "stale",
                read,
                f"{key}: the read at {_s(read.invoke)} misses {len(behind)} appends acknowledged before it "
                f"was sent, e.g. {behind[0]}",
            )
        own = [v for t, v, p in acked if p == read.process and t < read.invoke and v not in held]
        if own:
            findings.note_read(
                "read_your_writes",
                read,
                f"{key}: client {read.process}'s read at {_s(read.invoke)} misses its own acknowledged "
                f"append of {own[0]}",
            )
        earlier = seen_by[read.process] - held
        if earlier:
            findings.note_read(
                "non_monotonic",
                read,
                f"{key}: client {read.process}'s read at {_s(read.invoke)} misses {min(earlier)}, which it "
                "had read before",
            )
        seen_by[read.process] |= held
