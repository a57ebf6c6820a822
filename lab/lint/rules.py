"""Every lint rule, one small function each (see lab.lint.registry). Most mistakes are
inconsistencies between files, so a rule sees the whole deployment; values are compared the way
Redis compares them (yes/no and enums in any case)."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from lab.capabilities import SINCE, accepts
from lab.confparse import REPEATABLE, ConfFile
from lab.lint.acl import (
    NEVER_FOR_APPS,
    REPLICA_NEEDS,
    SENTINEL_HELLO,
    SENTINEL_MAY,
    SENTINEL_NEEDS,
    AclUser,
    Login,
    acl_users,
    authenticated,
    default_user,
    login_problem,
    login_users,
    replication_login,
    sentinel_login,
)
from lab.lint.registry import Deployment, Hit, each, replicaof, rule

KNOWN_REDIS = {
    line.strip()
    for line in (Path(__file__).parent / "redis_directives.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
#: Sentinel reads its file with the server's config parser (and rewrites it with server directives
#: such as latency-tracking-info-percentiles), plus its own `sentinel ...` lines.
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


def known_directive(conf: ConfFile, name: str) -> bool:
    if conf.is_sentinel and name.startswith("sentinel "):
        return name.split(" ", 1)[1] in KNOWN_SENTINEL_SUB
    return name in KNOWN_REDIS


def mostly_unknown(conf: ConfFile) -> bool:
    """No directives, or more unknown than known ones: not a Redis config at all."""
    unknown = sum(not known_directive(conf, d.name) for d in conf.directives)
    return not conf.directives or unknown * 2 > len(conf.directives)


# -- the files themselves -------------------------------------------------------------------------
@rule("L001", "error", "a line Redis cannot parse (unbalanced quotes) or an include loop: redis-server refuses")
def unparseable(d: Deployment) -> Iterator[Hit]:
    for conf in d.confs:
        for line, message in conf.errors:
            yield Hit(conf.path, None, "-", message, line)


@rule("L002", "warning", "a directive Redis 7.0 does not know: it refuses to start on one")
@each("file")
def unknown_directive(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    for directive in conf.directives:
        if not known_directive(conf, directive.name):
            yield Hit(conf, directive, directive.name, "not a directive Redis 7.0 knows: it refuses to start on one")


@rule("L003", "warning", "a directive set twice: only the last value counts, the first is a trap for readers")
@each("file")
def set_twice(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    counts = Counter(x.name for x in conf.directives if not x.name.startswith("sentinel "))
    for name, count in counts.items():
        if count > 1 and name not in REPEATABLE:
            yield Hit(conf, conf.all(name)[-1], name, f"set {count} times; only this last value counts")


@rule("L004", "error", "a file that is not a Redis or Sentinel config (no directives, or mostly unknown ones)")
def not_a_config(d: Deployment) -> Iterator[Hit]:
    for conf in d.not_configs:
        why = "no directives" if not conf.directives else "mostly unknown directives"
        yield Hit(conf.path, None, "-", f"{why}: this is not a Redis config")


@rule("L005", "error", "a file that cannot be read, or is not text")
def unreadable(d: Deployment) -> Iterator[Hit]:
    for path, why in d.unreadable:
        yield Hit(path, None, "-", why)


@rule("L006", "error", "a path directive with several words: an unquoted path with spaces, which redis-server refuses")
@each("file")
def unquoted_path(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    for directive in conf.directives:
        if directive.name in PATH_DIRECTIVES and len(directive.args) > 1:
            why = f'takes one path but has {len(directive.args)} words: quote a path with spaces ("...")'
            yield Hit(conf, directive, directive.name, why)


@rule("L007", "error", "a directive the target build refuses (lab lint --server): it would not start")
@each("file")
def refused_by_target(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if d.server is None:
        return
    for directive in conf.directives:
        if not accepts(d.server, directive.name):
            since = ", ".join(
                f"{flavour} {major}.{minor}+" for flavour, (major, minor) in SINCE[directive.name].items()
            )
            why = f"{d.server.name} refuses it at start (it needs {since}): render with --server {d.server.name}"
            yield Hit(conf, directive, directive.name, why)


@rule("F001", "warning", "a file holding a password that group or others can read (want 0600, or 0640)")
@each("file")
def secret_file_mode(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    holds = [x for x in conf.directives if x.name in SECRET_DIRECTIVES and x.args]
    holds += [x for x in conf.all("user") if any(a.startswith(">") for a in x.args)]
    if not holds:
        return
    mode = stat.S_IMODE(os.stat(conf.path).st_mode)
    if mode & 0o037:
        why = f"file holds a password but is mode {mode:04o}; use 0600 (or 0640 for a service group)"
        yield Hit(conf, holds[0], holds[0].name, why)


# -- exposure -------------------------------------------------------------------------------------
def _unprotected(conf: ConfFile, protected_mode: str, why: str) -> Iterator[Hit]:
    """A non-loopback bind, no password, and protected-mode as given."""
    binds = [a.lstrip("-") for x in conf.all("bind") for a in x.args] or ["*"]
    exposed = any(not _loopback(a) for a in binds) and not authenticated(conf)
    if exposed and conf.flag("protected-mode", "yes") == protected_mode:
        yield Hit(conf, conf.get("protected-mode") or conf.get("bind"), "protected-mode", why)


@rule("NET001", "error", "protected-mode no, no password and a non-loopback bind: anyone on the network is admin")
@each("file")
def open_to_the_network(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    why = (
        "protected-mode no, no password (requirepass or ACL users), a non-loopback bind: anyone on the network is admin"
    )
    return _unprotected(conf, "no", why)


@rule("NET002", "error", "protected-mode yes, no password and a non-loopback bind: Redis refuses every peer")
@each("file")
def refuses_its_peers(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    why = (
        "protected-mode yes without a password (requirepass or ACL users) refuses every non-loopback client and replica"
    )
    return _unprotected(conf, "yes", why)


# -- data nodes -----------------------------------------------------------------------------------
@rule("MEM001", "error", "an eviction policy with maxmemory 0: it never runs, memory grows until the OOM killer")
@each("data")
def eviction_never_runs(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    policy = conf.get("maxmemory-policy")
    if policy and conf.flag("maxmemory-policy") != "noeviction" and _bytes(conf.value("maxmemory", "0")) == 0:
        why = f"{policy.value} never runs: maxmemory is 0, so memory grows until the OOM killer"
        yield Hit(conf, policy, "maxmemory-policy", why)


@rule("MEM002", "warning", "allkeys-* on a session store (one that listens for expiry events): live sessions evicted")
@each("data")
def evicts_sessions(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    policy = conf.get("maxmemory-policy")
    if policy and conf.flag("maxmemory-policy").startswith("allkeys-") and "x" in conf.value("notify-keyspace-events"):
        why = "allkeys-* on a session store (it listens for expiry): live sessions get evicted"
        yield Hit(conf, policy, "maxmemory-policy", why)


@rule("NOTIFY001", "error", "notify-keyspace-events without K or E: events are selected but nothing is delivered")
@each("data")
def notifications_go_nowhere(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    events = conf.get("notify-keyspace-events")
    flags = events.value if events else ""
    if flags and not {"K", "E"} & set(flags):
        why = f"'{flags}' selects events but neither K (keyspace) nor E (keyevent): nothing is delivered"
        yield Hit(conf, events, "notify-keyspace-events", why)


@rule("PERS001", "error", "RDB and AOF both off on a Sentinel-managed node: a restarted master wipes its replicas")
@each("data")
def no_persistence(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if not d.sentinels:
        return
    save = conf.all("save")
    rdb_off = not save or all(x.value in ("", '""') for x in save)
    if rdb_off and conf.flag("appendonly", "no") == "no":
        why = (
            "RDB and AOF both off on a Sentinel-managed node: an auto-restarted master comes back empty and "
            "its replicas copy the emptiness"
        )
        yield Hit(conf, conf.get("appendonly") or (save[-1] if save else None), "appendonly", why)


@rule("REPL001", "error", "min-replicas-to-write above the number of replicas: every write is refused")
@each("data")
def too_many_replicas_required(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    min_rep = conf.get("min-replicas-to-write")
    replicas = len(d.data) - 1
    if min_rep and _int(min_rep.value) > replicas:
        why = f"needs {min_rep.value} replicas but the deployment has {replicas}: every write is refused"
        yield Hit(conf, min_rep, "min-replicas-to-write", why)


@rule("AUTH002", "error", "masterauth missing or not requirepass: a master becomes a replica after failover")
@each("data")
def masterauth_mismatch(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    password = conf.value("requirepass")
    masterauth = conf.get("masterauth")
    if password and (masterauth is None or masterauth.value != password):
        why = "masterauth must equal requirepass on every node: a master becomes a replica after failover"
        yield Hit(conf, masterauth or conf.get("requirepass"), "masterauth", why)


# -- the data nodes together ----------------------------------------------------------------------
@rule("AUTH001", "error", "data nodes with different requirepass: replication and failover break")
def passwords_differ(d: Deployment) -> Iterator[Hit]:
    if len(d.passwords) > 1:
        why = "data nodes have different requirepass values: replication and failover break"
        for conf in d.data:
            yield Hit(conf, conf.get("requirepass"), "requirepass", why)


@rule("REPL002", "error", "not exactly one node without replicaof: a deployment starts with one master")
def not_one_master(d: Deployment) -> Iterator[Hit]:
    masters = [c for c in d.data if not replicaof(c)]
    if d.data and len(masters) != 1:
        why = f"{len(masters)} nodes without replicaof: a deployment starts with exactly one master"
        yield Hit(d.data[0], None, "replicaof", why)


@rule("REPL003", "error", "replicas following different masters, or an address outside the deployment")
def replicas_disagree(d: Deployment) -> Iterator[Hit]:
    if len(d.targets) > 1:
        why = f"replicas follow different masters: {', '.join(sorted(d.targets))}"
        for conf in d.data:
            if replicaof(conf):
                yield Hit(conf, conf.get("replicaof") or conf.get("slaveof"), "replicaof", why)
    if d.targets and d.known and not d.targets <= d.known:
        conf = next(c for c in d.data if replicaof(c) and replicaof(c) not in d.known)
        yield Hit(conf, conf.get("replicaof"), "replicaof", f"{replicaof(conf)} is not a data node of this deployment")


# -- Sentinels ------------------------------------------------------------------------------------
@rule("SEN001", "error", "fewer than 3 Sentinels: the deployment cannot survive losing one")
def too_few_sentinels(d: Deployment) -> Iterator[Hit]:
    count = len(d.sentinels)
    if 0 < count < 3:
        why = f"{count} Sentinel(s): at least 3 are needed to survive the loss of one"
        yield Hit(d.sentinels[0], None, "sentinel monitor", why)


@rule("SEN005", "warning", "an even number of Sentinels: adds no fault tolerance over one fewer")
def even_sentinels(d: Deployment) -> Iterator[Hit]:
    count = len(d.sentinels)
    if count >= 3 and count % 2 == 0:
        why = f"{count} Sentinels: an even count adds no fault tolerance over {count - 1}"
        yield Hit(d.sentinels[0], None, "sentinel monitor", why)


@rule("SEN002", "error", "Sentinels disagreeing on the monitored name, host, port or quorum (or a malformed monitor)")
def monitors_disagree(d: Deployment) -> Iterator[Hit]:
    monitors = [(c, c.get("sentinel monitor")) for c in d.sentinels]
    if len({m.args for _, m in monitors if m}) > 1:
        for conf, monitor in monitors:
            why = "Sentinels disagree on the monitored master (name, host, port or quorum)"
            yield Hit(conf, monitor, "sentinel monitor", why)
    for conf, monitor in monitors:
        if monitor is None or len(monitor.args) != 4:
            yield Hit(conf, monitor, "sentinel monitor", "expects: NAME HOST PORT QUORUM")


def _monitors(d: Deployment) -> Iterator[tuple[ConfFile, str, str, str, str]]:
    """(conf, name, host, port, quorum) of every well-formed `sentinel monitor`."""
    for conf in d.sentinels:
        monitor = conf.get("sentinel monitor")
        if monitor is not None and len(monitor.args) == 4:
            name, host, port, quorum = monitor.args
            yield conf, name, host, port, quorum


@rule("SEN003", "error", "a quorum outside 1..number of Sentinels: it can never (or always) be reached")
def quorum_out_of_range(d: Deployment) -> Iterator[Hit]:
    count = len(d.sentinels)
    for conf, _, _, _, quorum in _monitors(d):
        if not 1 <= _int(quorum) <= count:
            why = f"quorum {quorum} with {count} Sentinels can never (or always) be reached"
            yield Hit(conf, conf.get("sentinel monitor"), "sentinel monitor", why)


@rule("SEN004", "warning", "a quorum below a majority: ODOWN is declared on fewer votes than can act on it")
def quorum_below_majority(d: Deployment) -> Iterator[Hit]:
    count = len(d.sentinels)
    for conf, _, _, _, quorum in _monitors(d):
        if 1 <= _int(quorum) <= count // 2:
            why = (
                f"quorum {quorum} is below a majority of {count}: the failover still needs a majority to be "
                "authorised, so ODOWN is declared on fewer votes than can act on it"
            )
            yield Hit(conf, conf.get("sentinel monitor"), "sentinel monitor", why)


@rule("SEN007", "error", "Sentinels monitoring an address that is not the deployment's master")
def monitors_the_wrong_node(d: Deployment) -> Iterator[Hit]:
    for conf, _, host, port, _ in _monitors(d):
        address = f"{host}:{port}"
        if d.targets and address not in d.targets:
            why = f"monitors {address} but the replicas follow {', '.join(sorted(d.targets))}"
        elif d.known and address not in d.known:
            why = f"{address} is not a data node of this deployment"
        else:
            continue
        yield Hit(conf, conf.get("sentinel monitor"), "sentinel monitor", why)


@rule("AUTH003", "error", "Sentinel auth-pass different from the data nodes' password: Sentinel cannot talk to them")
def sentinel_password_mismatch(d: Deployment) -> Iterator[Hit]:
    if len(d.passwords) != 1 or not (expected := next(iter(d.passwords))):
        return
    for conf, _, _, _, _ in _monitors(d):
        auth = conf.get("sentinel auth-pass")
        if auth is None or auth.args[1:2] != (expected,):
            why = "auth-pass must equal the data nodes' requirepass, or Sentinel cannot talk to them"
            yield Hit(conf, auth or conf.get("sentinel monitor"), "sentinel auth-pass", why)


@rule("SEN006", "warning", "failover-timeout not above down-after-milliseconds")
@each("sentinel")
def failover_timeout_too_short(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    down = conf.get("sentinel down-after-milliseconds")
    timeout = conf.get("sentinel failover-timeout")
    down_ms = _int(down.args[-1]) if down else 30000
    timeout_ms = _int(timeout.args[-1]) if timeout else 180000
    if timeout_ms <= down_ms:
        why = f"failover-timeout {timeout_ms} ms is not above down-after {down_ms} ms"
        yield Hit(conf, timeout or down, "sentinel failover-timeout", why)


@rule("SEN008", "error", "hostnames without sentinel resolve-hostnames yes: Sentinel refuses them")
def hostnames_unresolved(d: Deployment) -> Iterator[Hit]:
    for conf, _, host, _, _ in _monitors(d):
        known = [x.args[1] for x in conf.directives if x.name.startswith("sentinel known-") and len(x.args) > 1]
        hosts = [host, *known]
        if any(not _is_ip(h) for h in hosts) and conf.flag("sentinel resolve-hostnames", "no") != "yes":
            why = "hostnames are used but resolve-hostnames is not yes: Sentinel refuses them"
            yield Hit(conf, conf.get("sentinel monitor"), "sentinel resolve-hostnames", why)


@rule("SEN009", "error", "two Sentinels with the same myid: they count as one voter")
def shared_myid(d: Deployment) -> Iterator[Hit]:
    ids = Counter(c.value("sentinel myid") for c in d.sentinels if c.get("sentinel myid"))
    for conf in d.sentinels:
        myid = conf.get("sentinel myid")
        if myid and ids[myid.value] > 1:
            yield Hit(conf, myid, "sentinel myid", "two Sentinels share this myid: they count as one voter")


@rule("SEN010", "warning", "run-time Sentinel state (myid, known-*, epochs) in a rendered config outside a lab")
@each("sentinel")
def seeded_state(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    seeded = [x for x in conf.directives if x.name in SEED_DIRECTIVES]
    if seeded and not d.lab:
        why = (
            "run-time state (myid/known-*/epochs) in a rendered config: let each Sentinel learn it, or every copy "
            "of this file shares one identity"
        )
        yield Hit(conf, seeded[0], seeded[0].name, why)


# -- ACL users and TLS ----------------------------------------------------------------------------
@rule("ACL001", "error", "a production data node whose default user is on with every command, or without a password")
@each("data")
def default_user_open(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    default = default_user(conf)
    if default is None or not default.on:
        return
    if default.nopass:
        yield Hit(conf, default.directive, "user", "the default user is on with nopass: anyone who connects is it")
    elif default.all_commands() and not d.lab:
        why = (
            "the default user is on with every command (requirepass alone does this): in production turn it off "
            "(`user default off`) and give each client a named user with what it needs"
        )
        yield Hit(conf, default.directive, default.directive.name, why)


def _service_users(d: Deployment) -> set[str]:
    """Users that replication and Sentinel log in as (masteruser, sentinel auth-user)."""
    names = {c.value("masteruser") for c in d.data if c.get("masteruser")}
    for conf in d.sentinels:
        auth = conf.get("sentinel auth-user")
        if auth and len(auth.args) > 1:
            names.add(auth.args[1])
    return names


@rule("ACL002", "error", "an application user with @dangerous or @admin commands (FLUSHALL, CONFIG, DEBUG, KEYS...)")
@each("data")
def app_user_too_broad(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    for user in _application_users(conf, d):
        reachable = sorted(c.upper() for c in NEVER_FOR_APPS if user.may_run(c))
        if reachable:
            why = (
                f"application user {user.name} may run {', '.join(reachable)}: take away -@dangerous -@admin "
                "(or name an operator's user *admin*)"
            )
            yield Hit(conf, user.directive, "user", why)
    for user in _maybe_sentinels_user(conf, d):
        # Sentinel's user or an application's: only what is too much for both is known
        reachable = sorted(c.upper() for c in NEVER_FOR_APPS - SENTINEL_MAY if user.may_run(c))
        if reachable:
            why = (
                f"user {user.name} may run {', '.join(reachable)}, which neither an application nor Sentinel needs "
                "(no Sentinel file is linted with these files, so it may be Sentinel's user): if it is Sentinel's, "
                f"give it only -@all {' '.join('+' + c for c in sorted(SENTINEL_NEEDS))}; if an application's, "
                "take away -@dangerous -@admin"
            )
            yield Hit(conf, user.directive, "user", why)


@rule("ACL003", "warning", "Sentinel's user on the data nodes allowed more than Sentinel runs")
@each("data")
def sentinel_user_too_broad(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    users = acl_users(conf)
    for name in _sentinel_users(d):
        user = users.get(name)
        if user is None:
            continue
        extra = user.broad() or sorted(user.granted() - SENTINEL_MAY)
        if extra:
            why = (
                f"Sentinel's user {name} may run {', '.join(extra)}; it needs only {' '.join(sorted(SENTINEL_NEEDS))} "
                f"(and {' '.join(sorted(SENTINEL_MAY - SENTINEL_NEEDS))} for Valkey 9's coordinated failover)"
            )
            yield Hit(conf, user.directive, "user", why)
        elif user.allchannels or set(user.channels) - {SENTINEL_HELLO}:
            why = f"Sentinel's user {name} may use {user.channel_rules()}; it needs only &{SENTINEL_HELLO}"
            yield Hit(conf, user.directive, "user", why)


def _sentinel_users(d: Deployment) -> set[str]:
    return {a.args[1] for c in d.sentinels if (a := c.get("sentinel auth-user")) and len(a.args) > 1}


def _other_users(conf: ConfFile, d: Deployment) -> Iterator[AclUser]:
    """Users on that are neither the default, an operator's (*admin*), replication's nor Sentinel's as the
    files name them (masteruser, sentinel auth-user)."""
    service = _service_users(d)
    for user in acl_users(conf).values():
        if user.name != "default" and "admin" not in user.name and user.name not in service and user.on:
            yield user


def _could_be_sentinels(user: AclUser, d: Deployment) -> bool:
    """Whether ``user`` may be Sentinel's without lint knowing: no Sentinel file is in the deployment (a
    partial one, such as one node's file or the data nodes' files alone), so no `sentinel auth-user` says
    whose it is, and the user may run everything Sentinel runs on a data node, hello channel included. A
    user's name or comments are not evidence: hand-written files name users as their authors like."""
    if d.sentinels:
        return False
    return all(user.may_run(c) for c in SENTINEL_NEEDS) and user.may_use_channel(SENTINEL_HELLO)


def _application_users(conf: ConfFile, d: Deployment) -> Iterator[AclUser]:
    """Users known to be an application's: not the default, an operator's (*admin*), replication's or
    Sentinel's, nor a user that could be Sentinel's in a deployment linted without its Sentinels."""
    return (user for user in _other_users(conf, d) if not _could_be_sentinels(user, d))


def _maybe_sentinels_user(conf: ConfFile, d: Deployment) -> Iterator[AclUser]:
    """Users whose role the files do not tell: Sentinel's or an application's (see _could_be_sentinels)."""
    return (user for user in _other_users(conf, d) if _could_be_sentinels(user, d))


@rule("ACL006", "error", "an application user that may publish to Sentinel's hello channel (&*, allchannels)")
@each("data")
def app_user_sentinel_channel(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    for user in _application_users(conf, d):
        if user.may_use_channel(SENTINEL_HELLO) and user.may_run("publish"):
            why = (
                f"user {user.name} may publish to {SENTINEL_HELLO} ({user.channel_rules()}): one forged hello sends "
                "every Sentinel to an address of the sender's choice; give it an allow-list "
                "(resetchannels &events:* &__keyspace@*__:* &__keyevent@*__:*)"
            )
            yield Hit(conf, user.directive, "user", why)


@rule("ACL007", "error", "a user other than an operator's that may run CONFIG GET: it reads masterauth")
@each("data")
def reads_masterauth(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    sentinels = _sentinel_users(d)  # ACL003 judges Sentinel's user
    for user in _application_users(conf, d):
        if any(user.may_run(c) for c in NEVER_FOR_APPS):
            continue  # ACL002 says so (CONFIG is among them)
        if user.may_run("config|get"):
            why = (
                f"user {user.name} may run CONFIG GET: it reads masterauth (the replica user's password, and with it "
                "PSYNC copies every key); a monitoring user needs only -@all +ping +info"
            )
            yield Hit(conf, user.directive, "user", why)
    service = _service_users(d) - sentinels
    for name in sorted(service):
        replica = acl_users(conf).get(name)
        if replica is not None and replica.on and replica.may_run("config|get"):
            why = f"replication's user {name} may run CONFIG GET: it reads masterauth"
            yield Hit(conf, replica.directive, "user", why)


@rule("ACL004", "error", "masterauth without masteruser while the default user is off: replicas cannot log in")
@each("data")
def masterauth_without_user(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    default = default_user(conf)
    if conf.get("masterauth") and not conf.get("masteruser") and default is not None and not default.on:
        why = "the default user is off, so masterauth alone logs in as nobody: set masteruser (e.g. replica)"
        yield Hit(conf, conf.get("masterauth"), "masterauth", why, fix=REPLICATION_FIX)


#: What replication and Sentinel need on every data node, in the words of the fix hints.
REPLICATION_FIX = (
    "give every data node masteruser replica and masterauth with the password of a user "
    "`replica on >PASSWORD resetchannels -@all +psync +replconf +ping` defined alike on every data node"
)
SENTINEL_FIX = (
    "set sentinel auth-user and auth-pass on every Sentinel to a user defined alike on every data node "
    f"with {' '.join('+' + c for c in sorted(SENTINEL_NEEDS))} &{SENTINEL_HELLO}"
)


def _node(conf: ConfFile) -> str:
    """A data node as a message names it: its directory for a rendered node/redis.conf, else the file."""
    return conf.path.parent.name if conf.path.name in ("redis.conf", "sentinel.conf") else conf.path.name


def _acl_nodes(d: Deployment) -> list[ConfFile]:
    """Data nodes in ACL mode (with `user` lines); requirepass-only nodes are AUTH001-AUTH003's."""
    return [c for c in d.data if acl_users(c)]


def _refusals(login: Login, needs: frozenset[str], nodes: list[ConfFile]) -> str:
    """Which of ``nodes`` refuse ``login`` and why, nodes with the same reason together:
    "redis-2, redis-3 (user default is off)"; "" when every one accepts it."""
    by_problem: dict[str, list[str]] = {}
    for conf in nodes:
        if problem := login_problem(login_users(conf), login, needs):
            by_problem.setdefault(problem, []).append(_node(conf))
    return "; ".join(f"{', '.join(names)} ({problem})" for problem, names in by_problem.items())


@rule(
    "ACL005",
    "error",
    "replication or Sentinel logs in as a user that is missing, off, has another password or lacks a command it needs",
)
def service_logins(d: Deployment) -> Iterator[Hit]:
    for conf in d.data:
        users = acl_users(conf)
        login = replication_login(conf)
        if not users or login.password is None or not (user := conf.get("masteruser")):
            continue
        if problem := login_problem(users, login, REPLICA_NEEDS):
            why = f"replicas log in as {user.value}, but {problem}: replication fails"
            yield Hit(conf, user, "masteruser", why, fix=REPLICATION_FIX)
    for sentinel in d.sentinels:
        login = sentinel_login(sentinel)
        if not login.named:
            continue  # ACL010 judges a Sentinel that logs in as the default user or not at all
        for conf in d.data:
            users = acl_users(conf)
            if users and (problem := login_problem(users, login, SENTINEL_NEEDS)):
                why = f"Sentinel logs in to {_node(conf)} as {login.user}, but {problem}"
                yield Hit(sentinel, login.directive, "sentinel auth-user", why, fix=SENTINEL_FIX)
                break


@rule(
    "ACL008",
    "error",
    "a data node without masterauth (masteruser alone sends no AUTH) while other data nodes require a login: "
    "it cannot replicate after a failover",
)
@each("data")
def replicates_without_auth(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if conf.get("masterauth") or conf.get("requirepass"):
        return  # ACL004, ACL005, ACL009 judge its login; AUTH002 a requirepass node without masterauth
    login = replication_login(conf)
    if refusing := _refusals(login, REPLICA_NEEDS, [c for c in _acl_nodes(d) if c is not conf]):
        sends = "masteruser without masterauth sends no AUTH" if conf.get("masteruser") else "no masterauth"
        why = f"{sends}, refused on {refusing}: once a failover makes one of them its master, replication fails"
        yield Hit(conf, login.directive, "masterauth", why, fix=REPLICATION_FIX)


@rule(
    "ACL009",
    "error",
    "a data node's masteruser/masterauth refused by another data node (user missing, off, another password, "
    "no +psync +replconf +ping): replication fails on start or after a failover",
)
def replication_refused(d: Deployment) -> Iterator[Hit]:
    for conf in d.data:
        login = replication_login(conf)
        if login.password is None or login_problem(login_users(conf), login, REPLICA_NEEDS):
            continue  # ACL008, or its own node refuses it too (ACL004, ACL005, AUTH002 say so)
        # Every other node, even one whose own masteruser is the same broken user (ACL005 says so there, about
        # that node's file): this node's login is refused there all the same, on start or after a failover.
        others = [other for other in _acl_nodes(d) if other is not conf]
        if refused := _refusals(login, REPLICA_NEEDS, others):
            why = (
                f"replication logs in as {login.user}, refused on {refused}: a failover can make any data node "
                "the master, so each must accept every other's login"
            )
            directive = "masteruser" if conf.get("masteruser") else "masterauth"
            yield Hit(conf, login.directive, directive, why, fix=REPLICATION_FIX)


@rule(
    "ACL010",
    "error",
    "Sentinel logs in as the default user (auth-pass without auth-user) or not at all (no auth-pass) to data nodes "
    "whose default user refuses it",
)
def sentinel_unnamed_login(d: Deployment) -> Iterator[Hit]:
    shared = next(iter(d.passwords)) if len(d.passwords) == 1 else ""
    for sentinel in d.sentinels:
        login = sentinel_login(sentinel)
        if login.named or (shared and login.password != shared):
            continue  # ACL005 judges a named user; AUTH003 an auth-pass that is not the shared requirepass
        refusing = _refusals(login, SENTINEL_NEEDS, _acl_nodes(d))
        if refusing:
            if login.password is not None:
                sends = "auth-pass without auth-user logs in as the default user"
            elif sentinel.get("sentinel auth-user"):
                sends = "auth-user without auth-pass sends no AUTH"
            else:
                sends = "no auth-pass: Sentinel sends no AUTH"
            why = f"{sends}, refused on {refusing}: Sentinel cannot monitor or fail over"
            yield Hit(sentinel, login.directive, "sentinel auth-user", why, fix=SENTINEL_FIX)


@rule("AUTH004", "warning", "a password shorter than 16 characters outside a lab: guessable at Redis's speed")
@each("file")
def short_password(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if d.lab:
        return
    given = [(x, x.args[-1]) for x in conf.directives if x.name in SECRET_DIRECTIVES and x.args]
    given += [(x, word) for x in conf.all("user") for word in acl_users(conf)[x.args[0]].plain]
    for directive, password in given:
        if len(password) < 16:
            why = f"a {len(password)}-character password: use 16 or more random characters (Redis answers fast)"
            yield Hit(conf, directive, directive.name, why)
            return


@rule("TLS001", "error", "TLS on with the plain-text port still open outside a lab")
@each("file")
def plain_port_beside_tls(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if conf.get("tls-port") and conf.value("tls-port") != "0" and conf.value("port", "6379") != "0" and not d.lab:
        why = "tls-port is set but port is not 0: clients can still talk (and send passwords) in plain text"
        yield Hit(conf, conf.get("port") or conf.get("tls-port"), "port", why)


@rule("TLS002", "warning", "tls-auth-clients no: any client that reaches the port is accepted without a certificate")
@each("file")
def clients_not_verified(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    if conf.get("tls-port") and conf.flag("tls-auth-clients", "yes") == "no":
        why = "tls-auth-clients no: clients need no certificate (passwords are then the only check)"
        yield Hit(conf, conf.get("tls-auth-clients"), "tls-auth-clients", why)


@rule("F002", "error", "a TLS private key or ACL file that group or others can read (want 0600)")
@each("file")
def key_file_mode(conf: ConfFile, d: Deployment) -> Iterator[Hit]:
    for directive in (conf.get("tls-key-file"), conf.get("aclfile")):
        if directive is None or not directive.value:
            continue
        path = Path(directive.value)
        path = path if path.is_absolute() else conf.path.parent / path
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue  # rendered for another host: the file is not here to check
        if mode & 0o077:
            why = f"{path} is mode {mode:04o}: a key or ACL file must be 0600 (readable by the server's user only)"
            yield Hit(conf, directive, directive.name, why)


# -- values as Redis reads them -------------------------------------------------------------------
def _loopback(addr: str) -> bool:
    if addr == "localhost":
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
