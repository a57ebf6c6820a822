"""Cache administration: list, read, expire and flush ``cache:*`` keys safely."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from redis_ha_admin.scanning import Progress, count_keys, scan_keys, unlink_matching
from redis_ha_admin.values import decode, text, ttl_seconds


class CacheAdmin:
    def __init__(self, redis_client: redis.Redis) -> None:
        self.client = redis_client

    def list_cache_keys(self, pattern: str | bytes = "cache:*", progress: Progress | None = None) -> Iterator[str]:
        return (text(k) for k in scan_keys(self.client, pattern, progress=progress))

    def count_cache_keys(self, pattern: str | bytes = "cache:*", progress: Progress | None = None) -> int:
        return count_keys(self.client, pattern, progress=progress)

    def get_cache_value(self, key: str | bytes) -> Any:
        """The value, deserialised from JSON where it is JSON; None when the key does not exist.
        A key of another type raises redis.ResponseError (WRONGTYPE)."""
        raw = self.client.get(key)
        return None if raw is None else decode(raw)

    def get_cache_ttl(self, key: str | bytes) -> float:
        """Seconds to live; -1 without expiry, -2 when the key does not exist."""
        return ttl_seconds(int(self.client.pttl(key)))

    def delete_cache_key(self, key: str | bytes) -> bool:
        return bool(self.client.unlink(key))

    def flush_cache_by_pattern(self, pattern: str | bytes, progress: Progress | None = None) -> int:
        """UNLINK every key matching ``pattern`` in this database; returns how many went."""
        return unlink_matching(self.client, pattern, progress=progress)
