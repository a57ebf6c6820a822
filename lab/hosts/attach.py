"""`lab attach --name NAME -i INVENTORY`: a lab made of hosts the lab did not start.

The inventory and the profile say where each node runs and with which passwords (as `lab deploy` reads
them); the lab is saved like any other (state.json, 0600 secrets) with the ``ssh`` backend
(:mod:`lab.backends.ssh`), so `lab status`, the faults, `lab heal`, `lab failover`, `lab drill` and `lab
clients` work on it. Hosts that are not one deployment (two masters, Sentinels that name different masters,
a Sentinel that does not answer) are refused and nothing is attached. `lab down` of such a lab removes what
the lab injected (its iptables chain on the hosts) and forgets it: the deployment keeps running.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path

from lab import state
from lab.backends.ssh import SshBackend
from lab.errors import LabError, UsageError
from lab.hosts.deploy import BIN_ON_HOST, deployment_spec
from lab.hosts.inventory import Inventory, load
from lab.spec import LabSpec, Remote

#: A login or a host name as ssh takes it: never starting with "-" (an option), no spaces.
SSH_WORD = re.compile(r"^[A-Za-z0-9_.:\[\]][A-Za-z0-9_.:@%\[\]-]*$")


def remote_of(inv: Inventory, host: str, node: str, pidfile: str) -> Remote:
    """How Ansible logs in to ``host`` (its inventory variables), for OpenSSH."""
    v = inv.hostvars.get(host, {})
    args = shlex.split(str(v.get("ansible_ssh_common_args") or "")) + shlex.split(
        str(v.get("ansible_ssh_extra_args") or "")
    )
    key = str(v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file") or "")
    try:
        port = int(v.get("ansible_port") or v.get("ansible_ssh_port") or 22)
    except (TypeError, ValueError):
        raise UsageError(
            f"inventory {inv.path}: {host}: ansible_port {v.get('ansible_port')!r} is not a port"
        ) from None
    user = str(v.get("ansible_user") or v.get("ansible_ssh_user") or getpass.getuser())
    address = inv.address(host)
    for what, value in (("ansible_user", user), ("ansible_host", address)):
        if not SSH_WORD.match(value):  # (an option in disguise, "-oProxyCommand=...", would run here)
            raise UsageError(f"inventory {inv.path}: {host}: {what} {value!r} is not a user or host name")
    return Remote(
        host=host,
        address=address,
        user=user,
        port=port,
        key=os.path.abspath(os.path.expanduser(key)) if key else "",
        ssh_args=tuple(args),
        command=str(BIN_ON_HOST / node),
        pidfile=pidfile,
    )


def one_deployment(spec: LabSpec) -> list[str]:
    """Why the nodes are not one deployment (empty: they are): one master, the others its replicas, every
    Sentinel answering and naming it."""
    from lab.topology import observe

    obs = observe(spec, timeout=2.0)
    why = [
        f"{v.node.name} ({v.node.address}) does not answer: {v.error}"
        for v in obs.redis + obs.sentinels
        if not v.reachable
    ]
    masters = [v for v in obs.redis if v.reachable and v.role == "master"]
    if len(masters) != 1:
        said = ", ".join(v.node.name for v in masters) or "none"
        why.append(f"{len(masters)} data nodes say they are the master ({said})")
    named = {v.master for v in obs.sentinels if v.reachable}
    if len(named) > 1:
        seen = ", ".join(f"{v.node.name} names {_addr(v.master)}" for v in obs.sentinels if v.reachable)
        why.append(f"the Sentinels name different masters ({seen})")
    elif len(masters) == 1 and named and next(iter(named)) != (masters[0].node.host, masters[0].node.port):
        why.append(f"the Sentinels name {_addr(next(iter(named)))}, not {masters[0].node.name}, the master")
    return why


def deployment_lab(inv: Inventory, profile_name: str, directory: Path) -> LabSpec:
    """The lab model of an inventory's deployment, driven over SSH (the ssh backend), whose state would live
    in ``directory`` (named after it)."""
    spec, _ = deployment_spec(inv, profile_name)
    remotes = {
        node.name: remote_of(inv, host, node.name, str(spec.files(node).pidfile))
        for node, host in ((spec.node(n), h) for n, h in inv.node_hosts().items())
    }
    return replace(spec, name=directory.name, backend=SshBackend.name, base_dir=directory, remotes=remotes)


def _addr(address: tuple[str, int] | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "no master"


def attach(home: Path, name: str, inventory_path: Path, profile_name: str, vault_password_file: Path | None) -> LabSpec:
    directory = state.state_dir(home, name)
    if state.exists(home, name):
        raise UsageError(f"lab {name} exists: choose another name, or `lab down --name {name}` first")
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} exists but holds no lab: remove it or choose another name")
    spec = deployment_lab(load(inventory_path, vault_password_file), profile_name, directory)
    SshBackend().prepare(spec)  # every host answers over SSH, as the inventory logs in
    state.save(spec)
    try:
        why = one_deployment(spec)
    except BaseException:
        state.remove(directory)
        raise
    if why:
        state.remove(directory)
        raise LabError(f"the hosts of {inventory_path} are not one deployment, nothing attached: {'; '.join(why)}")
    return spec
