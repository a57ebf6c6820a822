"""The ssh backend: a lab made of hosts it did not start (`lab attach`), driven over SSH.

Each node runs on a host of an inventory, deployed by `lab deploy` (the role installs one command per node,
``/opt/redis-ha/bin/<node> start|stop|restart|status``, over the lifecycle scripts). The backend starts,
stops and signals a node there, reads its process state, and cuts its host's links with iptables on that
host (a chain of the lab's own, hooked into INPUT and OUTPUT). It never renders, and `lab down` of such a
lab removes what the lab injected and forgets it, leaving the deployment running.

SSH is OpenSSH with the inventory's login: its key, user, port and options (a pinned known_hosts file);
BatchMode, so a missing key is an error, never a password prompt. A user other than root runs the
commands with ``sudo -n``.
"""

from __future__ import annotations

import hashlib
import shlex
import signal
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.backends.base import NodeState
from lab.errors import LabError, NodeStartError, Unavailable
from lab.links import CLIENTS, LinkRule
from lab.spec import LabSpec, Layout, Node, Remote

SSH_TIMEOUT = 30.0


def ssh(remote: Remote, command: str, *, timeout: float = SSH_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (a shell line) on the node's host; as root (sudo -n for another user)."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *remote.ssh_args]
    if remote.key:
        argv += ["-i", remote.key, "-o", "IdentitiesOnly=yes"]
    argv += ["-p", str(remote.port), f"{remote.user}@{remote.address}"]
    line = f"sudo -n sh -c {shlex.quote(command)}" if remote.sudo else command
    try:
        return subprocess.run([*argv, line], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"{remote.host} ({remote.address}): no answer over SSH within {timeout:g}s") from None


def checked(remote: Remote, command: str, what: str) -> str:
    done = ssh(remote, command)
    if done.returncode == 255:
        raise LabError(f"{remote.host} ({remote.address}): {what}: SSH failed: {_last(done.stderr)}")
    if done.returncode != 0:
        raise LabError(f"{remote.host}: {what}: {_last(done.stderr or done.stdout)}")
    return done.stdout


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _chain(spec: LabSpec) -> str:
    return "LAB-" + hashlib.sha1(f"{spec.identity_dir}".encode()).hexdigest()[:16]


class SshBackend:
    name = "ssh"
    layout: Layout = "hosts"

    def _remote(self, spec: LabSpec, node: Node) -> Remote:
        try:
            return spec.remotes[node.name]
        except KeyError:
            raise LabError(f"{node.name}: the lab does not say which host runs it (attach it again)") from None

    def network(self, name: str, attempt: int) -> str | None:
        return None

    def prepare(self, spec: LabSpec) -> None:
        for remote in {r.host: r for r in spec.remotes.values()}.values():
            checked(remote, "true", "reach")

    def start(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        for node in nodes:
            remote = self._remote(spec, node)
            done = ssh(remote, f"{remote.command} start")
            if done.returncode != 0:
                raise NodeStartError(node.name, _last(done.stderr or done.stdout), None)

    def stop(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        for node in nodes:
            remote = self._remote(spec, node)
            checked(remote, f"{remote.command} stop", f"stop {node.name}")

    def remove(self, spec: LabSpec) -> list[str]:
        """What the lab injected on the hosts (its iptables chain); the deployment stays as it runs."""
        left = []
        for remote in {r.host: r for r in spec.remotes.values()}.values():
            try:
                self._unhook(spec, remote)
            except LabError as exc:
                left.append(str(exc))
        return left

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        remote = self._remote(spec, node)
        pid = shlex.quote(remote.pidfile)
        done = ssh(
            remote,
            f'{remote.command} status >/dev/null 2>&1 && echo up $(ps -o stat= -p "$(cat {pid})" 2>/dev/null)',
        )
        if done.returncode == 255:
            return "down"  # the host does not answer: nothing of it serves
        words = done.stdout.split()
        if not words or words[0] != "up":
            return "down"
        return "frozen" if len(words) > 1 and words[1].startswith("T") else "up"

    def node_states(self, spec: LabSpec) -> dict[str, NodeState]:
        """Every node's state at once (one SSH session each, side by side)."""
        with ThreadPoolExecutor(max_workers=len(spec.nodes)) as pool:
            states = list(pool.map(lambda n: self.node_state(spec, n), spec.nodes))
        return {n.name: s for n, s in zip(spec.nodes, states, strict=True)}

    def log_path(self, spec: LabSpec, node: Node) -> Path:
        return spec.files(node).logfile  # (on the host, not here)

    def unsupported(self, kind: str) -> str | None:
        if kind in ("degrade", "flap"):
            return f"{kind} runs the lab's packet delayer beside the node: not on an attached lab (isolate cuts links)"
        if kind == "clock":
            return "a clock fault restarts the node under the lab's clock library: not on an attached lab"
        return None

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        remote = self._remote(spec, node)
        pidfile = shlex.quote(remote.pidfile)
        wait = ""
        if sig in (signal.SIGKILL, signal.SIGTERM):  # thaw first (a frozen process would not act on SIGTERM)
            wait = 'kill -CONT "$p" 2>/dev/null; '
        command = (
            f'p=$(cat {pidfile} 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" || exit 3; {wait}kill -{sig.name[3:]} "$p"'
        )
        if sig in (signal.SIGKILL, signal.SIGTERM):
            command += '; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done'
            command += '; ! kill -0 "$p" 2>/dev/null'
        done = ssh(remote, command)
        if done.returncode == 3:
            raise LabError(f"{node.name} is not running")
        if done.returncode != 0:
            why = _last(done.stderr) if done.stderr else "still running 10 s after it"
            raise LabError(f"{node.name} on {remote.host}: {sig.name}: {why}")

    # -- links: iptables on the node's host ------------------------------------------------
    def _rule(self, spec: LabSpec, rule: LinkRule) -> list[str]:
        if rule.peer == CLIENTS:
            raise Unavailable("on an attached lab, clients' links cannot be told apart from SSH and the lab's own")
        here, there = spec.node(rule.node).host, spec.node(rule.peer).host
        ends = ["-s", here, "-d", there] if rule.direction == "out" else ["-s", there, "-d", here]
        return [*ends, "-m", "comment", "--comment", rule.comment, *rule.action]

    def add_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """A node's links are its host's: co-located nodes share them (the rules are by address)."""
        chain = _chain(spec)
        for rule in rules:
            remote = self._remote(spec, spec.node(rule.node))
            args = shlex.join(self._rule(spec, rule))
            checked(
                remote,
                f"iptables -w -nL {chain} >/dev/null 2>&1 || iptables -w -N {chain}; "
                f"for hook in INPUT OUTPUT; do iptables -w -C $hook -j {chain} 2>/dev/null || "
                f"iptables -w -I $hook -j {chain}; done; iptables -w -C {chain} {args} 2>/dev/null || "
                f"iptables -w -I {chain} 1 {args}",
                f"cut {rule.node}'s link to {rule.peer}",
            )

    def delete_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        chain = _chain(spec)
        for rule in rules:
            remote = self._remote(spec, spec.node(rule.node))
            args = shlex.join(self._rule(spec, rule))
            checked(remote, f"while iptables -w -D {chain} {args} 2>/dev/null; do :; done", "heal a link")

    def heal_isolation(self, spec: LabSpec) -> None:
        for remote in {r.host: r for r in spec.remotes.values()}.values():
            self._unhook(spec, remote)

    def _unhook(self, spec: LabSpec, remote: Remote) -> None:
        chain = _chain(spec)
        checked(
            remote,
            f"for hook in INPUT OUTPUT; do while iptables -w -D $hook -j {chain} 2>/dev/null; do :; done; done; "
            f"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null; "
            f"! iptables -w -nL {chain} >/dev/null 2>&1",  # (gone, or this fails: a lab is never forgotten with it)
            "remove the lab's iptables chain",
        )

    def isolation_rules(self, spec: LabSpec) -> list[str]:
        found = []
        for remote in {r.host: r for r in spec.remotes.values()}.values():
            done = ssh(remote, f"iptables -w -S {_chain(spec)} 2>/dev/null")
            found += [f"{remote.host}: {line}" for line in done.stdout.splitlines() if line.startswith("-A ")]
        return found

    def restart_with(self, spec: LabSpec, node: Node, env: dict[str, str]) -> None:
        if env:
            raise Unavailable("a clock fault restarts the node under the lab's clock library: not on an attached lab")
        remote = self._remote(spec, node)
        done = ssh(remote, f"{remote.command} restart")
        if done.returncode != 0:
            raise NodeStartError(node.name, _last(done.stderr or done.stdout), None)

    def start_delayer(self, spec: LabSpec, node: Node, args: list[str]) -> tuple[int, int]:
        raise Unavailable("the packet delayer runs beside the node: not on an attached lab")
