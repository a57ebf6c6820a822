"""Observe a running lab over the wire and judge its health. ``lab up`` waits on it, ``lab status``
reports it: one definition of "healthy" for both."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lab import resp
from lab.errors import LabError
from lab.spec import LabSpec, Node
from lab.tls import check_client_files

if TYPE_CHECKING:  # redis-py is imported by the commands that change a lab, not by observing one (lab.resp)
    import redis
    from redis.sentinel import Sentinel


@dataclass
class RedisView:
    node: Node
    reachable: bool = False
    error: str = ""
    role: str = ""
    master_host: str = ""
    master_port: int = 0
    link_up: bool = False
    offset: int = 0
    replicas_online: int = 0


@dataclass
class SentinelView:
    node: Node
    reachable: bool = False
    error: str = ""
    master: tuple[str, int] | None = None
    master_flags: str = ""
    num_replicas: int = 0
    num_other_sentinels: int = 0
    #: Flags as the Sentinel lists them ("s_down,slave,disconnected") per replica or peer Sentinel ("host:port").
    replica_flags: dict[str, str] = field(default_factory=dict)
    peer_flags: dict[str, str] = field(default_factory=dict)
    ckquorum: str = ""


@dataclass
class Observation:
    redis: list[RedisView]
    sentinels: list[SentinelView]
    #: Per kind of node ("redis", "sentinel"): the lab's password file for it, missing, so its nodes were not asked.
    missing_secrets: dict[str, Path] = field(default_factory=dict)

    @property
    def master(self) -> tuple[str, int] | None:
        """The master address the Sentinels agree on (None when they disagree or none answers)."""
        seen = {s.master for s in self.sentinels if s.reachable and s.master}
        return seen.pop() if len(seen) == 1 else None

    @property
    def quorum_ok(self) -> bool:
        return any(s.ckquorum.startswith("OK") for s in self.sentinels)


def client(host: str, port: int, password: str | None, timeout: float = 2.0, **kw: Any) -> redis.Redis:
    """A plain client of one node with timeouts and no retries: an answer or an error. Observing
    the whole lab (:func:`observe`) passes 0.5 s; commands that do work on a busy machine get 2 s."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        **kw,
    )


def tls_kwargs(spec: LabSpec) -> dict[str, Any]:
    """The lab's TLS client options, its files checked first: a missing, unreadable or wrong CA,
    client certificate or key is a :class:`lab.tls.TlsFileError` naming the file, not every node
    looking down (or a wait timing out)."""
    options = spec.tls_kwargs()
    if options:
        check_client_files(options["ssl_ca_certs"], options["ssl_certfile"], options["ssl_keyfile"])
    return options


def node_client(spec: LabSpec, node: Node, timeout: float = 2.0, **kw: Any) -> redis.Redis:
    """A :func:`client` of one of the lab's nodes, logged in as the lab's tools (``admin`` when the
    lab has ACL users), over TLS when the lab runs it."""
    auth = spec.auth(node.kind)
    return client(node.host, node.port, auth["password"], timeout, username=auth["username"], **tls_kwargs(spec), **kw)


def _error(exc: resp.RespError) -> str:
    return f"{exc.kind}: {exc}".splitlines()[0]


def _ask(spec: LabSpec, node: Node, timeout: float, *commands: Sequence[str]) -> list[resp.Reply | resp.ReplyError]:
    """Questions to one node on its own short-lived connection (lab.resp: one round trip, logged in as the lab's
    tools, over TLS when the lab runs it): a reply, or an error reply, per question."""
    auth = spec.auth(node.kind)
    login = {"username": auth["username"], "password": auth["password"]}
    with resp.Connection(node.host, node.port, timeout=timeout, tls=tls_kwargs(spec), **login) as conn:
        return conn.pipeline(*commands)


def _answer(reply: resp.Reply | resp.ReplyError) -> resp.Reply:
    if isinstance(reply, resp.ReplyError):
        raise reply
    return reply


def _number(fields: dict[str, str], key: str, command: str) -> int:
    """An integer field of a reply (INFO's ``master_port``, SENTINEL MASTER's ``port``): one that is missing or
    not a number is a protocol problem of that node, in lab.resp's words, not a ValueError."""
    value = fields.get(key)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        raise resp.RespError(
            "InvalidResponse", f"Protocol error, {command} {key} is not a number: {str(value)[:40]!r}"
        ) from None


def _field(fields: dict[str, str], key: str, command: str) -> str:
    if key not in fields:
        raise resp.RespError("InvalidResponse", f"Protocol error, {command} reply without {key}")
    return fields[key]


def observe_redis(spec: LabSpec, node: Node, timeout: float = 0.5) -> RedisView:
    view = RedisView(node)
    try:
        (reply,) = _ask(spec, node, timeout, ("INFO", "replication"))
        info = resp.parse_info(str(_answer(reply)))
        role = info.get("role", "")
        if role == "slave":
            master_port = _number(info, "master_port", "INFO")
            offset = _number(info, "slave_repl_offset", "INFO")
        else:
            master_port, offset = 0, _number(info, "master_repl_offset", "INFO")
    except resp.RespError as exc:
        view.error = _error(exc)
        return view
    view.reachable = True
    view.role, view.offset = role, offset
    if view.role == "slave":
        view.master_host = info.get("master_host", "")
        view.master_port = master_port
        view.link_up = info.get("master_link_status") == "up"
    else:
        view.replicas_online = sum(
            1 for k, v in info.items() if _replica_line(k) and resp.fields(v).get("state") == "online"
        )
    return view


def _replica_line(key: str) -> bool:
    """``slave0``, ``slave1``...: a master's line per replica in INFO replication."""
    return key.startswith("slave") and key[5:].isdigit()


def observe_sentinel(spec: LabSpec, node: Node, timeout: float = 0.5) -> SentinelView:
    view = SentinelView(node)
    name = spec.master_name
    try:
        master, replicas, peers, ckquorum = _ask(
            spec,
            node,
            timeout,
            ("SENTINEL", "MASTER", name),
            ("SENTINEL", "SLAVES", name),
            ("SENTINEL", "SENTINELS", name),
            ("SENTINEL", "CKQUORUM", name),
        )
        entry = resp.pairs(_answer(master))
        address = (_field(entry, "ip", "SENTINEL MASTER"), _number(entry, "port", "SENTINEL MASTER"))
        master_flags = _field(entry, "flags", "SENTINEL MASTER")
        num_replicas = _number(entry, "num-slaves", "SENTINEL MASTER")
        num_peers = _number(entry, "num-other-sentinels", "SENTINEL MASTER")
        replica_flags = _flags(_answer(replicas), "SENTINEL SLAVES")
        peer_flags = _flags(_answer(peers), "SENTINEL SENTINELS")
    except resp.RespError as exc:
        view.error = _error(exc)
        return view
    view.replica_flags, view.peer_flags = replica_flags, peer_flags
    # The reply's text, an error's too ("NOQUORUM 1 usable Sentinels...").
    view.ckquorum = str(ckquorum)
    view.reachable = True
    view.master = address
    view.master_flags = master_flags
    view.num_replicas = num_replicas
    view.num_other_sentinels = num_peers
    return view


def _flags(reply: resp.Reply, command: str) -> dict[str, str]:
    """Each entry's flags by its address ("host:port")."""
    found = {}
    for item in _entries(reply):
        entry = resp.pairs(item)
        found[f"{entry.get('ip', '?')}:{entry.get('port', '?')}"] = _field(entry, "flags", command)
    return found


def _entries(reply: resp.Reply) -> list[resp.Reply]:
    if not isinstance(reply, list):
        raise resp.RespError("ResponseError", f"expected a list of entries, got {reply!r}")
    return reply


_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lab-observe")


def missing_secrets(spec: LabSpec) -> dict[str, Path]:
    """Per kind of node ("redis", "sentinel"), the lab's password file for its tools when it is gone or empty
    (a lab has one per kind: lab.spec.build_spec). Without it every node of the kind would only say
    "Authentication required": one line naming the file says why."""
    missing: dict[str, Path] = {}
    kinds: tuple[Literal["redis", "sentinel"], ...] = ("redis", "sentinel")
    for kind in kinds:
        try:
            known = spec.auth(kind)["password"]
        except KeyError:  # an ACL lab without its tools' user file
            known = None
        if not known:
            missing[kind] = spec.base_dir / spec.secret_file(kind)[1]
    return missing


def observe(spec: LabSpec, timeout: float = 0.5) -> Observation:
    """Query all nodes concurrently (one round trip per node, within ``timeout`` once connected: lab.resp)."""
    tls_kwargs(spec)  # a TLS file problem is one error up front, not six nodes "down"
    missing = missing_secrets(spec)
    redis_f = [_POOL.submit(observe_redis, spec, n, timeout) for n in spec.redis_nodes if "redis" not in missing]
    sent_f = [_POOL.submit(observe_sentinel, spec, n, timeout) for n in spec.sentinels if "sentinel" not in missing]
    redis_views = [f.result() for f in redis_f] if "redis" not in missing else [RedisView(n) for n in spec.redis_nodes]
    sentinel_views = (
        [f.result() for f in sent_f] if "sentinel" not in missing else [SentinelView(n) for n in spec.sentinels]
    )
    views: list[RedisView | SentinelView] = [*redis_views, *sentinel_views]
    for view in views:
        if view.node.kind in missing:
            view.error = f"not asked: no password ({missing[view.node.kind]})"
    return Observation(redis_views, sentinel_views, missing)


def problems(spec: LabSpec, obs: Observation) -> list[str]:
    """Everything that keeps the lab from being healthy; empty means healthy.

    Healthy: every Sentinel names the same master, that node is a master, every other data node
    replicates from it with the link up, every Sentinel sees the master, 2 replicas and 2 peers all
    without s_down/o_down/disconnected flags, and CKQUORUM is OK.
    """
    found: list[str] = [
        f"{path} is {'empty' if path.is_file() else 'missing'}: the lab's password for its {kind} nodes "
        f"({', '.join(n.name for n in spec.nodes if n.kind == kind)}), which were not asked"
        for kind, path in obs.missing_secrets.items()
    ]
    wanted_replicas = len(spec.redis_nodes) - 1
    wanted_peers = len(spec.sentinels) - 1
    names = {f"{n.host}:{n.port}": n.name for n in spec.nodes}
    for s in obs.sentinels:
        if s.node.kind in obs.missing_secrets:
            continue
        if not s.reachable:
            found.append(f"{s.node.name} unreachable ({s.error})")
            continue
        if s.master_flags != "master":
            found.append(f"{s.node.name} flags the master {s.master_flags}")
        if s.num_replicas != wanted_replicas or len(s.replica_flags) != wanted_replicas:
            found.append(f"{s.node.name} knows {s.num_replicas} replicas, not {wanted_replicas}")
        if s.num_other_sentinels != wanted_peers:
            found.append(f"{s.node.name} knows {s.num_other_sentinels} other Sentinels, not {wanted_peers}")
        for where, flags in sorted(s.replica_flags.items(), key=lambda item: names.get(item[0], item[0])):
            if flags != "slave":
                found.append(f"{s.node.name} sees replica {names.get(where, where)} flagged {flags}")
        for where, flags in sorted(s.peer_flags.items(), key=lambda item: names.get(item[0], item[0])):
            # master_down on a peer is its last vote about the master, not a fault of the peer itself.
            if ",".join(x for x in flags.split(",") if x != "master_down") != "sentinel":
                found.append(f"{s.node.name} sees Sentinel {names.get(where, where)} flagged {flags}")
        if not s.ckquorum.startswith("OK"):
            found.append(f"{s.node.name} CKQUORUM: {s.ckquorum or 'no answer'}")
    agreed = obs.master
    if agreed is None and "sentinel" not in obs.missing_secrets:
        masters = sorted({f"{s.master[0]}:{s.master[1]}" for s in obs.sentinels if s.master})
        found.append(f"Sentinels do not agree on one master (they name: {', '.join(masters) or 'none'})")
    for r in obs.redis:
        if r.node.kind in obs.missing_secrets:
            continue
        if not r.reachable:
            found.append(f"{r.node.name} unreachable ({r.error})")
        elif agreed and (r.node.host, r.node.port) == agreed:
            if r.role != "master":
                found.append(f"{r.node.name} is named master by the Sentinels but reports role {r.role}")
            elif r.replicas_online != wanted_replicas:
                found.append(f"{r.node.name} (master) has {r.replicas_online} replicas online, not {wanted_replicas}")
        elif r.role != "slave":
            found.append(f"{r.node.name} reports role {r.role}, expected replica")
        elif agreed and (r.master_host, r.master_port) != agreed:
            found.append(f"{r.node.name} replicates from {r.master_host}:{r.master_port}, not the master")
        elif not r.link_up:
            found.append(f"{r.node.name} replication link is down" + _cannot_sync(spec, obs, r.node))
    return found


INCOMPATIBLE = "cannot load the RDB format"


def _cannot_sync(spec: LabSpec, obs: Observation, replica: Node) -> str:
    """Why a replica's link stays down when its build cannot read what its master's build sends in a
    full sync (an older replica under a newer master: Redis 6.2 under 7.0, 7.0 under Valkey 8)."""
    master = next((n for n in spec.redis_nodes if (n.host, n.port) == obs.master), None)
    try:
        mine, theirs = spec.server(replica), spec.server(master) if master else None
    except LabError:  # a recorded binary renamed or deleted since: no verdict on formats, not a crash
        return ""
    if master is None or mine is None or theirs is None or theirs.rdb_version is None:
        return ""
    if mine.reads_rdb(theirs.rdb_version):
        return ""
    return (
        f": its {mine.name} {INCOMPATIBLE} {theirs.rdb_version} that {master.name} ({theirs.name}) sends in a "
        f"full sync; upgrade it (`lab upgrade --name {spec.name} {replica.name} --server {theirs.name}`)"
    )


def sentinel_for(spec: LabSpec, **kw: Any) -> Sentinel:
    """A redis-py Sentinel for the lab as its applications connect (the ``app`` user on data nodes
    and ``client`` on Sentinels when the lab has ACL users), with short timeouts so failover drills
    see changes fast."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    discovery = spec.auth("sentinel", "client")
    tls = tls_kwargs(spec)
    app: dict[str, Any] = {**spec.auth("redis", "app"), **tls}
    return Sentinel(
        spec.sentinel_addrs(),
        # A dead container does not refuse: without a connect timeout each dead Sentinel costs ~3 s.
        sentinel_kwargs={
            **discovery,
            **tls,
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
            "retry": Retry(NoBackoff(), 0),
        },
        **app,
        socket_timeout=1,
        socket_connect_timeout=0.5,
        decode_responses=True,
        # Drills retry themselves and time it: redis-py's default backoff (up to 10 s between
        # tries) would be measured instead of the failover.
        retry=Retry(NoBackoff(), 0),
        **kw,
    )
