"""``lab``: bring up, inspect, render and tear down a Redis HA lab."""

# ruff: noqa: E402  (the imports below come after the handler that covers them)
from __future__ import annotations

import signal
import threading


def _interrupted_while_starting(signum: int, _frame: object) -> None:
    """Ctrl-C or SIGTERM while the CLI loads its modules (a second or so on a busy machine): one line,
    no traceback; nothing has been touched yet, so the process ends at once. Not by raising: an exception
    raised inside the import machinery can be swallowed ("Exception ignored in"), and the command then ran
    to its end after saying it had not (hostile tour). main() hands the signals to lab.interrupts."""
    import os
    import sys

    sys.stderr.write(f"lab: interrupted by {signal.Signals(signum).name} while starting; nothing was changed\n")
    os._exit(128 + signum)


_STARTING = (
    {sig: signal.signal(sig, _interrupted_while_starting) for sig in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread()
    else {}
)

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lab import cliargs, hostscli, interrupts, servercli, servers, state
from lab.cliargs import MAX_CLIENTS, MAX_DRILL_S, MAX_SOAK_S, MAX_TIMEOUT_S, WORKLOADS
from lab.errors import Interrupted, LabError, UsageError
from lab.home import LOCKS, check_home, inside, validate_name
from lab.interrupts import SIGNALS
from lab.lock import env_timeout
from lab.repro import cli as repro_cli
from lab.spec import ACL_DIR, NODE_NAMES, LabSpec, Node

# Each command imports what it uses when it runs (the lifecycle, faults, lint, the drill, redis-py, Jinja2,
# the profile models, rich): `lab status`, `lab list` and `lab --help`, which drills and scripts poll, load
# none of them (tests/integration/test_status_imports.py; docs/benchmarks.md).
if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from lab.profile import Profile


class _Console:
    """A rich Console, made when something is first printed through it; :meth:`line` prints one line of plain
    text without it (``lab status --json``, ``lab list`` and one-line errors never load rich)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._made: Console | None = None

    @property
    def console(self) -> Console:
        if self._made is None:
            from rich.console import Console

            self._made = Console(**self._options)
        return self._made

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)

    def line(self, text: str) -> None:
        """``text`` as ``print(text, markup=False)`` prints it: printable ASCII (what names, paths and errors
        are) with its tabs expanded to 8-column stops as rich does, without rich; anything else through it."""
        if not all(c == "\t" or " " <= c <= "~" for c in text):
            self.print(text, markup=False)  # rich's widths of wide characters, the control codes it drops
            return
        (sys.stderr if self._options.get("stderr") else sys.stdout).write(text.expandtabs() + "\n")


out = _Console(highlight=False, soft_wrap=True, emoji=False)
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag on one line (usage stays in --help)."""

    def error(self, message: str) -> NoReturn:
        err.line(f"{self.prog}: error: {message} (see {self.prog} --help)")
        raise SystemExit(2)


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="default", help="lab name (default: default)")


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """Every subcommand with its arguments. ``argv``: the command line it will parse; then only the command it
    names gets its arguments (argparse's cost is per argument, and ``lab drill``'s help lists the scenarios: the
    drill's whole import), every other one just its line in ``lab --help``."""
    parser = Parser(prog="lab", description=__doc__)
    parser.add_argument("--home", type=cliargs.path, help="state directory (default: $LAB_HOME or ./.lab)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    named = None if argv is None else _command(argv)
    only = sub if argv is None else _Named(sub, named)
    _lifecycle_commands(only)
    _config_commands(only)
    _fault_commands(only)
    _drill_commands(only, scenarios=argv is None or named == "drill")
    servercli.add_commands(only, seconds=cliargs.seconds)
    hostscli.add_commands(only)
    repro_cli.add_commands(only)
    return parser


class _Named:
    """``add_subparsers()`` of a command line that names one command: every subcommand is listed (``lab --help``,
    a mistyped command), only the named one gets its arguments."""

    def __init__(self, sub: Any, command: str | None) -> None:
        self._sub, self._command = sub, command

    def add_parser(self, name: str, **options: Any) -> Any:
        parser = self._sub.add_parser(name, **options)
        return parser if name == self._command else _Dropped()


class _Dropped:
    """Takes an unnamed subcommand's arguments (and argument groups) and drops them."""

    def __getattr__(self, _name: str) -> Callable[..., _Dropped]:
        return lambda *_args, **_options: self


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is neither an option nor ``--home``'s value."""
    value = False
    for word in argv:
        if value:
            value = False
        elif word.startswith("-"):
            value = len(word) > 3 and "--home".startswith(word)  # --home DIR (or --hom DIR), not --home=DIR
        else:
            return word
    return None


def _lifecycle_commands(sub: Any) -> None:
    p = sub.add_parser("up", help="start a lab and wait until it is healthy")
    _name(p)
    p.add_argument("--backend", default="auto", help="auto|local|compose (default: auto)")
    p.add_argument("--profile", default="lab", help="profile name or YAML path (default: lab)")
    p.add_argument("--timeout", type=cliargs.seconds, help="seconds to wait for health")
    p.add_argument("--json", action="store_true", help="print the status document as JSON")
    p.add_argument("--tls", action="store_true", help="TLS only, with a CA of the lab's own (needs a TLS build)")
    p.add_argument(
        "--monitoring",
        action="store_true",
        help="also run redis_exporter per node, Prometheus and Alertmanager (adds them to a running lab)",
    )
    servercli.server_option(p, per_node=True)

    p = sub.add_parser("down", help="stop a lab and remove its state (idempotent)")
    _name(p)
    p.add_argument("--keep-data", action="store_true", help="keep node directories (data, logs, configs)")

    p = sub.add_parser("status", help="nodes, roles, replication and the Sentinels' view")
    _name(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("alerts", help="a lab with monitoring: its alerts pending or firing now, recent notifications")
    _name(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("logs", help="print a node's log")
    _name(p)
    p.add_argument("node", help="redis-1..3 or sentinel-1..3")
    p.add_argument("-n", "--lines", type=cliargs.count, help="only the last N lines (0: none; default: the whole log)")

    sub.add_parser("list", help="labs with state under the home directory")

    p = sub.add_parser("env", help='shell exports for clients of the lab (eval "$(lab env)")')
    _name(p)


def _config_commands(sub: Any) -> None:
    p = sub.add_parser("render", help="render every node's config without starting anything")
    p.add_argument("--profile", help="profile name or YAML path (default: lab; production with --inventory)")
    p.add_argument("--out", type=cliargs.path, required=True, help="output directory (DIR/<node>/*.conf)")
    p.add_argument("--name", default="default", help="lab name, for lab-profile addresses (default: default)")
    servercli.server_option(p, per_node=True)
    p.add_argument(
        "-i", "--inventory", type=Path, help="render for an Ansible inventory's hosts, as `lab deploy` deploys it"
    )
    p.add_argument("--vault-password-file", type=Path, help="ansible-vault's password for the inventory's vars")

    p = sub.add_parser("lint", help="check a deployment's configs together (exit 1 on any error)")
    p.add_argument("target", nargs="*", type=Path, help="directories of *.conf files, or files: read as one deployment")
    p.add_argument("--profile", help="render this profile and lint the result (default when no target: all)")
    form = p.add_mutually_exclusive_group()
    form.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        help="text (default: one line a finding), json (the document in docs/lint.md), sarif (SARIF 2.1.0)",
    )
    form.add_argument("--json", action="store_true", help="the findings as a JSON list (the older form)")
    p.add_argument(
        "--docs-url", metavar="URL", help="with --format sarif: the lint docs page rules link to (helpUri URL#rules)"
    )
    p.add_argument(
        "--deployments",
        action="store_true",
        help="lint the whole deployment of each file given (DIR of DIR/NODE/*.conf), each on its own (pre-commit)",
    )
    p.add_argument("--lab", action="store_true", help="the files are a lab: allow seeded Sentinel state")
    p.add_argument("--list-rules", action="store_true", help="print every rule: id, severity, why it exists")
    servercli.server_option(p, per_node=False)

    p = sub.add_parser("validate", help="start each rendered file on a throwaway server and compare CONFIG GET")
    p.add_argument("--profile", action="append", help="profile to validate (repeatable; default: all)")
    servercli.server_option(p, per_node=True)
    p.add_argument(
        "--name", help="compare a running lab's nodes instead (an attached deployment: every host, over the wire)"
    )


FAULT_COMMANDS = {
    "kill": "SIGKILL a node",
    "stop": "SIGTERM a node (Redis shuts down cleanly)",
    "restart": "stop and start a node through its script",
    "freeze": "SIGSTOP a node (it hangs, connections stay open)",
    "thaw": "SIGCONT a frozen node",
    "isolate": "drop all traffic between a node and the others (iptables, root)",
}


def _fault_commands(sub: Any) -> None:
    for kind, text in FAULT_COMMANDS.items():
        p = sub.add_parser(kind, help=text)
        _name(p)
        p.add_argument("node", type=cliargs.node, help="redis-1..3 or sentinel-1..3")
        if kind == "isolate":
            help_text = "isolate only from this node (repeatable; default: from every other node)"
            p.add_argument("--from", dest="peers", type=cliargs.node, action="append", metavar="NODE", help=help_text)
            one_way = "drop only what the node receives (in) or only what it sends (out): an asymmetric partition"
            p.add_argument("--one-way", choices=("in", "out"), help=one_way)

    p = sub.add_parser("degrade", help="make a node's links lossy, slow or narrow (iptables, the lab's delayer; root)")
    _name(p)
    p.add_argument("node", nargs="?", type=cliargs.node, help="the node whose links (all of them, clients included)")
    p.add_argument("--link", metavar="A:B", help="only the link from node A to B (a node, or clients)")
    p.add_argument("--links", choices=("replication", "sentinel", "clients"), help="only the node's links of a class")
    p.add_argument("--loss", metavar="PERCENT", help="drop this share of the packets at random (above 0, at most 100)")
    p.add_argument("--delay", metavar="MS", help="hold each packet this many milliseconds")
    p.add_argument("--jitter", metavar="MS", help="+- this many milliseconds around --delay (uniform)")
    rate = "at most this rate, shared by all the fault's links and directions: 8mbit, 512kbit, 1mbps (bytes, as tc)"
    p.add_argument("--bandwidth", metavar="RATE", help=rate)
    direction = "the node's packets it sends (out, as netem on its interface), receives (in), or both"
    p.add_argument("--direction", choices=("out", "in", "both"), default="out", help=direction + " (default out)")

    clock = "move a Sentinel's wall clock: a jump or a stall (TILT for 30 s if it steps back or over 2 s forward)"
    p = sub.add_parser("clock", help=clock)
    _name(p)
    p.add_argument("node", type=cliargs.node, help="sentinel-1..3")
    moved = p.add_mutually_exclusive_group(required=True)
    moved.add_argument(
        "--jump", type=cliargs.jump, metavar="S", help="seconds forward (negative: back), at most an hour"
    )
    moved.add_argument(
        "--stall", type=cliargs.stall, metavar="S", help="stand still this long, then catch up (0.1-600)"
    )

    p = sub.add_parser("flap", help="a partition that comes and goes: cut off for the first half of every period")
    _name(p)
    p.add_argument("node", type=cliargs.node, help="redis-1..3 or sentinel-1..3")
    p.add_argument("--period", type=cliargs.period, default=10.0, help="seconds, 0.2 to 3600 (default 10)")
    help_text = "flap only the link to this node (repeatable; default: to every other node)"
    p.add_argument("--from", dest="peers", type=cliargs.node, action="append", metavar="NODE", help=help_text)

    p = sub.add_parser("heal", help="undo every recorded fault (or one node's) and wait until healthy")
    _name(p)
    p.add_argument("node", nargs="?", type=cliargs.node, help="only this node's faults")
    p.add_argument("--timeout", type=cliargs.seconds, help=f"seconds, at most {MAX_TIMEOUT_S:g}")

    p = sub.add_parser("failover", help="manual failover through Sentinel (no acknowledged write lost)")
    _name(p)
    how = p.add_mutually_exclusive_group()
    unsafe = "bare SENTINEL FAILOVER (writes on the old master may be lost)"
    how.add_argument("--unsafe", action="store_true", help=unsafe)
    coordinated = "Valkey 9's SENTINEL FAILOVER ... COORDINATED (the old master hands over with FAILOVER; Valkey 9.0+)"
    how.add_argument("--coordinated", action="store_true", help=coordinated)


def _drill_commands(sub: Any, *, scenarios: bool = True) -> None:
    p = sub.add_parser("drill", help="run a failover drill with clients writing, then report what they saw")
    if scenarios:
        _drill_arguments(p)

    p = sub.add_parser("clients", help="the client matrix: each client library through each failover scenario")
    _name(p)
    p.add_argument("--clients", help="comma list of client libraries (default: every client that can run here)")
    p.add_argument("--scenarios", help="comma list (default: the nine node faults; link faults by name)")
    p.add_argument("--settings", default="defaults,recommended", help="defaults, recommended or both (default)")
    p.add_argument(
        "--repeat",
        type=cliargs.repeat,
        default=1,
        metavar="N",
        help="run every cell N times and give its odds (k of N)",
    )
    p.add_argument(
        "--parallel",
        type=cliargs.parallel,
        default=1,
        metavar="N",
        help="run cells on N labs at once: this one and helpers NAME-2..NAME-N, started and removed for the run "
        "(default 1; more than the cores skews the timings)",
    )
    p.add_argument("--report", type=Path, help="output directory (default: $LAB_HOME/reports/NAME/clients-TIME)")
    p.add_argument("--json", action="store_true", help="print matrix.json")
    p.add_argument("--profile", default="lab", help="profile when the lab must be started first (default: lab)")
    p.add_argument("--backend", default="auto", help="backend when the lab must be started first")

    p = sub.add_parser(
        "sweep",
        help="one link fault on the master over a grid of a Sentinel setting by the fault's strength: false "
        "failovers, time to fail over, unavailability, writes lost",
    )
    _name(p)
    p.add_argument(
        "--set",
        dest="setting",
        required=True,
        metavar="NAME=V1,V2,...",
        help="the Sentinel setting and its values in ms: down-after-milliseconds or failover-timeout",
    )
    p.add_argument("--loss", metavar="P[,P...]", help="percent of the master's packets lost, both ways")
    p.add_argument("--delay", metavar="MS[,MS...]", help="milliseconds added to what the master sends")
    p.add_argument("--span", type=cliargs.span, default=8.0, help="seconds each cell's links stay degraded (default 8)")
    p.add_argument(
        "--repeat", type=cliargs.repeat, default=1, metavar="N", help="runs per cell, for its odds (default 1)"
    )
    p.add_argument("--report", type=Path, help="output directory (default: $LAB_HOME/reports/NAME/sweep-TIME)")
    p.add_argument("--json", action="store_true", help="print sweep.json")
    p.add_argument("--profile", default="lab", help="profile when the lab must be started first (default: lab)")
    p.add_argument("--backend", default="auto", help="backend when the lab must be started first")


def _drill_arguments(p: argparse.ArgumentParser) -> None:
    from lab.drill.scenarios import SCENARIOS

    scenarios = "; ".join(f"{s.name}: {s.about}" for s in SCENARIOS.values()).replace("%", "%%")  # (argparse)
    soak = "soak: faults from a seeded schedule for --duration (--faults, --interval, --seed, --plan)"
    p.add_argument("scenario", metavar="SCENARIO", help=f"one of: {scenarios}; {soak}")
    _name(p)
    p.add_argument(
        "--duration",
        type=cliargs.duration,
        help=f"seconds of workload: a drill at most {MAX_DRILL_S:g} (default 10), a soak at most "
        f"{MAX_SOAK_S:g} (default 600)",
    )
    p.add_argument(
        "--clients", type=cliargs.clients, default=4, help=f"concurrent client workers, 1 to {MAX_CLIENTS} (default 4)"
    )
    p.add_argument(
        "--workload",
        choices=WORKLOADS,
        help="unique keys (a drill's default), INCR counters (a soak's default), registers checked for "
        "linearizability, or lists checked as Elle does (a soak: counter or register)",
    )
    p.add_argument(
        "--repeat",
        type=cliargs.repeat,
        default=1,
        metavar="N",
        help="run the drill N times and give each finding's odds",
    )
    p.add_argument(
        "--export",
        choices=("jepsen",),
        help="also write the history as Jepsen's checkers read it: history.edn and history.jepsen.json",
    )
    p.add_argument("--faults", metavar="F[,F...]", help="soak: the faults to draw from (default: five that heal)")
    p.add_argument("--interval", metavar="LO-HI", help="soak: seconds of quiet before each fault (default 20-40)")
    p.add_argument("--seed", metavar="N", help="soak: the schedule's seed; the same seed replays it (default: random)")
    p.add_argument("--plan", action="store_true", help="soak: print the schedule and exit (no lab is touched)")
    rate = "operations/s of all workers together, 1/60 to 1e6 (default: as fast as they go)"
    p.add_argument("--rate", type=cliargs.rate, help=rate)
    p.add_argument("--report", type=Path, help="report directory (default: $LAB_HOME/reports/NAME/SCENARIO-TIME)")
    p.add_argument("--json", action="store_true", help="print report.json")
    p.add_argument("--fail-on", action="append", default=[], metavar="COND", help="e.g. 'lost>0' (exit 1 if true)")
    p.add_argument(
        "--junit", type=Path, metavar="FILE", help="write the gates as JUnit XML (one test case per --fail-on)"
    )
    p.add_argument("--profile", default="lab", help="profile when the lab must be started first (default: lab)")
    p.add_argument("--backend", default="auto", help="backend when the lab must be started first")
    p.add_argument(
        "--from", dest="upgrade_from", metavar="BUILD", help="rolling-upgrade: the build every node runs first"
    )
    p.add_argument("--to", dest="upgrade_to", metavar="BUILD[,BUILD]", help="rolling-upgrade: the builds to move to")


def _status_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table

    builds = {row["server"] for row in doc["nodes"] + doc["sentinels"]}
    mixed = len(builds) > 1  # one build: named in the title; several: a column
    built = "" if mixed else f", {builds.pop()}"
    secured = "".join((", TLS only" if doc["tls"] else "", ", ACL users" if doc["acl"] else ""))
    table = Table(title=f"lab {doc['name']} ({doc['backend']}, profile {doc['profile']}{built}{secured})")
    for col in ("node", "role", "address", "state", *(["server"] if mixed else []), "offset", "lag (bytes)"):
        table.add_column(col)
    for n in doc["nodes"]:
        lag = "" if n["lag_bytes"] is None else str(n["lag_bytes"])
        offset = "" if n["offset"] is None else str(n["offset"])
        server = [n["server"]] if mixed else []
        table.add_row(n["name"], n["role"], f"{n['host']}:{n['port']}", n["state"], *server, offset, lag)
    for s in doc["sentinels"]:
        server = [s["server"]] if mixed else []
        table.add_row(s["name"], "sentinel", f"{s['host']}:{s['port']}", s["state"], *server, "", "")
    return table


def _print_status(doc: dict[str, Any]) -> None:
    out.print(_status_table(doc))
    m = doc["master"]
    where = f"{m['name']} at {m['host']}:{m['port']}" if m["host"] else "no agreed master"
    out.print(
        f"master '{doc['master_name']}': {where}; quorum {doc['quorum']} "
        f"{'OK' if doc['quorum_ok'] else 'NOT reachable'}"
    )
    for fault in doc["faults"]:
        gone = fault.get("delayer", {}).get("running") is False
        note = " (its delayer is gone: the packets pass; `lab heal` removes the rules)" if gone else ""
        if fault["kind"] == "delayer":
            note = " (left by a killed command: it ends by itself within 10s; `lab heal` stops it now)"
        out.print(f"fault: {fault['key']}{note}", markup=False)
    if mon := doc.get("monitoring"):
        running = sum(how == "running" for how in mon["components"].values())
        out.print(
            f"monitoring: Prometheus {mon['prometheus']}  Alertmanager {mon['alertmanager']}  "
            f"({running} of {len(mon['components'])} processes running)",
            markup=False,
        )
    for problem in doc["problems"]:
        out.print(f"[yellow]problem:[/] {problem}")


def _secret_ref(path: Path) -> str:
    """A shell word that reads a secret file at use time (the secret itself is never printed)."""
    return f'"$(cat -- {shlex.quote(str(path))})"'


def _connect_hint(spec: LabSpec, home_flag: str) -> None:
    m = spec.initial_master
    name = shlex.quote(spec.name)
    out.print("\nConnect:")
    ask = f" SENTINEL get-master-addr-by-name {spec.master_name}"
    for node, rest in ((m, ""), (spec.sentinels[0], ask)):
        user, secret = spec.secret_file(node.kind, "admin" if node.kind == "redis" else "client")
        login = f" --user {user}" if spec.acl else ""
        if spec.tls:
            files = spec.tls_files()
            paths = (shlex.quote(str(p)) for p in (files.ca, files.client_cert, files.client_key))
            login += " --tls --cacert {} --cert {} --key {}".format(*paths)
        auth = _secret_ref(spec.base_dir / secret)
        cli = _runnable(_cli_of(spec, node), "redis-cli")
        out.print(f"  REDISCLI_AUTH={auth} {cli}{login} -h {node.host} -p {node.port}{rest}", markup=False)
    lab = _runnable_self()
    out.print(
        f'  eval "$({lab}{home_flag} env --name {name})"   # REDIS_*, SENTINEL_* for redis-admin, check-redis-health',
        markup=False,
    )
    out.print(f"Next: {lab}{home_flag} status --name {name}   |   {lab}{home_flag} down --name {name}", markup=False)


def _cli_of(spec: LabSpec, node: Node) -> Path | None:
    """The redis-cli of the build the node runs (never the venv's 6.2 copy without TLS: lab.servers)."""
    try:
        return (spec.server(node) or servers.system()).cli_bin
    except LabError:
        return None


def _runnable(path: Path | None, name: str) -> str:
    """How to call ``path`` in a printed command: its bare name when that is what the shell finds, else
    the quoted path (a printed command must work as printed, in or out of an activated venv)."""
    if path is None:
        return name
    found = shutil.which(name)
    if found and Path(found).resolve() == path.resolve():
        return name
    return shlex.quote(str(path))


def _runnable_self() -> str:
    """This `lab`, as a user can call it again: `lab` when that is what PATH finds, else its path, else
    ``python -m lab.cli`` (run as a module)."""
    me = Path(sys.argv[0])
    if me.name == "lab" and me.exists():
        return _runnable(me.absolute(), "lab")
    return f"{shlex.quote(sys.executable)} -m lab.cli"


def _home_flag(args: argparse.Namespace) -> str:
    return f" --home {shlex.quote(str(args.home))}" if args.home else ""


def _report_overrides(command: str, profile: Profile) -> None:
    """Say on stderr which environment variables changed (or did not change) what was rendered."""
    if profile.applied:
        err.print(f"lab {command}: environment overrides applied: {', '.join(profile.applied)}", markup=False)
    if profile.ignored:
        err.print(f"lab {command}: environment ignored: {', '.join(profile.ignored)}", markup=False)


def _timeout(args: argparse.Namespace) -> float:
    """--timeout, else the lifecycle's default wait for health."""
    from lab import control

    return control.HEALTHY_TIMEOUT if args.timeout is None else float(args.timeout)


def cmd_up(args: argparse.Namespace) -> int:
    from lab import control

    home = args.home or state.default_home()
    if state.exists(home, args.name):
        what = f"lab {args.name} as it was: a repair stops and deletes nothing (nodes it restarted stay up)"
        interrupts.explain("up", lambda: ("left", what))
    else:
        interrupts.new_lab(home, args.name)
    result = control.up(
        args.name,
        args.profile,
        args.backend,
        args.home,
        timeout=_timeout(args),
        server=args.server,
        tls=args.tls,
        monitoring=args.monitoring,
    )
    doc, code = control.status(args.name, args.home)
    if args.json:
        print(json.dumps(doc, indent=2))
        return code
    if result.profile is not None:
        _report_overrides("up", result.profile)
    if result.already_running:
        out.print(f"lab {args.name} is already running ({result.spec.backend}); nothing to do.")
    elif result.profile is None:
        out.print(f"lab {args.name}: started {', '.join(result.restarted)}; healthy after {result.seconds:.2f}s")
    else:
        out.print(f"lab {args.name} is healthy after {result.seconds:.2f}s")
    _print_status(doc)
    _connect_hint(result.spec, _home_flag(args))
    return code


def cmd_down(args: argparse.Namespace) -> int:
    from lab import control

    result = control.down(args.name, args.home, keep_data=args.keep_data)
    if result is None:
        out.print(f"lab {args.name} is not running; nothing to do.")
    else:
        kept = f" (data kept in {result.spec.base_dir})" if args.keep_data else control.left_note(result.left)
        if result.spec.remotes:
            hosts = sorted({r.host for r in result.spec.remotes.values()})
            out.print(f"lab {args.name} is detached: its hosts ({', '.join(hosts)}) keep running.", markup=False)
        else:
            out.print(f"lab {args.name} is down{kept}.", markup=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from lab.status import status

    doc, code = status(args.name, args.home)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_status(doc)
    return code


def cmd_alerts(args: argparse.Namespace) -> int:
    from rich.table import Table

    from lab.monitoring import alerts, api

    spec = state.load(args.home or state.default_home(), args.name)
    api.monitoring_of(spec)  # a lab without monitoring: one line
    now = [
        {"alert": a["labels"].get("alertname", ""), "state": a["state"], "since": a.get("activeAt", ""),
         "instance": a["labels"].get("instance", ""), "severity": a["labels"].get("severity", ""),
         "source": a["labels"].get("source", "redis-ha-lab")}
        for a in alerts.active(spec)
    ]  # fmt: skip
    notes = api.notifications(spec)[-10:]
    if args.json:
        print(json.dumps({"active": now, "notifications": notes}, indent=2))
        return 0
    table = Table(title=f"alerts of lab {spec.name} ({len(now)} pending or firing)")
    for column in ("alert", "state", "since", "instance", "severity", "source"):
        table.add_column(column)
    for a in now:
        table.add_row(*(str(a[k]) for k in ("alert", "state", "since", "instance", "severity", "source")))
    out.print(table)
    for note in notes:
        names = ", ".join(f"{a['labels'].get('alertname')} {a['status']}" for a in note["alerts"])
        when = time.strftime("%H:%M:%S", time.localtime(note["received"]))
        out.print(f"notified {when} to {note['receiver']}: {names}", markup=False)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from lab.profile import load_profile
    from lab.render import RULES_FILE, left_out, render_profile

    home = args.home or state.default_home()
    if args.out.resolve() == home.resolve() or inside(args.out, home / LOCKS):
        raise UsageError(f"--out {args.out} is the lab home or its locks: render somewhere else")
    if args.inventory is not None:
        return _render_inventory(args, home)
    profile = load_profile(args.profile or "lab")
    _report_overrides("render", profile)
    builds = servers.assign(args.server, NODE_NAMES) if args.server else None
    spec, written = render_profile(profile, args.out.absolute(), args.name, builds)
    for path in written:
        out.print(str(path), markup=False)
    target = f", for {', '.join(sorted({b.name for b in builds.values()}))}" if builds else ""
    out.print(f"rendered {len(written)} files ({profile.name} profile{target}, 0600: they hold passwords)")
    out.print(f"alert rules for Prometheus: {args.out.absolute() / RULES_FILE} (docs/monitoring.md)", markup=False)
    generated = [key for key in spec.acl_passwords if key not in profile.acl_passwords]
    if generated:
        err.print(
            f"lab render: generated the passwords of {len(generated)} ACL users, in {args.out.absolute() / ACL_DIR}/ "
            "(0600; REDIS_ACL_<USER>_PASSWORD[_FILE] and SENTINEL_ACL_<USER>_PASSWORD[_FILE] choose them)",
            markup=False,
        )
    for build, names in left_out(spec, profile).items():
        err.print(f"lab render: left out for {build}, which refuses them: {', '.join(names)}", markup=False)
    return 0


def _render_inventory(args: argparse.Namespace, home: Path) -> int:
    """`lab render --inventory`: the files `lab deploy` puts on the inventory's hosts, byte for byte."""
    from lab.hosts.deploy import rendered_for
    from lab.render import render_lab

    if args.server:
        raise UsageError("--server and --inventory: a deployment runs the hosts' own redis-server")
    spec, profile = rendered_for(args.inventory, args.profile or "production", args.vault_password_file)
    for path in render_lab(spec, profile, args.out.absolute()):
        out.print(str(path), markup=False)
    out.print(f"rendered {len(spec.nodes)} files ({profile.name} profile, for the hosts of {args.inventory}; 0600)")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from lab.backends import get_backend

    spec = state.load(args.home or state.default_home(), args.name)
    node = spec.node(args.node)
    path = get_backend(spec.backend).log_path(spec, node)
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise LabError(f"cannot read {node.name} log {path}: {exc.strerror}") from None
    if args.lines is not None:
        lines = lines[len(lines) - min(args.lines, len(lines)) :]
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    """The variables python_utils, check-redis-health and the scripts read; secrets by reference."""
    from lab import nodes
    from lab.profile import ENV_MARKER, env_marker

    spec = state.load(args.home or state.default_home(), args.name)
    master = nodes.current_master(spec, timeout=5)
    plain = {
        "REDIS_HOST": master.host,
        "REDIS_PORT": str(master.port),
        "SENTINEL_HOSTS": ",".join(n.address for n in spec.sentinels),
        "SENTINEL_MASTER_NAME": spec.master_name,
        **{f"REDIS_{role.upper()}_DB_INDEX": str(db) for role, db in spec.databases.items()},
    }
    (app, app_secret), (client, client_secret) = (
        spec.secret_file("redis", "app"),
        spec.secret_file("sentinel", "client"),
    )
    if spec.acl:  # applications' users; the lab's own tools log in as admin
        plain |= {"REDIS_USERNAME": app, "SENTINEL_USERNAME": client}
    if spec.tls:  # the lab's CA and client certificate (check-redis-health and redis-admin read them)
        files = spec.tls_files()
        plain |= {"REDIS_TLS_CA_CERT": str(files.ca), "REDIS_TLS_CERT": str(files.client_cert)}
        plain |= {"REDIS_TLS_KEY": str(files.client_key)}
    secrets = {"REDIS_PASSWORD": app_secret, "SENTINEL_PASSWORD": client_secret}
    app_pass, client_pass = spec.auth("redis", "app")["password"], spec.auth("sentinel", "client")["password"]
    values = {**plain, "REDIS_PASSWORD": app_pass or "", "SENTINEL_PASSWORD": client_pass or ""}
    lines = [f"export {var}={shlex.quote(value)}" for var, value in plain.items()]
    lines += [f"export {var}={_secret_ref(spec.base_dir / file)}" for var, file in secrets.items()]
    # Lets later `lab render`/`lab up` tell these variables (describing this lab) from the user's own.
    marker = env_marker(spec.name, values, spec.base_dir / state.ENV_KEY)
    lines.append(f"export {ENV_MARKER}={shlex.quote(marker)}")
    print("\n".join(lines))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    home = args.home or state.default_home()
    names = state.list_labs(home)
    if not names:
        out.line(f"no labs under {home} (`lab up` starts one)")
    for name in names:
        try:
            spec = state.load(home, name, runnable=False)
        except UsageError as exc:
            out.line(f"{name}\t(not a lab `lab` can act on: {exc})")
            continue
        except LabError as exc:
            out.line(f"{name}\t(unreadable: {exc}; `lab down --name {name}` removes it)")
            continue
        origin = spec.copy_of or spec.moved_from
        note = f"\t(copied or moved from {origin}: `lab down` removes it)" if origin else ""
        if not note and (helper := _helper_note(home, name)):
            note = f"\t({helper})"
        out.line(f"{name}\t{spec.backend}\t{spec.profile}\t{spec.base_dir}{note}")
    return 0


def _helper_note(home: Path, name: str) -> str:
    """What `lab list` says of a helper lab of `lab clients --parallel`."""
    owner = state.helper_owner(home, name)
    if owner is None:
        return ""
    if not owner.running:
        killed = f"left by a killed `lab clients --parallel` (pid {owner.pid})"
        return f"a helper of lab {owner.lab} {killed}: the next one removes it, or `lab down`"
    return f"a helper of lab {owner.lab} for the `lab clients --parallel` under way"


def cmd_lint(args: argparse.Namespace) -> int:
    from lab import lint
    from lab.lint import formats
    from lab.profile import available_profiles

    form = "json" if args.json else args.format or "text"
    if args.docs_url and form != "sarif":
        raise UsageError("--docs-url goes with --format sarif")
    if args.list_rules:
        table = lint.rules_table()
        if form == "sarif":
            print(json.dumps(formats.as_sarif([], args.docs_url), indent=2))
        elif form == "json":
            print(json.dumps(table, indent=2))
        else:
            for row in table:
                out.print(f"{row['rule']:<10} {row['severity']:<8} {row['why']}", markup=False)
        return 0
    if args.target and args.profile:
        raise UsageError("give a directory or --profile, not both")
    server = servers.resolve(args.server) if args.server else None
    if args.target:
        groups = [list(dict.fromkeys(p for target in args.target for p in lint.collect(target)))]
        if args.deployments:  # each file's deployment, named relative to where it was given
            roots = {lint.deployment_of(t): t for t in args.target}
            groups = [
                lint.collect(Path(os.path.relpath(root)) if not t.is_absolute() else root) for root, t in roots.items()
            ]
        files, findings = [], []
        for paths in groups:
            files += [str(p) for p in paths]
            findings += lint.lint_paths(paths, lab=args.lab, server=server)
    else:
        files, findings = [], []
        for name in [args.profile] if args.profile else available_profiles():
            linted, found = lint.lint_profile_files(name, server)
            files, findings = files + linted, findings + found
    if args.json:
        print(json.dumps(lint.as_json(findings), indent=2))
    elif form == "json":
        print(json.dumps(formats.as_document(findings, files), indent=2))
    elif form == "sarif":
        # A profile's files exist only while linted: name them PROFILE/NODE/FILE, as `lab render --out PROFILE`.
        uri = formats.artifact_uri if args.target else (lambda file: formats.artifact_uri(file.split(":", 1)[1]))
        print(json.dumps(formats.as_sarif(findings, args.docs_url, uri), indent=2))
    else:
        for finding in findings:
            out.print(str(finding), markup=False)
        errors = sum(f.severity == "error" for f in findings)
        out.print(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return formats.exit_code(findings)


def cmd_validate(args: argparse.Namespace) -> int:
    from lab import validate
    from lab.profile import available_profiles

    if args.name is not None:
        if args.profile or args.server:
            raise UsageError("--name compares a running lab as it was rendered: no --profile or --server with it")
        spec = state.load(args.home or state.default_home(), args.name)
        found, compared = validate.mismatches(spec)
        for line in found:
            out.print(f"{spec.name}: {line}", markup=False)
        verdict = "OK" if not found else f"{len(found)} mismatch(es)"
        out.print(f"{spec.name}: {verdict} ({compared} directives compared on {len(spec.nodes)} nodes)")
        return 1 if found else 0
    failed = 0
    for name in args.profile or available_profiles():
        mismatches = validate.validate_profile(name, args.server)
        failed += len(mismatches)
        for line in mismatches:
            out.print(f"{name}: {line}", markup=False)
        out.print(f"{name}: {'OK' if not mismatches else f'{len(mismatches)} mismatch(es)'}")
    return 1 if failed else 0


def cmd_fault(args: argparse.Namespace) -> int:
    from lab import faults, nodes

    if args.node in (getattr(args, "peers", None) or ()):
        raise UsageError(f"--from {args.node}: a node cannot be isolated from itself")
    spec = state.load(args.home or state.default_home(), args.name)
    node = spec.node(args.node)
    if args.command == "restart":
        nodes.restart(spec, node)
        out.print(f"{node.name} restarted")
    elif args.command == "thaw":
        frozen = [f for f in faults.recorded(spec) if f.kind == "freeze" and f.node == node.name]
        for fault in frozen or [faults.Fault("freeze", node.name)]:
            faults.revert(spec, fault)
        out.print(f"{node.name} thawed")
    else:
        one_way = (("one_way", args.one_way),) if getattr(args, "one_way", None) else ()
        fault = faults.inject(spec, args.command, node.name, getattr(args, "peers", None), one_way)
        peers = f" from {', '.join(fault.peers)}" if fault.peers else ""
        way = f", only what it {'receives' if args.one_way == 'in' else 'sends'}" if one_way else ""
        out.print(f"{args.command}: {node.name}{peers}{way} (recorded; `lab heal --name {spec.name}` undoes it)")
    return 0


def cmd_degrade(args: argparse.Namespace) -> int:
    from lab import faults, links

    def given(value: str | None, parse: Callable[[str], float]) -> float:
        return parse(value) if value is not None else 0.0

    degradation = links.Degradation(
        loss=given(args.loss, links.percent),
        delay_ms=given(args.delay, lambda text: links.milliseconds("--delay", text)),
        jitter_ms=given(args.jitter, lambda text: links.milliseconds("--jitter", text)),
        rate=given(args.bandwidth, links.rate),
    )
    if not (degradation.loss or degradation.holds):
        raise UsageError("give at least one of --loss, --delay, --jitter, --bandwidth (above 0)")
    if args.link and (args.node or args.links):
        raise UsageError("--link A:B names the link: leave out NODE and --links")
    if not args.link and not args.node:
        raise UsageError("name a node (its links), or one link with --link A:B")
    spec = state.load(args.home or state.default_home(), args.name)
    if args.link:
        node, peer = links.link(spec, args.link)
        peers = [peer]
    else:
        node = spec.node(args.node)
        peers = links.peers(spec, node, args.links)
    settings = (*degradation.settings(), ("direction", args.direction))
    faults.inject(spec, "degrade", node.name, peers, settings)
    way = {"out": "what it sends", "in": "what it receives", "both": "both ways"}[args.direction]
    out.print(
        f"degrade: {node.name}'s links to {', '.join(peers)}: {degradation.describe()}, {way} "
        f"(recorded; `lab heal --name {spec.name}` undoes it)",
        markup=False,
    )
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from lab import faults

    spec = state.load(args.home or state.default_home(), args.name)
    node = spec.node(args.node)
    moved = ("jump", f"{args.jump:g}") if args.jump is not None else ("stall", f"{args.stall:g}")
    faults.inject(spec, "clock", node.name, settings=(moved,))
    what = f"jumped {args.jump:+g}s" if args.jump is not None else f"stands still for {args.stall:g}s, then catches up"
    out.print(
        f"clock: {node.name}'s wall clock {what} (recorded; `lab heal --name {spec.name}` restarts it with the "
        "real clock)",
        markup=False,
    )
    return 0


def cmd_flap(args: argparse.Namespace) -> int:
    from lab import faults

    spec = state.load(args.home or state.default_home(), args.name)
    node = spec.node(args.node)
    if node.name in (args.peers or ()):
        raise UsageError(f"--from {args.node}: a node has no link to itself")
    fault = faults.inject(spec, "flap", node.name, args.peers, (("period", f"{args.period:g}"),))
    out.print(
        f"flap: {node.name} cut off from {', '.join(fault.peers)} for the first {args.period / 2:g}s of every "
        f"{args.period:g}s (recorded; `lab heal --name {spec.name}` ends it)",
        markup=False,
    )
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from lab import control, faults

    spec = state.load(args.home or state.default_home(), args.name)
    before = faults.recorded(spec)

    def look() -> list[interrupts.Outcome]:  # what the heal had reverted when it was interrupted, what is left
        now = faults.recorded(spec)
        seen: list[interrupts.Outcome] = [("undone", f"reverted {f.key}") for f in before if f not in now]
        return seen + [("left", f"{f.key} (recorded: `lab heal --name {spec.name}` reverts it)") for f in now]

    interrupts.explain("heal", look)
    if args.node:
        spec.node(args.node)
        undone = [f for f in faults.recorded(spec) if f.node == args.node]
        for fault in undone:
            faults.revert(spec, fault)
    else:
        undone = faults.heal(spec)
    for fault in undone:
        out.print(f"undone: {fault.key}", markup=False)
    control.wait_healthy(spec, _timeout(args))
    out.print(f"lab {spec.name} is healthy")
    return 0


def cmd_failover(args: argparse.Namespace) -> int:
    from lab.failover import failover

    spec = state.load(args.home or state.default_home(), args.name)
    started = time.perf_counter()
    old, new = failover(spec, safe=not args.unsafe, coordinated=args.coordinated)
    out.print(f"failover: {old.name} -> {new.name} ({new.address}) in {time.perf_counter() - started:.2f}s")
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    if args.scenario != "soak" and args.duration is not None and args.duration > MAX_DRILL_S:
        raise UsageError(
            f"--duration: a drill runs at most {MAX_DRILL_S:g} s (it holds its history in memory); "
            "`lab drill soak` runs for hours"
        )
    from lab.drill.cli import run

    return run(args, out.console, err.console)


def cmd_clients(args: argparse.Namespace) -> int:
    from lab.drill.cli import run_clients

    return run_clients(args, out.console, err.console)


def cmd_sweep(args: argparse.Namespace) -> int:
    from lab.drill.cli import run_sweep_command

    return run_sweep_command(args, out.console, err.console)


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "alerts": cmd_alerts,
    "render": cmd_render,
    "logs": cmd_logs,
    "list": cmd_list,
    "env": cmd_env,
    "heal": cmd_heal,
    "lint": cmd_lint,
    "validate": cmd_validate,
    "failover": cmd_failover,
    "drill": cmd_drill,
    "clients": cmd_clients,
    "sweep": cmd_sweep,
    "servers": lambda args: servercli.cmd_servers(args, out.console),
    "upgrade": lambda args: servercli.cmd_upgrade(args, out.console),
    "hosts": lambda args: hostscli.cmd_hosts(args, out.console),
    "deploy": lambda args: hostscli.cmd_deploy(args, out.console),
    "attach": lambda args: hostscli.cmd_attach(args, out.console),
    "repro": lambda args: repro_cli.cmd_repro(args, out.console, err.console),
    **dict.fromkeys(FAULT_COMMANDS, cmd_fault),
    "degrade": cmd_degrade,
    "flap": cmd_flap,
    "clock": cmd_clock,
}


def _exit_now(code: int) -> NoReturn:
    """End the process once an interrupt has been undone and reported. Python would first join the
    worker threads of an observation the signal cut short, and one waiting on a node that answers
    nobody (a frozen Sentinel) kept an interrupted `lab up` alive for a minute after its message."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _outside_the_command(signum: int, _frame: object) -> None:
    """SIGINT/SIGTERM while main() is not inside a command (parsing, the gate's checks, printing a result):
    one line and exit 130/143 at once. Inside a command, lab.interrupts undoes what it did instead."""
    when = "after it finished" if _PHASE == "done" else "before it changed anything"
    sys.stderr.write(f"lab: interrupted by {signal.Signals(signum).name} {when}\n")
    os._exit(128 + signum)


_PHASE = "starting"


def main(argv: Sequence[str] | None = None) -> int:
    global _PHASE
    _PHASE = "starting"
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _outside_the_command) for sig in SIGNALS} if main_thread else {}
    if argv is None:  # the program: end it here, handlers in place. Python's shutdown puts the default handlers
        _exit_now(_main(argv))  # back first, and a signal then killed it without a word (hostile tour)
    try:
        return _main(argv)
    finally:  # called from Python (a test): hand the signals back
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: Sequence[str] | None) -> int:
    global _PHASE
    interrupts.die_with_parent()
    args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    try:
        # The gate, before anything is touched: the home, the lab name, the environment's knobs.
        if args.home is not None:
            args.home = check_home(args.home)
        if getattr(args, "name", None) is not None:
            validate_name(args.name)
        env_timeout()
        try:
            with interrupts.command():  # SIGINT, SIGTERM: undo what the command injected, say what (exit 130, 143)
                return COMMANDS[args.command](args)
        finally:
            _PHASE = "done"
    except Interrupted as exc:
        err.line(f"lab {args.command}: {exc}")
        _exit_now(exc.exit_code)
    except LabError as exc:
        err.line(f"lab {args.command}: {exc}")
        return exc.exit_code
    except Exception as exc:
        if not _redis_error(exc):
            raise
        # A node answered what the command did not expect: one line, not a traceback.
        first = (str(exc).splitlines() or [""])[0]
        err.line(f"lab {args.command}: a node answered {type(exc).__name__}: {first}")
        return 1
    except KeyboardInterrupt:  # before the command began: nothing was touched
        err.line(f"lab {args.command}: interrupted by SIGINT before it changed anything")
        return 130


def _redis_error(exc: Exception) -> bool:
    """A redis-py error; only a command that imported redis-py can have raised one."""
    if "redis" not in sys.modules:
        return False
    import redis

    return isinstance(exc, redis.RedisError)


for _sig, _handler in _STARTING.items():  # loaded: main() handles the signals from here on
    signal.signal(_sig, _handler)

if __name__ == "__main__":
    raise SystemExit(main())
