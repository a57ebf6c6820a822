"""Connections configured from the environment, pooled, and Sentinel-aware.

Environment: REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_SESSION_DB_INDEX, REDIS_CACHE_DB_INDEX,
REDIS_PUBSUB_DB_INDEX, SENTINEL_HOSTS ("h1:26379,h2:26379"), SENTINEL_MASTER_NAME, SENTINEL_PASSWORD.
When SENTINEL_HOSTS is set, connections go to the current master through Sentinel and follow a
failover.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from redis_ha_admin.tls_files import files_problem

ROLE_DB_VARS = {"session": "REDIS_SESSION_DB_INDEX", "cache": "REDIS_CACHE_DB_INDEX", "pubsub": "REDIS_PUBSUB_DB_INDEX"}
ROLE_DB_DEFAULTS = {"session": 0, "cache": 1, "pubsub": 2}


class RedisAdminError(Exception):
    """A problem worth one line to an operator (never contains a password)."""


@dataclass(frozen=True)
class Settings:
    host: str = "localhost"
    port: int = 6379
    password: str | None = field(default=None, repr=False)
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = "mymaster"
    sentinel_password: str | None = field(default=None, repr=False)
    timeout: float = 5.0
    username: str | None = None  # ACL user on the data nodes (REDIS_USERNAME); None: default
    sentinel_username: str | None = None  # ACL user on the Sentinels (SENTINEL_USERNAME)
    #: TLS to the nodes and Sentinels: CA, client certificate, key (REDIS_TLS_CA_CERT/CERT/KEY); () = plain
    tls: tuple[str, ...] = ()

    @property
    def tls_kwargs(self) -> dict[str, Any]:
        if not self.tls:
            return {}
        ca, cert, key = self.tls
        return {"ssl": True, "ssl_ca_certs": ca or None, "ssl_certfile": cert or None, "ssl_keyfile": key or None}

    @property
    def where(self) -> str:
        if self.sentinels:
            return f"master '{self.master_name}' via Sentinel {','.join(f'{h}:{p}' for h, p in self.sentinels)}"
        return f"{self.host}:{self.port}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    assert raw is not None
    try:
        return int(raw)
    except ValueError:
        raise RedisAdminError(f"{name} must be an integer, got {raw!r}") from None


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise RedisAdminError(f"SENTINEL_HOSTS: expected host:port, got {item!r}")
        found.append((host, int(port)))
    return tuple(found)


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    return Settings(
        host=env.get("REDIS_HOST") or "localhost",
        port=_int(env, "REDIS_PORT", 6379),
        password=env.get("REDIS_PASSWORD") or None,
        sentinels=parse_sentinels(env.get("SENTINEL_HOSTS", "")),
        master_name=env.get("SENTINEL_MASTER_NAME") or "mymaster",
        sentinel_password=env.get("SENTINEL_PASSWORD") or None,
        username=env.get("REDIS_USERNAME") or None,
        sentinel_username=env.get("SENTINEL_USERNAME") or None,
        tls=_tls(env),
    )


def _tls(env: Mapping[str, str]) -> tuple[str, ...]:
    """REDIS_TLS_CA_CERT (turns TLS on), REDIS_TLS_CERT and REDIS_TLS_KEY (a client certificate)."""
    files = tuple(env.get(f"REDIS_TLS_{name}") or "" for name in ("CA_CERT", "CERT", "KEY"))
    if not any(files):
        return ()
    if bool(files[1]) != bool(files[2]):
        raise RedisAdminError("REDIS_TLS_CERT and REDIS_TLS_KEY go together (a client certificate and its key)")
    return files


#: The TLS files: (what, the variable naming it, what its PEM's BEGIN line ends with)
#: Where each TLS file comes from, for the message that names one.
TLS_VARS = ("REDIS_TLS_CA_CERT", "REDIS_TLS_CERT", "REDIS_TLS_KEY")


def check_tls_files(settings: Settings) -> None:
    """RedisAdminError naming the first TLS file that is missing, unreadable or not a PEM of its
    kind, or a certificate and key that do not go together: said once, before any connection."""
    if settings.tls:
        ca, cert, key = settings.tls
        if problem := files_problem(ca, cert, key, hints=TLS_VARS):
            raise RedisAdminError(problem)


def role_db(role: str, env: Mapping[str, str] | None = None) -> int:
    """The database index configured for a role (session, cache, pubsub)."""
    env = os.environ if env is None else env
    return _int(env, ROLE_DB_VARS[role], ROLE_DB_DEFAULTS[role])


_POOLS: dict[tuple[object, ...], redis.Redis] = {}
_LOCK = threading.Lock()


def _client(settings: Settings, db: int, use_pool: bool) -> redis.Redis:
    common: dict[str, Any] = {
        "password": settings.password,
        "username": settings.username,
        "db": db,
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "retry": Retry(NoBackoff(), 1),
        **settings.tls_kwargs,
    }
    if settings.sentinels:
        sentinel = Sentinel(
            list(settings.sentinels),
            sentinel_kwargs={
                "password": settings.sentinel_password,
                "username": settings.sentinel_username,
                "socket_timeout": settings.timeout,
                "socket_connect_timeout": settings.timeout,
                "retry": Retry(NoBackoff(), 0),
                **settings.tls_kwargs,
            },
            **common,
        )
        conn: redis.Redis = sentinel.master_for(settings.master_name)
        return conn
    if not use_pool:
        return redis.Redis(host=settings.host, port=settings.port, single_connection_client=True, **common)
    key = (settings.host, settings.port, db, settings.username, settings.password)
    with _LOCK:
        if key not in _POOLS:
            _POOLS[key] = redis.Redis(host=settings.host, port=settings.port, **common)
        return _POOLS[key]


def connect(settings: Settings, db: int = 0, use_pool: bool = True, check: bool = True) -> redis.Redis:
    """A client for ``settings``; with ``check``, PING first and turn failures into RedisAdminError."""
    check_tls_files(settings)
    client = _client(settings, db, use_pool)
    if check:
        try:
            client.ping()
        except MasterNotFoundError:
            raise RedisAdminError(_why_no_master(settings)) from None
        except redis.AuthenticationError:
            raise RedisAdminError(
                f"{settings.where}: authentication failed for user {settings.username or 'default'} "
                "(check REDIS_USERNAME and REDIS_PASSWORD)"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisAdminError(f"cannot connect to {settings.where}: {_reason(exc, settings)}") from None
        except redis.ResponseError as exc:
            raise RedisAdminError(f"{settings.where}: {_reason(exc, settings)}") from None
        except redis.RedisError as exc:  # e.g. InvalidResponse: not a Redis server at all
            raise RedisAdminError(
                f"{settings.where} does not answer like a Redis server ({_reason(exc, settings)})"
            ) from None
    return client


def _reason(exc: BaseException, settings: Settings) -> str:
    """The first line of an error, at most 200 characters, passwords masked."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for secret in (settings.password, settings.sentinel_password):
        if secret:
            reason = reason.replace(secret, "***")
    return reason[:200]


def _why_no_master(settings: Settings) -> str:
    """One line for redis-py's MasterNotFoundError, whose text holds every Sentinel's error."""
    errors = []
    for host, port in settings.sentinels:
        probe = redis.Redis(
            host=host,
            port=port,
            password=settings.sentinel_password,
            username=settings.sentinel_username,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 0),
            **settings.tls_kwargs,
        )
        try:
            if probe.sentinel_get_master_addr_by_name(settings.master_name) is None:
                errors.append("unknown master")
        except redis.AuthenticationError:
            errors.append("auth")
        except (redis.RedisError, OSError):
            errors.append("unreachable")
        finally:
            probe.close()
    where = f"Sentinel {','.join(f'{h}:{p}' for h, p in settings.sentinels)}"
    if "auth" in errors:
        return (
            f"{where}: authentication failed for user {settings.sentinel_username or 'default'} "
            "(check SENTINEL_USERNAME and SENTINEL_PASSWORD)"
        )
    if errors and all(e == "unreachable" for e in errors):
        return f"cannot connect to any {where}"
    if "unknown master" in errors:
        return f"{where} knows no master named {settings.master_name!r} (check SENTINEL_MASTER_NAME)"
    return f"{where} names master {settings.master_name!r} but it does not answer"


def get_redis_connection(
    host: str = "localhost", port: int = 6379, password: str | None = None, db: int = 0, use_pool: bool = True
) -> redis.Redis:
    """A checked connection. With SENTINEL_HOSTS set, ``host``/``port`` are ignored and the current
    master is found through Sentinel (SENTINEL_MASTER_NAME, SENTINEL_PASSWORD)."""
    env = settings_from_env()
    settings = dataclasses.replace(
        env, host=host, port=port, password=password if password is not None else env.password, timeout=5.0
    )
    return connect(settings, db=db, use_pool=use_pool)


def connection_for(role: str, settings: Settings | None = None) -> redis.Redis:
    """A checked connection to the database configured for ``role`` (session, cache, pubsub)."""
    return connect(settings or settings_from_env(), db=role_db(role))
