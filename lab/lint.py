"""Lint a whole deployment's config files at once: most mistakes are inconsistencies between files.

Rules (error unless marked warning) follow ../shared/REFERENCE.md's config-lint list plus a few
more; each finding names the rule, file, line, directive and why.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.confparse import REPEATABLE, ConfFile, Directive, parse
from lab.errors import LabError

KNOWN_REDIS = {
    line.strip()
    for line in (Path(__file__).parent / "redis_directives.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
#: Sentinel reads its file with the server's config parser (and rewrites it with server directives
#: such as latency-tracking-info-percentiles), plus its own.
KNOWN_SENTINEL_TOP = KNOWN_REDIS | {
    "port",
    "bind",
    "bind-source-addr",
    "protected-mode",
    "daemonize",
    "pidfile",
    "loglevel",
    "logfile",
    "dir",
    "requirepass",
    "user",
    "aclfile",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "supervised",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-replication",
    "maxclients",
    "include",
    "acllog-max-len",
    "unixsocket",
    "unixsocketperm",
}
KNOWN_SENTINEL_SUB = {
    "monitor",
    "auth-pass",
    "auth-user",
    "down-after-milliseconds",
    "failover-timeout",
    "parallel-syncs",
    "notification-script",
    "client-reconfig-script",
    "deny-scripts-reconfig",
    "announce-ip",
    "announce-port",
    "announce-hostnames",
    "resolve-hostnames",
    "myid",
    "known-replica",
    "known-slave",
    "known-sentinel",
    "current-epoch",
    "config-epoch",
    "leader-epoch",
    "rename-command",
    "master-reboot-down-after-period",
    "sentinel-user",
    "sentinel-pass",
    "replica-priority",
    "tilt-trigger",
}
#: Directives that take exactly one path: more words mean an unquoted path with spaces.
PATH_DIRECTIVES = {
    "pidfile",
    "logfile",
    "dir",
    "dbfilename",
    "appendfilename",
    "appenddirname",
    "include",
    "aclfile",
    "unixsocket",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
}
SECRET_DIRECTIVES = {"requirepass", "masterauth", "sentinel auth-pass", "sentinel sentinel-pass"}
SEED_DIRECTIVES = {
    "sentinel myid",
    "sentinel known-replica",
    "sentinel known-slave",
    "sentinel known-sentinel",
    "sentinel current-epoch",
    "sentinel config-epoch",
    "sentinel leader-epoch",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # "error" | "warning"
    file: str
    line: int
    directive: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} {self.rule} [{self.directive}] {self.why}"


class Linter:
    def __init__(self, confs: list[ConfFile], lab: bool = False) -> None:
        self.confs = confs
        self.data = [c for c in confs if not c.is_sentinel]
        self.sentinels = [c for c in confs if c.is_sentinel]
        self.lab = lab
        self.findings: list[Finding] = []
        self.not_configs: set[Path] = set()

    def add(self, rule: str, severity: str, conf: ConfFile, where: Directive | None, name: str, why: str) -> None:
        self.findings.append(
            Finding(rule, severity, str(where.file if where else conf.path), where.line if where else 0, name, why)
        )

    # -- per file ---------------------------------------------------------------------------
    def syntax(self, conf: ConfFile) -> None:
        for line, message in conf.errors:
            self.findings.append(Finding("L001", "error", str(conf.path), line, "-", message))
        if not conf.directives:
            self.add("L004", "error", conf, None, "-", "no directives: this is not a Redis or Sentinel config")
            self.not_configs.add(conf.path)
            return
        unknown = []
        for d in conf.directives:
            if conf.is_sentinel:
                ok = (
                    d.name.split(" ", 1)[1] in KNOWN_SENTINEL_SUB
                    if d.name.startswith("sentinel ")
                    else d.name in KNOWN_SENTINEL_TOP
                )
            else:
                ok = d.name in KNOWN_REDIS
            if not ok:
                unknown.append(d)
        if len(unknown) * 2 > len(conf.directives):
            self.add("L004", "error", conf, None, "-", "mostly unknown directives: this is not a Redis config")
            self.not_configs.add(conf.path)
            return
        for d in unknown:
            self.add("L002", "warning", conf, d, d.name, "not a directive Redis 7.0 knows: it refuses to start on one")
        for d in conf.directives:
            if d.name in PATH_DIRECTIVES and len(d.args) > 1:
                self.add(
                    "L006",
                    "error",
                    conf,
                    d,
                    d.name,
                    f'takes one path but has {len(d.args)} words: quote a path with spaces ("...")',
                )
        counts = Counter(d.name for d in conf.directives if not d.name.startswith("sentinel "))
        for name, count in counts.items():
            if count > 1 and name not in REPEATABLE:
                last = conf.all(name)[-1]
                self.add("L003", "warning", conf, last, name, f"set {count} times; only this last value counts")
        self.file_mode(conf)

    def file_mode(self, conf: ConfFile) -> None:
        holds = [d for d in conf.directives if d.name in SECRET_DIRECTIVES and d.args]
        if not holds:
            return
        mode = stat.S_IMODE(os.stat(conf.path).st_mode)
        if mode & 0o037:
            self.add(
                "F001",
                "warning",
                conf,
                holds[0],
                holds[0].name,
                f"file holds a password but is mode {mode:04o}; use 0600 (or 0640 for a service group)",
            )

    def exposure(self, conf: ConfFile) -> None:
        binds = [a.lstrip("-") for d in conf.all("bind") for a in d.args] or ["*"]
        exposed = any(not _loopback(a) for a in binds)
        password = conf.value("requirepass")
        protected = conf.flag("protected-mode", "yes")
        where = conf.get("protected-mode") or conf.get("bind")
        if exposed and not password and protected == "no":
            self.add(
                "NET001",
                "error",
                conf,
                where,
                "protected-mode",
                "protected-mode no, no requirepass and a non-loopback bind: anyone on the network is admin",
            )
        if exposed and not password and protected == "yes":
            self.add(
                "NET002",
                "error",
                conf,
                where,
                "protected-mode",
                "protected-mode yes without requirepass refuses every non-loopback client, replicas included",
            )

    def data_node(self, conf: ConfFile) -> None:
        policy = conf.get("maxmemory-policy")
        policy_name = conf.flag("maxmemory-policy")
        maxmemory = conf.value("maxmemory", "0")
        if policy and policy_name != "noeviction" and _bytes(maxmemory) == 0:
            self.add(
                "MEM001",
                "error",
                conf,
                policy,
                "maxmemory-policy",
                f"{policy.value} never runs: maxmemory is 0, so memory grows until the OOM killer",
            )
        events = conf.get("notify-keyspace-events")
        flags = events.value if events else ""
        if flags and not {"K", "E"} & set(flags):
            self.add(
                "NOTIFY001",
                "error",
                conf,
                events,
                "notify-keyspace-events",
                f"'{flags}' selects events but neither K (keyspace) nor E (keyevent): nothing is delivered",
            )
        if policy and policy_name.startswith("allkeys-") and "x" in flags:
            self.add(
                "MEM002",
                "warning",
                conf,
                policy,
                "maxmemory-policy",
                "allkeys-* on a session store (it listens for expiry): live sessions get evicted",
            )
        if self.sentinels:
            save = conf.all("save")
            rdb_off = not save or all(d.value in ("", '""') for d in save)
            if rdb_off and conf.flag("appendonly", "no") == "no":
                self.add(
                    "PERS001",
                    "error",
                    conf,
                    conf.get("appendonly") or (save[-1] if save else None),
                    "appendonly",
                    "RDB and AOF both off on a Sentinel-managed node: an auto-restarted "
                    "master comes back empty and its replicas copy the emptiness",
                )
        min_rep = conf.get("min-replicas-to-write")
        replicas = len(self.data) - 1
        if min_rep and int(_int(min_rep.value)) > replicas:
            self.add(
                "REPL001",
                "error",
                conf,
                min_rep,
                "min-replicas-to-write",
                f"needs {min_rep.value} replicas but the deployment has {replicas}: every write is refused",
            )
        password = conf.value("requirepass")
        masterauth = conf.get("masterauth")
        if password and (masterauth is None or masterauth.value != password):
            self.add(
                "AUTH002",
                "error",
                conf,
                masterauth or conf.get("requirepass"),
                "masterauth",
                "masterauth must equal requirepass on every node: a master becomes a replica after failover",
            )

    # -- across files -----------------------------------------------------------------------
    def deployment(self) -> None:
        passwords = {c.value("requirepass") for c in self.data}
        if len(passwords) > 1:
            for c in self.data:
                self.add(
                    "AUTH001",
                    "error",
                    c,
                    c.get("requirepass"),
                    "requirepass",
                    "data nodes have different requirepass values: replication and failover break",
                )
        masters = [c for c in self.data if not (c.get("replicaof") or c.get("slaveof"))]
        if self.data and len(masters) != 1:
            self.add(
                "REPL002",
                "error",
                self.data[0],
                None,
                "replicaof",
                f"{len(masters)} nodes without replicaof: a deployment starts with exactly one master",
            )
        targets = {_replicaof(c) for c in self.data if _replicaof(c)}
        if len(targets) > 1:
            for c in self.data:
                if _replicaof(c):
                    self.add(
                        "REPL003",
                        "error",
                        c,
                        c.get("replicaof") or c.get("slaveof"),
                        "replicaof",
                        f"replicas follow different masters: {', '.join(sorted(targets))}",
                    )
        known = {f"{a}:{c.value('port', '6379')}" for c in self.data for a in _specific_binds(c)}
        if targets and known and not targets <= known:
            c = next(c for c in self.data if _replicaof(c) and _replicaof(c) not in known)
            self.add(
                "REPL003",
                "error",
                c,
                c.get("replicaof"),
                "replicaof",
                f"{_replicaof(c)} is not a data node of this deployment",
            )
        self.sentinel_rules(passwords, targets, known)

    def sentinel_rules(self, passwords: set[str], targets: set[str], known: set[str]) -> None:
        if not self.sentinels:
            return
        count = len(self.sentinels)
        first = self.sentinels[0]
        if count < 3:
            self.add(
                "SEN001",
                "error",
                first,
                None,
                "sentinel monitor",
                f"{count} Sentinel(s): at least 3 are needed to survive the loss of one",
            )
        elif count % 2 == 0:
            self.add(
                "SEN005",
                "warning",
                first,
                None,
                "sentinel monitor",
                f"{count} Sentinels: an even count adds no fault tolerance over {count - 1}",
            )
        monitors = {c.path: c.get("sentinel monitor") for c in self.sentinels}
        shapes = {d.args for d in monitors.values() if d}
        if len(shapes) > 1:
            for c in self.sentinels:
                self.add(
                    "SEN002",
                    "error",
                    c,
                    monitors[c.path],
                    "sentinel monitor",
                    "Sentinels disagree on the monitored master (name, host, port or quorum)",
                )
        for c in self.sentinels:
            monitor = monitors[c.path]
            if monitor is None or len(monitor.args) != 4:
                self.add("SEN002", "error", c, monitor, "sentinel monitor", "expects: NAME HOST PORT QUORUM")
                continue
            _name, host, port, quorum_text = monitor.args
            quorum = _int(quorum_text)
            if not 1 <= quorum <= count:
                self.add(
                    "SEN003",
                    "error",
                    c,
                    monitor,
                    "sentinel monitor",
                    f"quorum {quorum_text} with {count} Sentinels can never (or always) be reached",
                )
            elif quorum <= count // 2:
                self.add(
                    "SEN004",
                    "warning",
                    c,
                    monitor,
                    "sentinel monitor",
                    f"quorum {quorum} is below a majority of {count}: the failover still needs a majority "
                    "to be authorised, so ODOWN is declared on fewer votes than can act on it",
                )
            if targets and f"{host}:{port}" not in targets:
                self.add(
                    "SEN007",
                    "error",
                    c,
                    monitor,
                    "sentinel monitor",
                    f"monitors {host}:{port} but the replicas follow {', '.join(sorted(targets))}",
                )
            elif known and f"{host}:{port}" not in known:
                self.add(
                    "SEN007",
                    "error",
                    c,
                    monitor,
                    "sentinel monitor",
                    f"{host}:{port} is not a data node of this deployment",
                )
            auth = c.get("sentinel auth-pass")
            expected = next(iter(passwords)) if len(passwords) == 1 else None
            if expected and (auth is None or auth.args[1:2] != (expected,)):
                self.add(
                    "AUTH003",
                    "error",
                    c,
                    auth or monitor,
                    "sentinel auth-pass",
                    "auth-pass must equal the data nodes' requirepass, or Sentinel cannot talk to them",
                )
            down = c.get("sentinel down-after-milliseconds")
            timeout = c.get("sentinel failover-timeout")
            down_ms = _int(down.args[-1]) if down else 30000
            timeout_ms = _int(timeout.args[-1]) if timeout else 180000
            if timeout_ms <= down_ms:
                self.add(
                    "SEN006",
                    "warning",
                    c,
                    timeout or down,
                    "sentinel failover-timeout",
                    f"failover-timeout {timeout_ms} ms is not above down-after {down_ms} ms",
                )
            hosts = [host] + [
                d.args[1] for d in c.directives if d.name.startswith("sentinel known-") and len(d.args) > 1
            ]
            if any(not _is_ip(h) for h in hosts) and c.flag("sentinel resolve-hostnames", "no") != "yes":
                self.add(
                    "SEN008",
                    "error",
                    c,
                    monitor,
                    "sentinel resolve-hostnames",
                    "hostnames are used but resolve-hostnames is not yes: Sentinel refuses them",
                )
            seeded = [d for d in c.directives if d.name in SEED_DIRECTIVES]
            if seeded and not self.lab:
                self.add(
                    "SEN010",
                    "warning",
                    c,
                    seeded[0],
                    seeded[0].name,
                    "run-time state (myid/known-*/epochs) in a rendered config: let each Sentinel learn it, "
                    "or every copy of this file shares one identity",
                )
        ids = Counter(c.value("sentinel myid") for c in self.sentinels if c.get("sentinel myid"))
        for c in self.sentinels:
            myid = c.get("sentinel myid")
            if myid and ids[myid.value] > 1:
                self.add(
                    "SEN009",
                    "error",
                    c,
                    myid,
                    "sentinel myid",
                    "two Sentinels share this myid: they count as one voter",
                )

    def run(self) -> list[Finding]:
        for conf in self.confs:
            self.syntax(conf)
        # Files that are not configs at all get that one finding, and take no part in the rest.
        self.confs = [c for c in self.confs if c.path not in self.not_configs]
        self.data = [c for c in self.data if c.path not in self.not_configs]
        self.sentinels = [c for c in self.sentinels if c.path not in self.not_configs]
        for conf in self.confs:
            self.exposure(conf)
            if not conf.is_sentinel:
                self.data_node(conf)
        self.deployment()
        return sorted(self.findings, key=lambda f: (f.file, f.line, f.rule))


def _loopback(addr: str) -> bool:
    if addr in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _specific_binds(conf: ConfFile) -> list[str]:
    addrs = [a.lstrip("-") for d in conf.all("bind") for a in d.args]
    return [a for a in addrs if a not in ("*", "0.0.0.0", "::", "::*")]


def _replicaof(conf: ConfFile) -> str:
    d = conf.get("replicaof") or conf.get("slaveof")
    return f"{d.args[0]}:{d.args[1]}" if d and len(d.args) == 2 else ""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _bytes(text: str) -> int:
    units = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
    text = text.lower()
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * units[suffix]
    return int(text) if text.isdigit() else 0


def collect(root: Path) -> list[Path]:
    """Config files under ``root`` (a file, or every *.conf below a directory)."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise LabError(f"{root}: no such file or directory")
    files = sorted(p for p in root.rglob("*.conf") if p.is_file())
    if not files:
        raise LabError(f"{root}: no *.conf files to lint")
    return files


def lint_paths(paths: list[Path], lab: bool = False) -> list[Finding]:
    confs = []
    findings = []
    for path in paths:
        try:
            confs.append(parse(path))
        except LabError as exc:
            findings.append(Finding("L005", "error", str(path), 0, "-", str(exc).split(": ", 1)[-1]))
    return sorted(findings + Linter(confs, lab=lab).run(), key=lambda f: (f.file, f.line, f.rule))


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]


def lint_profile(name: str) -> list[Finding]:
    """Render a profile (as `lab render` does) into a temporary directory and lint the result."""
    import tempfile

    from lab.profile import load_profile
    from lab.render import render_lab
    from lab.spec import build_spec

    profile = load_profile(name)
    with tempfile.TemporaryDirectory(prefix="lab-lint-") as tmp:
        out = Path(tmp) / profile.name
        spec = build_spec("lint", profile, backend="none", base_dir=out, layout="hosts" if profile.hosts else "local")
        render_lab(spec, profile, out)
        findings = lint_paths(collect(out), lab=profile.seed_sentinel_discovery)
    prefix = f"{tmp}/"
    return [
        Finding(f.rule, f.severity, f"{profile.name}:{f.file.removeprefix(prefix)}", f.line, f.directive, f.why)
        for f in findings
    ]
