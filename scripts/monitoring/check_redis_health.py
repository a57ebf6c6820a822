#!/usr/bin/env python3
"""check_redis_health: Redis and Sentinel health for Nagios/Icinga, JSON and Prometheus.

One file, needing only redis-py: copy it to a monitoring host and run it (``python3
check_redis_health.py``), or use the installed ``check-redis-health`` console script (the module
``redis_ha_health.check_redis_health``). Checking is separate from output: every check returns a
plain dict, and the formats render the same list of them.

Exit codes (monitoring-plugins): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, internal
errors). Passwords are never printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import ssl
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SCHEMA_VERSION = 1
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
#: What the check runs on a data node: a read-only ACL user with just these runs all of it. Never
#: CONFIG GET: it hands out masterauth (the replica user's password, and with it the whole dataset).
NEEDS = "+ping +info"
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


# --------------------------------------------------------------------------------------------
# Nagios threshold ranges: "10" (alert outside 0..10), "10:" (below 10), "~:10" (above 10),
# "10:20" (outside), "@10:20" (inside).
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    text: str
    low: float
    high: float
    inside: bool

    @classmethod
    def parse(cls, text: str) -> Range:
        raw = text.strip()
        inside = raw.startswith("@")
        body = raw[1:] if inside else raw
        match = re.fullmatch(r"(~|[-+]?\d+(?:\.\d+)?)?(:)?([-+]?\d+(?:\.\d+)?)?", body)
        if not body or not match or (match.group(2) is None and match.group(3) is not None and match.group(1)):
            raise ValueError(f"invalid Nagios range {text!r}")
        start, colon, end = match.groups()
        if colon is None:  # "10" means 0..10
            if start in (None, "~"):
                raise ValueError(f"invalid Nagios range {text!r}")
            low, high = 0.0, float(start)
        else:
            low = -math.inf if start == "~" else float(start or 0)
            high = float(end) if end is not None else math.inf
        if low > high:
            raise ValueError(f"invalid Nagios range {text!r}: start above end")
        return cls(raw, low, high, inside)

    def alerts(self, value: float) -> bool:
        within = self.low <= value <= self.high
        return within if self.inside else not within


def judge(value: float, warn: Range | None, crit: Range | None) -> int:
    if crit is not None and crit.alerts(value):
        return CRITICAL
    if warn is not None and warn.alerts(value):
        return WARNING
    return OK


def check(
    name: str,
    state: int,
    message: str,
    value: float | str | None = None,
    unit: str = "",
    warn: Range | None = None,
    crit: Range | None = None,
    target: str = "",
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """One check result (the JSON schema's element)."""
    return {
        "name": name,
        "target": target,
        "state": STATE_NAMES[state],
        "code": state,
        "value": value,
        "unit": unit,
        "warn": warn.text if warn else None,
        "crit": crit.text if crit else None,
        "min": lo,
        "max": hi,
        "message": message,
    }


def measured(
    name: str,
    value: float,
    unit: str,
    warn: Range | None,
    crit: Range | None,
    what: str,
    target: str = "",
    lo: float | None = 0,
    hi: float | None = None,
) -> dict[str, Any]:
    state = judge(value, warn, crit)
    shown = f"{value:g}{unit}" if isinstance(value, int | float) else str(value)
    return check(name, state, f"{what} {shown}", value, unit, warn, crit, target, lo, hi)


# --------------------------------------------------------------------------------------------
# Connections and raw facts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tls:
    """TLS to every instance and Sentinel: the CA that signed them, and a client certificate when the
    servers ask for one (tls-auth-clients yes)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": self.ca, "ssl_certfile": self.cert, "ssl_keyfile": self.key}


def get_redis_connection(
    host: str,
    port: int,
    password: str | None = None,
    timeout: float = 2.0,
    username: str | None = None,
    tls: Tls | None = None,
) -> redis.Redis:
    """A client with timeouts and no retries: a health check answers now or reports why."""
    return redis.Redis(
        host=host,
        port=port,
        password=password,
        username=username,
        **(tls.kwargs() if tls else {}),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def _describe_error(exc: Exception, client: redis.Redis | None = None) -> str:
    """One line for a failed connection or command; never the password. An authentication failure
    names the user it was for (``default`` when none was given)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    user = (client.get_connection_kwargs().get("username") if client is not None else None) or "default"
    if isinstance(exc, redis.AuthenticationError):  # WRONGPASS, and NOAUTH (AuthenticationRequiredError)
        return f"authentication failed for user {user} ({text})"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return f"user {user} may not run what the check needs ({text}): it needs -@all {NEEDS}"
    if isinstance(exc, redis.TimeoutError):
        return "unreachable (timed out)"
    if isinstance(exc, redis.ConnectionError | OSError):
        return f"unreachable ({text})"
    return f"{type(exc).__name__}: {text}"


def check_instance_liveness(client: redis.Redis) -> dict[str, Any]:
    """PING with its round-trip time: {'alive', 'latency_ms', 'error'}."""
    started = time.perf_counter()
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        auth = isinstance(exc, redis.AuthenticationError)
        return {"alive": False, "latency_ms": None, "error": _describe_error(exc, client), "auth_failed": auth}
    return {"alive": True, "latency_ms": (time.perf_counter() - started) * 1000, "error": None, "auth_failed": False}


def get_instance_info(client: redis.Redis, sections: Sequence[str] = ("default",)) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for section in sections:
        info.update(client.info(section))
    return info


def _replicas(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in info.items() if re.fullmatch(r"slave\d+", k) and isinstance(v, dict)]


def check_replication_status(client: redis.Redis) -> dict[str, Any]:
    """The replication facts a check needs, from INFO replication."""
    info = client.info("replication")
    role = "replica" if info.get("role") == "slave" else str(info.get("role"))
    offset = int(info.get("master_repl_offset", 0))
    facts: dict[str, Any] = {
        "role": role,
        "master_repl_offset": offset,
        "repl_backlog_size": int(info.get("repl_backlog_size", 0)),
    }
    if role == "replica":
        facts.update(
            master_host=info.get("master_host"),
            master_port=info.get("master_port"),
            link_up=info.get("master_link_status") == "up",
            last_io_seconds=int(info.get("master_last_io_seconds_ago", -1)),
            link_down_since_seconds=int(info.get("master_link_down_since_seconds", 0) or 0),
            sync_in_progress=bool(info.get("master_sync_in_progress", 0)),
        )
    else:
        facts["replicas"] = [
            {
                "address": f"{r.get('ip')}:{r.get('port')}",
                "state": r.get("state"),
                "lag_seconds": int(r.get("lag", 0)),
                "lag_bytes": max(0, offset - int(r.get("offset", 0))),
            }
            for r in _replicas(info)
        ]
    return facts


def _sentinel_flags(entry: dict[str, Any]) -> set[str]:
    flags = entry.get("flags", "")
    return set(flags.split(",")) if isinstance(flags, str) else set(flags)


def check_sentinel_status(
    sentinel_host: str,
    sentinel_port: int,
    master_name: str,
    password: str | None = None,
    timeout: float = 2.0,
    username: str | None = None,
    tls: Tls | None = None,
) -> dict[str, Any]:
    """One Sentinel's view of ``master_name`` as a plain dict (reachable=False with an error if not)."""
    conn = get_redis_connection(sentinel_host, sentinel_port, password, timeout, username, tls)
    try:
        master = cast(dict[str, Any], conn.sentinel_master(master_name))
        replicas = conn.sentinel_slaves(master_name)
        peers = cast(list[dict[str, Any]], conn.sentinel_sentinels(master_name))
        try:
            # Read the reply text: redis-py's sentinel_ckquorum() reports False on a healthy deployment.
            ckquorum = str(conn.execute_command("SENTINEL", "CKQUORUM", master_name))  # type: ignore[no-untyped-call]
        except redis.ResponseError as exc:
            ckquorum = str(exc)
        tilt = bool(conn.info("sentinel").get("sentinel_tilt", 0))
    except (redis.RedisError, OSError) as exc:
        return {
            "address": f"{sentinel_host}:{sentinel_port}",
            "reachable": False,
            "error": _describe_error(exc, conn),
        }
    finally:
        conn.close()
    return {
        "address": f"{sentinel_host}:{sentinel_port}",
        "reachable": True,
        "error": None,
        "master": f"{master['ip']}:{master['port']}",
        "master_flags": sorted(_sentinel_flags(master)),
        "quorum": int(master.get("quorum", 0)),
        "num_other_sentinels": int(master.get("num-other-sentinels", 0)),
        "ckquorum": ckquorum,
        "tilt": tilt,
        "replicas": [
            {
                "address": f"{r['ip']}:{r['port']}",
                "flags": sorted(_sentinel_flags(r)),
                "link": r.get("master-link-status"),
            }
            for r in replicas
        ],
        "healthy_peers": sum(1 for p in peers if not _sentinel_flags(p) & {"s_down", "o_down", "disconnected"}),
    }


# --------------------------------------------------------------------------------------------
# Judging an instance and a Sentinel deployment
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    ping_warn: Range
    ping_crit: Range
    memory_warn: Range
    memory_crit: Range
    frag_warn: Range
    frag_crit: Range
    clients_warn: Range
    clients_crit: Range
    lag_warn: Range
    lag_crit: Range
    lag_bytes_warn: Range
    lag_bytes_crit: Range
    last_io_warn: Range
    last_io_crit: Range


@dataclass(frozen=True)
class Options:
    """What a run checks and how (built from the arguments and the environment by :func:`_parse`)."""

    thresholds: Thresholds
    host: str | None = None
    port: int = 6379
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    tls: Tls | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = "mymaster"
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    expect_role: str | None = None
    expect_replicas: int | None = None
    min_replicas: int | None = None  # --min-replicas-to-write
    timeout: float = 2.0
    format: str = "nagios"
    state_file: Path | None = None
    warn_on_failover: bool = False


@dataclass
class InstanceFacts:
    """Everything the judges need to know about one instance, read in one connection."""

    target: str
    latency_ms: float
    info: dict[str, Any]
    repl: dict[str, Any]
    #: min-replicas-to-write as --min-replicas-to-write gives it (INFO tells only that it is on)
    min_replicas: int | None = None

    @property
    def maxclients(self) -> int:
        return int(self.info.get("maxclients", 0) or 0)  # INFO clients (Redis 6.2+, Valkey)


def replica_count(name: str, healthy: int, expected: int, what: str, target: str) -> dict[str, Any]:
    """Fewer replicas than expected: WARNING; none at all: CRITICAL."""
    state = OK if healthy >= expected else (CRITICAL if healthy == 0 else WARNING)
    return check(name, state, f"{healthy} of {expected} {what}", healthy, target=target, lo=0, hi=expected)


@dataclass(frozen=True)
class Unreachable:
    """Why an instance could not be read (one line), and whether it refused our credentials."""

    message: str
    auth_failed: bool = False
    no_permission: bool = False  # it answered, but the check's ACL user may not run a command it needs


def gather_instance(host: str, port: int, opts: Options) -> InstanceFacts | Unreachable:
    """The instance's facts, or why it could not be read."""
    conn = get_redis_connection(host, port, opts.password, opts.timeout, opts.username, opts.tls)
    try:
        live = check_instance_liveness(conn)
        if not live["alive"]:
            return Unreachable(str(live["error"]), bool(live["auth_failed"]))
        info = get_instance_info(conn, ("server", "clients", "memory", "persistence", "stats", "replication"))
        repl = check_replication_status(conn)
    except (redis.RedisError, OSError) as exc:
        denied = isinstance(exc, redis.exceptions.NoPermissionError)
        return Unreachable(_describe_error(exc, conn), isinstance(exc, redis.AuthenticationError), denied)
    finally:
        conn.close()
    return InstanceFacts(f"{host}:{port}", live["latency_ms"], info, repl, opts.min_replicas)


def judge_liveness(f: InstanceFacts, t: Thresholds) -> list[dict[str, Any]]:
    version = f.info.get("valkey_version") or f.info.get("redis_version")
    return [
        check(
            "reachable", OK, f"{f.target} answers ({f.repl['role']}, {_flavour(f.info)} {version})", 1, target=f.target
        ),
        measured("ping", round(f.latency_ms, 3), "ms", t.ping_warn, t.ping_crit, "PING took", f.target),
    ]


def judge_persistence(f: InstanceFacts) -> list[dict[str, Any]]:
    out = []
    if f.info.get("loading"):
        out.append(check("loading", WARNING, "loading the dataset into memory", 1, target=f.target))
    if f.info.get("rdb_last_bgsave_status") not in (None, "ok"):
        out.append(check("rdb", CRITICAL, "last RDB save failed (writes may be refused)", 0, target=f.target))
    if f.info.get("aof_enabled") and f.info.get("aof_last_write_status") not in (None, "ok"):
        out.append(check("aof", CRITICAL, "last AOF write failed", 0, target=f.target))
    return out


def judge_role(f: InstanceFacts, expect_role: str | None) -> list[dict[str, Any]]:
    if not expect_role:
        return []
    role = f.repl["role"]
    state = OK if role == expect_role else CRITICAL
    message = f"role {role}" + ("" if state == OK else f", expected {expect_role}")
    return [check("role", state, message, role, target=f.target)]


def judge_replica_link(f: InstanceFacts, t: Thresholds) -> list[dict[str, Any]]:
    """A replica: its link to the master, and how long since it heard from it."""
    repl = f.repl
    if repl["link_up"]:
        what = "last I/O from the master"
        return [
            measured("master_last_io", repl["last_io_seconds"], "s", t.last_io_warn, t.last_io_crit, what, f.target)
        ]
    since = repl["link_down_since_seconds"]
    detail = "never connected" if since == -1 else f"down for {since}s"
    message = f"link to master {repl['master_host']}:{repl['master_port']} is down ({detail})"
    return [check("master_link", CRITICAL, message, 0, target=f.target)]


def judge_replicas(f: InstanceFacts, t: Thresholds, expected: int | None) -> list[dict[str, Any]]:
    """A master: its replicas online (against --expect-replicas and min-replicas-to-write), each one's lag."""
    replicas = f.repl["replicas"]
    online = [r for r in replicas if r["state"] == "online"]
    out = []
    if expected is not None:
        out.append(replica_count("replicas", len(online), expected, "expected replicas online", f.target))
    # INFO shows min_slaves_good_slaves (replicas within min-replicas-max-lag) only when
    # min-replicas-to-write is on (1 or more); its value comes from --min-replicas-to-write.
    if "min_slaves_good_slaves" in f.info:
        good, need = int(f.info["min_slaves_good_slaves"]), f.min_replicas or 1
        if good < need:
            setting = f"min-replicas-to-write {f.min_replicas}" if f.min_replicas else "min-replicas-to-write on"
            message = f"{good} replicas within min-replicas-max-lag, {setting}: writes are refused"
            out.append(check("min_replicas", CRITICAL, message, good, target=f.target))
    backlog = max(1, f.repl["repl_backlog_size"])
    for r in replicas:
        # Target the replica: one series per replica (its lag, as the master measures it).
        lag = f"replica {r['address']} lag"
        out.append(measured("replica_lag", r["lag_seconds"], "s", t.lag_warn, t.lag_crit, lag, r["address"]))
        percent = round(100 * r["lag_bytes"] / backlog, 2)
        behind = f"replica {r['address']} behind by {r['lag_bytes']} bytes, backlog used"
        out.append(
            measured(
                "replica_lag_backlog", percent, "%", t.lag_bytes_warn, t.lag_bytes_crit, behind, r["address"], hi=100
            )
        )
    return out


def judge_memory(f: InstanceFacts, t: Thresholds) -> list[dict[str, Any]]:
    out = []
    maxmemory = int(f.info.get("maxmemory", 0))
    if maxmemory:
        percent = round(100 * int(f.info["used_memory"]) / maxmemory, 2)
        what = f"used_memory {f.info['used_memory_human']} of {maxmemory} bytes,"
        out.append(measured("memory", percent, "%", t.memory_warn, t.memory_crit, what, f.target, hi=100))
    if int(f.info.get("used_memory_rss", 0)) > 64 * 1024 * 1024:  # the ratio is noise on tiny datasets
        ratio = float(f.info.get("mem_fragmentation_ratio", 1.0))
        out.append(measured("fragmentation", ratio, "", t.frag_warn, t.frag_crit, "fragmentation ratio", f.target))
    return out


def judge_clients(f: InstanceFacts, t: Thresholds) -> list[dict[str, Any]]:
    if not f.maxclients:
        return []
    connected = int(f.info.get("connected_clients", 0))
    percent = round(100 * connected / f.maxclients, 2)
    what = f"{connected} clients of maxclients {f.maxclients},"
    return [measured("clients", percent, "%", t.clients_warn, t.clients_crit, what, f.target, hi=100)]


COUNTERS = ("rejected_connections", "evicted_keys", "sync_full")


def judge_counters(f: InstanceFacts, before: dict[str, int]) -> list[dict[str, Any]]:
    """Counters that grew since the last run (with --state-file): rejections and full resyncs warn."""
    out = []
    for key in COUNTERS:
        if key in before:
            delta = max(int(f.info.get(key, 0)) - before[key], 0)
            state = WARNING if delta > 0 and key != "evicted_keys" else OK
            out.append(check(f"{key}_delta", state, f"{key} +{delta} since the last run", delta, target=f.target))
    return out


def instance_checks(
    host: str, port: int, opts: Options, expect_role: str | None, previous: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All checks of one instance, and the counters to remember for the next run."""
    facts = gather_instance(host, port, opts)
    if isinstance(facts, Unreachable):
        # A replica down degrades the deployment; the master (or a single instance) down breaks it,
        # and so do credentials that a node refuses.
        state = WARNING if expect_role == "replica" and not facts.auth_failed else CRITICAL
        if facts.no_permission:  # it answers, but this check's user cannot ask it: the check cannot tell
            state = UNKNOWN
        return [check("reachable", state, facts.message, 0, target=f"{host}:{port}")], {}
    t = opts.thresholds
    side = (
        judge_replica_link(facts, t)
        if facts.repl["role"] == "replica"
        else judge_replicas(facts, t, opts.expect_replicas)
    )
    checks = [
        *judge_liveness(facts, t),
        *judge_persistence(facts),
        *judge_role(facts, expect_role),
        *side,
        *judge_memory(facts, t),
        *judge_clients(facts, t),
        *judge_counters(facts, previous.get(facts.target, {})),
    ]
    return checks, {key: int(facts.info.get(key, 0)) for key in COUNTERS}


def _flavour(info: dict[str, Any]) -> str:
    return "Valkey" if info.get("server_name") == "valkey" or "valkey_version" in info else "Redis"


def judge_sentinel(v: dict[str, Any], expect_replicas: int | None) -> list[dict[str, Any]]:
    """One Sentinel's view: CKQUORUM, the master's flags, TILT, healthy peers vs quorum, replicas."""
    target = f"sentinel {v['address']}"
    if not v["reachable"]:
        return [check("sentinel_reachable", CRITICAL, v["error"], 0, target=target)]
    ok = v["ckquorum"].startswith("OK")
    out = [check("ckquorum", OK if ok else CRITICAL, v["ckquorum"].split(".")[0], 1 if ok else 0, target=target)]
    flags = set(v["master_flags"]) - {"master"}
    state = (
        CRITICAL
        if flags & {"s_down", "o_down"}
        else (WARNING if flags & {"disconnected", "failover_in_progress"} else OK)
    )
    message = f"master {v['master']} flags {','.join(v['master_flags'])}"
    out.append(check("master_flags", state, message, ",".join(v["master_flags"]), target=target))
    if v["tilt"]:
        message = "Sentinel is in TILT mode (clock jump or blocked): it will not act"
        out.append(check("tilt", WARNING, message, 1, target=target))
    healthy = v["healthy_peers"] + 1
    message = f"{healthy} healthy Sentinels, quorum {v['quorum']}"
    out.append(check("sentinels", CRITICAL if healthy < v["quorum"] else OK, message, healthy, target=target))
    good = [r for r in v["replicas"] if not set(r["flags"]) & {"s_down", "o_down", "disconnected"}]
    if expect_replicas is not None:
        seen = "replicas healthy as this Sentinel sees them"
        out.append(replica_count("sentinel_replicas", len(good), expect_replicas, seen, target))
    return out


def judge_agreement(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every reachable Sentinel names the same master."""
    reachable = [v for v in views if v["reachable"]]
    masters = sorted({v["master"] for v in reachable})
    if len(masters) > 1:
        message = f"Sentinels disagree on the master: {', '.join(masters)}"
        return [check("sentinel_agreement", CRITICAL, message, len(masters))]
    if masters:
        return [check("sentinel_agreement", OK, f"all {len(reachable)} reachable Sentinels name {masters[0]}", 1)]
    return []


def sentinel_checks(views: list[dict[str, Any]], expect_replicas: int | None) -> list[dict[str, Any]]:
    return [*(c for v in views for c in judge_sentinel(v, expect_replicas)), *judge_agreement(views)]


# --------------------------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------------------------
def worst(checks: list[dict[str, Any]]) -> int:
    return max((c["code"] for c in checks), default=UNKNOWN)


UOM = {"ms": "ms", "s": "s", "%": "%", "": ""}


def _perf_label(c: dict[str, Any]) -> str:
    label = f"{c['target']} {c['name']}".strip().replace("'", "").replace("=", "_")
    return f"'{label}'"


def render_nagios(checks: list[dict[str, Any]]) -> str:
    status = worst(checks)
    problems = [c for c in checks if c["code"] != OK]
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        summary = f"{first['target'] + ': ' if first['target'] else ''}{first['message']}{more}"
    else:
        targets = sorted({c["target"] for c in checks if c["target"]})
        summary = f"{len(checks)} checks OK on {len(targets)} target(s)"
    perf = []
    for c in checks:
        if isinstance(c["value"], int | float) and not isinstance(c["value"], bool):
            fields = [
                f"{c['value']:g}{UOM.get(c['unit'], '')}",
                c["warn"] or "",
                c["crit"] or "",
                "" if c["min"] is None else f"{c['min']:g}",
                "" if c["max"] is None else f"{c['max']:g}",
            ]
            perf.append(f"{_perf_label(c)}={';'.join(fields).rstrip(';')}")
    lines = [f"REDIS {STATE_NAMES[status]} - {summary}" + (f" | {' '.join(perf)}" if perf else "")]
    lines += [f"{c['state']}: {c['target'] + ': ' if c['target'] else ''}{c['message']}" for c in problems]
    return "\n".join(lines)


def render_json(checks: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    status = worst(checks)
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "status": STATE_NAMES[status],
            "exit_code": status,
            **meta,
            "checks": checks,
        },
        indent=2,
    )


# Checks that redis_exporter has a metric for: (metric name, help, scale).
EXPORTER_NAMES: dict[str, tuple[str, str, float]] = {
    "reachable": ("redis_up", "Whether the instance answered", 1),
    "master_last_io": ("redis_master_last_io_seconds_ago", "Seconds since the last I/O from the master", 1),
    "replicas": ("redis_connected_slaves", "Replicas online", 1),
    "replica_lag": ("redis_connected_slave_lag_seconds", "Replica lag in seconds", 1),
    "sentinels": ("redis_sentinel_master_ok_sentinels", "Healthy Sentinels for the master", 1),
    "sentinel_replicas": ("redis_sentinel_master_ok_slaves", "Healthy replicas as a Sentinel sees them", 1),
    "tilt": ("redis_sentinel_tilt", "Sentinel in TILT mode", 1),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_prometheus(checks: list[dict[str, Any]], duration: float) -> str:
    """Text exposition for node_exporter's textfile collector (write it to a *.prom file atomically)."""
    series: dict[str, tuple[str, list[str]]] = {}

    def add(name: str, help_text: str, labels: dict[str, str], value: float) -> None:
        rendered = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        series.setdefault(name, (help_text, []))[1].append(f"{name}{{{rendered}}} {value:g}")

    for c in checks:
        labels = {"target": c["target"], "check": c["name"]}
        add("redis_health_check_state", "Check state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", labels, c["code"])
        if isinstance(c["value"], int | float) and not isinstance(c["value"], bool):
            add(
                "redis_health_check_value",
                "The value a check measured, in the unit label",
                {**labels, "unit": c["unit"]},
                c["value"],
            )
            if c["name"] in EXPORTER_NAMES:
                name, help_text, scale = EXPORTER_NAMES[c["name"]]
                add(name, help_text, {"addr": c["target"].removeprefix("sentinel ")}, c["value"] * scale)
    add("redis_health_status", "Overall state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN", {}, worst(checks))
    add("redis_health_duration_seconds", "How long the check took", {}, round(duration, 6))
    out = []
    for name, (help_text, lines) in series.items():
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
class UnknownError(Exception):
    """Bad arguments or an internal error: exit 3 (UNKNOWN)."""


class Parser(argparse.ArgumentParser):
    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        # argparse quotes unknown arguments verbatim: never repeat a value given to a --pass... option.
        for i, arg in enumerate(self.argv):
            name = arg.partition("=")[0].lstrip("-").lower()
            if arg.startswith("-") and (
                name.startswith(("pa", "pw")) or any(w in name for w in ("pass", "secret", "auth"))
            ):
                value = arg.partition("=")[2] if "=" in arg else (self.argv[i + 1] if i + 1 < len(self.argv) else "")
                message = message.replace(value, "***") if value else message
        raise UnknownError(message)


def _range(text: str) -> Range:
    try:
        return Range.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}")
    return int(text)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, _port(port)


def _from_env(name: str, convert: Callable[[str], Any]) -> Any:
    """A value from the environment, converted; a bad one is UNKNOWN with the variable's name."""
    try:
        return convert(os.environ[name])
    except argparse.ArgumentTypeError as exc:
        raise UnknownError(f"{name}: {exc}") from None


def build_parser() -> Parser:
    env = os.environ
    p = Parser(prog="check-redis-health", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default=None, help="a Redis instance (default: $REDIS_HOST when no Sentinel is given)")
    p.add_argument("--port", type=_port, default=None, help="default: $REDIS_PORT or 6379")
    p.add_argument("--password", default=None, help="default: $REDIS_PASSWORD (prefer the variable: argv is visible)")
    p.add_argument("--user", "--username", dest="username", default=None, help="ACL user (default: $REDIS_USERNAME)")
    p.add_argument("--tls", action="store_true", help="TLS to every instance and Sentinel (implied by --cacert)")
    p.add_argument("--cacert", default=None, help="CA certificate (PEM) to verify them (default: $REDIS_TLS_CA_CERT)")
    p.add_argument("--cert", default=None, help="client certificate (PEM) (default: $REDIS_TLS_CERT)")
    p.add_argument("--key", default=None, help="its private key (PEM) (default: $REDIS_TLS_KEY)")
    p.add_argument(
        "--sentinel",
        action="append",
        type=_host_port,
        metavar="HOST:PORT",
        help="a Sentinel (repeatable; default: $SENTINEL_HOSTS); discovers and checks master and replicas",
    )
    p.add_argument("--master-name", default=env.get("SENTINEL_MASTER_NAME", "mymaster"))
    p.add_argument("--sentinel-password", default=None, help="default: $SENTINEL_PASSWORD")
    p.add_argument("--sentinel-user", default=None, help="ACL user on the Sentinels (default: $SENTINEL_USERNAME)")
    p.add_argument("--expect-role", choices=("master", "replica"))
    p.add_argument("--expect-replicas", type=int, default=None, help="replicas the master should have online")
    p.add_argument(
        "--min-replicas-to-write",
        type=int,
        default=None,
        metavar="N",
        help="the masters' min-replicas-to-write (INFO says only that it is on; default: 1 when it is)",
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per connection (default 2)")
    p.add_argument("--format", choices=("nagios", "json", "prometheus"), default="nagios")
    p.add_argument("--state-file", type=Path, help="remember counters and the master between runs")
    p.add_argument(
        "--warn-on-failover",
        action="store_true",
        help="with --state-file: a master change since the last run is a WARNING (default: reported, OK)",
    )
    defaults = {
        "ping": ("100", "500", "PING round trip, ms"),
        "memory": ("80", "90", "used_memory, %% of maxmemory"),
        "frag": ("1.5", "2", "fragmentation ratio (checked above 64 MB RSS)"),
        "clients": ("80", "90", "connected clients, %% of maxclients"),
        "lag": ("10", "30", "replica lag, seconds"),
        "lag-bytes": ("50", "100", "replica lag, %% of the backlog"),
        "last-io": ("10", "30", "seconds since a replica heard from its master"),
    }
    for name, (warn, crit, what) in defaults.items():
        for level, state, default in (("warn", "WARNING", warn), ("crit", "CRITICAL", crit)):
            p.add_argument(
                f"--{name}-{level}",
                type=_range,
                default=Range.parse(default),
                metavar="RANGE",
                help=f"{what}: {state} outside this Nagios range (default {default})",
            )
    return p


def _parse(argv: Sequence[str] | None) -> Options:
    """The arguments and the environment (REDIS_*, SENTINEL_*) as typed Options; UnknownError if bad."""
    env = os.environ
    parser = build_parser()
    parser.argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    port = args.port or (_from_env("REDIS_PORT", _port) if env.get("REDIS_PORT") else 6379)
    sentinels = args.sentinel
    if sentinels is None and env.get("SENTINEL_HOSTS") and not args.host:
        sentinels = _from_env("SENTINEL_HOSTS", lambda text: [_host_port(h) for h in text.split(",") if h.strip()])
    host = args.host if args.host or sentinels else env.get("REDIS_HOST", "127.0.0.1")
    if args.timeout <= 0 or any(n is not None and n < 0 for n in (args.expect_replicas, args.min_replicas_to_write)):
        raise UnknownError("--timeout must be positive, --expect-replicas and --min-replicas-to-write not negative")
    thresholds = Thresholds(
        *(
            getattr(args, f"{n}_{level}")
            for n in ("ping", "memory", "frag", "clients", "lag", "lag_bytes", "last_io")
            for level in ("warn", "crit")
        )
    )
    return Options(
        thresholds=thresholds,
        host=host,
        port=port,
        password=args.password or env.get("REDIS_PASSWORD") or None,
        username=args.username or env.get("REDIS_USERNAME") or None,
        tls=_tls(args, env),
        sentinels=tuple(sentinels or ()),
        master_name=args.master_name,
        sentinel_password=args.sentinel_password or env.get("SENTINEL_PASSWORD") or None,
        sentinel_username=args.sentinel_user or env.get("SENTINEL_USERNAME") or None,
        expect_role=args.expect_role,
        expect_replicas=args.expect_replicas,
        min_replicas=args.min_replicas_to_write,
        timeout=args.timeout,
        format=args.format,
        state_file=args.state_file,
        warn_on_failover=args.warn_on_failover,
    )


def _tls(args: argparse.Namespace, env: Mapping[str, str]) -> Tls | None:
    """TLS from --tls/--cacert/--cert/--key, else REDIS_TLS_CA_CERT/CERT/KEY (a CA turns it on)."""
    ca = args.cacert or env.get("REDIS_TLS_CA_CERT") or None
    cert, key = args.cert or env.get("REDIS_TLS_CERT") or None, args.key or env.get("REDIS_TLS_KEY") or None
    if not (args.tls or ca or cert):
        return None
    if bool(cert) != bool(key):
        raise UnknownError("a client certificate needs its key: give both --cert and --key (or neither)")
    _check_tls_files(ca, cert, key)
    return Tls(ca, cert, key)


def _check_tls_files(ca: str | None, cert: str | None, key: str | None) -> None:
    """UNKNOWN naming the first TLS file that is missing, unreadable or not a PEM of its kind, or a
    certificate and key that do not go together: the check cannot judge anything without them (and
    every node "unreachable" would blame the servers for the monitoring host's files)."""
    named = (
        ("CA certificate", "--cacert, REDIS_TLS_CA_CERT", ca, b"CERTIFICATE-----"),
        ("client certificate", "--cert, REDIS_TLS_CERT", cert, b"CERTIFICATE-----"),
    )
    for what, flag, path, marker in (*named, ("client key", "--key, REDIS_TLS_KEY", key, b"PRIVATE KEY-----")):
        if not path:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO would block a plain open
        except FileNotFoundError:
            raise UnknownError(f"TLS {what} {path} ({flag}) is missing") from None
        except OSError as exc:
            raise UnknownError(f"TLS {what} {path} ({flag}) cannot be read ({exc.strerror or exc})") from None
        try:
            if not stat.S_ISREG(mode := os.fstat(fd).st_mode):
                kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
                raise UnknownError(f"TLS {what} {path} ({flag}) is not a regular file ({kind})")
            head = os.read(fd, 1 << 20)
        except OSError as exc:
            raise UnknownError(f"TLS {what} {path} ({flag}) cannot be read ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        if b"-----BEGIN " not in head or marker not in head:
            raise UnknownError(f"TLS {what} {path} ({flag}) is not a PEM {what.split()[-1]}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if ca:
            context.load_verify_locations(ca)
    except ssl.SSLError as exc:
        raise UnknownError(f"TLS CA certificate {ca} cannot be loaded ({exc.reason or exc})") from None
    try:
        if cert and key:
            context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        why = "they do not match" if exc.reason == "KEY_VALUES_MISMATCH" else (exc.reason or str(exc))
        raise UnknownError(f"TLS client certificate {cert} and key {key} cannot be used ({why})") from None


def _load_state(path: Path | None) -> dict[str, Any]:
    """The previous run's state; anything unreadable or of the wrong shape starts afresh (and is
    overwritten by this run), so a corrupt file never makes every later run UNKNOWN."""
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    counters = data.get("counters")
    if not isinstance(counters, dict) or not all(
        isinstance(v, dict) and all(isinstance(n, int) for n in v.values()) for v in counters.values()
    ):
        data["counters"] = {}
    if not isinstance(data.get("master"), str | None):
        data["master"] = None
    return data


def _save_state(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(path)
    except OSError as exc:
        raise UnknownError(f"cannot write the state file {path}: {exc.strerror}") from None


Job = tuple[str, int, str | None]  # (host, port, the role it should have)


def sentinel_discovery(
    opts: Options, pool: ThreadPoolExecutor, state: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[Job], str | None]:
    """Ask every Sentinel (concurrently): their checks, the instances to check, the master they name."""

    def status(hp: tuple[str, int]) -> dict[str, Any]:
        return check_sentinel_status(
            hp[0], hp[1], opts.master_name, opts.sentinel_password, opts.timeout, opts.sentinel_username, opts.tls
        )

    views = list(pool.map(status, opts.sentinels))
    checks = sentinel_checks(views, opts.expect_replicas)
    reachable = [v for v in views if v["reachable"]]
    named = sorted((v["master"] for v in reachable), key=[v["master"] for v in reachable].count)
    master = named[-1] if named else None  # the one most Sentinels name
    jobs: list[Job] = []
    if master:
        host, _, port = master.rpartition(":")
        jobs.append((host, int(port), "master"))
        for address in sorted({r["address"] for v in reachable for r in v["replicas"]}):
            rhost, _, rport = address.rpartition(":")
            jobs.append((rhost, int(rport), "replica"))
    else:
        checks.append(check("master", CRITICAL, f"no Sentinel could name a master for {opts.master_name}", 0))
    last = state.get("master")
    if master and last and last != master:
        message = f"master changed from {last} to {master} since the last run"
        state_code = WARNING if opts.warn_on_failover else OK
        checks.append(check("failover", state_code, message, 1, target=f"sentinel {opts.master_name}"))
    state["master"] = master or last
    return checks, jobs, master


def run_checks(opts: Options) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every check the options ask for (instances queried concurrently) and the JSON metadata."""
    state = _load_state(opts.state_file)
    previous = state.get("counters", {})
    checks: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"target": None, "role": None, "master": None}
    jobs: list[Job] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        if opts.sentinels:
            checks, jobs, master = sentinel_discovery(opts, pool, state)
            meta.update(target=f"sentinel {opts.master_name}", master=master)
        if opts.host:
            jobs.append((opts.host, opts.port, opts.expect_role))
            meta["target"] = meta["target"] or f"{opts.host}:{opts.port}"
        results = list(pool.map(lambda j: instance_checks(j[0], j[1], opts, j[2], previous), jobs))
    counters: dict[str, Any] = {}
    for (host, port, _), (found, seen_counters) in zip(jobs, results, strict=True):
        checks += found
        if seen_counters:
            counters[f"{host}:{port}"] = seen_counters
        if meta["role"] is None and len(jobs) == 1:
            meta["role"] = next((c["value"] for c in found if c["name"] == "role"), None)
    state["counters"] = {**previous, **counters}
    _save_state(opts.state_file, state)
    return checks, meta


def _unknown(message: str, fmt: str, started: float) -> str:
    """An UNKNOWN result in the requested format (monitoring parses JSON and Prometheus too)."""
    if fmt == "json":
        doc = {"error": message, "target": None, "duration_seconds": round(time.perf_counter() - started, 6)}
        return render_json([check("check", UNKNOWN, message)], doc)
    if fmt == "prometheus":
        return render_prometheus([check("check", UNKNOWN, message)], time.perf_counter() - started).rstrip("\n")
    return f"REDIS UNKNOWN - {message}"


def _requested_format(args: Sequence[str] | None) -> str:
    """--format read on its own, so that even bad arguments get an answer in that format."""
    words = list(sys.argv[1:] if args is None else args)
    for i, word in enumerate(words):
        value = word.split("=", 1)[1] if word.startswith("--format=") else (words[i + 1 : i + 2] or [""])[0]
        if word.startswith("--format") and value in ("nagios", "json", "prometheus"):
            return value
    return "nagios"


def main(args: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the check; print in the chosen format; return the monitoring-plugins exit code."""
    started = time.perf_counter()
    fmt = _requested_format(args)
    try:
        parsed = _parse(args)
        checks, meta = run_checks(parsed)
    except UnknownError as exc:
        out(_unknown(str(exc), fmt, started))
        return UNKNOWN
    except Exception as exc:  # an internal error is UNKNOWN, never a traceback in the monitoring UI
        text = str(exc).splitlines()[0] if str(exc) else ""
        out(_unknown(f"internal error: {type(exc).__name__}: {text}", fmt, started))
        return UNKNOWN
    duration = time.perf_counter() - started
    if parsed.format == "json":
        out(render_json(checks, {**meta, "duration_seconds": round(duration, 6)}))
    elif parsed.format == "prometheus":
        out(render_prometheus(checks, duration).rstrip("\n"))
    else:
        out(render_nagios(checks))
    return worst(checks)


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()
