"""python_utils on 1M keys (500k session:*, 500k cache:*), against redis-cli in the same run:
counting sessions vs `redis-cli --scan | wc -l`, flushing the cache vs `redis-cli --scan | xargs
redis-cli unlink`, the longest server-side command during the flush (slowlog), and the peak memory
of a count."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab.standalone import standalone

KEYS = 500_000


def _populate(conn, prefix: str) -> None:  # type: ignore[no-untyped-def]
    conn.execute_command("DEBUG", "POPULATE", KEYS, prefix, 16)


def _shell(cmd: str, env: dict[str, str]) -> tuple[float, str, float]:
    """Run ``cmd``; return its wall time, its stdout and its peak RSS in MB (that process tree's alone)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(["bash", "-c", cmd], env=env, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, cmd)
        out.seek(0)
        return took, out.read().decode().strip(), usage.ru_maxrss / 1024


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        solo = standalone(Path(tmp) / "admin", "bench-admin", "local", "lab", maxmemory="0", appendonly="no", save=[])
        try:
            conn = solo.conn
            _populate(conn, "session")
            _populate(conn, "cache")
            host, port = solo.node.host, solo.node.port
            env = {
                **os.environ,
                "REDISCLI_AUTH": solo.spec.password,
                "REDIS_HOST": host,
                "REDIS_PORT": str(port),
                "REDIS_PASSWORD": solo.spec.password,
                "SENTINEL_HOSTS": "",
                "REDIS_SESSION_DB_INDEX": "0",
                "REDIS_CACHE_DB_INDEX": "0",
            }
            cli = f"redis-cli --no-auth-warning -h {host} -p {port}"
            admin = str(Path(sys.executable).parent / "redis-admin")

            base_count, base_out, _ = _shell(f"{cli} --scan --pattern 'session:*' | wc -l", env)
            conn.config_set("slowlog-log-slower-than", 1000)  # record every command over 1 ms
            conn.config_set("slowlog-max-len", 100_000)
            conn.slowlog_reset()
            ours_count, ours_out, peak_mb = _shell(f"{admin} sessions count", env)
            count_ms = max((entry["duration"] / 1000 for entry in conn.slowlog_get(100_000)), default=1.0)
            assert int(base_out) == int(ours_out) == KEYS, (base_out, ours_out)

            conn.slowlog_reset()
            ours_flush, out, _ = _shell(f"{admin} cache flush 'cache:*' --yes", env)
            assert f"deleted {KEYS} key(s)" in out, out
            slow = conn.slowlog_get(100_000)
            longest_ms = max((entry["duration"] / 1000 for entry in slow), default=1.0)
            _populate(conn, "cache")
            base_flush, _, _ = _shell(f"{cli} --scan --pattern 'cache:*' | xargs -r {cli} unlink > /dev/null", env)
            assert conn.dbsize() == KEYS, "the baseline deleted the cache keys too"
        finally:
            solo.remove()
    print(
        f"admin: count {ours_count:.2f}s vs redis-cli {base_count:.2f}s; flush {ours_flush:.2f}s vs "
        f"{base_flush:.2f}s; longest server command (1 ms: none slower): count {count_ms:.2f} ms, "
        f"flush {longest_ms:.2f} ms; "
        f"peak RSS of the count {peak_mb:.0f} MB"
    )
    return [
        Row("sessions count, 500k of 1M keys", ours_count, base_count, "s", "redis-cli --scan | wc -l (target 8x)"),
        Row("cache flush 'cache:*', 500k keys", ours_flush, base_flush, "s", "redis-cli --scan | xargs unlink (2.5x)"),
        Row("longest server-side command during the count", count_ms, 10.0, "ms", "target: 10 ms"),
        Row("longest server-side command during the flush", longest_ms, 10.0, "ms", "target: 10 ms"),
        Row("peak memory of `redis-admin sessions count`", peak_mb, 100.0, "MB", "target: 100 MB"),
    ]
