"""Local backend: real redis-server and Sentinel processes, one loopback address each.

Every process is started and stopped through scripts/manage_redis_server.sh and
scripts/manage_sentinel.sh, so every lab start exercises the operational scripts.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import SCRIPTS_DIR, state
from lab.backends.base import NodeState
from lab.errors import LabError
from lab.profile import Profile
from lab.render import render_lab
from lab.spec import LabSpec, Node

SCRIPT = {"redis": "manage_redis_server.sh", "sentinel": "manage_sentinel.sh"}


def redis_server_bin() -> str:
    return os.environ.get("REDIS_SERVER_BIN", "redis-server")


def require_binaries() -> None:
    for binary in (redis_server_bin(), os.environ.get("REDIS_CLI_BIN", "redis-cli")):
        if shutil.which(binary) is None:
            raise LabError(
                f"{binary} not found: install redis-server and redis-tools "
                "(Debian/Ubuntu: sudo apt-get install redis-server redis-tools; `make lab-up` does it as root)"
            )


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise LabError(f"cannot bind {host}:{port}: {exc.strerror}") from None
    return False


def pid_state(pidfile: Path) -> tuple[int | None, str]:
    """(pid, state letter from /proc: R/S/D/T/Z...) of a pidfile's process; state '' when gone."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None, ""
    letter = _proc_letter(pid)
    return (pid, letter) if letter else (None, "")


def _wait_exit(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state_letter = _proc_letter(pid)
        if state_letter in ("", "Z", "X"):
            return
        time.sleep(0.01)


def _proc_letter(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _chain(spec: LabSpec) -> str:
    """The lab's iptables chain (names are capped at 28 characters)."""
    return "LAB-" + hashlib.sha1(f"{spec.base_dir}".encode()).hexdigest()[:16]


def _isolation_rules(spec: LabSpec, node: Node, peers: list[Node]) -> list[list[str]]:
    comment = ["-m", "comment", "--comment", f"redis-ha-lab {spec.name} isolate {node.name}"]
    rules = []
    for peer in peers:
        rules.append(["-s", node.host, "-d", peer.host, *comment, "-j", "DROP"])
        rules.append(["-s", peer.host, "-d", node.host, *comment, "-j", "DROP"])
    return rules


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result


class LocalBackend:
    name = "local"

    # -- one node ---------------------------------------------------------------------------
    def _script(self, spec: LabSpec, node: Node, action: str) -> subprocess.CompletedProcess[str]:
        files = spec.files(node)
        return subprocess.run(
            ["bash", str(SCRIPTS_DIR / SCRIPT[node.kind]), action, str(files.conf), str(files.pidfile)],
            capture_output=True,
            text=True,
            check=False,
        )

    def start_node(self, spec: LabSpec, node: Node) -> None:
        result = self._script(spec, node, "start")
        if result.returncode != 0:
            why = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[0]
            raise LabError(f"{node.name} did not start: {why.split(': ', 1)[-1]}")

    def stop_node(self, spec: LabSpec, node: Node) -> None:
        result = self._script(spec, node, "stop")
        if result.returncode != 0:
            raise LabError(f"{node.name} did not stop: {result.stderr.strip()}")

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        pid, letter = pid_state(spec.files(node).pidfile)
        if pid is None or letter in ("", "Z", "X"):
            return "down"
        return "frozen" if letter == "T" else "up"

    def log_path(self, spec: LabSpec, node: Node) -> Path:
        return spec.files(node).logfile

    # -- faults -----------------------------------------------------------------------------
    def unsupported(self, kind: str) -> str | None:
        """Why a fault kind cannot be injected here, or None when it can."""
        if kind == "isolate":
            if os.geteuid() != 0:
                return "isolation needs root (iptables rules on the nodes' loopback addresses)"
            if shutil.which("iptables") is None:
                return "isolation needs iptables (apt-get install iptables)"
        return None

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        pid, letter = pid_state(spec.files(node).pidfile)
        if pid is None or letter in ("", "Z"):
            raise LabError(f"{node.name} is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM) and letter == "T":
            os.kill(pid, signal.SIGCONT)  # a frozen process would not act on SIGTERM
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            _wait_exit(pid)

    def isolate(self, spec: LabSpec, node: Node, peers: list[Node]) -> None:
        """Drop every packet between ``node`` and ``peers`` (both directions) in the lab's own chain."""
        chain = _chain(spec)
        if _iptables("-nL", chain, check=False).returncode != 0:
            _iptables("-N", chain)
        if _iptables("-C", "INPUT", "-j", chain, check=False).returncode != 0:
            _iptables("-I", "INPUT", "-j", chain)
        for rule in _isolation_rules(spec, node, peers):
            if _iptables("-C", chain, *rule, check=False).returncode != 0:
                _iptables("-A", chain, *rule)

    def heal_isolation(self, spec: LabSpec, node: Node | None = None, peers: list[Node] | None = None) -> None:
        """Remove one node's rules, or (``node=None``) the lab's whole chain. Idempotent."""
        chain = _chain(spec)
        if shutil.which("iptables") is None or os.geteuid() != 0:
            return
        if _iptables("-nL", chain, check=False).returncode != 0:
            return
        if node is not None:
            for rule in _isolation_rules(spec, node, peers or []):
                while _iptables("-D", chain, *rule, check=False).returncode == 0:
                    pass
            listing = _iptables("-S", chain, check=False).stdout.strip().splitlines()
            if len(listing) > 1:  # other isolations remain
                return
        while _iptables("-D", "INPUT", "-j", chain, check=False).returncode == 0:
            pass
        _iptables("-F", chain, check=False)
        _iptables("-X", chain, check=False)

    # -- the lab ----------------------------------------------------------------------------
    def _parallel(self, action: str, spec: LabSpec, nodes: tuple[Node, ...]) -> None:
        fn = self.start_node if action == "start" else self.stop_node
        with ThreadPoolExecutor(max_workers=len(nodes) or 1) as pool:
            errors = [f.exception() for f in [pool.submit(fn, spec, n) for n in nodes]]
        failed = [e for e in errors if e is not None]
        if failed:
            raise failed[0]

    def up(self, spec: LabSpec, profile: Profile) -> None:
        require_binaries()
        pending = [n for n in spec.nodes if self.node_state(spec, n) == "down"]
        taken = [n.address for n in pending if port_in_use(n.host, n.port)]
        if taken:
            raise LabError(f"address already in use: {', '.join(taken)} (another lab or redis-server?)")
        if not state.exists(spec.base_dir.parent, spec.name):
            render_lab(spec, profile, spec.base_dir)
            state.save(spec)
        try:
            # The master first, so replicas sync on their first attempt and Sentinels reach it at once;
            # the three Sentinels together, so none waits a reconnect period for a peer not yet up.
            master = spec.initial_master
            if master in pending:
                self.start_node(spec, master)
            self._parallel("start", spec, tuple(n for n in pending if n.kind == "redis" and n != master))
            self._parallel("start", spec, tuple(n for n in pending if n.kind == "sentinel"))
        except LabError:
            self.down(spec)
            raise

    def down(self, spec: LabSpec, keep_data: bool = False) -> None:
        self.heal_isolation(spec)
        # Sentinels first: no failover is started while the data nodes go away.
        self._parallel("stop", spec, spec.sentinels)
        self._parallel("stop", spec, spec.redis_nodes)
        state.remove(spec, keep_data=keep_data)
