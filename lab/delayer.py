"""The lab's packet delayer: holds the packets of degraded links in user space, since this kernel has no
netem. iptables sends a link's packets to an NFQUEUE (``-j NFQUEUE --queue-num Q --queue-bypass``); this
process binds the queue over netlink (the protocol of libnetfilter_queue, spoken directly: no C library
to build) and gives each packet its verdict when its time comes: after ``--delay`` (+- ``--jitter``)
milliseconds, at most ``--rate`` bits a second, or, flapping (``--flap``), dropped for the first half of
every period and let through for the second.

Packets leave in the order they came (one batch verdict accepts every earlier packet too): jitter never
reorders a TCP stream, as on a real link with a queue. Bypass keeps a link working if this process dies
(a kill -9: nothing is held any more, the kernel drops what was).

It runs as ``python -m lab.delayer`` (stdlib only: it starts fast) in the network namespace of the
packets (a compose node's, through nsenter), prints ``queue N`` once bound and lives as long as the lab's
state records it (``--state`` file, this pid): a lab command killed between starting it and recording it
leaves nothing running beyond ``--grace`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

NETLINK_NETFILTER = 12
_QUEUE = 3 << 8  # NFNL_SUBSYS_QUEUE
_PACKET, _VERDICT, _CONFIG, _VERDICT_BATCH = 0, 1, 2, 3
_REQUEST, _ACK = 1, 4
_ERROR = 2  # NLMSG_ERROR
_CFG_CMD, _CFG_PARAMS, _CFG_QUEUE_MAXLEN = 1, 2, 3
_BIND, _UNBIND = 1, 2
_COPY_PACKET = 2
_PACKET_HDR, _VERDICT_HDR, _PAYLOAD = 1, 2, 10
DROP, ACCEPT = 0, 1
#: The IPv4 header's first 4 bytes carry the packet's total length (what a rate limit counts).
COPY_BYTES = 4
QUEUE_MAXLEN = 20000  # packets held at once; beyond, the kernel drops (a link's tail drop)
QUEUES_TRIED = 64


#: Packets that come within this many seconds of each other share one jitter draw.
BURST_S = 0.001


@dataclass
class Link:
    """When each packet of one queue leaves: after the serialisation at ``rate`` bits/s (0: no limit) and
    ``delay_ms`` +- ``jitter_ms`` (uniform, like netem's default), never before an earlier packet.

    Packets that come together (a TCP ACK and the reply right behind it) share one jitter draw: drawn
    apart, the reply waits for the later of two draws, which raised the median of 50 +- 20 ms to 58 ms."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    free_at: float = 0.0  # when the link has sent what it holds (rate)
    last: float = 0.0  # the last release time given
    drawn: tuple[float, float] = (-1.0, 0.0)  # (when the current jitter draw was made, the draw)

    def release(self, now: float, size: int) -> float:
        start = max(now, self.free_at)
        if self.rate:
            self.free_at = start + size * 8 / self.rate
            start = self.free_at
        if self.jitter_ms and now - self.drawn[0] > BURST_S:
            self.drawn = (now, self.rng.uniform(-self.jitter_ms, self.jitter_ms))
        delay = self.delay_ms + (self.drawn[1] if self.jitter_ms else 0.0)
        self.last = max(self.last, start + max(0.0, delay) / 1000)
        return self.last


@dataclass
class Flap:
    """Down (every packet dropped) for the first half of each ``period_s``, up for the second."""

    period_s: float
    started: float

    def up(self, now: float) -> bool:
        return (now - self.started) % self.period_s >= self.period_s / 2


def _attr(kind: int, data: bytes) -> bytes:
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + b"\0" * (-size % 4)


def _message(kind: int, queue: int, attrs: list[bytes], flags: int = _REQUEST) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), _QUEUE | kind, flags, 0, 0) + body


def packets(data: bytes) -> list[tuple[int, int]]:
    """(packet id, IP total length) of each packet message in one netlink read."""
    found = []
    offset = 0
    while offset + 16 <= len(data):
        size, kind = struct.unpack_from("=IH", data, offset)
        if size < 16:
            break
        if kind == _QUEUE | _PACKET:
            ident, length = None, 0
            at = offset + 20  # the netlink header, then nfgenmsg
            while at + 4 <= offset + size:
                alen, atype = struct.unpack_from("=HH", data, at)
                if alen < 4:
                    break
                atype &= 0x7FFF
                if atype == _PACKET_HDR:
                    ident = struct.unpack_from("!I", data, at + 4)[0]
                elif atype == _PAYLOAD and alen >= 8:
                    length = struct.unpack_from("!H", data, at + 6)[0]
                at += (alen + 3) & ~3
            if ident is not None:
                found.append((ident, length))
        offset += (size + 3) & ~3
    return found


class Queue:
    """One bound NFQUEUE on a netlink socket."""

    def __init__(self, first: int) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.number = self._bind(first)

    def _request(self, queue: int, attrs: list[bytes]) -> int:
        """Send a config request; its errno (0: done)."""
        self.sock.send(_message(_CONFIG, queue, attrs, _REQUEST | _ACK))
        while True:
            data = self.sock.recv(65536)
            size, kind = struct.unpack_from("=IH", data)
            if kind == _ERROR:
                code: int = -struct.unpack_from("=i", data, 16)[0]
                return code
            if size == 0:
                return errno.EIO

    def _bind(self, first: int) -> int:
        for queue in (first + k for k in range(QUEUES_TRIED)):
            if queue > 65535:
                break
            code = self._request(queue, [_attr(_CFG_CMD, struct.pack("!BBH", _BIND, 0, socket.AF_INET))])
            if code in (errno.EBUSY, errno.EPERM):  # bound by another process
                continue
            if code:
                raise OSError(code, f"binding NFQUEUE {queue}: {os.strerror(code)}")
            params = [
                _attr(_CFG_PARAMS, struct.pack("!IB", COPY_BYTES, _COPY_PACKET)),
                _attr(_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN)),
            ]
            if code := self._request(queue, params):
                raise OSError(code, f"configuring NFQUEUE {queue}: {os.strerror(code)}")
            return queue
        raise OSError(errno.EBUSY, f"NFQUEUE {first}-{first + QUEUES_TRIED - 1} are all taken")

    def verdict(self, last_id: int, verdict: int) -> None:
        """The verdict for every packet up to ``last_id`` still held."""
        self.sock.send(
            _message(_VERDICT_BATCH, self.number, [_attr(_VERDICT_HDR, struct.pack("!II", verdict, last_id))])
        )


def recorded(state: Path, pid: int) -> bool:
    """The lab's state still records a fault served by ``pid`` (else this delayer is no one's)."""
    try:
        faults = json.loads(state.read_text()).get("faults", [])
    except (OSError, ValueError, AttributeError):
        return False
    return any(isinstance(f, dict) and f.get("pid") == pid for f in faults)


def serve(queue: Queue, link: Link | None, flap: Flap | None, alive: object) -> None:
    """Hold and release packets until ``alive()`` says the fault is over (checked about once a second)."""
    held: deque[tuple[float, int]] = deque()  # (release time, id), in id order
    check_at = 0.0
    while True:
        now = time.monotonic()
        if now >= check_at:
            if not alive():  # type: ignore[operator]
                break
            check_at = now + 1.0
        wait = min(check_at, held[0][0]) - now if held else check_at - now
        ready, _, _ = select.select([queue.sock], [], [], max(0.0, wait))
        now = time.monotonic()
        if ready:
            try:
                data = queue.sock.recv(1 << 20)
            except OSError as exc:  # ENOBUFS: messages lost; a later batch verdict covers their packets
                if exc.errno != errno.ENOBUFS:
                    raise
                data = b""
            arrived = packets(data)
            if flap is not None:
                if arrived:
                    queue.verdict(arrived[-1][0], ACCEPT if flap.up(now) else DROP)
                continue
            assert link is not None
            for ident, size in arrived:
                held.append((link.release(now, size), ident))
        due = None
        while held and held[0][0] <= now:
            due = held.popleft()[1]
        if due is not None:
            queue.verdict(due, ACCEPT)
    if held:
        queue.verdict(held[-1][1], ACCEPT)  # let go of what is held: the fault is over


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.delayer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, required=True, help="the first NFQUEUE number to try")
    parser.add_argument("--delay", type=float, default=0.0, help="milliseconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="milliseconds")
    parser.add_argument("--rate", type=float, default=0.0, help="bits a second (0: no limit)")
    parser.add_argument("--flap", type=float, default=0.0, help="period in seconds (drop the first half)")
    parser.add_argument("--state", type=Path, required=True, help="the lab's state.json")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds to wait to be recorded")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    stop = False

    def stopped(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    try:
        queue = Queue(args.queue)
    except OSError as exc:
        print(f"error {exc.strerror or exc}", flush=True)
        return 1
    print(f"queue {queue.number}", flush=True)
    with contextlib.suppress(OSError):
        os.close(1)  # (the lab read the line; nothing more is written there)
    started = time.monotonic()
    me = os.getpid()

    def alive() -> bool:
        if stop:
            return False
        return recorded(args.state, me) or time.monotonic() - started < args.grace

    link = None if args.flap else Link(args.delay, args.jitter, args.rate, random.Random(args.seed))
    flap = Flap(args.flap, started) if args.flap else None
    serve(queue, link, flap, alive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
