"""Session administration: count, list, inspect and clear sessions (``session:<id>`` keys)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from redis_ha_admin.scanning import Progress, count_keys, scan_keys
from redis_ha_admin.values import describe, text

#: Where session keys live: the session commands never touch a key outside it.
SESSION_PREFIX = "session:"


class SessionAdminTools:
    def __init__(self, redis_client: redis.Redis, session_key_prefix: str = SESSION_PREFIX) -> None:
        self.client = redis_client
        self.prefix = session_key_prefix

    def key(self, session_id: str | bytes) -> str | bytes:
        """``session:<id>`` for an id; a full key as it is (bytes for a key that is not UTF-8)."""
        if isinstance(session_id, bytes):
            prefix = self.prefix.encode()
            return session_id if session_id.startswith(prefix) else prefix + session_id
        return session_id if session_id.startswith(self.prefix) else f"{self.prefix}{session_id}"

    def count_active_sessions(self, session_key_prefix: str | None = None, progress: Progress | None = None) -> int:
        """Keys under the prefix (expired sessions are already gone): SCAN, constant memory."""
        prefix = self.prefix if session_key_prefix is None else session_key_prefix
        return count_keys(self.client, f"{escape_glob(prefix)}*", progress=progress)

    def get_session_details(self, session_id: str | bytes) -> dict[str, Any] | None:
        """Type, TTL (seconds; -1 none) and the decoded value, or None when there is no such session."""
        return describe(self.client, self.key(session_id))

    def list_sessions_by_pattern(self, pattern: str | bytes, progress: Progress | None = None) -> Iterator[str]:
        """Session keys matching a glob (``session:user42:*``), streamed."""
        return (text(k) for k in scan_keys(self.client, pattern, progress=progress))

    def clear_session(self, session_id: str | bytes) -> bool:
        """Delete one session; False when it did not exist."""
        return bool(self.client.unlink(self.key(session_id)))


def escape_glob(literal: str) -> str:
    """A literal prefix made safe inside a SCAN MATCH pattern (*, ?, [ and \\ are special)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in literal)
