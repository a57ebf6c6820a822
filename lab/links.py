"""Which links a network fault touches and what it does to their packets, independent of the backend.

A link is a node and one peer: another node of the lab, or ``clients`` (anything outside the lab). A
fault's direction is the node's: ``out`` is what the node sends (netem on the node's interface does
this), ``in`` what it receives, ``both`` either. A backend turns each :class:`LinkRule` into an iptables
rule on its packets (lab.backends): loss is iptables' ``statistic`` match, anything that holds packets
(delay, jitter, a rate, a flapping partition) an NFQUEUE served by lab.delayer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.errors import UsageError
from lab.spec import LabSpec, Node

CLIENTS = "clients"
DROP = ("-j", "DROP")
CLASSES = ("replication", "sentinel", "clients")
DIRECTIONS = ("out", "in", "both")
MAX_DELAY_MS = 60_000.0
MIN_RATE, MAX_RATE = 8_000.0, 10e9  # bits a second: 8 kbit to 10 gbit
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


@dataclass(frozen=True)
class Degradation:
    """What a degraded link does to the packets of the chosen direction(s)."""

    loss: float = 0.0  # percent dropped at random
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate: float = 0.0  # bits a second; 0: no limit

    @property
    def holds(self) -> bool:
        """Packets wait in the delayer (not only a loss rule)."""
        return bool(self.delay_ms or self.jitter_ms or self.rate)

    def settings(self) -> tuple[tuple[str, str], ...]:
        given = (("loss", self.loss), ("delay", self.delay_ms), ("jitter", self.jitter_ms), ("rate", self.rate))
        return tuple((name, f"{value:g}") for name, value in given if value)

    @classmethod
    def of(cls, settings: tuple[tuple[str, str], ...]) -> Degradation:
        values = {name: float(value) for name, value in settings if name in ("loss", "delay", "jitter", "rate")}
        return cls(
            values.get("loss", 0.0), values.get("delay", 0.0), values.get("jitter", 0.0), values.get("rate", 0.0)
        )

    def describe(self) -> str:
        parts = [f"loss {self.loss:g}%"] if self.loss else []
        if self.delay_ms or self.jitter_ms:
            parts.append(f"delay {self.delay_ms:g}ms" + (f" +-{self.jitter_ms:g}ms" if self.jitter_ms else ""))
        if self.rate:
            parts.append(f"bandwidth {format_rate(self.rate)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class LinkRule:
    """One direction of one link, and what happens to its packets there (an iptables target)."""

    node: str
    peer: str  # a node's name, or CLIENTS
    direction: str  # "out" (the node sends) or "in" (it receives)
    action: tuple[str, ...]
    comment: str


def percent(text: str) -> float:
    """--loss: a percentage above 0, at most 100 ("20", "20%", "0.5")."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise UsageError(f"--loss {text!r}: give a percentage, for example 20 or 0.5") from None
    if not 0 < value <= 100:
        raise UsageError(f"--loss {text!r}: give a percentage above 0 and at most 100")
    return value


def milliseconds(option: str, text: str) -> float:
    """--delay / --jitter: milliseconds, 0 to a minute."""
    try:
        value = float(text.strip().removesuffix("ms"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: give milliseconds, for example 50") from None
    if not 0 <= value <= MAX_DELAY_MS:  # (also refuses nan)
        raise UsageError(f"{option} {text!r}: give milliseconds from 0 to {MAX_DELAY_MS:g}")
    return value


def rate(text: str) -> float:
    """--bandwidth, as tc reads it: ``8mbit`` (bits a second; kbit, mbit, gbit) or ``1mbps`` (bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(bit|bps)\s*", text.lower())
    if not match:
        raise UsageError(f"--bandwidth {text!r}: give a rate such as 8mbit, 512kbit or 1mbps (bytes a second)")
    value = float(match[1]) * _UNITS[match[2]] * (8 if match[3] == "bps" else 1)
    if not MIN_RATE <= value <= MAX_RATE:
        raise UsageError(f"--bandwidth {text!r}: give from {format_rate(MIN_RATE)} to {format_rate(MAX_RATE)}")
    return value


def format_rate(bits: float) -> str:
    for unit, size in (("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)):
        if bits >= size:
            return f"{bits / size:g}{unit}"
    return f"{bits:g}bit"


def peers(spec: LabSpec, node: Node, links: str | None) -> list[str]:
    """The peers of ``node`` on the links of class ``links`` (None: every link, clients included)."""
    others = [n for n in spec.nodes if n != node]
    if links is None:
        return [n.name for n in others] + [CLIENTS]
    if links not in CLASSES:
        raise UsageError(f"--links {links!r}: choose from {', '.join(CLASSES)}")
    if links == CLIENTS:
        return [CLIENTS]
    if links == "replication":
        if node.kind != "redis":
            raise UsageError(f"--links replication: {node.name} is a Sentinel; replication links join the data nodes")
        return [n.name for n in others if n.kind == "redis"]
    # Sentinel links: a data node's to the Sentinels; a Sentinel's to every other node
    return [n.name for n in others if n.kind == "sentinel" or node.kind == "sentinel"]


def link(spec: LabSpec, text: str) -> tuple[Node, str]:
    """--link A:B: node A and peer B (a node, or ``clients``)."""
    first, sep, second = text.partition(":")
    if not sep or not first or not second:
        raise UsageError(f"--link {text!r}: give two ends, for example redis-1:redis-2 or redis-1:clients")
    node = spec.node(first.strip())
    peer = second.strip()
    if peer != CLIENTS:
        peer = spec.node(peer).name
    if peer == node.name:
        raise UsageError(f"--link {text!r}: a link joins two different nodes")
    return node, peer


def directions(direction: str) -> tuple[str, ...]:
    if direction not in DIRECTIONS:
        raise UsageError(f"--direction {direction!r}: choose from {', '.join(DIRECTIONS)}")
    return ("out", "in") if direction == "both" else (direction,)


def degrade_rules(
    spec: LabSpec, node: str, peer_names: tuple[str, ...], direction: str, degradation: Degradation, queue: int
) -> list[LinkRule]:
    """A degraded link's rules, in order: the random drop first, then the queue that holds the rest."""
    comment = f"redis-ha-lab {spec.name} degrade {node}"
    rules = []
    for peer in peer_names:
        for way in directions(direction):
            if degradation.loss:
                chance = f"{degradation.loss / 100:.6f}"
                drop = ("-m", "statistic", "--mode", "random", "--probability", chance, "-j", "DROP")
                rules.append(LinkRule(node, peer, way, drop, comment))
            if degradation.holds:
                rules.append(LinkRule(node, peer, way, queued(queue), comment))
    return rules


def queued(queue: int) -> tuple[str, ...]:
    """Into the delayer's queue; past it when no delayer serves the queue (a kill -9: the link works)."""
    return ("-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass")


def flap_rules(spec: LabSpec, node: str, peer_names: tuple[str, ...], queue: int) -> list[LinkRule]:
    comment = f"redis-ha-lab {spec.name} flap {node}"
    return [LinkRule(node, peer, way, queued(queue), comment) for peer in peer_names for way in ("out", "in")]


def isolation_rules(spec: LabSpec, node: str, peer_names: tuple[str, ...], one_way: str = "") -> list[LinkRule]:
    """Every packet dropped: both ways, or only what the node receives (``in``) or sends (``out``)."""
    comment = f"redis-ha-lab {spec.name} isolate {node}"
    ways = (one_way,) if one_way else ("out", "in")
    return [LinkRule(node, peer, way, DROP, comment) for peer in peer_names for way in ways]
