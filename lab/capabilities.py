"""Which directives each server build accepts: one table, not ifs in the templates.

Every entry is a directive some build refuses at start ("Bad directive or wrong number of
arguments"), with the first version of each flavour that accepts it. Measured by starting each
build (Redis 6.2.14, 7.0.15, Valkey 8.1.8) on the rendered files. A render for a build leaves out
what it would refuse; lint and validate with ``--server`` report it.
"""

from __future__ import annotations

from pathlib import Path

from lab.confparse import ALIASES, parse_text
from lab.servers import Server

#: directive -> {flavour: (major, minor) of the first version that accepts it}
SINCE: dict[str, dict[str, tuple[int, int]]] = {
    "bind-source-addr": {"redis": (7, 0), "valkey": (7, 2)},
    "enable-debug-command": {"redis": (7, 0), "valkey": (7, 2)},
    "enable-protected-configs": {"redis": (7, 0), "valkey": (7, 2)},
    "enable-module-command": {"redis": (7, 0), "valkey": (7, 2)},
    "appenddirname": {"redis": (7, 0), "valkey": (7, 2)},
    "latency-tracking": {"redis": (7, 0), "valkey": (7, 2)},
    "latency-tracking-info-percentiles": {"redis": (7, 0), "valkey": (7, 2)},
    "shutdown-timeout": {"redis": (7, 0), "valkey": (7, 2)},
    "shutdown-on-sigterm": {"redis": (7, 0), "valkey": (7, 2)},
    "shutdown-on-sigint": {"redis": (7, 0), "valkey": (7, 2)},
    "repl-diskless-sync-max-replicas": {"redis": (7, 0), "valkey": (7, 2)},
    "sentinel master-reboot-down-after-period": {"redis": (7, 0), "valkey": (7, 2)},
    "sentinel resolve-hostnames": {"redis": (6, 2), "valkey": (7, 2)},
    "sentinel announce-hostnames": {"redis": (6, 2), "valkey": (7, 2)},
}


#: What a build without the directive gets instead, so the render keeps its meaning:
#: (directive, value) -> replacement line. Redis 6.2 always allows DEBUG; renaming it away is how
#: its operators turned it off.
INSTEAD: dict[tuple[str, str], str] = {("enable-debug-command", "no"): 'rename-command DEBUG ""'}


def accepts(server: Server, directive: str) -> bool:
    since = SINCE.get(directive, {}).get(server.flavour)
    return since is None or server.at_least(*since)


def refused(text: str, server: Server) -> list[tuple[int, str, str]]:
    """(line, directive, its value) of every directive in ``text`` the build would refuse."""
    conf = parse_text(text, Path("<rendered>"))
    return [(d.line, d.name, " ".join(d.args).lower()) for d in conf.directives if not accepts(server, d.name)]


def adapt(text: str, server: Server) -> tuple[str, list[str]]:
    """``text`` for the build: a line it would refuse is left out (or replaced by what keeps its
    meaning, :data:`INSTEAD`); returns the text and the directives left out."""
    drop = {line: (name, value) for line, name, value in refused(text, server)}
    kept = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if number not in drop:
            kept.append(_redis_spelling(line) if server.flavour == "redis" else line)
        elif instead := INSTEAD.get(drop[number]):
            kept.append(instead + "\n")
    return "".join(kept), sorted({name for name, _ in drop.values()})


def _redis_spelling(line: str) -> str:
    """A line Valkey's CONFIG REWRITE wrote with its own name (primaryauth), as Redis spells it."""
    word, _, rest = line.lstrip().partition(" ")
    canonical = ALIASES.get(word.lower())
    return f"{canonical} {rest}" if canonical and " " not in canonical else line


def adapt_file(path: Path, server: Server) -> list[str]:
    """Adapt a running node's own file in place (it keeps what Redis or Sentinel rewrote into it),
    atomically and with its mode; returns the directives removed."""
    text = path.read_text()
    new, removed = adapt(text, server)
    if removed:
        tmp = path.with_name(f".{path.name}.adapt")
        tmp.write_text(new)
        tmp.chmod(path.stat().st_mode & 0o777)
        tmp.replace(path)
    return removed
