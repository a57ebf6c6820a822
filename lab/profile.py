"""Profiles: the values behind the templates, from conf/profiles/*.yaml and the environment."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from lab import CONF_DIR
from lab.errors import LabError

PROFILES_DIR = CONF_DIR / "profiles"
ROLES = ("session", "cache", "pubsub")
EVICTION_POLICIES = {
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
}
APPENDFSYNC = {"always", "everysec", "no"}
# A value Redis reads as one token in a config file and redis-cli/URLs pass through unchanged.
SAFE_SECRET = re.compile(r"^[A-Za-z0-9!#$%&()*+,\-./:;<=>?@\[\]^_{|}~]{1,512}$")


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


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def _profile_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not candidate.is_file():
            raise LabError(f"profile file {name_or_path} does not exist")
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise LabError(f"unknown profile {name_or_path!r} (available: {', '.join(available_profiles())})")
    return path


def _int(where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise LabError(f"{where}: expected an integer from {lo} to {hi}, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise LabError(f"{where}: expected an integer from {lo} to {hi}, got {value!r}") from None
    if not lo <= number <= hi:
        raise LabError(f"{where}: {number} is out of range ({lo} to {hi})")
    return number


def _section(data: Mapping[str, Any], key: str, where: Path) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise LabError(f"{where}: missing or malformed section {key!r}")
    return value


def _secret(where: str, value: str | None) -> str | None:
    if value in (None, ""):
        return None
    assert value is not None
    if not SAFE_SECRET.match(value):
        raise LabError(f"{where}: a password must be 1-512 printable characters without spaces, quotes or backslashes")
    return value


def _host_port(where: str, item: str, default_port: int) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    if not host:
        return item.strip(), default_port
    return host, _int(where, port, 1, 65535)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile's mapping; ``extends: NAME`` merges it over another profile (nested keys override)."""
    if path in seen:
        raise LabError(f"{path}: 'extends' loops back to itself")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"cannot read profile {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise LabError(f"{path}: a profile is a YAML mapping")
    parent = data.pop("extends", None)
    if parent:
        base_path = (path.parent / parent) if str(parent).endswith((".yaml", ".yml")) else _profile_path(str(parent))
        data = _merge(_read_yaml(base_path, (*seen, path)), data)
    return cast(dict[str, Any], data)


def load_profile(name_or_path: str, env: Mapping[str, str] | None = None) -> Profile:
    """Load a profile by name (conf/profiles/NAME.yaml) or path, apply env overrides, validate."""
    env = os.environ if env is None else env
    path = _profile_path(name_or_path)
    data = _read_yaml(path)
    where = str(path)
    topo = _section(data, "topology", path)
    redis = copy.deepcopy(_section(data, "redis", path))
    sentinel = copy.deepcopy(_section(data, "sentinel", path))
    dbs = _section(data, "databases", path)

    master_name = str(env.get("SENTINEL_MASTER_NAME") or topo.get("master_name", ""))
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", master_name):
        raise LabError(f"{where}: master_name {master_name!r} must be 1-64 of [A-Za-z0-9._-]")
    redis_port = _int(
        "REDIS_PORT" if env.get("REDIS_PORT") else f"{where}: topology.redis_port",
        env.get("REDIS_PORT") or topo.get("redis_port"),
        1,
        65535,
    )
    sentinel_port = _int(f"{where}: topology.sentinel_port", topo.get("sentinel_port"), 1, 65535)
    if sentinel_port == redis_port:
        raise LabError(f"{where}: sentinel_port and redis_port are both {redis_port}")
    quorum = _int(f"{where}: topology.quorum", topo.get("quorum"), 1, 1_000_000)
    if quorum > 3:
        raise LabError(f"{where}: topology.quorum {quorum} is more than the 3 Sentinels of the lab")
    priorities = topo.get("replica_priority", [100, 100, 100])
    if not isinstance(priorities, list) or len(priorities) != 3:
        raise LabError(f"{where}: topology.replica_priority must list 3 values (redis-1..3)")
    prio = tuple(_int(f"{where}: topology.replica_priority", p, 0, 2**31 - 1) for p in priorities)

    databases_count = _int(f"{where}: redis.databases", redis.get("databases"), 1, 10_000)
    databases: dict[str, int] = {}
    for role in ROLES:
        var = f"REDIS_{role.upper()}_DB_INDEX"
        label = var if env.get(var) else f"{where}: databases.{role}"
        databases[role] = _int(label, env.get(var) or dbs.get(role), 0, databases_count - 1)

    if redis.get("maxmemory_policy") not in EVICTION_POLICIES:
        raise LabError(f"{where}: redis.maxmemory_policy {redis.get('maxmemory_policy')!r} is not a Redis policy")
    if redis.get("appendfsync") not in APPENDFSYNC:
        raise LabError(f"{where}: redis.appendfsync must be one of {', '.join(sorted(APPENDFSYNC))}")
    if not isinstance(redis.get("save"), list):
        raise LabError(f"{where}: redis.save must be a list of 'seconds changes' rules ([] disables RDB)")
    for key in ("down_after_milliseconds", "failover_timeout"):
        sentinel[key] = _int(f"{where}: sentinel.{key}", sentinel.get(key), 1, 2**31 - 1)
    sentinel["quorum"] = quorum

    hosts = {str(k): str(v) for k, v in (topo.get("hosts") or {}).items()}
    if env.get("REDIS_HOST"):
        hosts["redis-1"] = env["REDIS_HOST"]
    if env.get("SENTINEL_HOSTS"):
        items = [i for i in env["SENTINEL_HOSTS"].split(",") if i.strip()]
        if len(items) != 3:
            raise LabError(f"SENTINEL_HOSTS must name 3 Sentinels (host:port,...), got {len(items)}")
        for index, item in enumerate(items, start=1):
            host, port = _host_port("SENTINEL_HOSTS", item, sentinel_port)
            if port != sentinel_port:
                raise LabError("SENTINEL_HOSTS: all Sentinels must use one port in this layout")
            hosts[f"sentinel-{index}"] = host

    return Profile(
        name=path.stem,
        source=path,
        master_name=master_name,
        redis_port=redis_port,
        sentinel_port=sentinel_port,
        quorum=quorum,
        replica_priority=prio,
        seed_sentinel_discovery=bool(topo.get("seed_sentinel_discovery", False)),
        databases=databases,
        redis=redis,
        sentinel=sentinel,
        hosts=hosts,
        paths={str(k): str(v) for k, v in (topo.get("paths") or {}).items()},
        password=_secret("REDIS_PASSWORD", env.get("REDIS_PASSWORD")),
        sentinel_password=_secret("SENTINEL_PASSWORD", env.get("SENTINEL_PASSWORD")),
    )
