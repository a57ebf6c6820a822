"""Profiles: the values behind the templates, from conf/profiles/*.yaml and the environment.

A profile is checked against a typed schema (:class:`ProfileFile`): an unknown key is an error with
a "did you mean", memory and time values must be what Redis accepts, and no value may hold a
newline or another control character (it would inject a directive into the rendered file).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from lab import CONF_DIR
from lab.errors import UsageError
from lab.secretfiles import write_secret

PROFILES_DIR = CONF_DIR / "profiles"
ROLES = ("session", "cache", "pubsub")
NodeName = Literal["redis-1", "redis-2", "redis-3", "sentinel-1", "sentinel-2", "sentinel-3"]
# A value Redis reads as one token in a config file and redis-cli/URLs pass through unchanged.
SAFE_SECRET = re.compile(r"^[A-Za-z0-9!#$%&()*+,\-./:;<=>?@\[\]^_{|}~]{1,512}$")
#: Set by `lab env`: which of the variables it exported still hold its values (see env_marker).
ENV_MARKER = "REDIS_HA_LAB_ENV"
#: Variables that place nodes on production hosts: meaningless (and refused) for a lab on loopback.
PLACEMENT_VARS = ("REDIS_HOST", "SENTINEL_HOSTS")
OVERRIDE_VARS = (
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "SENTINEL_HOSTS",
    "SENTINEL_MASTER_NAME",
    "SENTINEL_PASSWORD",
    "REDIS_SESSION_DB_INDEX",
    "REDIS_CACHE_DB_INDEX",
    "REDIS_PUBSUB_DB_INDEX",
)
SECRET_VARS = {"REDIS_PASSWORD", "SENTINEL_PASSWORD"}
ACL_VARS = {"REDIS": "REDIS_ACL_<USER>_PASSWORD[_FILE]", "SENTINEL": "SENTINEL_ACL_<USER>_PASSWORD[_FILE]"}


# -- value types ------------------------------------------------------------------------------
def _no_control(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("holds a newline or another control character (it would inject a config line)")
    return value


def _yes_no(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value.lower() if isinstance(value, str) else value


def _memory(value: Any) -> str:
    text = str(value).strip().lower() if isinstance(value, int | str) and not isinstance(value, bool) else None
    if text is None or not re.fullmatch(r"\d+(b|k|kb|m|mb|g|gb)?", text):
        raise ValueError("a memory size is a non-negative number with an optional unit (b, k, kb, m, mb, g, gb)")
    return text


def _save_rule(value: str) -> str:
    if not re.fullmatch(r"\d+ \d+", value.strip()):
        raise ValueError("a save rule is 'SECONDS CHANGES', e.g. '300 100'")
    return value.strip()


def _buffer_limit(value: str) -> str:
    parts = value.split()
    if len(parts) != 4 or parts[0].lower() not in ("normal", "replica", "slave", "pubsub"):
        raise ValueError("expected 'CLASS HARD SOFT SECONDS' with CLASS normal, replica or pubsub")
    _memory(parts[1])
    _memory(parts[2])
    if not parts[3].isdigit():
        raise ValueError("the last field of a client-output-buffer-limit is whole seconds")
    return " ".join(parts)


def _filename(value: str) -> str:
    if not value or "/" in value:
        raise ValueError("a file name without a directory")
    return value


def _keyspace_flags(value: str) -> str:
    if set(value) - set("KEg$lshzxetmndA"):
        raise ValueError("notify-keyspace-events flags are a combination of KEg$lshzxetmndA")
    return value


Str = Annotated[str, AfterValidator(_no_control)]
YesNo = Annotated[Literal["yes", "no"], BeforeValidator(_yes_no)]
YesNoLocal = Annotated[Literal["yes", "no", "local"], BeforeValidator(_yes_no)]
Memory = Annotated[str, BeforeValidator(_memory)]
Port = Annotated[int, Field(ge=1, le=65535)]
NonNeg = Annotated[int, Field(ge=0)]
Millis = Annotated[int, Field(ge=1, le=2**31 - 1)]
LogLevel = Literal["debug", "verbose", "notice", "warning", "nothing"]
Filename = Annotated[Str, AfterValidator(_filename)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class Tls(Strict):
    """TLS only (``port 0``): the nodes' ports take TLS, replication and Sentinel use it. A lab makes
    its own CA and certificates (``lab up --tls``); a production render names the files."""

    enabled: bool = False
    auth_clients: Annotated[Literal["yes", "no", "optional"], BeforeValidator(_yes_no)] = "yes"
    cert_file: Str = ""
    key_file: Str = ""
    ca_cert_file: Str = ""


def _acl_rules(value: str) -> str:
    """ACL rules after a user's name: never a password (those come from the environment or a file)."""
    for token in value.split():
        if token[0] in "<>#!" or token.lower() in ("on", "off", "reset", "resetpass"):
            raise ValueError(f"{token!r}: give only the rules; a user's password and on/off are set by the lab")
    return " ".join(value.split())


AclRules = Annotated[Str, AfterValidator(_acl_rules)]
UserName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
#: The users the lab wires together: tools and operators (admin), replication, Sentinel on the data
#: nodes; on the Sentinels: tools (admin), Sentinel to Sentinel (peer), clients discovering the master.
REQUIRED_USERS = {"users": ("admin", "replica", "sentinel"), "sentinel_users": ("admin", "peer", "client")}


class Acl(Strict):
    """Named users with least privilege instead of one shared password (``default`` is off)."""

    enabled: bool = False
    users: dict[UserName, AclRules] = {}
    sentinel_users: dict[UserName, AclRules] = {}

    @model_validator(mode="after")
    def _lab_users(self) -> Acl:
        if self.enabled:
            for section, names in REQUIRED_USERS.items():
                missing = [n for n in names if n not in getattr(self, section)]
                if missing:
                    raise ValueError(f"{section} lacks {', '.join(missing)} (the lab connects as them)")
        return self


class RedisSection(Strict):
    include: list[Str]
    bind: list[Str] = ["*", "-::*"]
    protected_mode: YesNo
    tcp_backlog: NonNeg
    timeout: NonNeg
    tcp_keepalive: NonNeg
    loglevel: LogLevel
    databases: Annotated[int, Field(ge=1, le=10_000)]
    maxclients: Annotated[int, Field(ge=1)]
    save: list[Annotated[Str, AfterValidator(_save_rule)]]
    stop_writes_on_bgsave_error: YesNo
    rdbcompression: YesNo
    dbfilename: Filename
    appendonly: YesNo
    appendfilename: Filename
    appenddirname: Filename
    appendfsync: Literal["always", "everysec", "no"]
    no_appendfsync_on_rewrite: YesNo
    aof_use_rdb_preamble: YesNo
    auto_aof_rewrite_percentage: NonNeg
    auto_aof_rewrite_min_size: Memory
    replica_read_only: YesNo
    replica_serve_stale_data: YesNo
    repl_diskless_sync: YesNo
    repl_diskless_sync_delay: NonNeg
    repl_backlog_size: Memory
    repl_timeout: Annotated[int, Field(ge=1)]
    min_replicas_to_write: NonNeg
    min_replicas_max_lag: NonNeg
    maxmemory: Memory
    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ]
    maxmemory_samples: Annotated[int, Field(ge=1, le=64)]
    lazyfree: YesNo
    notify_keyspace_events: Annotated[Str, AfterValidator(_keyspace_flags)]
    slowlog_log_slower_than: Annotated[int, Field(ge=-1)]
    slowlog_max_len: NonNeg
    latency_monitor_threshold: NonNeg
    enable_debug_command: YesNoLocal
    enable_protected_configs: YesNoLocal
    client_output_buffer_limit: list[Annotated[Str, AfterValidator(_buffer_limit)]]
    tls: Tls


class SentinelSection(Strict):
    protected_mode: YesNo
    down_after_milliseconds: Millis
    failover_timeout: Millis
    parallel_syncs: Annotated[int, Field(ge=1)]
    master_reboot_down_after_period: NonNeg
    resolve_hostnames: YesNo
    announce_hostnames: YesNo
    deny_scripts_reconfig: YesNo
    loglevel: LogLevel


class Paths(Strict):
    dir: Str
    sentinel_dir: Str
    pidfile: Str
    sentinel_pidfile: Str
    logfile: Str
    sentinel_logfile: Str


class Topology(Strict):
    master_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    redis_port: Port
    sentinel_port: Port
    quorum: Annotated[int, Field(ge=1, le=3)]
    replica_priority: Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(min_length=3, max_length=3)]
    seed_sentinel_discovery: bool = False
    hosts: dict[NodeName, Annotated[Str, Field(min_length=1)]] = {}
    paths: Paths | None = None


class Databases(Strict):
    session: NonNeg
    cache: NonNeg
    pubsub: NonNeg


def duration_seconds(value: str) -> float:
    """A Prometheus duration of one unit ("15s", "500ms", "5m") in seconds; ValueError if it is none."""
    match = re.fullmatch(r"([0-9]{1,6})(ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"{value!r}: a duration such as 15s, 500ms or 5m")
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match[2]]


def _seconds(value: str, low: float, high: float) -> str:
    """A duration from ``low`` to ``high`` seconds."""
    seconds = duration_seconds(value)
    if not low <= seconds <= high:
        raise ValueError(f"{value!r}: from {low:g} s to {high:g} s")
    return value


def _for(value: str) -> str:
    return _seconds(value, 0, 24 * 3600)


def _interval(value: str) -> str:
    return _seconds(value, 1, 60)


def _window(value: str) -> str:
    return _seconds(value, 1, 24 * 3600)


Duration = Annotated[str, AfterValidator(_for)]  # an alert's `for:` (0: at once)
Interval = Annotated[str, AfterValidator(_interval)]  # scrape, evaluation: a lab waits a few of them at `up`
Window = Annotated[str, AfterValidator(_window)]


class AlertTimers(Strict):
    """How long each shipped alert's condition must hold before it fires (its ``for:``), and how long
    after a failover the informational RedisFailover alert stays up (``failover_window``)."""

    node_down: Duration = "1m"
    no_master: Duration = "30s"
    two_masters: Duration = "30s"
    replication: Duration = "1m"
    sentinel: Duration = "30s"
    sentinel_peer: Duration = "1m"
    tilt: Duration = "10s"
    resources: Duration = "5m"
    failover_window: Window = "5m"


class MonitoringSection(Strict):
    """redis_exporter, Prometheus and Alertmanager beside the lab (``lab up --monitoring``)."""

    enabled: bool = False
    scrape_interval: Interval = "15s"
    evaluation_interval: Interval = "15s"
    alerts: AlertTimers = AlertTimers()


class ProfileFile(Strict):
    """The schema of a profile YAML file (after ``extends`` is merged)."""

    description: Str = ""
    topology: Topology
    databases: Databases
    redis: RedisSection
    sentinel: SentinelSection
    acl: Acl = Acl()
    monitoring: MonitoringSection = MonitoringSection()


# -- the loaded profile -----------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """A validated profile. ``redis`` and ``sentinel`` are the template's directive values."""

    name: str
    source: Path
    master_name: str
    redis_port: int
    sentinel_port: int
    quorum: int
    replica_priority: tuple[int, ...]
    seed_sentinel_discovery: bool
    databases: dict[str, int]
    redis: dict[str, Any]
    sentinel: dict[str, Any]
    hosts: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    sentinel_password: str | None = None
    #: ACL users (``acl.enabled``): section ("users" for data nodes, "sentinel_users") -> name -> rules.
    acl: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Their passwords given by the environment or files: "users/app" -> password.
    acl_passwords: dict[str, str] = field(default_factory=dict, repr=False)
    #: Environment overrides applied ("REDIS_PORT=7001", secrets as "(set)") and ignored (with why).
    applied: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    #: lab.monitoring's settings: enabled, scrape and evaluation intervals, the alerts' timers.
    monitoring: dict[str, Any] = field(default_factory=lambda: MonitoringSection().model_dump())


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def profile_path(name_or_path: str) -> Path:
    """conf/profiles/NAME.yaml, or a path to the user's own file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not candidate.is_file():
            raise UsageError(f"profile file {name_or_path} does not exist")
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown profile {name_or_path!r} (available: {', '.join(available_profiles())})")
    return path


def _int(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UsageError(f"{where}: expected an integer from {lo} to {hi}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"{where}: expected an integer from {lo} to {hi}, got {value!r}") from None
    if not lo <= number <= hi:
        raise UsageError(f"{where}: {number} is out of range ({lo} to {hi})")
    return number


def _secret(where: str, value: str | None) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    if not SAFE_SECRET.match(value):
        raise UsageError(
            f"{where}: a password must be 1-512 printable characters without spaces, quotes or backslashes"
        )
    return value


def _host_port(where: str, item: str, default_port: int) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host:
        return _no_control_env(where, item.strip()), default_port
    return _no_control_env(where, host), _int(where, port, 1, 65535)


def _no_control_env(where: str, value: str) -> str:
    try:
        return _no_control(value)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile's mapping; ``extends: NAME`` merges it over another profile (nested keys override)."""
    if path in seen:
        raise UsageError(f"{path}: 'extends' loops back to itself")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read profile {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a profile is a YAML mapping")
    parent = data.pop("extends", None)
    if parent:
        base_path = (path.parent / parent) if str(parent).endswith((".yaml", ".yml")) else profile_path(str(parent))
        data = _merge(_read_yaml(base_path, (*seen, path)), data)
    return cast(dict[str, Any], data)


def profile_data(name_or_path: str) -> dict[str, Any]:
    """A profile's data with ``extends`` merged in (before validation), e.g. to derive a variant."""
    return _read_yaml(profile_path(name_or_path))


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The schema model that owns the last element of an error location (for "did you mean")."""
    model: type[BaseModel] = ProfileFile
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        annotation = getattr(info, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if nested is None:
            return None
        model = nested
    return model


def _schema_error(where: Path, exc: ValidationError) -> UsageError:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first["loc"])
    dotted = ".".join(str(p) for p in loc)
    if first["type"] == "extra_forbidden":
        owner = _model_at(loc)
        close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1) if owner else []
        hint = f" (did you mean {'.'.join([*map(str, loc[:-1]), close[0]])}?)" if close else ""
        message = f"unknown key{hint}"
    elif first["type"] == "missing":
        message = "missing"
    else:
        message = f"{first['msg'].removeprefix('Value error, ')} (got {first['input']!r})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return UsageError(f"{where}: {dotted}: {message}{more}")


def env_marker(name: str, values: Mapping[str, str], key_file: Path) -> str:
    """The value of REDIS_HA_LAB_ENV that `lab env` exports beside ``values``: per variable a short
    keyed hash (HMAC-SHA256 with the lab's own random key, a 0600 file in its directory), so
    rendering can tell a variable still holding lab env's value from one the user set, and the
    environment holds no fingerprint of a password that could be checked against guesses."""
    key = _env_key(key_file, create=True) or b""
    digests = ",".join(f"{k}={_digest(key, k, v)}" for k, v in sorted(values.items()))
    return f"{name}:{digests}:{key_file}"


def _env_key(path: Path, create: bool = False) -> bytes | None:
    try:
        return bytes.fromhex(path.read_text().strip()) or None
    except FileNotFoundError:
        if not create:
            return None
    except (OSError, ValueError):
        return None
    key = secrets.token_bytes(32)
    write_secret(path, key.hex())
    return key


def _digest(key: bytes, var: str, value: str) -> str:
    return hmac.new(key, f"{var}={value}".encode(), hashlib.sha256).hexdigest()[:16]


def _from_lab_env(env: Mapping[str, str]) -> tuple[str, set[str]]:
    """(lab name, the variables that still hold the values `lab env` exported); none when the lab's
    key cannot be read (the lab is gone: the variables are then the user's own)."""
    name, _, rest = env.get(ENV_MARKER, "").partition(":")
    digests, _, key_file = rest.partition(":")
    key = _env_key(Path(key_file)) if key_file else None
    same: set[str] = set()
    if key is None:
        return name, same
    for item in filter(None, digests.split(",")):
        var, _, digest = item.partition("=")
        if var in env and hmac.compare_digest(_digest(key, var, env[var]), digest):
            same.add(var)
    return name, same


def effective_env(env: Mapping[str, str], on_loopback: bool) -> tuple[dict[str, str], list[str], list[str]]:
    """The overrides to apply, as (values, applied, ignored) descriptions.

    Variables `lab env` exported for a lab (and the user did not change since) are ignored: they
    describe a running lab, not what to render. On a loopback lab, REDIS_HOST and SENTINEL_HOSTS
    would move nodes off their own addresses: they are refused.
    """
    lab_name, from_lab = _from_lab_env(env)
    values: dict[str, str] = {}
    applied: list[str] = []
    ignored: list[str] = []
    for var in OVERRIDE_VARS:
        value = env.get(var)
        if not value:
            continue
        if var in from_lab:
            ignored.append(f"{var} (exported by `lab env --name {lab_name}`)")
            continue
        if on_loopback and var in PLACEMENT_VARS:
            raise UsageError(
                f"{var} is set, but this profile runs every node on its own loopback address: unset {var} "
                "(it places production nodes: render a profile with topology.hosts)"
            )
        values[var] = value
        applied.append(f"{var}=(set)" if var in SECRET_VARS else f"{var}={value}")
    return values, applied, ignored


def load_profile(name_or_path: str, env: Mapping[str, str] | None = None, *, lab: bool = False) -> Profile:
    """Load a profile by name (conf/profiles/NAME.yaml) or path, apply env overrides, validate.

    ``lab``: the profile will run as a lab on this machine (its own loopback or container addresses),
    whatever hosts it names for production.
    """
    path = profile_path(name_or_path)
    try:
        model = ProfileFile.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise _schema_error(path, exc) from None
    topo = model.topology
    values, applied, ignored = effective_env(os.environ if env is None else env, lab or not topo.hosts)
    master_name = values.get("SENTINEL_MASTER_NAME") or topo.master_name
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", master_name):
        raise UsageError(f"SENTINEL_MASTER_NAME {master_name!r} must be 1-64 of [A-Za-z0-9._-]")
    redis_port = _int("REDIS_PORT", values["REDIS_PORT"], 1, 65535) if "REDIS_PORT" in values else topo.redis_port
    if topo.sentinel_port == redis_port:
        raise UsageError(f"{path}: sentinel_port and redis_port are both {redis_port}")
    acl: dict[str, dict[str, str]] = {}
    if model.acl.enabled:
        acl = {"users": dict(model.acl.users), "sentinel_users": dict(model.acl.sentinel_users)}
        for var in ("REDIS_PASSWORD", "SENTINEL_PASSWORD"):
            if values.pop(var, None):
                applied.remove(f"{var}=(set)")
                ignored.append(f"{var} (this profile has ACL users: set {ACL_VARS[var[:-9]]})")
    return Profile(
        name=path.stem,
        source=path,
        master_name=master_name,
        redis_port=redis_port,
        sentinel_port=topo.sentinel_port,
        quorum=topo.quorum,
        replica_priority=tuple(topo.replica_priority),
        seed_sentinel_discovery=topo.seed_sentinel_discovery,
        databases=_databases(path, model, values),
        redis=copy.deepcopy(model.redis.model_dump()),
        sentinel={**model.sentinel.model_dump(), "quorum": topo.quorum},
        hosts={} if lab else _hosts(topo, values),
        paths={} if lab or topo.paths is None else topo.paths.model_dump(),
        password=_secret("REDIS_PASSWORD", values.get("REDIS_PASSWORD")),
        sentinel_password=_secret("SENTINEL_PASSWORD", values.get("SENTINEL_PASSWORD")),
        acl=acl,
        acl_passwords=acl_passwords(acl, os.environ if env is None else env),
        applied=tuple(applied),
        ignored=tuple(ignored),
        monitoring=model.monitoring.model_dump(),
    )


def acl_password_vars(section: str, user: str) -> tuple[str, str]:
    """The variables that give a user's password: the value itself, or a 0600 file holding it."""
    prefix = "REDIS" if section == "users" else "SENTINEL"
    var = f"{prefix}_ACL_{user.upper().replace('-', '_')}_PASSWORD"
    return var, f"{var}_FILE"


def acl_passwords(acl: Mapping[str, Mapping[str, str]], env: Mapping[str, str]) -> dict[str, str]:
    """Passwords of the profile's ACL users that the environment gives ("users/app" -> password)."""
    found: dict[str, str] = {}
    for section, users in acl.items():
        for user in users:
            var, file_var = acl_password_vars(section, user)
            if env.get(var):
                found[f"{section}/{user}"] = cast(str, _secret(var, env[var]))
            elif env.get(file_var):
                found[f"{section}/{user}"] = _secret_file(file_var, Path(env[file_var]))
    return found


def _secret_file(var: str, path: Path) -> str:
    """A password file: readable by its owner only (a secret others can read is not a secret)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{var}: cannot read {path} ({getattr(exc, 'strerror', None) or exc})") from None
    if mode & 0o077:
        raise UsageError(f"{var}: {path} is readable by others (mode {mode & 0o777:o}): chmod 600 {path}")
    return cast(str, _secret(f"{var} ({path})", text))


def _databases(path: Path, model: ProfileFile, values: Mapping[str, str]) -> dict[str, int]:
    """The database of each role: REDIS_<ROLE>_DB_INDEX, else the profile's, within `databases`."""
    databases: dict[str, int] = {}
    for role in ROLES:
        var = f"REDIS_{role.upper()}_DB_INDEX"
        label = var if var in values else f"{path}: databases.{role}"
        databases[role] = _int(label, values.get(var, getattr(model.databases, role)), 0, model.redis.databases - 1)
    return databases


def _hosts(topo: Topology, values: Mapping[str, str]) -> dict[str, str]:
    """Production hosts: the profile's, with REDIS_HOST (redis-1) and SENTINEL_HOSTS applied."""
    hosts = {str(k): v for k, v in topo.hosts.items()}
    if "REDIS_HOST" in values:
        hosts["redis-1"] = _no_control_env("REDIS_HOST", values["REDIS_HOST"])
    if "SENTINEL_HOSTS" in values:
        items = [i for i in values["SENTINEL_HOSTS"].split(",") if i.strip()]
        if len(items) != 3:
            raise UsageError(f"SENTINEL_HOSTS must name 3 Sentinels (host:port,...), got {len(items)}")
        for index, item in enumerate(items, start=1):
            host, port = _host_port("SENTINEL_HOSTS", item, topo.sentinel_port)
            if port != topo.sentinel_port:
                raise UsageError("SENTINEL_HOSTS: all Sentinels must use one port in this layout")
            hosts[f"sentinel-{index}"] = host
    return hosts
