"""Compose backend: the same lab in containers (docker compose v2), from the same rendered files.

Each node's rendered directory is bind-mounted writable at /data. The lab gets its own /24
(chosen free at `lab up`) with fixed addresses, so a restarted container keeps its address and the
host reaches every address Sentinel hands out. Faults: docker kill (KILL/TERM), pause/unpause, and
iptables rules inside the node's own network namespace for isolation (they vanish with it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from lab import REPO_ROOT, state
from lab.backends.base import NodeState
from lab.docker import compose_command, docker_unavailable, resolve_image, run
from lab.errors import LabError
from lab.profile import Profile
from lab.render import render_lab
from lab.spec import LabSpec, Node
from lab.topology import client
from lab.waits import wait_for

COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yml"
ENV_FILE = "compose.env"
POOL = ipaddress.ip_network(os.environ.get("LAB_COMPOSE_POOL", "172.29.0.0/16"))


def project(spec: LabSpec) -> str:
    """Compose project name: per lab and per state directory, so labs never share containers."""
    digest = hashlib.sha1(str(spec.base_dir).encode()).hexdigest()[:8]
    return f"lab-{spec.name}-{digest}".replace("_", "-").lower()


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    ids = run(["docker", "network", "ls", "-q"]).stdout.split()
    if ids:
        for net in json.loads(run(["docker", "network", "inspect", *ids]).stdout):
            for cfg in (net.get("IPAM") or {}).get("Config") or []:
                if "Subnet" in cfg and ":" not in cfg["Subnet"]:
                    used.append(ipaddress.ip_network(cfg["Subnet"]))
    routes = subprocess.run(["ip", "-4", "-o", "route"], capture_output=True, text=True, check=False).stdout
    for line in routes.splitlines():
        first = line.split()[0] if line.split() else ""
        if "/" in first:
            used.append(ipaddress.ip_network(first, strict=False))
    return used


def choose_net(name: str, skip: int = 0) -> str:
    """A free /24 of the pool for this lab ("172.29.N"), starting from a slot derived from its name."""
    used = _used_networks()
    slots: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(POOL.subnets(new_prefix=24))
    start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(slots)
    free = [s for s in slots[start:] + slots[:start] if not any(s.overlaps(u) for u in used)]
    if len(free) <= skip:
        raise LabError(f"no free /24 left in {POOL} for a compose lab (set LAB_COMPOSE_POOL)")
    return str(free[skip].network_address).rsplit(".", 1)[0]


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ComposeBackend:
    name = "compose"

    def __init__(self) -> None:
        why = docker_unavailable()
        if why:
            raise LabError(f"the compose backend needs Docker: {why}")

    def _compose(
        self, spec: LabSpec, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(
            [
                *compose_command(),
                "-f",
                str(COMPOSE_FILE),
                "--env-file",
                str(spec.base_dir / ENV_FILE),
                "-p",
                project(spec),
                *args,
            ],
            timeout=timeout,
            check=check,
        )

    def _container(self, spec: LabSpec, node: Node) -> dict[str, object] | None:
        ids = self._compose(spec, "ps", "-a", "-q", node.name, check=False).stdout.split()
        if not ids:
            return None
        data: list[dict[str, object]] = json.loads(run(["docker", "inspect", ids[0]]).stdout)
        return data[0]

    # -- lifecycle --------------------------------------------------------------------------
    def up(self, spec: LabSpec, profile: Profile) -> None:
        if not state.exists(spec.base_dir.parent, spec.name):
            render_lab(spec, profile, spec.base_dir)
            state.save(spec)
        image = resolve_image()
        net = spec.redis_nodes[0].host.rsplit(".", 1)[0]
        (spec.base_dir / ENV_FILE).write_text(
            f"LAB_IMAGE={image}\nLAB_DIR={spec.base_dir}\nLAB_NET={net}\n"
            f"REDIS_PORT={spec.redis_nodes[0].port}\nSENTINEL_PORT={spec.sentinels[0].port}\n"
        )
        try:
            # Data nodes first: replicas find their master at once and Sentinels see all three.
            self._compose(spec, "up", "-d", "--no-recreate", *(n.name for n in spec.redis_nodes))
            self._compose(spec, "up", "-d", "--no-recreate", *(n.name for n in spec.sentinels))
        except LabError:
            self.down(spec)
            raise

    def down(self, spec: LabSpec, keep_data: bool = False) -> None:
        if (spec.base_dir / ENV_FILE).exists():
            self._compose(spec, "down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        # Whatever compose could not remove (a missing env file, an engine hiccup) goes by label.
        label = f"label=com.docker.compose.project={project(spec)}"
        for kind, remove in (("ps", ["rm", "-f", "-v"]), ("network", ["network", "rm"]), ("volume", ["volume", "rm"])):
            listing = ["docker", "ps", "-aq"] if kind == "ps" else ["docker", kind, "ls", "-q"]
            leftovers = run([*listing, "--filter", label]).stdout.split()
            if leftovers:
                run(["docker", *remove, *leftovers])
        state.remove(spec, keep_data=keep_data)

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        container = self._container(spec, node)
        status = container.get("State", {}) if container else {}
        assert isinstance(status, dict)
        if status.get("Paused"):
            return "frozen"
        return "up" if status.get("Running") else "down"

    def start_node(self, spec: LabSpec, node: Node) -> None:
        """Start the container and return once the server answers, as manage_*.sh does locally."""
        self._compose(spec, "start", node.name)
        password = spec.password if node.kind == "redis" else spec.sentinel_password

        def answers() -> tuple[bool, str]:
            try:
                with client(node.host, node.port, password, timeout=0.5) as conn:
                    conn.ping()
            except (redis.RedisError, OSError) as exc:
                return False, str(exc)
            return True, "PONG"

        wait_for(
            answers,
            what=f"{node.name} to answer after start",
            timeout=30,
            detail=lambda: _tail(self.log_path(spec, node)),
        )

    def stop_node(self, spec: LabSpec, node: Node) -> None:
        self._compose(spec, "stop", "--timeout", "5", node.name)

    def log_path(self, spec: LabSpec, node: Node) -> Path:
        return spec.files(node).logfile  # the node directory is mounted: the log is on the host

    # -- faults -----------------------------------------------------------------------------
    def unsupported(self, kind: str) -> str | None:
        if kind == "isolate":
            if os.geteuid() != 0:
                return "isolation needs root (iptables in the container's network namespace)"
            if not (shutil.which("iptables") and shutil.which("nsenter")):
                return "isolation needs iptables and nsenter on the host"
        return None

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        if sig == signal.SIGSTOP:
            self._compose(spec, "pause", node.name)
        elif sig == signal.SIGCONT:
            self._compose(spec, "unpause", node.name)
        else:
            if self.node_state(spec, node) == "frozen":
                self._compose(spec, "unpause", node.name)
            self._compose(spec, "kill", "-s", sig.name, node.name)
            if sig == signal.SIGTERM:
                self._compose(spec, "stop", "--timeout", "5", node.name)

    def _nsenter(self, spec: LabSpec, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        container = self._container(spec, node)
        status = container.get("State", {}) if container else {}
        assert isinstance(status, dict)
        pid = status.get("Pid")
        if not pid:
            raise LabError(f"{node.name} is not running")
        return run(["nsenter", "-t", str(pid), "-n", "iptables", "-w", *args], check=check)

    def isolate(self, spec: LabSpec, node: Node, peers: list[Node]) -> None:
        for peer in peers:
            for rule in (["-s", peer.host, "-j", "DROP"], ["-d", peer.host, "-j", "DROP"]):
                chain = "INPUT" if rule[0] == "-s" else "OUTPUT"
                if self._nsenter(spec, node, "-C", chain, *rule, check=False).returncode != 0:
                    self._nsenter(spec, node, "-A", chain, *rule)

    def heal_isolation(self, spec: LabSpec, node: Node | None = None, peers: list[Node] | None = None) -> None:
        for target in [node] if node else list(spec.nodes):
            if self.node_state(spec, target) != "up":
                continue
            for chain in ("INPUT", "OUTPUT"):
                self._nsenter(spec, target, "-F", chain, check=False)
