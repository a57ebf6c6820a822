"""``lab servers`` and ``lab upgrade``: which server builds are here, and moving a node to another."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab import servers, state

if TYPE_CHECKING:  # `lab --help` builds these parsers: the console and the upgrade load when a command runs
    from rich.console import Console

SERVER_HELP = (
    "NAME (redis-6.2, redis-7.0, redis-8.2, valkey-8.1, valkey-9.1; see `lab servers`), "
    "a path to a redis-server/valkey-server"
)


def server_option(p: argparse.ArgumentParser, *, per_node: bool) -> None:
    """``--server`` for the commands that run or render a lab."""
    if per_node:
        p.add_argument(
            "--server",
            action="append",
            default=[],
            metavar="[NODE=]BUILD",
            help=f"{SERVER_HELP}; NODE=BUILD for one node (repeatable; default: the system's redis-server)",
        )
    else:
        p.add_argument("--server", metavar="BUILD", help=f"target build: {SERVER_HELP}")


def add_commands(sub: Any, seconds: Callable[[str], float] = float) -> None:
    """``seconds``: the CLI's check of a --timeout (finite, bounded)."""
    p = sub.add_parser("servers", help="the server builds found here (system, the [servers] extra, --server)")
    p.add_argument("--server", action="append", default=[], metavar="PATH", help="also probe this binary")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("upgrade", help="restart one node on another server build, with its data")
    p.add_argument("--name", default="default", help="lab name (default: default)")
    p.add_argument("node", help="redis-1..3 or sentinel-1..3")
    p.add_argument("--server", required=True, metavar="BUILD", help=SERVER_HELP)
    p.add_argument("--timeout", type=seconds, default=30.0, help="seconds to wait for health afterwards")


def cmd_servers(args: argparse.Namespace, out: Console) -> int:
    found = servers.discover(args.server)
    for why in servers.unusable():
        print(f"lab servers: not a build here: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps([s.describe() for s in found], indent=2))
        return 0
    out.print(f"{'build':<11} {'version':<8} {'TLS':<7} {'found in':<22} binary", markup=False)
    for build in found:
        tls = "TLS" if build.tls else "no TLS"
        out.print(f"{build.name:<11} {build.release:<8} {tls:<7} {build.source:<22} {build.server_bin}", markup=False)
    return 0


def cmd_upgrade(args: argparse.Namespace, out: Console) -> int:
    from lab.upgrade import upgrade

    target = servers.resolve(args.server)  # not a server build: one line, exit 2, before anything is touched
    spec = state.load(args.home or state.default_home(), args.name)
    done = upgrade(spec, args.node, target, timeout=args.timeout)
    left_out = f"; left out of its config for {done.after.name}: {', '.join(done.removed)}" if done.removed else ""
    same = f" (the same build, now from {done.after.server_bin})" if done.before == done.after else ""
    out.print(
        f"{done.node.name}: {done.before.name} ({done.before.release}) -> {done.after.name} ({done.after.release})"
        f"{same}, lab healthy {done.seconds:.2f}s after the stop{left_out}",
        markup=False,
    )
    return 0
