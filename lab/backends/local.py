"""Local backend: real redis-server and Sentinel processes, one loopback address each.

Every process is started and stopped through scripts/manage_redis_server.sh and
scripts/manage_sentinel.sh, so every lab start exercises the operational scripts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import SCRIPTS_DIR, delayers, links, procs, servers
from lab.backends.base import LINK_FAULTS, NodeState
from lab.errors import LabError, NodeStartError
from lab.interrupts import uninterrupted
from lab.links import CLIENTS, LinkRule
from lab.servers import Server
from lab.spec import LabSpec, Layout, Node

SCRIPT = {"redis": "manage_redis_server.sh", "sentinel": "manage_sentinel.sh"}


def build_of(spec: LabSpec, node: Node) -> Server:
    """The build a node runs: the one the lab names, else the system's."""
    return spec.server(node) or servers.system()


def recorded(spec: LabSpec, node: Node) -> procs.Binary:
    """The file a node's server runs, as the lab recorded it: its path and (device, inode), not probed (a lab
    whose binary has gone since must still be found and stopped; procs checks what each process runs)."""
    path = spec.servers.get(node.name)
    if path:
        return procs.Binary(Path(path), spec.server_id(node))
    system = servers.system_binary()  # a lab from before builds were recorded runs the system's
    return procs.Binary(Path(shutil.which(system) or system).absolute())


def binary_of(spec: LabSpec, node: Node) -> procs.Binary:
    """:func:`recorded`, checked before it is trusted to find a process to signal: a recorded path that names a
    file which is not a Redis or Valkey server binary (a state file edited to name /bin/sleep) fails the command
    in one line naming it. A path that names no file any more is not probed (the node's process is known by the
    recorded device and inode, and what it runs is asked through /proc/PID/exe)."""
    binary = recorded(spec, node)
    if binary.path.exists():
        try:
            servers.probe(str(binary.path))  # cached by (path, device, inode, mtime)
        except servers.NoAnswer:
            pass  # not runnable by path (say, no x bit any more): known by its identity
        except LabError as exc:
            raise LabError(
                f"{node.name}: the lab records {binary.path} as its server binary, but {exc}; "
                "refusing to act on it (see state.json)"
            ) from None
    return binary


def binaries(spec: LabSpec) -> list[procs.Binary]:
    """Every server binary the lab's nodes run: what tells its processes from any other."""
    return list(dict.fromkeys(recorded(spec, node) for node in spec.nodes))


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


def _chain(spec: LabSpec) -> str:
    """The lab's iptables chain (names are capped at 28 characters)."""
    return "LAB-" + hashlib.sha1(f"{spec.identity_dir}".encode()).hexdigest()[:16]


def _iptables_rule(spec: LabSpec, rule: LinkRule) -> list[str]:
    """A link rule on loopback: by source and destination address (clients: anything outside the lab's /24)."""
    node = spec.node(rule.node)
    if rule.peer == CLIENTS:
        outside = node.host.rsplit(".", 1)[0] + ".0/24"
        ends = (
            ["-s", node.host, "!", "-d", outside] if rule.direction == "out" else ["!", "-s", outside, "-d", node.host]
        )
    else:
        peer = spec.node(rule.peer).host
        ends = ["-s", node.host, "-d", peer] if rule.direction == "out" else ["-s", peer, "-d", node.host]
    return [*ends, "-m", "comment", "--comment", rule.comment, *rule.action]


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result


class LocalBackend:
    name = "local"
    layout: Layout = "local"

    def network(self, name: str, attempt: int) -> str | None:
        return None  # 127.A.B derived from the lab name (lab.spec.loopback_subnet)

    # -- the lifecycle scripts --------------------------------------------------------------
    def _script(
        self, spec: LabSpec, action: str, nodes: Sequence[Node], extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """One script call for nodes of one kind and one build (``start`` takes them all at once)."""
        args = ["bash", str(SCRIPTS_DIR / SCRIPT[nodes[0].kind]), action]
        for node in nodes:
            files = spec.files(node)
            args += [str(files.conf), str(files.pidfile)]
        env = os.environ | self._binaries_env(spec, action, nodes[0])
        if spec.acl:  # no requirepass in the config: the scripts log in as admin (from the environment)
            auth = spec.auth(nodes[0].kind)
            prefix = "REDIS" if nodes[0].kind == "redis" else "SENTINEL"
            env |= {f"{prefix}_USERNAME": str(auth["username"]), f"{prefix}_PASSWORD": str(auth["password"])}
        env |= extra_env or {}
        # Its own session: a Ctrl-C meant for `lab` must not kill the script halfway through a start.
        return subprocess.run(args, capture_output=True, text=True, check=False, start_new_session=True, env=env)

    def _binaries_env(self, spec: LabSpec, action: str, node: Node) -> dict[str, str]:
        """REDIS_SERVER_BIN and REDIS_CLI_BIN for a script call: the node's build. To stop a node whose recorded
        binary was renamed since (its process is known by the recorded device and inode), the very file the
        process runs, by /proc/PID/exe (a name that selects no redis-check-rdb mode), and the system's cli."""
        try:
            build = build_of(spec, node)
        except LabError:
            files = spec.files(node)
            pid, _ = procs.node_pid(files.pidfile, files.dir, binary_of(spec, node))
            if action != "stop" or pid is None:
                raise
            env = {"REDIS_SERVER_BIN": f"/proc/{pid}/exe"}
            with contextlib.suppress(LabError):
                env["REDIS_CLI_BIN"] = str(servers.system().cli_bin)
            return env
        return {"REDIS_SERVER_BIN": str(build.server_bin), "REDIS_CLI_BIN": str(build.cli_bin)}

    def start(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        for kind in ("redis", "sentinel"):
            same_kind = [n for n in nodes if n.kind == kind]
            # By file, not by build: a node runs the very binary the lab recorded for it (its pid is known by it).
            for binary in dict.fromkeys(binary_of(spec, n).path for n in same_kind):
                self._start_group(spec, [n for n in same_kind if binary_of(spec, n).path == binary])

    def _start_group(self, spec: LabSpec, group: list[Node]) -> None:
        """Start nodes of one kind and build with one script call."""
        if group:
            result = uninterrupted(self._script, spec, "start", group)
            if result.returncode != 0:
                failed = next((n for n in group if self.node_state(spec, n) == "down"), group[0])
                lines = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
                conf = str(spec.files(failed).conf)
                why = next((line.split(f"{conf}: ", 1)[1] for line in lines if f"{conf}: " in line), lines[0])
                raise NodeStartError(failed.name, why, self.log_path(spec, failed))

    def restart_with(self, spec: LabSpec, node: Node, env: dict[str, str]) -> None:
        """Stop ``node`` and start it again with ``env`` added to its process's environment (a clock fault's
        preload library; an empty ``env``: as the lab starts it)."""
        self.stop(spec, [node])
        result = uninterrupted(self._script, spec, "start", [node], env)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f"exit {result.returncode}"]
            raise NodeStartError(node.name, lines[-1], self.log_path(spec, node))

    def stop(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        """Stop the nodes of each kind together, kinds in the order given (Sentinels first on `down`)."""
        # Only nodes whose process is this lab's: the script trusts what the config says, and a
        # copied lab's configs describe the original's servers.
        running = [n for n in nodes if self.node_state(spec, n) != "down"]
        for kind in dict.fromkeys(n.kind for n in running):
            group = [n for n in running if n.kind == kind]
            with ThreadPoolExecutor(max_workers=len(group)) as pool:
                results = list(pool.map(lambda n: (n, self._script(spec, "stop", [n])), group))
            failed = [f"{n.name}: {r.stderr.strip()}" for n, r in results if r.returncode != 0]
            if failed:
                raise LabError(f"did not stop: {'; '.join(failed)}")

    def prepare(self, spec: LabSpec) -> None:
        for node in spec.nodes:
            build_of(spec, node)  # a missing or unknown binary fails here, before anything starts
        taken = [n.address for n in spec.nodes if port_in_use(n.host, n.port)]
        if taken:
            raise LabError(f"address already in use: {', '.join(taken)} (another lab or redis-server?)")

    def remove(self, spec: LabSpec) -> list[str]:
        """Firewall chain, then any server still working in the lab's directory (a start that was
        interrupted before its pidfile was written, a moved lab whose scripts no longer match). Returns what
        still runs there: a lab with a server left working in its directory is never called down."""
        self.heal_isolation(spec)
        lab_binaries = binaries(spec)
        stray = procs.servers_under(spec.base_dir, lab_binaries)
        procs.terminate(stray)
        left = [f"pid {pid} (survived SIGKILL)" for pid in stray if any(procs.is_server(pid, b) for b in lab_binaries)]
        # A server the lab does not know as one of its own (its binary replaced under another identity, a lab
        # from before identities were recorded whose binary was renamed): not signalled, but named.
        for pid in procs.unknown_servers_under(spec.base_dir, stray):
            exe = procs.exe_path(pid) or "a server binary"
            where = procs.workdir(pid)
            left.append(f"pid {pid} ({exe}, working in {where}: a server of no binary the lab recorded, left running)")
        return left

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        files = spec.files(node)
        pid, letter = procs.node_pid(files.pidfile, files.dir, binary_of(spec, node))
        if pid is None:
            return "down"
        return "frozen" if letter == "T" else "up"

    def log_path(self, spec: LabSpec, node: Node) -> Path:
        return spec.files(node).logfile

    # -- faults -----------------------------------------------------------------------------
    def unsupported(self, kind: str) -> str | None:
        """Why a fault kind cannot be injected here, or None when it can."""
        if kind == "clock":
            return None  # (a compiler is checked when the library is first built: lab.clockshift)
        if kind in LINK_FAULTS:
            if os.geteuid() != 0:
                return f"{kind} needs root (iptables rules on the nodes' loopback addresses)"
            if shutil.which("iptables") is None:
                return f"{kind} needs iptables (apt-get install iptables)"
        return None

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        files = spec.files(node)
        pid, letter = procs.node_pid(files.pidfile, files.dir, binary_of(spec, node))
        if pid is None:
            raise LabError(f"{node.name} is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM) and letter == "T":
            os.kill(pid, signal.SIGCONT)  # a frozen process would not act on SIGTERM
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM) and not procs.wait_gone(pid, 10):
            raise LabError(f"{node.name} (pid {pid}) is still running 10 s after {sig.name}")

    def add_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Append link rules to the lab's chain (hooked into INPUT: every loopback packet passes it once)."""
        chain = _chain(spec)
        if _iptables("-nL", chain, check=False).returncode != 0:
            _iptables("-N", chain)
        if _iptables("-C", "INPUT", "-j", chain, check=False).returncode != 0:
            _iptables("-I", "INPUT", "-j", chain)
        for rule in rules:
            args = _iptables_rule(spec, rule)
            if _iptables("-C", chain, *args, check=False).returncode != 0:
                # A cut link stays cut: DROP rules go first (a packet a delayer accepts skips the rest of the chain).
                _iptables(*(("-I", chain, "1") if rule.action == links.DROP else ("-A", chain)), *args)

    def delete_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Remove link rules (each as often as it is there); the chain goes with its last rule. Idempotent."""
        chain = _chain(spec)
        if shutil.which("iptables") is None or os.geteuid() != 0:
            return
        if _iptables("-nL", chain, check=False).returncode != 0:
            return
        for rule in rules:
            while _iptables("-D", chain, *_iptables_rule(spec, rule), check=False).returncode == 0:
                pass
        if len(_iptables("-S", chain, check=False).stdout.strip().splitlines()) <= 1:  # (only "-N chain")
            self.heal_isolation(spec)

    def start_delayer(self, spec: LabSpec, node: Node, args: list[str]) -> tuple[int, int]:
        """lab.delayer for a link of ``node`` (its pid and queue): loopback's packets are the host's, so it
        runs here."""
        return delayers.start(spec, args, [])

    def isolation_rules(self, spec: LabSpec) -> list[str]:
        """The rules of the lab's chain, and any rule elsewhere that names the lab in its comment."""
        if shutil.which("iptables") is None or os.geteuid() != 0:
            return []
        listing = _iptables("-S", check=False).stdout.splitlines()
        return [line for line in listing if f"redis-ha-lab {spec.name} " in line or f"-A {_chain(spec)} " in line]

    def heal_isolation(self, spec: LabSpec) -> None:
        """Remove every link rule of the lab: its whole chain. Idempotent."""
        chain = _chain(spec)
        if shutil.which("iptables") is None or os.geteuid() != 0:
            return
        if _iptables("-nL", chain, check=False).returncode != 0:
            return
        while _iptables("-D", "INPUT", "-j", chain, check=False).returncode == 0:
            pass
        _iptables("-F", chain, check=False)
        _iptables("-X", chain, check=False)
