"""Rate-limit counters in their common shapes: a string counter (INCR + EXPIRE), a sorted-set
sliding window (one member per request, scored by time) and hash buckets (one field per window)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import redis

from redis_ha_admin.scanning import Progress, scan_keys
from redis_ha_admin.values import text, ttl_seconds


class RateLimitAdmin:
    def __init__(self, redis_client: redis.Redis) -> None:
        self.client = redis_client

    def list_rate_limit_keys(
        self, pattern: str | bytes = "ratelimit:*", progress: Progress | None = None
    ) -> Iterator[str]:
        return (text(k) for k in scan_keys(self.client, pattern, progress=progress))

    def get_rate_limit_value(self, counter_key: str | bytes) -> dict[str, Any] | None:
        """{'key','shape','value','ttl', ...}; ``value`` is the current count. None if absent."""
        kind = text(self.client.type(counter_key))
        if kind == "none":
            return None
        found: dict[str, Any] = {"key": text(counter_key), "ttl": ttl_seconds(int(self.client.pttl(counter_key)))}
        if kind == "string":
            raw = text(self.client.get(counter_key) or b"")
            try:
                found.update(shape="counter", value=int(raw))
            except ValueError:
                found.update(shape="string", value=None, raw=raw[:100], note="not an integer counter")
        elif kind == "zset":
            count = int(self.client.zcard(counter_key))
            oldest = self.client.zrange(counter_key, 0, 0, withscores=True)
            newest = self.client.zrange(counter_key, -1, -1, withscores=True)
            found.update(
                shape="sliding-window",
                value=count,
                oldest=oldest[0][1] if oldest else None,
                newest=newest[0][1] if newest else None,
                checked_at=time.time(),
            )
        elif kind == "hash":
            buckets = {text(f): _number(v) for f, v in self.client.hscan_iter(counter_key, count=500)}
            found.update(
                shape="buckets", value=sum(v for v in buckets.values() if isinstance(v, int | float)), buckets=buckets
            )
        else:
            found.update(shape=kind, value=None, note=f"a {kind} is not a known rate-limit shape")
        return found

    def reset_rate_limit_counter(self, counter_key: str | bytes) -> bool:
        """Delete the counter (the limiter starts afresh); False when it did not exist."""
        return bool(self.client.unlink(counter_key))


def _number(raw: bytes | str) -> int | float | str:
    value = text(raw)
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value
