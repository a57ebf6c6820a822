"""How a redis-py call's outcome is named in every history: the in-process workers (lab.drill.history)
and the redis-py client adapter (lab.drill.clients.redispy) classify errors alike."""

from __future__ import annotations

import redis
from redis.sentinel import MasterNotFoundError


def error_class(exc: Exception) -> tuple[str, bool]:
    """(the error's class as every client's history names it, whether the operation may have
    happened). A reply (READONLY, NOREPLICAS, ...) or a refused connection means it did not; a
    timeout or a connection lost after sending means it may have."""
    text = str(exc)
    if isinstance(exc, redis.ResponseError):
        word = text.split(" ", 1)[0]
        return (word if word.isalpha() and word.isupper() else "other:ResponseError"), False
    if isinstance(exc, MasterNotFoundError):
        return "no master", False
    if isinstance(exc, redis.TimeoutError):
        return "timeout", True
    if isinstance(exc, redis.ConnectionError) and "previous master is now a slave" in text:
        return "READONLY", False  # redis-py turns READONLY into this, after disconnecting
    if isinstance(exc, redis.ConnectionError) and ("refused" in text.lower() or "Error 111" in text):
        return "refused", False
    if isinstance(exc, redis.ConnectionError | OSError):
        return "closed", True
    return f"other:{type(exc).__name__}", True


def served_by(conn: redis.Redis) -> tuple[str, int] | None:
    """The address the client's (one) pooled connection is connected to, after a command."""
    idle = getattr(conn.connection_pool, "_available_connections", [])
    if not idle or getattr(idle[0], "_sock", None) is None:
        return None
    return idle[0].host, idle[0].port
