"""Link faults as data (lab.links) and the delayer's schedule and netlink parsing (lab.delayer): pure logic."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab import links
from lab.delayer import Flap, Link, packets
from lab.errors import UsageError
from tests.helpers import make_spec


@pytest.mark.parametrize(
    ("text", "bits"),
    [("8mbit", 8e6), ("512kbit", 512e3), ("1gbit", 1e9), ("1mbps", 8e6), ("100kbps", 800e3), (" 2.5Mbit ", 2.5e6)],
)
def test_rates_read_as_tc_reads_them(text: str, bits: float) -> None:
    assert links.rate(text) == bits


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (links.rate, "fast", "give a rate such as 8mbit"),
        (links.rate, "1bit", "from 8kbit to 10gbit"),
        (links.rate, "20gbit", "from 8kbit to 10gbit"),
        (links.percent, "0", "above 0 and at most 100"),
        (links.percent, "100.5", "above 0 and at most 100"),
        (links.percent, "nan", "above 0 and at most 100"),
        (links.percent, "x%", "give a percentage"),
        (lambda t: links.milliseconds("--delay", t), "-1", "from 0 to 60000"),
        (lambda t: links.milliseconds("--delay", t), "inf", "from 0 to 60000"),
        (lambda t: links.milliseconds("--jitter", t), "soon", "give milliseconds"),
    ],
)
def test_bad_values_are_one_usage_error(parse: object, text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse(text)  # type: ignore[operator]


def test_percentages_and_milliseconds_take_their_units() -> None:
    assert links.percent("20%") == 20 and links.percent("0.5") == 0.5
    assert links.milliseconds("--delay", "50ms") == 50


def test_the_links_of_each_class(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    redis_1, sentinel_1 = spec.node("redis-1"), spec.node("sentinel-1")
    assert links.peers(spec, redis_1, None) == [
        "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3", "clients"
    ]  # fmt: skip
    assert links.peers(spec, redis_1, "replication") == ["redis-2", "redis-3"]
    assert links.peers(spec, redis_1, "sentinel") == ["sentinel-1", "sentinel-2", "sentinel-3"]
    assert links.peers(spec, sentinel_1, "sentinel") == ["redis-1", "redis-2", "redis-3", "sentinel-2", "sentinel-3"]
    assert links.peers(spec, sentinel_1, "clients") == ["clients"]
    with pytest.raises(UsageError, match="replication links join the data nodes"):
        links.peers(spec, sentinel_1, "replication")
    assert links.link(spec, "redis-1:clients") == (redis_1, "clients")
    for bad, says in (("redis-1", "give two ends"), ("redis-1:redis-1", "two different"), ("redis-1:x", "unknown")):
        with pytest.raises(UsageError, match=says):
            links.link(spec, bad)


def test_a_degraded_link_drops_at_random_first_then_queues_what_it_holds(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    degradation = links.Degradation(loss=20, delay_ms=50)
    rules = links.degrade_rules(spec, "redis-1", ("redis-2",), "both", degradation, 4242)
    assert [(r.direction, r.action[-1]) for r in rules] == [
        ("out", "DROP"), ("out", "--queue-bypass"), ("in", "DROP"), ("in", "--queue-bypass")
    ]  # fmt: skip
    assert "0.200000" in rules[0].action and "4242" in rules[1].action
    only_loss = links.degrade_rules(spec, "redis-1", ("clients",), "in", links.Degradation(loss=5), 0)
    assert [(r.peer, r.direction, r.action[-1]) for r in only_loss] == [("clients", "in", "DROP")]
    assert links.Degradation.of(degradation.settings()) == degradation
    assert degradation.describe() == "loss 20%, delay 50ms"


def test_one_way_isolation_drops_one_direction(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    assert {r.direction for r in links.isolation_rules(spec, "redis-1", ("redis-2",), "in")} == {"in"}
    assert {r.direction for r in links.isolation_rules(spec, "redis-1", ("redis-2",))} == {"in", "out"}


@given(
    arrivals=st.lists(st.floats(0, 10), min_size=1, max_size=200).map(sorted),
    sizes=st.lists(st.integers(40, 65535), min_size=200, max_size=200),
    delay=st.floats(0, 500),
    jitter=st.floats(0, 200),
    rate=st.sampled_from([0.0, 8e3, 1e6, 1e9]),
)
def test_packets_leave_in_order_never_early_and_at_most_at_the_rate(
    arrivals: list[float], sizes: list[int], delay: float, jitter: float, rate: float
) -> None:
    link = Link(delay, jitter, rate, random.Random(7))
    released = [link.release(t, size) for t, size in zip(arrivals, sizes, strict=False)]
    assert released == sorted(released)  # no reordering
    for t, out in zip(arrivals, released, strict=False):
        assert out >= t + max(0.0, delay - jitter) / 1000 - 1e-9
    if rate:  # the k-th packet cannot leave before the first k packets' bits went through the rate
        first = arrivals[0]
        sent = 0
        for out, size in zip(released, sizes, strict=False):
            sent += size
            assert out >= first + sent * 8 / rate - 1e-9


def test_a_flap_is_down_for_the_first_half_of_each_period() -> None:
    flap = Flap(period_s=2.0, started=100.0)
    assert [flap.up(100.0 + t) for t in (0.0, 0.9, 1.0, 1.9, 2.0, 3.5)] == [False, False, True, True, False, True]


def _attr(kind: int, data: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(data), kind) + data + b"\0" * (-(4 + len(data)) % 4)


def _packet(ident: int, length: int) -> bytes:
    attrs = _attr(1, struct.pack("!IHB", ident, 0x0800, 1)) + _attr(10, bytes([0x45, 0]) + struct.pack("!H", length))
    body = struct.pack("=BBH", 2, 0, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), (3 << 8) | 0, 0, 0, 0) + body


def test_packet_messages_give_their_ids_and_ip_lengths() -> None:
    data = _packet(7, 1500) + _packet(8, 60)
    assert packets(data) == [(7, 1500), (8, 60)]
    assert packets(data[:10]) == []  # (a cut message is no packet)


@pytest.mark.parametrize("kind", ["degrade", "flap", "isolate"])
def test_a_machine_that_cannot_inject_a_link_fault_refuses_it_with_exit_69_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Not root: one line naming why, EX_UNAVAILABLE, no state written, no rule, no delayer started."""
    from lab import faults
    from lab.backends.compose import ComposeBackend
    from lab.backends.local import LocalBackend
    from lab.errors import Unavailable

    monkeypatch.setattr("os.geteuid", lambda: 1000)
    spec = make_spec(tmp_path / "lab")
    assert "needs root" in (LocalBackend().unsupported(kind) or "")
    assert "needs root" in (ComposeBackend().unsupported(kind) or "")
    started = []
    monkeypatch.setattr("lab.delayers.start", lambda *a: started.append(a))
    with pytest.raises(Unavailable, match="needs root") as refused:
        faults.inject(spec, kind, "redis-1", None, (("loss", "5"),) if kind == "degrade" else ())
    assert refused.value.exit_code == 69 and "\n" not in str(refused.value)
    assert started == [] and not (tmp_path / "lab" / "state.json").exists()
