"""``lab hosts`` (simulated hosts to deploy to) and ``lab deploy`` (a profile to an inventory's hosts)."""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import state
from lab.errors import UsageError
from lab.lock import lab_lock

if TYPE_CHECKING:  # `lab --help` builds these parsers: the console loads when a command runs
    from rich.console import Console

DEFAULT_SET = "hosts"


def add_commands(sub: Any) -> None:
    p = sub.add_parser("hosts", help="simulated hosts on this machine (own address, filesystem, sshd) to deploy to")
    hosts = p.add_subparsers(dest="hosts_command", required=True, metavar="up|down|list|kill|boot")
    q = hosts.add_parser("up", help="make N hosts (or boot those of the set that are down) and write an inventory")
    q.add_argument("count", type=int, metavar="N", help="how many hosts (1-12; 3: each a data node and a Sentinel)")
    q.add_argument("--name", default=DEFAULT_SET, help=f"the set's name (default: {DEFAULT_SET})")
    q.add_argument("--json", action="store_true", help="print the set (hosts, addresses, inventory) as JSON")
    q = hosts.add_parser("down", help="remove the set: every process of its hosts, their namespaces, its files")
    q.add_argument("--name", default=DEFAULT_SET, help=f"the set's name (default: {DEFAULT_SET})")
    q = hosts.add_parser("list", help="the sets under the home, their hosts and whether each is up")
    q.add_argument("--json", action="store_true")
    for verb, text in (
        ("kill", "a power cut: SIGKILL to every process of one host at once"),
        ("boot", "start a host that is down: sshd, then what the deployment starts at boot"),
    ):
        q = hosts.add_parser(verb, help=text)
        q.add_argument("host", help="host-1, host-2, ...")
        q.add_argument("--name", default=DEFAULT_SET, help=f"the set's name (default: {DEFAULT_SET})")

    p = sub.add_parser("attach", help="make a lab of an inventory's deployed hosts (status, faults, drills over SSH)")
    p.add_argument("--name", default="default", help="the lab's name (default: default)")
    p.add_argument("-i", "--inventory", type=Path, required=True, help="Ansible inventory (file or directory)")
    p.add_argument("--profile", default="production", help="the profile it was deployed with (default: production)")
    p.add_argument("--vault-password-file", type=Path, help="ansible-vault's password for the inventory's vars")

    p = sub.add_parser("deploy", help="deploy a profile to an inventory's hosts with Ansible (idempotent)")
    p.add_argument("-i", "--inventory", type=Path, required=True, help="Ansible inventory (file or directory)")
    p.add_argument("--profile", default="production", help="profile name or YAML path (default: production)")
    p.add_argument("--vault-password-file", type=Path, help="ansible-vault's password for the inventory's vars")
    p.add_argument("--check", action="store_true", help="say what would change, change nothing (ansible --check)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="a master with a changed config hands over by a safe failover, then restarts as a replica",
    )
    p.add_argument("--json", action="store_true", help="print each host's outcome as JSON")


def cmd_hosts(args: argparse.Namespace, out: Console) -> int:
    from lab.hosts import sim

    home = args.home or state.default_home()
    if args.hosts_command == "list":
        return _list(home, args.json, out)
    if args.hosts_command == "up" and not 1 <= args.count <= sim.MAX_HOSTS:
        raise UsageError(f"hosts: give 1 to {sim.MAX_HOSTS}, not {args.count}")
    # One lock per set, in the home's locks (a digest: any set name makes a valid lock name).
    lock = "hosts-" + hashlib.sha1(args.name.encode()).hexdigest()[:12]
    with lab_lock(home, lock, f"hosts {args.hosts_command}"):
        if args.hosts_command == "up":
            hs, new = sim.up(home, args.name, args.count)
            if args.json:
                print(json.dumps(_describe(hs), indent=2))
                return 0
            made = "made" if new else "up"
            out.print(f"hosts {hs.name}: {made} {len(hs.hosts)} hosts on {hs.subnet}.0/24", markup=False)
            for host in hs.hosts:
                out.print(f"  {host.name:<8} {host.address:<15} ssh -i {hs.key} root@{host.address}", markup=False)
            flag = _flag(args)
            out.print(f"inventory: {hs.inventory} (passwords in its vault: {hs.vault_password})", markup=False)
            if len(hs.hosts) == 3 or len(hs.hosts) >= 6:
                out.print(
                    f"Next: lab{flag} deploy -i {shlex.quote(str(hs.inventory))} "
                    f"--vault-password-file {shlex.quote(str(hs.vault_password))}",
                    markup=False,
                )
            else:
                out.print(
                    "its groups redis_ha_data and redis_ha_sentinel (3 hosts each) are yours to write", markup=False
                )
            return 0
        if args.hosts_command == "down":
            removed = sim.down(home, args.name)
            out.print(f"hosts {args.name}: {'removed ' + str(len(removed)) + ' things' if removed else 'none here'}")
            return 0
        hs = sim.load(home, args.name)
        host = hs.host(args.host)
        if args.hosts_command == "kill":
            gone = sim.kill(host)
            out.print(f"{host.name}: killed {len(gone)} processes at once (`lab hosts boot {host.name}` starts it)")
            return 0
        if sim.running(host):
            raise UsageError(f"{host.name} is up: `lab hosts kill {host.name}` first")
        sim.boot(hs, host)
        sim.wait_ssh(hs, 30.0)
        out.print(f"{host.name}: booted (sshd answers; the deployment's boot hook, if any, is starting its nodes)")
        return 0


def _flag(args: argparse.Namespace) -> str:
    return f" --home {shlex.quote(str(args.home))}" if args.home else ""


def _describe(hs: Any) -> dict[str, Any]:
    from lab.hosts import sim

    return {
        "name": hs.name,
        "subnet": f"{hs.subnet}.0/24",
        "inventory": str(hs.inventory),
        "vault_password_file": str(hs.vault_password),
        "key": str(hs.key),
        "known_hosts": str(hs.known_hosts),
        "hosts": [{"name": h.name, "address": h.address, "up": sim.running(h)} for h in hs.hosts],
    }


def _list(home: Path, as_json: bool, out: Console) -> int:
    from lab.hosts import sim

    found = [_describe(sim.load(home, name)) for name in sim.sets(home)]
    if as_json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        out.print(f"no hosts under {home} (`lab hosts up 3` makes three)", markup=False)
    for doc in found:
        ups = ", ".join(f"{h['name']} {h['address']} {'up' if h['up'] else 'DOWN'}" for h in doc["hosts"])
        out.print(f"{doc['name']}: {ups}  (inventory {doc['inventory']})", markup=False)
    return 0


def cmd_attach(args: argparse.Namespace, out: Console) -> int:
    from lab.hosts.attach import attach

    home = args.home or state.default_home()
    with lab_lock(home, args.name, "attach"):
        spec = attach(home, args.name, args.inventory, args.profile, args.vault_password_file)
    hosts = sorted({r.host for r in spec.remotes.values()})
    out.print(f"lab {spec.name}: attached {len(spec.nodes)} nodes on {', '.join(hosts)} (ssh backend)", markup=False)
    out.print(
        f"Next: lab{_flag(args)} status --name {spec.name}   |   lab{_flag(args)} drill kill-master --name {spec.name}"
        f"   |   lab{_flag(args)} down --name {spec.name} (detaches; the hosts keep running)",
        markup=False,
    )
    return 0


def cmd_deploy(args: argparse.Namespace, out: Console) -> int:
    from lab.hosts.deploy import run

    home = args.home or state.default_home()
    if args.restart and args.check:
        raise UsageError("--restart and --check: a check changes nothing, so it restarts nothing")
    done = run(args.inventory, args.profile, home=home, check=args.check, vault_password_file=args.vault_password_file)
    handed = None
    if args.restart and done.ok and any(h.pending for h in done.hosts.values()):
        handed = _hand_over(done.inventory, args.profile)
        if not args.json:
            out.print(f"restart: {handed[0]} handed over to {handed[1]} (a safe failover); the playbook again:")
        done = run(args.inventory, args.profile, home=home, vault_password_file=args.vault_password_file)
    if args.json:
        hosts = [vars(h) for h in done.hosts.values()]
        moved = {"from": handed[0], "to": handed[1]} if handed else None
        print(json.dumps({"ok": done.ok, "check": done.check, "handed_over": moved, "hosts": hosts}, indent=2))
        return 0 if done.ok else 1
    verb = "would change" if done.check else "changed"
    for h in done.hosts.values():
        what = (
            f"{verb} {len(h.changed)}: {'; '.join(_short(t) for t in h.changed)}" if h.changed else "ok, nothing to do"
        )
        what = f"FAILED: {h.failed}" if h.failed else what
        out.print(f"  {h.host:<12} {', '.join(h.nodes):<22} {what}", markup=False)
        for note in h.pending:
            out.print(f"  {'':<12} {'':<22} pending: {note}", markup=False)
    failed = [h.host for h in done.hosts.values() if h.failed]
    if failed:
        touched = [h.host for h in done.hosts.values() if h.changed]
        before = f"{', '.join(touched)} changed before that (run it again when fixed)" if touched else "no host changed"
        out.print(f"lab deploy: {', '.join(failed)} failed; {before}", markup=False)
        return 1
    out.print(f"{done.spec.profile} profile on {len(done.hosts)} hosts: {done.changed} {verb}", markup=False)
    return 0


def _hand_over(inventory: Any, profile: str) -> tuple[str, str]:
    """--restart: the master moves to a replica by the lab's safe failover (no acknowledged write lost), so the
    next run of the playbook finds it a replica and restarts it with its new config."""
    import tempfile

    from lab.failover import failover
    from lab.hosts.attach import deployment_lab

    with tempfile.TemporaryDirectory(prefix="lab-restart-") as tmp:  # (its lock only: nothing is saved)
        old, new = failover(deployment_lab(inventory, profile, Path(tmp) / "restart"))
    return old.name, new.name


def _short(task: str) -> str:
    """A role's task name without the role and its parenthesis."""
    return task.split(" : ", 1)[-1].split(" (", 1)[0]
