"""The admin toolkit (redis_ha_admin, python_utils/) and redis-admin against the lab's real servers (both
backends)."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lab import faults, nodes
from lab.spec import LabSpec
from redis_ha_admin.cache_admin_tools import CacheAdmin
from redis_ha_admin.pubsub_diagnostics import PubSubAdmin
from redis_ha_admin.rate_limit_utils import RateLimitAdmin
from redis_ha_admin.redis_connector import RedisAdminError, Settings, connect, get_redis_connection
from redis_ha_admin.session_utils import SessionAdminTools, escape_glob
from tests.helpers import run_lab

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(healthy_lab: LabSpec) -> Settings:
    master = nodes.current_master(healthy_lab)
    return Settings(host=master.host, port=master.port, password=healthy_lab.password)


@pytest.fixture
def tag(settings: Settings, healthy_lab: LabSpec) -> Iterator[str]:
    """A unique key namespace for this test; its keys are removed from every database afterwards."""
    unique = uuid.uuid4().hex[:8]
    yield unique
    master = nodes.current_master(healthy_lab)  # a drill may have failed the lab over
    current = Settings(host=master.host, port=master.port, password=healthy_lab.password)
    for db in set(healthy_lab.databases.values()):
        conn = connect(current, db=db)
        for key in conn.scan_iter(match=f"*{unique}*", count=1000):
            conn.unlink(key)


@pytest.mark.one_server
def test_sessions(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    conn = connect(settings, db=healthy_lab.databases["session"])
    tools = SessionAdminTools(conn, session_key_prefix=f"session:{tag}:")
    assert tools.count_active_sessions() == 0, "empty result"
    conn.set(f"session:{tag}:json", json.dumps({"user": 42, "roles": ["ops"]}), ex=600)
    conn.hset(f"session:{tag}:hash", mapping={"user": "7", "csrf": "x"})
    conn.set(f"session:{tag}:pickled", pickle.dumps({"user": 1, "cart": [1, 2]}))
    conn.set(f"session:{tag}:binary", b"\xff\x00\xfe" * 10)
    long_id = "L" * 10_000
    conn.set(f"session:{tag}:{long_id}", "long")
    assert tools.count_active_sessions() == 5

    detail = tools.get_session_details("json")
    assert detail is not None and detail["type"] == "string" and detail["value"] == {"user": 42, "roles": ["ops"]}
    assert 0 < detail["ttl"] <= 600
    assert tools.get_session_details("hash")["value"] == {"user": 7, "csrf": "x"}  # type: ignore[index]
    pickled = tools.get_session_details("pickled")["value"]  # type: ignore[index]
    assert pickled["format"] == "pickle" and pickled["bytes"] > 0, "described, never unpickled"
    binary = tools.get_session_details("binary")["value"]  # type: ignore[index]
    assert binary["format"] == "binary" and binary["bytes"] == 30
    assert tools.get_session_details(long_id)["value"] == "long"  # type: ignore[index]
    assert tools.get_session_details("missing") is None

    assert sorted(tools.list_sessions_by_pattern(f"session:{tag}:[jh]*")) == [
        f"session:{tag}:hash",
        f"session:{tag}:json",
    ]
    conn.set(f"session:{tag}:a*[b]?", "glob specials")
    literal = list(tools.list_sessions_by_pattern(escape_glob(f"session:{tag}:a*[b]?")))
    assert literal == [f"session:{tag}:a*[b]?"]
    assert tools.clear_session("json") is True and tools.clear_session("json") is False
    assert tools.count_active_sessions() == 5


@pytest.mark.one_server
def test_cache_flush_touches_only_its_pattern_and_database(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    cache_db, session_db = healthy_lab.databases["cache"], healthy_lab.databases["session"]
    conn = connect(settings, db=cache_db)
    other_db = connect(settings, db=session_db)
    cache = CacheAdmin(conn)
    conn.mset({f"cache:{tag}:{i}": json.dumps({"i": i}) for i in range(2500)})
    conn.set(f"cache:{tag}:plain", "not json", ex=100)
    conn.set(f"keep:{tag}:1", "outside the pattern")
    conn.hset(f"cache:{tag}:hash", "f", "v")
    other_db.set(f"cache:{tag}:0", "same name, other database")

    assert cache.get_cache_value(f"cache:{tag}:7") == {"i": 7}
    assert cache.get_cache_value(f"cache:{tag}:plain") == "not json"
    assert cache.get_cache_value(f"cache:{tag}:absent") is None
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        cache.get_cache_value(f"cache:{tag}:hash")
    assert 0 < cache.get_cache_ttl(f"cache:{tag}:plain") <= 100
    assert cache.get_cache_ttl(f"cache:{tag}:1") == -1 and cache.get_cache_ttl(f"cache:{tag}:absent") == -2
    assert sum(1 for _ in cache.list_cache_keys(f"cache:{tag}:*")) == 2502
    assert (
        cache.delete_cache_key(f"cache:{tag}:plain") is True and cache.delete_cache_key(f"cache:{tag}:plain") is False
    )

    assert cache.flush_cache_by_pattern(f"cache:{tag}:*") == 2501
    assert list(cache.list_cache_keys(f"cache:{tag}:*")) == []
    assert conn.get(f"keep:{tag}:1") == b"outside the pattern"
    assert other_db.get(f"cache:{tag}:0") == b"same name, other database"
    assert cache.flush_cache_by_pattern(f"cache:{tag}:*") == 0


@pytest.mark.one_server
def test_rate_limit_shapes(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    conn = connect(settings, db=healthy_lab.databases["cache"])
    limits = RateLimitAdmin(conn)
    conn.set(f"ratelimit:{tag}:counter", 17, ex=60)
    conn.zadd(f"ratelimit:{tag}:window", {f"req{i}": 1000 + i for i in range(5)})
    conn.hset(f"ratelimit:{tag}:buckets", mapping={"1700000000": 3, "1700000060": 4})
    conn.rpush(f"ratelimit:{tag}:odd", "x")
    counter = limits.get_rate_limit_value(f"ratelimit:{tag}:counter")
    assert counter and (counter["shape"], counter["value"]) == ("counter", 17) and 0 < counter["ttl"] <= 60
    window = limits.get_rate_limit_value(f"ratelimit:{tag}:window")
    assert window and window["shape"] == "sliding-window" and window["value"] == 5
    assert (window["oldest"], window["newest"]) == (1000, 1004)
    buckets = limits.get_rate_limit_value(f"ratelimit:{tag}:buckets")
    assert buckets and buckets["value"] == 7 and buckets["buckets"] == {"1700000000": 3, "1700000060": 4}
    odd = limits.get_rate_limit_value(f"ratelimit:{tag}:odd")
    assert odd and odd["value"] is None and "not a known" in odd["note"]
    assert limits.get_rate_limit_value(f"ratelimit:{tag}:absent") is None
    assert sorted(limits.list_rate_limit_keys(f"ratelimit:{tag}:*"))[0] == f"ratelimit:{tag}:buckets"
    assert limits.reset_rate_limit_counter(f"ratelimit:{tag}:counter") is True
    assert limits.reset_rate_limit_counter(f"ratelimit:{tag}:counter") is False


def test_pubsub_diagnostics(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    conn = connect(settings, db=healthy_lab.databases["pubsub"])
    admin = PubSubAdmin(conn)
    channel = f"events:{tag}"
    assert channel not in admin.list_active_channels("events:*")
    assert admin.get_channel_subscriber_count(channel) == 0
    listener = redis.Redis(host=settings.host, port=settings.port, password=settings.password)
    sub = listener.pubsub()
    sub.subscribe(channel)
    sub.psubscribe(f"pattern:{tag}:*")
    got: list[bytes] = []
    ready = threading.Event()

    def receive() -> None:
        ready.set()
        for message in sub.listen():
            if message["type"] == "message":
                got.append(message["data"])
                return

    worker = threading.Thread(target=receive, daemon=True)
    worker.start()
    ready.wait(5)
    assert channel in admin.list_active_channels(f"events:{tag}*")
    assert admin.get_channel_subscriber_count(channel) == 1
    assert admin.get_pattern_subscription_count() >= 1
    build = healthy_lab.server(healthy_lab.initial_master)
    if build is not None and build.flavour == "redis" and not build.at_least(7, 0):
        assert admin.list_shard_channels() is None, "Redis 6.2 has no shard channels: None, not an error"
    else:
        assert admin.list_shard_channels() is not None, "Redis 7.0+ and Valkey have shard channels"
    assert admin.publish_test_message(channel, "ping from redis-admin") == 1
    worker.join(5)
    assert got == [b"ping from redis-admin"]
    sub.close()
    listener.close()


@pytest.mark.one_server
def test_connection_errors_are_one_clear_line(settings: Settings) -> None:
    with pytest.raises(RedisAdminError, match="authentication failed") as wrong:
        connect(Settings(host=settings.host, port=settings.port, password="wrong-secret"))
    assert "wrong-secret" not in str(wrong.value)
    with pytest.raises(RedisAdminError, match=r"cannot connect to 127\.255\.255\.254:1"):
        connect(Settings(host="127.255.255.254", port=1, timeout=1))


@pytest.mark.one_server
def test_through_sentinel_after_a_failover(healthy_lab: LabSpec, monkeypatch: pytest.MonkeyPatch, tag: str) -> None:
    spec = healthy_lab
    monkeypatch.setenv("SENTINEL_HOSTS", ",".join(s.address for s in spec.sentinels))
    monkeypatch.setenv("SENTINEL_MASTER_NAME", spec.master_name)
    monkeypatch.setenv("SENTINEL_PASSWORD", spec.sentinel_password or "")
    monkeypatch.setenv("REDIS_PASSWORD", spec.password)
    db = spec.databases["session"]
    conn = get_redis_connection(db=db)
    conn.mset({f"session:{tag}:{i}": "v" for i in range(300)})
    assert conn.execute_command("WAIT", 2, 4000) == 2  # get_redis_connection's socket timeout is 5 s
    old = nodes.current_master(spec)
    faults.inject(spec, "kill", old.name)
    new = None

    def counted() -> tuple[bool, object]:
        try:
            return True, SessionAdminTools(get_redis_connection(db=db), f"session:{tag}:").count_active_sessions()
        except (RedisAdminError, redis.RedisError) as exc:
            return False, exc

    from lab.waits import wait_for

    count = wait_for(counted, what="a session count through Sentinel after the failover", timeout=30)
    new = nodes.current_master(spec)
    assert new != old and count == 300, "the session count is right after the failover"


def admin(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "redis-admin"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60, check=False
    )


@pytest.mark.one_server
def test_cli(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    env = {
        "REDIS_HOST": settings.host,
        "REDIS_PORT": str(settings.port),
        "REDIS_PASSWORD": settings.password or "",
        "SENTINEL_HOSTS": "",
        "REDIS_CACHE_DB_INDEX": str(healthy_lab.databases["cache"]),
        "REDIS_SESSION_DB_INDEX": str(healthy_lab.databases["session"]),
    }
    conn = connect(settings, db=healthy_lab.databases["cache"])
    conn.mset({f"cache:{tag}:{i}": i for i in range(20)})
    connect(settings, db=healthy_lab.databases["session"]).set(f"session:{tag}:x", json.dumps({"u": 1}))

    counted = admin("sessions", "count", "--prefix", f"session:{tag}:", "--json", env=env)
    assert counted.returncode == 0 and json.loads(counted.stdout)["count"] == 1
    shown = admin("sessions", "show", f"session:{tag}:x", "--json", env=env)
    assert json.loads(shown.stdout)["value"] == {"u": 1}
    keys = admin("cache", "keys", f"cache:{tag}:*", "--json", env=env)
    assert len(json.loads(keys.stdout)) == 20

    refused = admin("cache", "flush", f"cache:{tag}:*", env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"redis-admin: 20 keys match 'cache:{tag}:*': add --yes to delete them (or --dry-run to list them)"
    )
    assert conn.exists(*[f"cache:{tag}:{i}" for i in range(20)]) == 20, "nothing deleted without --yes"
    dry = admin("cache", "flush", f"cache:{tag}:*", "--dry-run", env=env)
    assert dry.returncode == 0 and dry.stdout.count("would delete") == 20
    assert conn.exists(f"cache:{tag}:0") == 1
    done = admin("cache", "flush", f"cache:{tag}:*", "--yes", env=env)
    assert done.returncode == 0 and f"deleted 20 key(s) matching 'cache:{tag}:*'" in done.stdout
    assert admin("cache", "get", f"cache:{tag}:0", env=env).stderr.startswith("redis-admin: no key")
    bad = admin("cache", "flush", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    wrong = admin("sessions", "count", env={**env, "REDIS_PASSWORD": "nope"})
    assert wrong.returncode == 1 and "authentication failed" in wrong.stderr and "nope" not in wrong.stderr

    # Issue 24: `sessions clear --pattern '*'` deleted the only matching key, a non-session one, without
    # --yes. A session command's pattern must stay among sessions; refused before connecting (exit 2).
    sessions = connect(settings, db=healthy_lab.databases["session"])
    sessions.set(f"other:{tag}", "not a session")
    for pattern in ("*", f"*{tag}*", "sess*", f"other:{tag}"):
        refused = admin("sessions", "clear", "--pattern", pattern, env=env)
        assert refused.returncode == 2 and "not sessions" in refused.stderr, refused.stderr
    assert sessions.get(f"other:{tag}") == b"not a session"
    cleared = admin("sessions", "clear", "--pattern", f"session:{tag}:*", env=env)
    assert cleared.returncode == 0 and "deleted 1 key(s)" in cleared.stdout and sessions.exists(f"other:{tag}")


@pytest.mark.one_server
def test_lab_env_feeds_redis_admin(healthy_lab: LabSpec, lab_home: Path) -> None:
    exported = run_lab("env", "--name", healthy_lab.name, home=lab_home)
    assert exported.returncode == 0 and healthy_lab.password not in exported.stdout
    script = Path(sys.executable).parent / "redis-admin"
    shell = f'{exported.stdout}\n"{script}" pubsub publish lab-env-check hello'
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "delivered to 0 subscriber(s)"


class _NotRedis:
    """A TCP server on loopback that answers like a web server (an operator's wrong port)."""

    def __init__(self) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.one_server
def test_user_errors_are_one_line_with_the_right_exit_code(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    env = {"REDIS_HOST": settings.host, "REDIS_PORT": str(settings.port), "REDIS_PASSWORD": settings.password or ""}
    env |= {"SENTINEL_HOSTS": "", "REDIS_CACHE_DB_INDEX": str(healthy_lab.databases["cache"])}
    web = _NotRedis()
    try:
        cases = [
            (
                admin("cache", "keys", env={**env, "REDIS_PORT": str(web.port), "REDIS_HOST": "127.0.0.1"}),
                1,
                "does not answer like a Redis server",
            ),
            (admin("--timeout", "-1", "cache", "keys", env=env), 2, "--timeout: must be more than 0"),
            (admin("cache", "keys", "--limit", "-5", env=env), 2, "--limit: expected a whole number"),
            (admin("cache", "keys", env={**env, "REDIS_PORT": "abc"}), 1, "REDIS_PORT must be an integer"),
            (admin("cache", "keys", env={**env, "SENTINEL_HOSTS": "garbage"}), 1, "SENTINEL_HOSTS: expected host:port"),
        ]
    finally:
        web.close()
    for result, code, message in cases:
        assert result.returncode == code, (message, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.one_server
def test_a_key_that_is_not_utf8_is_addressed_byte_for_byte(settings: Settings, healthy_lab: LabSpec, tag: str) -> None:
    env = {"REDIS_HOST": settings.host, "REDIS_PORT": str(settings.port), "REDIS_PASSWORD": settings.password or ""}
    env |= {"SENTINEL_HOSTS": "", "REDIS_CACHE_DB_INDEX": str(healthy_lab.databases["cache"])}
    raw = f"cache:{tag}:".encode() + b"\xff\xfe"
    conn = connect(settings, db=healthy_lab.databases["cache"])
    conn.set(raw, "binary-named")
    script = Path(sys.executable).parent / "redis-admin"
    got = subprocess.run(
        [str(script), "cache", "get", raw], capture_output=True, env={**os.environ, **env}, check=False
    )
    assert got.returncode == 0 and got.stdout.strip() == b"binary-named", got.stderr
    listed = subprocess.run(
        [str(script), "cache", "keys", f"cache:{tag}:*"], capture_output=True, env={**os.environ, **env}, check=False
    )
    assert listed.returncode == 0 and listed.stdout.strip() == f"cache:{tag}:\\xff\\xfe".encode()
    gone = subprocess.run(
        [str(script), "cache", "delete", raw], capture_output=True, env={**os.environ, **env}, check=False
    )
    assert gone.returncode == 0 and conn.exists(raw) == 0


@pytest.mark.one_server
def test_a_wrong_sentinel_password_is_one_short_line(healthy_lab: LabSpec) -> None:
    env = {
        "SENTINEL_HOSTS": ",".join(s.address for s in healthy_lab.sentinels),
        "SENTINEL_MASTER_NAME": healthy_lab.master_name,
        "SENTINEL_PASSWORD": "not-the-sentinel-password",
        "REDIS_PASSWORD": healthy_lab.password,
    }
    result = admin("sessions", "count", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().endswith(
        "authentication failed for user default (check SENTINEL_USERNAME and SENTINEL_PASSWORD)"
    )
    assert len(result.stderr) < 300 and "not-the-sentinel-password" not in result.stderr
    unknown = admin(
        "sessions",
        "count",
        env={**env, "SENTINEL_PASSWORD": healthy_lab.sentinel_password or "", "SENTINEL_MASTER_NAME": "nosuchmaster"},
    )
    assert unknown.returncode == 1 and "knows no master named 'nosuchmaster'" in unknown.stderr
