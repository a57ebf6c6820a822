"""Every Sentinel's event stream (``PSUBSCRIBE *``: +sdown, +odown, +switch-master, ...) recorded
on one clock while a drill runs, so a drill can say how many failovers it saw."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis

from lab.failover import TILT_PERIOD_S
from lab.spec import LabSpec, Node
from lab.topology import node_client


@dataclass(frozen=True)
class SentinelEvent:
    t: float  # seconds on the watcher's clock
    sentinel: str
    channel: str  # "+switch-master", "+sdown", ...
    data: str


class SentinelEvents:
    """``with SentinelEvents(spec) as events:`` - one thread per Sentinel; a Sentinel that is down
    or restarts is re-subscribed until the block ends (its events meanwhile are missed)."""

    def __init__(
        self,
        spec: LabSpec,
        clock: Callable[[], float] = time.monotonic,
        sink: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``sink``: each event goes there as a history record as it arrives, instead of being kept
        (a soak's history is spooled to disk as it is recorded)."""
        self.spec = spec
        self.clock = clock
        self.sink = sink
        self.events: list[SentinelEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Barrier(len(spec.sentinels) + 1)
        self._threads = [
            threading.Thread(target=self._watch, args=(s,), name=f"events-{s.name}", daemon=True)
            for s in spec.sentinels
        ]

    def __enter__(self) -> SentinelEvents:
        for thread in self._threads:
            thread.start()
        self._arrive()  # every Sentinel subscribed (or given up on as down) before the drill goes on
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)

    def _watch(self, node: Node) -> None:
        first = True
        while not self._stop.is_set():
            conn = node_client(self.spec, node, timeout=0.5)
            pubsub = conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe("*")
                if first:
                    first = False
                    self._arrive()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.1)
                    if message and message.get("type") == "pmessage":
                        self._add(node.name, str(message["channel"]), str(message["data"]))
            except (redis.RedisError, OSError):
                if first:
                    first = False
                    self._arrive()
                self._stop.wait(0.1)
            finally:
                pubsub.close()
                conn.close()

    def _arrive(self) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            self._ready.wait(timeout=5)

    def _add(self, sentinel: str, channel: str, data: str) -> None:
        event = SentinelEvent(self.clock(), sentinel, channel, data)
        if self.sink is not None:
            self.sink({"t": event.t, "type": "sentinel", "sentinel": sentinel, "event": channel, "data": data})
            return
        with self._lock:
            self.events.append(event)

    def named(self, channel: str) -> list[SentinelEvent]:
        with self._lock:
            return [e for e in self.events if e.channel == channel]

    def records(self) -> list[dict[str, Any]]:
        """The events in lab.drill.history's record format."""
        with self._lock:
            return [
                {"t": e.t, "type": "sentinel", "sentinel": e.sentinel, "event": e.channel, "data": e.data}
                for e in self.events
            ]

    def failovers(self) -> list[tuple[str, str]]:
        """Master switches as (old, new) 'host:port' pairs, in order (see :func:`switches`)."""
        return [(s["old"], s["new"]) for s in switches(self.records())]


def switches(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Master switches as {"t", "old", "new"} ('host:port'), in order, from history records. Every
    Sentinel announces each switch it learns of; the one that saw the most (another may have been
    down) tells them all."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(records, key=lambda r: r["t"]):
        if r["type"] == "sentinel" and r["event"] == "+switch-master":
            parts = str(r["data"]).split()
            if len(parts) == 5:
                switch = {"t": r["t"], "old": f"{parts[1]}:{parts[2]}", "new": f"{parts[3]}:{parts[4]}"}
                seen.setdefault(r["sentinel"], []).append(switch)
    return max(seen.values(), key=len, default=[])


#: Two Sentinels that promote a replica this close together are failing the same master over at once.
RACE_MS = 10_000.0


def raced_promotions(records: Iterable[dict[str, Any]], names: dict[str, str]) -> list[str]:
    """Each time a second Sentinel promoted a replica (``+failover-state-send-slaveof-noone``) while
    another's promotion was under way: two failovers of one master at once. A forced failover
    (``SENTINEL FAILOVER``) takes no votes, so a peer that finds the master down meanwhile (a
    write-paused one stops answering its hello) can win an election in the same epoch and promote
    another replica; both then say master until the configurations settle (seen in CI, loaded)."""
    promoted: list[tuple[float, str, str]] = []
    for r in sorted(records, key=lambda r: r["t"]):
        if r["type"] == "sentinel" and r["event"] == "+failover-state-send-slaveof-noone":
            parts = str(r["data"]).split()
            if len(parts) > 1:
                promoted.append((r["t"], r["sentinel"], names.get(parts[1], parts[1])))
    notes = []
    for i, (t, sentinel, replica) in enumerate(promoted):
        earlier = [p for p in promoted[:i] if p[1] != sentinel and t - p[0] <= RACE_MS]
        if earlier:
            t0, first, replica0 = earlier[-1]
            what = (
                f"both promoted {replica}" if replica == replica0 else f"{replica0} and {replica} both became masters"
            )
            notes.append(
                f"two Sentinels failed the master over at once: {first} promoted {replica0} at {t0 / 1000:.2f} s, "
                f"{sentinel} promoted {replica} at {t / 1000:.2f} s ({what})"
            )
    return notes


def said(records: Iterable[dict[str, Any]], channels: Collection[str]) -> list[dict[str, Any]]:
    """The Sentinels' events on these channels, in time order (history records, or :meth:`SentinelEvents.records`)."""
    return sorted((r for r in records if r["type"] == "sentinel" and r["event"] in channels), key=lambda r: r["t"])


#: What a Sentinel says when it will not act, gives a failover up or finishes one late, and what that costs.
SETBACKS = {
    "+tilt": (
        f"entered TILT (its clock moved over 2 s between two ticks, or back): it acts on nothing for at least "
        f"{TILT_PERIOD_S:g} s"
    ),
    "-failover-abort-not-elected": (
        "gave its failover up, not elected: it tries again no sooner than twice failover-timeout after it began"
    ),
    "-failover-abort-no-good-slave": "gave its failover up: no replica it could promote",
    "-failover-abort-slave-timeout": "gave its failover up: the replica did not say master within failover-timeout",
    "+failover-end-for-timeout": "finished its failover late: some replicas not reconfigured within failover-timeout",
}


def setbacks(records: Iterable[dict[str, Any]]) -> list[str]:
    """Each time a Sentinel said it would not act, gave a failover up (a lost election, no replica to
    promote) or finished one late: why a drill can see a long outage, or none of the failovers it expected."""
    return [
        f"{r['sentinel']} {SETBACKS[r['event']]} ({r['event']} at {r['t'] / 1000:.2f} s)"
        for r in said(records, SETBACKS)
    ]


#: The events that tell how a failover went, or why none came.
DECISIONS = (
    "+sdown", "-sdown", "+odown", "-odown", "+new-epoch", "+try-failover", "+vote-for-leader", "+elected-leader",
    "+selected-slave", "+failover-state-send-slaveof-noone", "+failover-end", "+switch-master", "-tilt", *SETBACKS,
)  # fmt: skip


def decisions(records: Iterable[dict[str, Any]]) -> str:
    """The Sentinels' :data:`DECISIONS` on one line, in order: '2.07 sentinel-3 +sdown; ...'."""
    return "; ".join(f"{r['t'] / 1000:.2f} {r['sentinel']} {r['event']}" for r in said(records, DECISIONS))
