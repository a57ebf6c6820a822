"""Show any Redis value safely: text, JSON, hashes, collections and binary (pickles are described,
never unpickled: unpickling data from a server can run arbitrary code)."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis

PREVIEW = 64
MAX_ITEMS = 1000


def ttl_seconds(pttl: int) -> float:
    """PTTL as seconds to live: -1 for a key without expiry, -2 for a key that does not exist."""
    return float(pttl) if pttl < 0 else round(pttl / 1000, 3)


def text(raw: bytes | str) -> str:
    """A key or value as text; invalid UTF-8 shown with backslash escapes."""
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="backslashreplace")


def decode(raw: bytes | str) -> Any:
    """JSON where it is JSON, text where it is UTF-8, else a description of the bytes."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data[:1] == b"\x80" and data[-1:] == b".":
        return {
            "format": "pickle",
            "protocol": data[1] if len(data) > 1 else None,
            "bytes": len(data),
            "preview_hex": data[:PREVIEW].hex(),
        }
    try:
        as_text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {
            "format": "binary",
            "bytes": len(data),
            "base64": base64.b64encode(data[: PREVIEW * 4]).decode(),
            "truncated": len(data) > PREVIEW * 4,
        }
    try:
        return json.loads(as_text)
    except ValueError:
        return as_text


def describe(client: redis.Redis, key: bytes | str) -> dict[str, Any] | None:
    """{'key','type','ttl','value'} for any key type, or None when the key does not exist."""
    pipe = client.pipeline(transaction=False)
    pipe.type(key)
    pipe.pttl(key)
    kind_raw, pttl = pipe.execute()
    kind = text(kind_raw)
    if kind == "none":
        return None
    value: Any
    if kind == "string":
        value = decode(client.get(key) or b"")
    elif kind == "hash":
        value = {text(f): decode(v) for f, v in list(client.hscan_iter(key, count=500))[:MAX_ITEMS]}
    elif kind == "list":
        value = [decode(v) for v in client.lrange(key, 0, MAX_ITEMS - 1)]
    elif kind == "set":
        value = sorted(text(v) for v in list(client.sscan_iter(key, count=500))[:MAX_ITEMS])
    elif kind == "zset":
        members: list[tuple[bytes, float]] = client.zrange(key, 0, MAX_ITEMS - 1, withscores=True)  # type: ignore[assignment]
        value = [[text(m), s] for m, s in members]
    else:
        value = {"format": kind}
    return {"key": text(key), "type": kind, "ttl": ttl_seconds(int(pttl)), "value": value}
