"""Compose backend: the same lab in containers (docker compose v2), from the same rendered files.

Each node's rendered directory is bind-mounted writable at /data. The lab gets its own /24
(chosen free at `lab up`) with fixed addresses, so a restarted container keeps its address and the
host reaches every address Sentinel hands out. Faults: docker kill (KILL/TERM), pause/unpause, and
iptables rules inside the node's own network namespace for isolation (they vanish with it).

Containers, networks and volumes are found by the project's label and driven through the Docker SDK
(lab.docker.engine: typed errors, one client per process); only ``compose create`` is a subprocess
(lab.docker.compose_command), and isolation runs the host's iptables through nsenter (the image has none).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

from lab import COMPOSE_DIR, delayers, links
from lab.backends.base import LINK_FAULTS, NodeState
from lab.docker import api, compose_command, docker_unavailable, engine, explanation, found, resolve_image, run
from lab.errors import LabError, NetworkOverlap, NodeStartError
from lab.interrupts import uninterrupted
from lab.links import CLIENTS, LinkRule
from lab.servers import Server
from lab.spec import COMPOSE_ENV, LabSpec, Layout, Node
from lab.tls import TLS_DIR
from lab.topology import node_client
from lab.waits import WaitTimeout, wait_for

COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_FILE = COMPOSE_ENV
POOL = ipaddress.ip_network(os.environ.get("LAB_COMPOSE_POOL", "172.29.0.0/16"))
#: A Sentinel's container sources this file of its directory when it starts (a clock fault's preload library).
CLOCK_ENV = "clock.env"


def image_variable(node: Node) -> str:
    """The compose.env variable holding a node's image: LAB_IMAGE_REDIS_1, LAB_IMAGE_SENTINEL_2."""
    return "LAB_IMAGE_" + node.name.upper().replace("-", "_")


def project(spec: LabSpec) -> str:
    """Compose project name: per lab and per state directory, so labs never share containers."""
    digest = hashlib.sha1(str(spec.identity_dir).encode()).hexdigest()[:8]
    return f"lab-{spec.identity_dir.name}-{digest}".replace("_", "-").lower()


LABEL = "com.docker.compose.project"


def _used_networks(but: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The IPv4 subnets the engine's networks (except compose project ``but``'s) and the host's routes use."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    bridges = set()  # the host's route to a bridge network is that network: the engine's listing decides
    # One call: the engine's listing carries each network's IPAM, so a network another lab removes
    # meanwhile is simply not listed (no list-then-inspect race).
    for net in api("network ls", engine().networks.list):
        bridges.add(f"br-{net.id[:12]}")
        if but and (net.attrs.get("Labels") or {}).get(LABEL) == but:
            continue
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if "Subnet" in cfg and ":" not in cfg["Subnet"]:
                used.append(ipaddress.ip_network(cfg["Subnet"]))
    routes = subprocess.run(["ip", "-4", "-o", "route"], capture_output=True, text=True, check=False).stdout
    for line in routes.splitlines():
        words = line.split()
        first = words[0] if words else ""
        device = words[words.index("dev") + 1] if "dev" in words[:-1] else ""
        if "/" in first and device not in bridges:
            used.append(ipaddress.ip_network(first, strict=False))
    return used


def subnet_taken(net: str, but: str) -> bool:
    """Whether ``net``'s /24 ("172.29.N") overlaps a network in use that is not compose project ``but``'s."""
    mine = ipaddress.ip_network(f"{net}.0/24")
    return any(mine.overlaps(u) for u in _used_networks(but))


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
        """Why the engine cannot be used (asked once per backend object: every command makes its own).
        Observing, stopping and removing a lab need only the engine; :meth:`_require` adds Compose."""
        if self._unavailable is False:
            self._unavailable = docker_unavailable(compose=False)
        assert self._unavailable is not True
        return self._unavailable

    def _require(self) -> None:
        why = self._docker_missing() or docker_unavailable()
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

    def _containers(self, spec: LabSpec) -> dict[str, Any]:
        """Service name -> its container (``docker.models.containers.Container``: ``.status`` is
        running/paused/exited/created, ``.attrs["Image"]`` the image it was created from), in one call."""
        return {c.attrs["Labels"].get("com.docker.compose.service", ""): c for c in _labelled(spec, "containers")}

    def _running(self, spec: LabSpec, nodes: Sequence[Node]) -> list[Any]:
        """The containers of ``nodes`` that run (or are paused)."""
        listing = self._containers(spec)
        return [listing[n.name] for n in nodes if n.name in listing and listing[n.name].status in ("running", "paused")]

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
        listing = self._containers(spec)
        stale = [n.name for n in nodes if n.name in listing and listing[n.name].attrs["Image"] != self.image(spec, n)]
        if stale:  # `lab upgrade`: the node's container is recreated on its new build's image
            self._create(spec, nodes, "--force-recreate", *stale)
        missing = any(n.name not in listing for n in nodes)
        if missing:
            self._create(spec, nodes, "--no-recreate")
        if stale or missing:
            listing = self._containers(spec)
        containers = [listing[n.name] for n in nodes if n.name in listing]
        # One start call per container, concurrently: the engine starts each in ~0.5 s.
        with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
            for done in [pool.submit(uninterrupted, api, "start", c.start) for c in containers]:
                done.result()
        for node in nodes:
            self._wait_answers(spec, node)

    def _create(self, spec: LabSpec, nodes: Sequence[Node], *args: str) -> None:
        result = uninterrupted(lambda: self._compose(spec, "create", *args, check=False))
        if result.returncode != 0:
            why = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()[-1]
            # Compose only prints why; whether another lab (or a route) took this lab's /24 meanwhile is
            # asked of the engine's networks instead of read from that text.
            if subnet_taken(spec.redis_nodes[0].host.rsplit(".", 1)[0], but=project(spec)):
                raise NetworkOverlap(why)
            raise NodeStartError(", ".join(n.name for n in nodes), why, None)

    def _wait_answers(self, spec: LabSpec, node: Node) -> None:
        import redis  # (only starting a node asks it: lab status of a compose lab loads no redis-py)

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
        except WaitTimeout as exc:
            raise NodeStartError(node.name, exc.headline, self.log_path(spec, node)) from None
        except NodeStartError:
            raise
        except LabError as exc:  # the engine failed while asked about the container
            raise NodeStartError(node.name, str(exc), self.log_path(spec, node)) from None

    def stop(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        if self._docker_missing():
            return
        running = self._running(spec, nodes)
        for container in running:
            if container.status == "paused":
                api("unpause", container.unpause)  # a frozen server would not act on SIGTERM
        # SIGTERM to all at once (Redis shuts down cleanly), then wait for every exit. A container that
        # exited meanwhile refuses the kill (409): nothing to do for it.
        for container in running:
            with suppress(LabError):
                api("kill", container.kill, signal="TERM")
        if not _exited(running, within=10):
            for container in running:
                with suppress(LabError):
                    api("kill", container.kill)

    def remove(self, spec: LabSpec) -> list[str]:
        """Containers, then the network, then volumes, by the project's label (no compose file or env
        needed); nothing without the label is ever listed, so nothing else is removed."""
        why = self._docker_missing()
        if why:
            return [f"the containers and network of compose project {project(spec)} ({why})"]
        # (by name: the engine force-disconnects the endpoint of a container already removed by its name only)
        containers = [name for c in _labelled(spec, "containers") for name in c.attrs.get("Names", [])]
        for kind, what in (("containers", "containers"), ("networks", "network"), ("volumes", "volumes")):

            def removed(kind: str = kind) -> tuple[bool, str]:
                refused = [why for leftover in _labelled(spec, kind) if (why := _remove(leftover, kind, containers))]
                return not refused, "; ".join(refused)

            # The engine may refuse for a moment what it has just stopped using (seen under load in CI:
            # a network "has active endpoints" after its containers went): try again.
            try:
                wait_for(removed, what=f"docker {kind} rm", timeout=15, interval=0.5)
            except WaitTimeout as exc:
                return [
                    f"the {what} of compose project {project(spec)} "
                    f"(docker: {exc.last_seen}; restarting the engine clears it)"
                ]
        return []

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        if self._docker_missing():
            return "down"
        container = self._containers(spec).get(node.name)
        state = container.status if container is not None else ""
        return {"paused": "frozen", "running": "up"}.get(state, "down")  # type: ignore[return-value]

    def log_path(self, spec: LabSpec, node: Node) -> Path:
        return spec.files(node).logfile  # the node directory is mounted: the log is on the host

    # -- faults -----------------------------------------------------------------------------
    def unsupported(self, kind: str) -> str | None:
        if kind in LINK_FAULTS:
            if os.geteuid() != 0:
                return f"{kind} needs root (iptables in the container's network namespace)"
            if not (shutil.which("iptables") and shutil.which("nsenter")):
                return f"{kind} needs iptables and nsenter on the host"
        return None

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        container = self._containers(spec).get(node.name)
        if container is None or container.status not in ("running", "paused"):
            raise LabError(f"{node.name} is not running")
        if sig == signal.SIGSTOP:
            _pause(container)
        elif sig == signal.SIGCONT:
            api("unpause", container.unpause)
        else:
            if container.status == "paused":
                api("unpause", container.unpause)
            api("kill", container.kill, signal=sig.name)
            if sig == signal.SIGTERM:
                api("stop", container.stop, timeout=5)
            if not _exited([container], within=10):
                raise LabError(f"docker wait: {node.name} did not exit within 10s")

    def _netns(self, spec: LabSpec, node: Node) -> list[str]:
        """How to enter the node's network namespace from the host (the image has no iptables or Python of
        its own, so no exec in the container: nsenter into the namespace of its process)."""
        container = self._containers(spec).get(node.name)
        inspected = found("inspect", engine().api.inspect_container, container.id) if container else None
        pid = (inspected or {}).get("State", {}).get("Pid") or 0
        if not pid:
            raise LabError(f"{node.name} is not running")
        return ["nsenter", "-t", str(pid), "-n"]

    def _nsenter(self, spec: LabSpec, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The host's iptables in the node's network namespace."""
        return run([*self._netns(spec, node), "iptables", "-w", *args], check=check)

    def add_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Each rule in its node's namespace (a cut link's DROP first: a packet its delayer accepts skips
        the rest of the chain)."""
        for rule in rules:
            node = spec.node(rule.node)
            chain, args = _iptables_rule(spec, rule)
            if self._nsenter(spec, node, "-C", chain, *args, check=False).returncode != 0:
                where = ("-I", chain, "1") if rule.action == links.DROP else ("-A", chain)
                self._nsenter(spec, node, *where, *args)

    def delete_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Remove each rule from its node's namespace, if the node still runs (a restarted container's
        namespace is a new one, without them). Idempotent."""
        for rule in rules:
            node = spec.node(rule.node)
            if self.node_state(spec, node) == "down":
                continue
            chain, args = _iptables_rule(spec, rule)
            while self._nsenter(spec, node, "-D", chain, *args, check=False).returncode == 0:
                pass

    def restart_with(self, spec: LabSpec, node: Node, env: dict[str, str]) -> None:
        """Restart the node's container with ``env`` in its server's environment: a Sentinel's command sources
        ``/data/clock.env`` when there is one (the compose file), so ``env`` goes there, with the paths as the
        container sees them (the node's directory is /data; the image's libc is the host's, so the library
        the host built loads in it). An empty ``env`` removes the file."""
        directory = spec.files(node).dir
        path = directory / CLOCK_ENV
        container = self._containers(spec).get(node.name)
        inspected = found("inspect", engine().api.inspect_container, container.id) if container else None
        if inspected is None:
            raise LabError(f"{node.name} has no container (`lab up --name {spec.name}` creates it)")
        if env and CLOCK_ENV not in " ".join(inspected.get("Config", {}).get("Cmd") or []):
            raise LabError(
                f"{node.name}'s container was created before clock faults came to the compose backend: "
                f"`lab down --name {spec.name}` and `lab up` again"
            )
        if env:
            lines = []
            for name, value in env.items():
                inside = Path(value)
                if not inside.is_relative_to(directory):
                    raise LabError(f"{name}={value}: outside {node.name}'s directory, which is all its container sees")
                lines.append(f"export {name}={shlex.quote(str(Path('/data') / inside.relative_to(directory)))}\n")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write("".join(lines))
        else:
            path.unlink(missing_ok=True)
        self.stop(spec, [node])
        self.start(spec, [node])

    def start_delayer(self, spec: LabSpec, node: Node, args: list[str]) -> tuple[int, int]:
        """lab.delayer in the node's network namespace (where its NFQUEUE is), run from the host."""
        return delayers.start(spec, args, self._netns(spec, node))

    def isolation_rules(self, spec: LabSpec) -> list[str]:
        """The lab's rules in the running containers' network namespaces (a DROP or the lab's comment), each
        line prefixed by its node."""
        found = []
        for node in spec.nodes:
            if self.node_state(spec, node) in ("up", "frozen"):
                listing = self._nsenter(spec, node, "-S", check=False).stdout.splitlines()
                ours = [line for line in listing if "-j DROP" in line or "redis-ha-lab " in line]
                found += [f"{node.name}: {line}" for line in ours]
        return found

    def heal_isolation(self, spec: LabSpec) -> None:
        """Every rule of every running node's namespace."""
        for target in spec.nodes:
            if self.node_state(spec, target) == "down":
                continue
            for chain in ("INPUT", "OUTPUT"):
                self._nsenter(spec, target, "-F", chain, check=False)


def _pause(container: Any, tries: int = 3) -> None:
    """Freeze a container's cgroup. runc gives up ("unable to freeze") when the tasks do not stop in time on
    a busy host, and thaws the cgroup back (CI, saturated: a drill's freeze failed so): tried again."""
    for attempt in range(1, tries + 1):
        try:
            api("pause", container.pause)
            return
        except LabError as exc:
            if "unable to freeze" not in str(exc) or attempt == tries:
                raise
            time.sleep(0.2)


def _iptables_rule(spec: LabSpec, rule: LinkRule) -> tuple[str, list[str]]:
    """A link rule in the node's own namespace: what it receives in INPUT, what it sends in OUTPUT; its
    clients are the host, which reaches the lab's network from the gateway (.1)."""
    node = spec.node(rule.node)
    peer = node.host.rsplit(".", 1)[0] + ".1" if rule.peer == CLIENTS else spec.node(rule.peer).host
    chain, end = ("OUTPUT", "-d") if rule.direction == "out" else ("INPUT", "-s")
    return chain, [end, peer, "-m", "comment", "--comment", rule.comment, *rule.action]


def _labelled(spec: LabSpec, kind: str) -> list[Any]:
    """The lab's containers (all, stopped too), networks or volumes: what carries its project's label.
    The engine filters by the label; each one is checked again here before anyone acts on it."""
    wanted = project(spec)
    collection = getattr(engine(), kind)
    if kind == "containers":
        listed = api("ps", collection.list, all=True, sparse=True, filters={"label": f"{LABEL}={wanted}"})
    else:
        listed = api(f"{kind} ls", collection.list, filters={"label": f"{LABEL}={wanted}"})
    return [item for item in listed if (item.attrs.get("Labels") or {}).get(LABEL) == wanted]


def _remove(item: Any, kind: str, containers: list[str]) -> str:
    """Remove one labelled object (a container even running, with its anonymous volumes); "" once it is
    gone, else what the engine said. A network the engine refuses with 403 Forbidden ("has active
    endpoints": endpoints of containers already removed) has those endpoints forced off for the next try:
    ``containers`` are the lab's container names, for the engine finds a removed container's endpoint by
    its name only (`docker network disconnect -f NET NAME`, moby/moby#23302)."""
    import docker  # type: ignore[import-untyped]

    try:
        if kind == "containers":
            item.remove(force=True, v=True)
        else:
            item.remove()
    except docker.errors.NotFound:
        return ""  # gone meanwhile
    except docker.errors.APIError as exc:
        if kind == "networks" and exc.status_code == 403:
            # The lab's containers, and whatever endpoint the network still lists (one of a container
            # removed before this command ran: a valkey compose lab in CI kept one for 15 s and more).
            with contextlib.suppress(LabError):
                api("network inspect", item.reload)
            listed = [str(ep.get("Name", "")) for ep in (item.attrs.get("Containers") or {}).values()]
            for container in dict.fromkeys(name.lstrip("/") for name in [*containers, *listed] if name):
                found("network disconnect", item.disconnect, container, force=True)
        return explanation(exc)
    return ""


def _exited(containers: Sequence[Any], within: float) -> bool:
    """Wait for every container to exit, ``within`` seconds in all (False when one did not)."""
    import docker
    import requests

    deadline = time.monotonic() + within
    for container in containers:
        try:
            container.wait(timeout=max(0.1, deadline - time.monotonic()))
        except docker.errors.NotFound:
            continue  # removed: not running either
        except requests.exceptions.RequestException:  # the engine did not answer in time: still running
            return False
        except docker.errors.APIError as exc:
            raise LabError(f"docker wait: {explanation(exc)}") from None
    return True
