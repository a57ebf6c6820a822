"""The health checker and redis-admin as named ACL users, against a real server: a read-only
`monitor` user runs the whole check and can write nothing, an `app` user counts keys, and a wrong
password names the user it was for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from lab.standalone import StandaloneNode
from redis_ha_health.check_redis_health import main
from tests.helpers import SLOW_OK

pytestmark = pytest.mark.integration

MONITOR = ("monitor", "monitor-secret-0123456789")
APP = ("app", "app-secret-0123456789")


@pytest.fixture
def users_node(redis_node, monkeypatch: pytest.MonkeyPatch) -> StandaloneNode:
    solo: StandaloneNode = redis_node()
    # What the health check reads, nothing more: PING and INFO (no CONFIG GET: it reads masterauth).
    solo.conn.execute_command(
        "ACL", "SETUSER", MONITOR[0], "on", f">{MONITOR[1]}", "resetchannels", "-@all", "+ping", "+info"
    )
    solo.conn.execute_command("ACL", "SETUSER", APP[0], "on", f">{APP[1]}", "~*", "+@all", "-@dangerous", "-@admin")
    solo.conn.set("session:named-users:1", "x")
    for var in ("REDIS_USERNAME", "REDIS_PASSWORD", "SENTINEL_HOSTS", "REDIS_HOST", "REDIS_PORT"):
        monkeypatch.delenv(var, raising=False)
    return solo


def where(solo: StandaloneNode) -> tuple[str, int]:
    kwargs = solo.conn.connection_pool.connection_kwargs
    return str(kwargs["host"]), int(kwargs["port"])


def check(solo: StandaloneNode, *extra: str) -> tuple[int, str]:
    host, port = where(solo)
    printed: list[str] = []
    code = main(["--host", host, "--port", str(port), *SLOW_OK, *extra], out=printed.append)
    return code, "\n".join(printed)


def test_the_monitor_user_runs_the_whole_check_and_cannot_write(
    users_node: StandaloneNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", MONITOR[1])
    code, text = check(users_node, "--user", MONITOR[0])
    assert code == 0 and text.startswith("REDIS OK - 4 checks OK"), text
    monkeypatch.setenv("REDIS_USERNAME", MONITOR[0])  # the variable instead of --user
    assert check(users_node, "--format", "json")[0] == 0
    host, port = where(users_node)
    monitor = redis.Redis(host=host, port=port, username=MONITOR[0], password=MONITOR[1])
    with pytest.raises(redis.exceptions.NoPermissionError):
        monitor.set("monitor:wrote", 1)
    with pytest.raises(redis.exceptions.NoPermissionError):
        monitor.config_set("maxclients", 10)
    with pytest.raises(redis.exceptions.NoPermissionError):
        monitor.config_get("masterauth")
    monitor.close()


def test_min_replicas_to_write_is_judged_from_info_without_config_get(
    redis_node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """INFO says only that min-replicas-to-write is on (min_slaves_good_slaves); the monitor user
    cannot CONFIG GET its value, so --min-replicas-to-write gives it (default 1)."""
    solo: StandaloneNode = redis_node(min_replicas_to_write=2, min_replicas_max_lag=10)
    solo.conn.execute_command(
        "ACL", "SETUSER", MONITOR[0], "on", f">{MONITOR[1]}", "resetchannels", "-@all", "+ping", "+info"
    )
    for var in ("REDIS_USERNAME", "SENTINEL_HOSTS", "REDIS_HOST", "REDIS_PORT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REDIS_PASSWORD", MONITOR[1])
    code, text = check(solo, "--user", MONITOR[0])
    assert code == 2, text
    assert "0 replicas within min-replicas-max-lag, min-replicas-to-write on: writes are refused" in text, text
    code, text = check(solo, "--user", MONITOR[0], "--min-replicas-to-write", "2")
    assert code == 2 and "min-replicas-to-write 2: writes are refused" in text, text
    solo.conn.config_set("min-replicas-to-write", 0)  # off: INFO no longer shows it, nothing to judge
    code, text = check(solo, "--user", MONITOR[0], "--min-replicas-to-write", "2")
    assert code == 0 and "min-replicas" not in text, text


def test_a_user_without_what_the_check_needs_is_unknown_and_says_what(
    users_node: StandaloneNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", APP[1])
    code, text = check(users_node, "--user", APP[0])
    assert code == 3, text  # UNKNOWN: the server answers; the check cannot see what it must judge
    assert "user app may not run what the check needs" in text and "it needs -@all +ping +info" in text, text


@pytest.mark.one_server
def test_a_wrong_password_names_the_user(users_node: StandaloneNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "not-the-password")
    code, text = check(users_node, "--user", MONITOR[0])
    assert code == 2 and "authentication failed for user monitor" in text.splitlines()[0], text
    assert "not-the-password" not in text
    code, text = check(users_node)
    assert code == 2 and "authentication failed for user default" in text.splitlines()[0], text


@pytest.mark.one_server
def test_redis_admin_as_a_named_user(users_node: StandaloneNode) -> None:
    host, port = where(users_node)
    script = Path(sys.executable).parent / "redis-admin"
    env = {**os.environ, "REDIS_HOST": host, "REDIS_PORT": str(port), "REDIS_PASSWORD": APP[1]}

    def admin(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        argv = [str(script), *args]
        return subprocess.run(argv, capture_output=True, text=True, env={**env, **extra}, timeout=60, check=False)

    counted = admin("--user", APP[0], "--db", "0", "sessions", "count")
    assert counted.returncode == 0 and counted.stdout.split()[0] == "1", counted.stdout + counted.stderr
    assert admin("--db", "0", "sessions", "count", REDIS_USERNAME=APP[0]).returncode == 0
    wrong = admin("--user", APP[0], "--db", "0", "sessions", "count", REDIS_PASSWORD="nope")
    assert wrong.returncode == 1 and wrong.stderr.strip().endswith(
        "authentication failed for user app (check REDIS_USERNAME and REDIS_PASSWORD)"
    ), wrong.stderr
    assert "nope" not in wrong.stderr
    # The app user has no @dangerous/@admin: FLUSHALL and CONFIG are refused by the server.
    app = redis.Redis(host=host, port=port, username=APP[0], password=APP[1])
    for command in (("FLUSHALL",), ("CONFIG", "GET", "requirepass")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command)
    app.close()
