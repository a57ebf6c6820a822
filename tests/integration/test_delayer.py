"""lab.delayer against the real kernel: UDP datagrams between two loopback addresses, sent through an
NFQUEUE rule to the delayer, as a degraded link's packets are (no lab: each datagram is one packet, so
delay, rate, flapping and the bypass are seen exactly, without TCP's retransmissions in between)."""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVER, CLIENT = "127.255.254.1", "127.255.254.2"
COMMENT = "redis-ha-lab test_delayer"


def _remove_leftovers() -> None:
    """A rule of this test that a killed run left (its finally never ran) goes before the next one is added."""
    listing = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        if COMMENT in line:
            subprocess.run(["iptables", "-w", "-D", *shlex.split(line)[1:]], check=False)


@pytest.fixture(autouse=True)
def _can_queue() -> None:
    why = None if os.geteuid() == 0 and shutil.which("iptables") else "needs root and iptables (NFQUEUE rules)"
    if why and os.environ.get("LAB_REQUIRE_FAULTS") == "1":
        pytest.fail(f"LAB_REQUIRE_FAULTS=1 but {why}")
    if why:
        pytest.skip(why)


@contextmanager
def echo() -> Iterator[socket.socket]:
    """A UDP echo at SERVER; yields the client's socket (bound to CLIENT, connected to the echo)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((SERVER, 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((CLIENT, 0))
    client.connect(server.getsockname())
    done = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            try:
                data, peer = server.recvfrom(2048)
            except TimeoutError:
                continue
            server.sendto(data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield client
    finally:
        done.set()
        thread.join()
        server.close()
        client.close()


@contextmanager
def delayed(tmp_path: Path, *args: str, record: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """A delayer serving the client -> echo direction (the replies pass untouched), its NFQUEUE rule in
    place; both removed at the end whatever happens."""
    state = tmp_path / "state.json"
    command = [sys.executable, "-m", "lab.delayer", "--queue", "64500", "--state", str(state), "--grace", "1", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    words = proc.stdout.readline().decode().split()
    assert words[:1] == ["queue"], words
    state.write_text(json.dumps({"faults": [{"pid": proc.pid}] if record else []}))
    _remove_leftovers()
    rule = ["INPUT", "-s", CLIENT, "-d", SERVER, "-p", "udp", "-m", "comment", "--comment", COMMENT]
    rule += ["-j", "NFQUEUE", "--queue-num", words[1], "--queue-bypass"]
    subprocess.run(["iptables", "-w", "-I", *rule], check=True)
    try:
        yield proc
    finally:
        subprocess.run(["iptables", "-w", "-D", *rule], check=False)
        proc.kill()
        proc.wait()


def round_trips(client: socket.socket, count: int, every: float, timeout: float = 2.0) -> list[float | None]:
    """Send ``count`` numbered datagrams ``every`` seconds apart; each one's round trip in ms (None: lost)."""
    sent: dict[int, float] = {}
    got: dict[int, float] = {}

    def receive() -> None:
        client.settimeout(timeout)
        while len(got) < count:
            try:
                data = client.recv(2048)
            except TimeoutError:
                return
            got[int(data.split(b" ")[0])] = time.perf_counter()

    thread = threading.Thread(target=receive)
    thread.start()
    for number in range(count):
        sent[number] = time.perf_counter()
        client.send(b"%d %s" % (number, b"x" * 16))
        time.sleep(every)
    thread.join()
    return [(got[n] - sent[n]) * 1000 if n in got else None for n in range(count)]


def test_packets_wait_the_delay_and_its_jitter_in_order(tmp_path: Path) -> None:
    with echo() as client, delayed(tmp_path, "--delay", "40", "--jitter", "10", "--seed", "1"):
        trips = round_trips(client, 100, 0.005)
    assert all(t is not None for t in trips), trips
    measured = sorted(t for t in trips if t is not None)
    assert measured[0] >= 30 - 0.5, measured[:5]  # never less than the delay minus the jitter
    assert measured[len(measured) // 2] >= 37, measured  # the middle of 30-50 ms (released in order: not less)


def test_a_rate_spaces_the_packets_out(tmp_path: Path) -> None:
    with echo() as client, delayed(tmp_path, "--rate", "400000"):
        start = time.perf_counter()
        for number in range(30):
            client.send(b"%d %s" % (number, b"x" * 1000))  # 1,028 bytes on the wire: ~20.6 ms each at 400 kbit
        client.settimeout(5)
        for _ in range(30):
            client.recv(2048)
        elapsed = time.perf_counter() - start
    assert elapsed >= 29 * 1028 * 8 / 400_000 * 0.95, elapsed


def test_a_flapping_link_drops_half_of_each_period(tmp_path: Path) -> None:
    with echo() as client, delayed(tmp_path, "--flap", "1"):
        trips = round_trips(client, 150, 0.02)
    passed = [t is not None for t in trips]
    changes = sum(1 for a, b in itertools.pairwise(passed) if a != b)
    share = sum(passed) / len(passed)
    assert 0.3 <= share <= 0.7 and changes >= 4, (share, changes, passed)


def test_a_killed_delayer_lets_the_packets_pass(tmp_path: Path) -> None:
    with echo() as client, delayed(tmp_path, "--delay", "300") as proc:
        assert min(t or 1e9 for t in round_trips(client, 3, 0.01)) >= 299
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        trips = round_trips(client, 5, 0.01)
    assert all(t is not None and t < 300 for t in trips), trips  # (the rule is still there: bypassed)


def test_a_delayer_no_lab_records_ends_by_itself(tmp_path: Path) -> None:
    with echo(), delayed(tmp_path, "--delay", "5", record=False) as proc:
        assert proc.wait(timeout=5) == 0  # its --grace is 1 s


def test_a_recorded_delayer_lives_until_its_record_goes(tmp_path: Path) -> None:
    with echo(), delayed(tmp_path, "--delay", "5") as proc:
        time.sleep(1.5)
        assert proc.poll() is None  # past its grace: recorded
        (tmp_path / "state.json").write_text(json.dumps({"faults": []}))
        assert proc.wait(timeout=5) == 0
