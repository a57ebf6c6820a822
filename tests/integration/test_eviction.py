"""Eviction: the session store refuses writes rather than evicting; the cache evicts and keeps serving."""

from __future__ import annotations

import pytest
import redis

from lab.profile import load_profile

pytestmark = pytest.mark.integration
VALUE = "x" * 512


def test_session_store_refuses_writes_with_oom_instead_of_evicting(redis_node) -> None:
    profile = load_profile("lab")
    assert (
        profile.redis["maxmemory_policy"].startswith("volatile-") or profile.redis["maxmemory_policy"] == "noeviction"
    )
    solo = redis_node("lab", maxmemory="4mb")
    written = 0
    with pytest.raises(redis.exceptions.OutOfMemoryError, match="maxmemory"):
        for i in range(100_000):  # far more than 4 MB of sessions
            solo.conn.set(f"session:{i}", VALUE)  # sessions without a TTL are never evicted
            written += 1
    stats = solo.conn.info("stats")
    assert stats["evicted_keys"] == 0
    assert solo.conn.dbsize() == written, "every acknowledged session is still there"
    assert solo.conn.get("session:0") == VALUE
    solo.conn.delete("session:0")  # reads and deletes keep working under memory pressure


def test_cache_profile_evicts_and_keeps_serving(redis_node) -> None:
    assert load_profile("cache").redis["maxmemory_policy"] == "allkeys-lru"
    solo = redis_node("cache", maxmemory="4mb")
    for start in range(0, 20_000, 1000):
        solo.conn.mset({f"cache:{i}": VALUE for i in range(start, start + 1000)})
    evicted = solo.conn.info("stats")["evicted_keys"]
    print(f"\ncache profile, 4 MB: wrote 20000 x 512 B, {evicted} evicted, {solo.conn.dbsize()} kept")
    assert evicted > 0
    assert solo.conn.dbsize() < 20_000
    # Still serving: the write is accepted (no OOM) and reads it back. In one MULTI, because eviction runs
    # before each command and LRU's clock ticks once a second: a key just written is as old as the 20,000
    # before it, and a separate GET could find it already evicted (it did once in CI, on Redis 7.0).
    with solo.conn.pipeline(transaction=True) as tx:
        assert tx.set("cache:fresh", "still serving").get("cache:fresh").execute() == [True, "still serving"]
