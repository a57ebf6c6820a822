"""The one model of a lab: nodes, roles, addresses, ports, secrets, timers and where files live.

Rendering, backends, the CLI and the pytest fixtures all read a :class:`LabSpec`; nothing else
holds a port, an address or a password.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lab.errors import LabError, UsageError
from lab.home import check_path_text, validate_name
from lab.secretfiles import read_secret, write_secret
from lab.servers import Server, identity, probe
from lab.tls import TLS_DIR, TlsFiles

if TYPE_CHECKING:  # a profile (pydantic, YAML) is loaded to make a lab, not to read one
    from lab.profile import Profile

REDIS_NODES = ("redis-1", "redis-2", "redis-3")
SENTINEL_NODES = ("sentinel-1", "sentinel-2", "sentinel-3")
NODE_NAMES = REDIS_NODES + SENTINEL_NODES
#: The shared passwords of the default user (a lab without ACL users), beside its state (0600).
REDIS_SECRET = "redis.pass"
SENTINEL_SECRET = "sentinel.pass"
#: The compose backend's environment file in a lab's directory.
COMPOSE_ENV = "compose.env"
#: The directory of the ACL users' password files (0700, files 0600), beside a lab's state.
ACL_DIR = "users"
#: The directory of the lab's monitoring (lab.monitoring: its configs, rules, processes' directories).
MONITORING_DIR = "monitoring"
Layout = Literal["local", "hosts", "compose"]


@dataclass(frozen=True)
class Node:
    """One process of the lab. ``name`` never changes; the role of a redis node does on failover."""

    name: str
    kind: Literal["redis", "sentinel"]
    host: str
    port: int
    replica_priority: int = 100

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeFiles:
    """Where a node's files live, as its config names them."""

    dir: Path
    conf: Path
    pidfile: Path
    logfile: Path


@dataclass(frozen=True)
class Monitoring:
    """The lab's monitoring (``lab up --monitoring``): each component's port on 127.0.0.1 (``prometheus``,
    ``alertmanager``, ``webhook``, and ``exporter/<node>`` per node) and the intervals it was rendered with."""

    ports: dict[str, int]
    scrape_s: float
    evaluation_s: float

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"


@dataclass(frozen=True)
class Remote:
    """Where a node of an attached lab (`lab attach`: hosts the lab did not start) runs, and how to reach it:
    the host's SSH login (no password: a key, or the user's agent) and the node's command there."""

    host: str  # the inventory's name for it
    address: str
    user: str
    port: int
    key: str  # a private key file ("": ssh's default or agent)
    ssh_args: tuple[str, ...]  # the inventory's ansible_ssh_common_args, split
    command: str  # /opt/redis-ha/bin/<node>: start|stop|restart|status
    pidfile: str

    @property
    def sudo(self) -> bool:
        return self.user != "root"


@dataclass(frozen=True)
class LabSpec:
    name: str
    profile: str
    backend: str
    layout: Layout
    base_dir: Path
    master_name: str
    quorum: int
    down_after_ms: int
    databases: dict[str, int]
    nodes: tuple[Node, ...]
    password: str = field(repr=False)
    sentinel_password: str | None = field(repr=False, default=None)
    #: TLS only: every node's port takes TLS (``port 0``), with the lab's own CA under ``tls/``.
    tls: bool = False
    #: ACL users and their passwords (a profile with ``acl.enabled``): "users/app" -> password for
    #: the data nodes' users, "sentinel_users/client" for the Sentinels'. Empty: one shared password
    #: per kind (``password``, ``sentinel_password``) for the ``default`` user.
    acl_passwords: dict[str, str] = field(repr=False, default_factory=dict)
    profile_paths: dict[str, str] = field(default_factory=dict)
    #: node name -> the server binary it runs (``lab up --server``); empty: no particular build
    #: (a plain `lab render`), so nothing is adapted to one.
    servers: dict[str, str] = field(default_factory=dict)
    #: node name -> [device, inode] of the file ``servers`` named when the lab chose it: a node's process is
    #: still known by it once that file is renamed or deleted. Absent in labs from before it was recorded.
    server_ids: dict[str, list[int]] = field(default_factory=dict)
    #: Prometheus, Alertmanager and an exporter per node beside the lab; None: no monitoring.
    monitoring: Monitoring | None = None
    #: An attached lab (backend ``ssh``): node name -> the host it runs on. Empty for a lab the lab started.
    remotes: dict[str, Remote] = field(default_factory=dict)
    #: Set on load, never saved: where the lab was created, when its directory has since been moved
    #: (its containers and firewall chain are still named after that path) or copied (the original
    #: there is another lab, which this one must never act on).
    moved_from: Path | None = None
    copy_of: Path | None = None

    @property
    def identity_dir(self) -> Path:
        """The directory the lab's backend resources (compose project, iptables chain) are named after."""
        return self.moved_from or self.base_dir

    @property
    def redis_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "redis")

    @property
    def sentinels(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "sentinel")

    @property
    def initial_master(self) -> Node:
        return self.redis_nodes[0]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise UsageError(f"unknown node {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def server(self, node: Node) -> Server | None:
        """The build ``node`` runs (its own ``--version`` decides what it is), if the lab names one."""
        binary = self.servers.get(node.name)
        return probe(binary) if binary else None

    def with_server(self, node: Node, server: Server) -> LabSpec:
        ids = {k: v for k, v in self.server_ids.items() if k != node.name}
        if (found := identity(server.server_bin)) is not None:
            ids[node.name] = list(found)
        return replace(self, servers={**self.servers, node.name: str(server.server_bin)}, server_ids=ids)

    def server_id(self, node: Node) -> tuple[int, int] | None:
        """(device, inode) of the binary recorded for ``node`` when it was chosen, if recorded."""
        found = self.server_ids.get(node.name)
        try:
            return (int(found[0]), int(found[1])) if found and len(found) == 2 else None
        except (TypeError, ValueError):
            return None

    def files(self, node: Node) -> NodeFiles:
        conf_name = "redis.conf" if node.kind == "redis" else "sentinel.conf"
        if self.layout == "hosts":
            prefix = "" if node.kind == "redis" else "sentinel_"
            p = self.profile_paths
            return NodeFiles(
                dir=Path(p[f"{prefix}dir"]),
                conf=self.base_dir / node.name / conf_name,
                pidfile=Path(p[f"{prefix}pidfile"]),
                logfile=Path(p[f"{prefix}logfile"]),
            )
        node_dir = self.base_dir / node.name
        return NodeFiles(
            dir=node_dir,
            conf=node_dir / conf_name,
            pidfile=node_dir / f"{node.kind}.pid",
            logfile=node_dir / f"{node.kind}.log",
        )

    def config_paths(self, node: Node) -> NodeFiles:
        """The paths as the node's own config names them (inside its container for compose)."""
        files = self.files(node)
        if self.layout != "compose":
            return files
        inside = Path("/data")
        return NodeFiles(
            dir=inside,
            conf=inside / files.conf.name,
            pidfile=inside / files.pidfile.name,
            logfile=inside / files.logfile.name,
        )

    @property
    def acl(self) -> bool:
        return bool(self.acl_passwords)

    def auth(self, kind: Literal["redis", "sentinel"], user: str = "admin") -> dict[str, str | None]:
        """redis-py's ``username``/``password`` for ``kind`` nodes: with ACL users, ``user``'s (the
        lab's tools are ``admin``; applications ``app`` on data nodes, ``client`` on Sentinels);
        without, the shared password of the ``default`` user."""
        if self.acl:
            section = "users" if kind == "redis" else "sentinel_users"
            return {"username": user, "password": self.acl_passwords[f"{section}/{user}"]}
        return {"username": None, "password": self.password if kind == "redis" else self.sentinel_password}

    def tls_files(self, node: Node | None = None) -> TlsFiles:
        """The lab's CA and certificates: on this host, or as ``node``'s config names them (compose: /tls)."""
        if node is not None and self.layout == "compose":
            return TlsFiles.under(Path("/") / TLS_DIR)
        return TlsFiles.under(self.base_dir / TLS_DIR)

    def tls_kwargs(self) -> dict[str, Any]:
        """redis-py's TLS options for a client of this lab (its CA, the client certificate), or none."""
        if not self.tls:
            return {}
        files = self.tls_files()
        return {
            "ssl": True,
            "ssl_ca_certs": str(files.ca),
            "ssl_certfile": str(files.client_cert),
            "ssl_keyfile": str(files.client_key),
        }

    def secret_file(self, kind: Literal["redis", "sentinel"], user: str = "admin") -> tuple[str, str]:
        """(user name, its password file relative to the lab's directory): what :meth:`auth` gives,
        for a shell or a container that reads the password from a file."""
        if self.acl:
            return user, acl_secret_file(f"{'users' if kind == 'redis' else 'sentinel_users'}/{user}")
        return "default", REDIS_SECRET if kind == "redis" else SENTINEL_SECRET

    def sentinel_myid(self, node: Node) -> str:
        """A stable, per-lab unique Sentinel run id (40 hex), used to seed discovery."""
        return hashlib.sha1(f"{self.name}/{node.name}".encode()).hexdigest()

    def sentinel_addrs(self) -> list[tuple[str, int]]:
        return [(n.host, n.port) for n in self.sentinels]

    def to_dict(self) -> dict[str, Any]:
        """Serialisable form without secrets (those live in 0600 files beside the state)."""
        data = asdict(self)
        for private in ("password", "sentinel_password", "acl_passwords", "moved_from", "copy_of"):
            data.pop(private)
        data["base_dir"] = str(self.base_dir)
        return data

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], password: str, sentinel_password: str | None, acl_passwords: dict[str, str]
    ) -> LabSpec:
        fields = dict(data)
        fields["nodes"] = tuple(Node(**n) for n in data["nodes"])
        fields["base_dir"] = Path(data["base_dir"])
        if data.get("monitoring"):
            fields["monitoring"] = Monitoring(**data["monitoring"])
        if data.get("remotes"):
            fields["remotes"] = {
                k: Remote(**{**r, "ssh_args": tuple(r["ssh_args"])}) for k, r in data["remotes"].items()
            }
        return cls(**fields, password=password, sentinel_password=sentinel_password, acl_passwords=acl_passwords)


def loopback_subnet(name: str) -> str:
    """127.A.B for a lab name: labs side by side get different addresses, all on loopback."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"127.{1 + digest[0] % 254}.{digest[1]}"


def acl_secret_file(key: str) -> str:
    """Where an ACL user's password lives, relative to a lab's (or a render's) directory:
    "users/app" -> users/redis-app.pass, "sentinel_users/client" -> users/sentinel-client.pass."""
    section, _, user = key.partition("/")
    return f"{ACL_DIR}/{'redis' if section == 'users' else 'sentinel'}-{user}.pass"


def read_acl_secrets(directory: Path) -> dict[str, str]:
    """The ACL users' passwords saved under ``directory`` (see :func:`acl_secret_file`)."""
    found = {}
    for path in sorted((directory / ACL_DIR).glob("*.pass")):
        kind, _, user = path.stem.partition("-")
        if (secret := read_secret(path)) and kind in ("redis", "sentinel"):
            found[f"{'users' if kind == 'redis' else 'sentinel_users'}/{user}"] = secret
    return found


def write_acl_secrets(directory: Path, passwords: dict[str, str]) -> None:
    for key, password in passwords.items():
        write_secret(directory / acl_secret_file(key), password)
    if passwords:
        os.chmod(directory / ACL_DIR, 0o700)


def build_spec(
    name: str,
    profile: Profile,
    *,
    backend: str,
    base_dir: Path,
    layout: Layout = "local",
    secrets_dir: Path | None = None,
    net: str | None = None,
    servers: dict[str, Server] | None = None,
) -> LabSpec:
    """Place the lab's six nodes and settle its secrets.

    ``layout='local'`` puts every node on its own loopback address (127.A.B.1-3 for Redis,
    .11-13 for Sentinels) with files under ``base_dir/<node>``; ``layout='compose'`` does the same
    on the lab's container network ``net`` (.11-13 and .21-23); ``layout='hosts'`` uses the profile's production hosts
    and paths. Passwords come from the profile/environment, else from
    ``secrets_dir`` (an earlier run of the same lab), else are generated.
    """
    import secrets

    from lab.profile import PROFILES_DIR

    validate_name(name)
    check_path_text(base_dir)
    for path in profile.paths.values():
        check_path_text(Path(path))
    if layout == "hosts":
        missing = [n for n in REDIS_NODES + SENTINEL_NODES if n not in profile.hosts]
        if missing:
            raise LabError(f"profile {profile.name}: topology.hosts lacks {', '.join(missing)}")
        host_of = dict(profile.hosts)
    else:
        # local: 127.A.B.x on loopback; compose: the lab's own container network (chosen at up).
        net = net or loopback_subnet(name)
        first = 11 if layout == "compose" else 1  # .1 of a container network is its gateway
        host_of = {n: f"{net}.{i}" for i, n in enumerate(REDIS_NODES, start=first)}
        host_of |= {n: f"{net}.{i}" for i, n in enumerate(SENTINEL_NODES, start=first + 10)}
    nodes = tuple(
        Node(n, "redis", host_of[n], profile.redis_port, profile.replica_priority[i]) for i, n in enumerate(REDIS_NODES)
    ) + tuple(Node(n, "sentinel", host_of[n], profile.sentinel_port) for n in SENTINEL_NODES)

    def secret(given: str | None, filename: str) -> str:
        if given:
            return given
        if secrets_dir is not None and (stored := read_secret(secrets_dir / filename)):
            return stored
        return secrets.token_hex(24)

    stored_users = read_acl_secrets(secrets_dir) if secrets_dir is not None else {}
    acl_passwords = {
        key: profile.acl_passwords.get(key) or stored_users.get(key) or secrets.token_hex(24)
        for key in (f"{section}/{user}" for section, users in profile.acl.items() for user in users)
    }

    return LabSpec(
        name=name,
        profile=profile.name if profile.source.parent == PROFILES_DIR else str(profile.source),
        backend=backend,
        layout=layout,
        base_dir=base_dir,
        master_name=profile.master_name,
        quorum=profile.quorum,
        down_after_ms=int(profile.sentinel["down_after_milliseconds"]),
        databases=dict(profile.databases),
        nodes=nodes,
        password=secret(profile.password, "redis.pass"),
        sentinel_password=secret(profile.sentinel_password, "sentinel.pass"),
        acl_passwords=acl_passwords,
        tls=bool(profile.redis["tls"]["enabled"]),
        profile_paths=dict(profile.paths),
        servers={node: str(server.server_bin) for node, server in (servers or {}).items()},
        server_ids={
            node: list(found) for node, server in (servers or {}).items() if (found := identity(server.server_bin))
        },
    )
