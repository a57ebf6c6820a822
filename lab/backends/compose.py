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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis

from lab import COMPOSE_DIR
from lab.backends.base import NodeState
from lab.docker import compose_command, docker_unavailable, resolve_image, run
from lab.errors import LabError, NetworkOverlap, NodeStartError
from lab.interrupts import uninterrupted
from lab.servers import Server
from lab.spec import COMPOSE_ENV, LabSpec, Layout, Node
from lab.tls import TLS_DIR
from lab.topology import node_client
from lab.waits import WaitTimeout, wait_for

COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_FILE = COMPOSE_ENV
POOL = ipaddress.ip_network(os.environ.get("LAB_COMPOSE_POOL", "172.29.0.0/16"))


def image_variable(node: Node) -> str:
    """The compose.env variable holding a node's image: LAB_IMAGE_REDIS_1, LAB_IMAGE_SENTINEL_2."""
    return "LAB_IMAGE_" + node.name.upper().replace("-", "_")


def project(spec: LabSpec) -> str:
    """Compose project name: per lab and per state directory, so labs never share containers."""
    digest = hashlib.sha1(str(spec.identity_dir).encode()).hexdigest()[:8]
    return f"lab-{spec.identity_dir.name}-{digest}".replace("_", "-").lower()


def _used_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    ids = run(["docker", "network", "ls", "-q"]).stdout.split()
    if ids:
        # A network removed between ls and inspect (another lab going down) is not in use: docker prints the
        # others and "network X not found" for it. Anything else is an error.
        inspected = run(["docker", "network", "inspect", *ids], check=False)
        errors = [e for e in inspected.stderr.strip().splitlines() if not e.endswith(" not found")]
        if inspected.returncode != 0 and (errors or not inspected.stdout.strip()):
            raise LabError(f"docker network inspect: {(errors or ['exit ' + str(inspected.returncode)])[-1]}")
        for net in json.loads(inspected.stdout):
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


class ComposeBackend:
    name = "compose"
    layout: Layout = "compose"

    def __init__(self) -> None:
        self._images: dict[Server | None, str] = {}
        self._unavailable: str | bool | None = False  # False: not asked yet

    def _docker_missing(self) -> str | None:
        """Why Docker cannot be used (asked once per backend object: every command makes its own)."""
        if self._unavailable is False:
            self._unavailable = docker_unavailable()
        assert self._unavailable is not True
        return self._unavailable

    def _require(self) -> None:
        why = self._docker_missing()
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

    def _containers(self, spec: LabSpec, *, images: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
        """Service name -> (container id, state: running/paused/exited/created), in one docker call
        (and each container's image into ``images``)."""
        label = f"label=com.docker.compose.project={project(spec)}"
        fmt = '{{.ID}} {{.State}} {{.Label "com.docker.compose.service"}} {{.Image}}'
        found = {}
        for line in run(["docker", "ps", "-a", "--filter", label, "--format", fmt]).stdout.splitlines():
            cid, state, service, image = [*line.split(), "", "", "", ""][:4]
            found[service] = (cid, state)
            if images is not None:
                images[service] = image
        return found

    def _ids(self, spec: LabSpec, nodes: Sequence[Node]) -> list[str]:
        listing = self._containers(spec)
        return [listing[n.name][0] for n in nodes if n.name in listing]

    # -- lifecycle --------------------------------------------------------------------------
    def network(self, name: str, attempt: int) -> str | None:
        self._require()
        return choose_net(name, attempt)

    def prepare(self, spec: LabSpec) -> None:
        self._require()
        for node in spec.nodes:
            self.image(spec, node)

    def image(self, spec: LabSpec, node: Node) -> str:
        """The image of the build the node runs (built from that build's binaries when needed)."""
        build = spec.server(node)
        if build not in self._images:
            self._images[build] = resolve_image(build)
        return self._images[build]

    def _write_env(self, spec: LabSpec) -> None:
        """compose.env: what the compose file needs to know about this lab (no secrets), one image
        per node (``LAB_IMAGE_REDIS_1``...): a node upgraded to another build gets its own."""
        net = spec.redis_nodes[0].host.rsplit(".", 1)[0]
        images = "".join(f"{image_variable(n)}={self.image(spec, n)}\n" for n in spec.nodes)
        text = (
            f"{images}LAB_DIR={spec.base_dir}\nLAB_NET={net}\n"
            f"REDIS_PORT={spec.redis_nodes[0].port}\nSENTINEL_PORT={spec.sentinels[0].port}\n"
        )
        for kind in ("redis", "sentinel"):
            user, secret = spec.secret_file(kind)
            text += f"LAB_{kind.upper()}_USER={user}\nLAB_{kind.upper()}_SECRET={secret}\n"
        inside = spec.tls_files(spec.nodes[0])
        tls = f"--tls --cacert {inside.ca} --cert {inside.client_cert} --key {inside.client_key}" if spec.tls else ""
        text += f"LAB_CLI_TLS={tls}\n"
        (spec.base_dir / TLS_DIR).mkdir(mode=0o700, exist_ok=True)  # mounted at /tls (empty without TLS)
        path = spec.base_dir / ENV_FILE
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def start(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        """Create the lab's containers (and network) if missing, start ``nodes`` together, then
        wait until each server answers (as manage_*.sh does locally)."""
        self._require()
        self._write_env(spec)
        images: dict[str, str] = {}
        listing = self._containers(spec, images=images)
        stale = [n.name for n in nodes if n.name in listing and images[n.name] != self.image(spec, n)]
        if stale:  # `lab upgrade`: the node's container is recreated on its new build's image
            self._create(spec, nodes, "--force-recreate", *stale)
        if any(n.name not in listing for n in nodes):
            self._create(spec, nodes, "--no-recreate")
        ids = self._ids(spec, nodes)
        # One `docker start` per container, concurrently: the CLI starts a list one by one (~0.5 s each).
        with ThreadPoolExecutor(max_workers=max(1, len(ids))) as pool:
            for done in [pool.submit(uninterrupted, run, ["docker", "start", cid]) for cid in ids]:
                done.result()
        for node in nodes:
            self._wait_answers(spec, node)

    def _create(self, spec: LabSpec, nodes: Sequence[Node], *args: str) -> None:
        result = uninterrupted(lambda: self._compose(spec, "create", *args, check=False))
        if result.returncode != 0:
            why = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()[-1]
            if "overlap" in why.lower():
                raise NetworkOverlap(why)
            raise NodeStartError(", ".join(n.name for n in nodes), why, None)

    def _wait_answers(self, spec: LabSpec, node: Node) -> None:
        def answers() -> tuple[bool, str]:
            try:
                with node_client(spec, node, timeout=0.5) as conn:
                    conn.ping()
            except (redis.RedisError, OSError) as exc:
                if self.node_state(spec, node) == "down":
                    why = f"its container exited ({exc})"
                    raise NodeStartError(node.name, why, self.log_path(spec, node)) from None
                return False, str(exc)
            return True, "PONG"

        try:
            wait_for(answers, what=f"{node.name} to answer after start", timeout=30)
        except NodeStartError:
            raise
        except LabError as exc:
            raise NodeStartError(node.name, str(exc).splitlines()[0], self.log_path(spec, node)) from None

    def stop(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        if self._docker_missing():
            return
        listing = self._containers(spec)
        running = [listing[n.name] for n in nodes if listing.get(n.name, ("", ""))[1] in ("running", "paused")]
        paused = [cid for cid, state in running if state == "paused"]
        if paused:
            run(["docker", "unpause", *paused])  # a frozen server would not act on SIGTERM
        ids = [cid for cid, _ in running]
        if ids:
            # SIGTERM to all at once (Redis shuts down cleanly), then wait for every exit.
            run(["docker", "kill", "--signal", "TERM", *ids], check=False)
            if run(["docker", "wait", *ids], timeout=10, check=False).returncode != 0:
                run(["docker", "kill", *ids], check=False)

    def remove(self, spec: LabSpec) -> list[str]:
        """Containers, then the network, by the project's label (no compose file or env needed)."""
        why = self._docker_missing()
        if why:
            return [f"the containers and network of compose project {project(spec)} ({why})"]
        label = f"label=com.docker.compose.project={project(spec)}"
        containers = run(["docker", "ps", "-aq", "--no-trunc", "--filter", label]).stdout.split()
        for kind, remove in (("ps", ["rm", "-f", "-v"]), ("network", ["network", "rm"]), ("volume", ["volume", "rm"])):
            listing = ["docker", "ps", "-aq"] if kind == "ps" else ["docker", kind, "ls", "-q"]

            def removed(listing: list[str] = listing, remove: list[str] = remove) -> tuple[bool, str]:
                leftovers = run([*listing, "--filter", label]).stdout.split()
                if not leftovers:
                    return True, ""
                result = run(["docker", *remove, *leftovers], check=False)
                why = " ".join((result.stderr.strip() or f"exit {result.returncode}").split())
                if "active endpoints" in why:  # endpoints of containers already gone: force them off
                    for network in leftovers:
                        for container in containers:
                            run(["docker", "network", "disconnect", "--force", network, container], check=False)
                return result.returncode == 0, why

            # The engine may refuse for a moment what it has just stopped using (seen under load in CI:
            # `network rm` saying "has active endpoints" after the containers went): try again.
            try:
                wait_for(removed, what=f"docker {' '.join(remove)}", timeout=15, interval=0.5)
            except WaitTimeout as exc:
                last = str(exc).partition("last seen: ")[2]
                return [
                    f"the {kind} of compose project {project(spec)} (docker: {last}; restarting the engine clears it)"
                ]
        return []

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        if self._docker_missing():
            return "down"
        state = self._containers(spec).get(node.name, ("", ""))[1]
        return {"paused": "frozen", "running": "up"}.get(state, "down")  # type: ignore[return-value]

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
        ids = self._ids(spec, [node])
        if not ids or self.node_state(spec, node) == "down":
            raise LabError(f"{node.name} is not running")
        if sig == signal.SIGSTOP:
            run(["docker", "pause", *ids])
        elif sig == signal.SIGCONT:
            run(["docker", "unpause", *ids])
        else:
            if self.node_state(spec, node) == "frozen":
                run(["docker", "unpause", *ids])
            run(["docker", "kill", "--signal", sig.name, *ids])
            if sig == signal.SIGTERM:
                run(["docker", "stop", "--time", "5", *ids])
            if self.node_state(spec, node) != "down":
                run(["docker", "wait", *ids], timeout=10)

    def _nsenter(self, spec: LabSpec, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        ids = self._ids(spec, [node])
        pid = run(["docker", "inspect", "--format", "{{.State.Pid}}", *ids]).stdout.strip() if ids else ""
        if pid in ("", "0"):
            raise LabError(f"{node.name} is not running")
        return run(["nsenter", "-t", str(pid), "-n", "iptables", "-w", *args], check=check)

    def isolate(self, spec: LabSpec, node: Node, peers: list[Node]) -> None:
        for peer in peers:
            for rule in (["-s", peer.host, "-j", "DROP"], ["-d", peer.host, "-j", "DROP"]):
                chain = "INPUT" if rule[0] == "-s" else "OUTPUT"
                if self._nsenter(spec, node, "-C", chain, *rule, check=False).returncode != 0:
                    self._nsenter(spec, node, "-A", chain, *rule)

    def isolation_rules(self, spec: LabSpec) -> list[str]:
        """The DROP rules in the running containers' network namespaces, each line prefixed by its node."""
        found = []
        for node in spec.nodes:
            if self.node_state(spec, node) in ("up", "frozen"):
                listing = self._nsenter(spec, node, "-S", check=False).stdout.splitlines()
                found += [f"{node.name}: {line}" for line in listing if "-j DROP" in line]
        return found

    def heal_isolation(self, spec: LabSpec, node: Node | None = None, peers: list[Node] | None = None) -> None:
        for target in [node] if node else list(spec.nodes):
            if self.node_state(spec, target) != "up":
                continue
            for chain in ("INPUT", "OUTPUT"):
                self._nsenter(spec, target, "-F", chain, check=False)
