"""``redis-admin``: sessions, cache, rate limits and pub/sub from the command line.

Connection from flags or the environment (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, SENTINEL_HOSTS,
SENTINEL_MASTER_NAME, SENTINEL_PASSWORD, REDIS_*_DB_INDEX). Destructive commands that match more
than one key need --yes; --dry-run lists what would go.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import redis

from python_utils.cache_admin_tools import CacheAdmin
from python_utils.pubsub_diagnostics import PubSubAdmin
from python_utils.rate_limit_utils import RateLimitAdmin
from python_utils.redis_connector import RedisAdminError, Settings, connect, parse_sentinels, role_db, settings_from_env
from python_utils.scanning import Progress, count_keys
from python_utils.session_utils import SessionAdminTools
from python_utils.values import text

T = TypeVar("T")
ROLE_OF = {"sessions": "session", "cache": "cache", "ratelimit": "cache", "pubsub": "pubsub"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def _key(text: str) -> str | bytes:
    """A key, pattern or channel from argv: Redis keys are bytes, so one that is not UTF-8 (Python
    decodes argv with surrogateescape) is sent as the very bytes the user typed."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (0: no limit), got {text!r}")
    return int(text)


def build_parser() -> Parser:
    p = Parser(prog="redis-admin", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--host", help="default $REDIS_HOST or localhost")
    p.add_argument("--port", type=int, help="default $REDIS_PORT or 6379")
    p.add_argument("--sentinel", action="append", metavar="HOST:PORT", help="go through Sentinel (repeatable)")
    p.add_argument("--master-name", help="default $SENTINEL_MASTER_NAME or mymaster")
    p.add_argument("--db", type=int, help="database index (default: the role's REDIS_*_DB_INDEX)")
    p.add_argument("--timeout", type=_positive, default=5.0, help="seconds per command (default 5)")
    p.add_argument("--progress", action="store_true", help="show scan progress even when stderr is not a terminal")
    sub = p.add_subparsers(dest="area", required=True, parser_class=Parser)

    def command(area: argparse.ArgumentParser, name: str, help_text: str, read: bool = True) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = area_subs[area].add_parser(name, help=help_text)
        if read:
            sp.add_argument("--json", action="store_true")
        return sp

    area_subs: dict[argparse.ArgumentParser, Any] = {}
    for area, help_text in (
        ("sessions", "session keys"),
        ("cache", "cache keys"),
        ("ratelimit", "rate-limit counters"),
        ("pubsub", "channels and subscribers"),
    ):
        ap = sub.add_parser(area, help=help_text)
        area_subs[ap] = ap.add_subparsers(dest="command", required=True, parser_class=Parser)
        if area == "sessions":
            c = command(ap, "count", "count sessions")
            c.add_argument("--prefix", default="session:")
            c = command(ap, "list", "list session keys matching a pattern")
            c.add_argument("pattern", nargs="?", default="session:*", type=_key)
            c.add_argument("--limit", type=_count, default=0)
            c = command(ap, "show", "a session's type, TTL and decoded value")
            c.add_argument("session_id", type=_key)
            c = command(ap, "clear", "delete a session, or every session matching --pattern", read=False)
            c.add_argument("session_id", nargs="?", type=_key)
            _destructive(c)
        elif area == "cache":
            c = command(ap, "keys", "list cache keys")
            c.add_argument("pattern", nargs="?", default="cache:*", type=_key)
            c.add_argument("--limit", type=_count, default=0)
            for name, what in (("get", "a cached value (JSON decoded)"), ("ttl", "seconds to live")):
                command(ap, name, what).add_argument("key", type=_key)
            command(ap, "delete", "delete one key", read=False).add_argument("key", type=_key)
            c = command(ap, "flush", "delete every key matching a pattern", read=False)
            c.add_argument("pattern", type=_key)
            c.add_argument("--yes", action="store_true", help="needed when more than one key matches")
            c.add_argument("--dry-run", action="store_true", help="list what would be deleted")
        elif area == "ratelimit":
            c = command(ap, "list", "list rate-limit keys")
            c.add_argument("pattern", nargs="?", default="ratelimit:*", type=_key)
            c.add_argument("--limit", type=_count, default=0)
            command(ap, "get", "a counter's current value, shape and TTL").add_argument("key", type=_key)
            c = command(ap, "reset", "reset a counter, or every counter matching --pattern", read=False)
            c.add_argument("key", nargs="?", type=_key)
            _destructive(c)
        else:
            command(ap, "channels", "active channels").add_argument("pattern", nargs="?", default="*")
            command(ap, "numsub", "subscribers per channel (and pattern/shard subscriptions)").add_argument(
                "channels", nargs="+"
            )
            c = command(ap, "publish", "publish a test message", read=False)
            c.add_argument("channel")
            c.add_argument("message")
    return p


def _destructive(c: argparse.ArgumentParser) -> None:
    c.add_argument("--pattern", type=_key, help="instead of one key: every key matching this glob")
    c.add_argument("--yes", action="store_true", help="needed when more than one key matches")
    c.add_argument("--dry-run", action="store_true", help="list what would be deleted")


def _progress(force: bool) -> Progress | None:
    if not (force or sys.stderr.isatty()):
        return None
    started = time.monotonic()
    last = [0.0]

    def show(n: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25:
            last[0] = now
            print(f"\r... {n} keys ({now - started:.1f}s)", end="", file=sys.stderr, flush=True)

    return show


def _emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human(data))


def _stream(args: argparse.Namespace, keys: Iterator[str]) -> None:
    limited = itertools.islice(keys, args.limit) if args.limit else keys
    if args.json:
        print(json.dumps(list(limited)))
    else:
        for key in limited:
            print(key)


def _guarded_delete(
    args: argparse.Namespace,
    client: redis.Redis,
    pattern: str | bytes,
    delete: Callable[[], int],
    progress: Progress | None,
) -> int:
    """Count first; more than one match needs --yes; --dry-run lists the keys instead."""
    if args.dry_run:
        from python_utils.scanning import scan_keys

        listed = 0
        for key in scan_keys(client, pattern):
            print(f"would delete {text(key)}")
            listed += 1
        print(f"{listed} key(s) match {pattern!r} (dry run: nothing deleted)")
        return 0
    matching = count_keys(client, pattern, progress=progress)
    if matching > 1 and not args.yes:
        raise RedisAdminError(
            f"{matching} keys match {pattern!r}: add --yes to delete them (or --dry-run to list them)"
        )
    deleted = delete()
    print(f"deleted {deleted} key(s) matching {pattern!r}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    env = settings_from_env()
    return Settings(
        host=args.host or env.host,
        port=args.port or env.port,
        password=os.environ.get("REDIS_PASSWORD") or None,
        sentinels=parse_sentinels(",".join(args.sentinel)) if args.sentinel else env.sentinels,
        master_name=args.master_name or env.master_name,
        sentinel_password=env.sentinel_password,
        timeout=args.timeout,
    )


def run(args: argparse.Namespace) -> int:
    db = args.db if args.db is not None else role_db(ROLE_OF[args.area])
    client = connect(_settings(args), db=db)
    progress = _progress(args.progress)
    area, cmd = args.area, args.command
    if area == "sessions":
        tools = SessionAdminTools(client)
        if cmd == "count":
            _emit(
                args,
                {"prefix": args.prefix, "db": db, "count": tools.count_active_sessions(args.prefix, progress)},
                lambda d: str(d["count"]),
            )
        elif cmd == "list":
            _stream(args, tools.list_sessions_by_pattern(args.pattern, progress))
        elif cmd == "show":
            details = _found(tools.get_session_details(args.session_id), f"session {tools.key(args.session_id)!r}", db)
            _emit(args, details, lambda d: json.dumps(d, indent=2, default=str))
        else:
            return _clear(args, client, tools.key(args.session_id) if args.session_id else None, progress)
    elif area == "cache":
        cache = CacheAdmin(client)
        if cmd == "keys":
            _stream(args, cache.list_cache_keys(args.pattern, progress))
        elif cmd == "get":
            if not client.exists(args.key):
                raise RedisAdminError(f"no key {args.key!r} in db {db}")
            _emit(args, cache.get_cache_value(args.key), lambda v: v if isinstance(v, str) else json.dumps(v, indent=2))
        elif cmd == "ttl":
            ttl = cache.get_cache_ttl(args.key)
            human = {-2.0: "no such key", -1.0: "no expiry"}
            _emit(args, {"key": args.key, "ttl": ttl}, lambda d: human.get(d["ttl"], f"{d['ttl']:g}s"))
        elif cmd == "delete":
            print("deleted" if cache.delete_cache_key(args.key) else f"no key {args.key!r} in db {db}")
        else:
            return _guarded_delete(
                args, client, args.pattern, lambda: cache.flush_cache_by_pattern(args.pattern, progress), progress
            )
    elif area == "ratelimit":
        limits = RateLimitAdmin(client)
        if cmd == "list":
            _stream(args, limits.list_rate_limit_keys(args.pattern, progress))
        elif cmd == "get":
            value = _found(limits.get_rate_limit_value(args.key), f"counter {args.key!r}", db)
            _emit(args, value, lambda d: f"{d['key']}: {d['value']} ({d['shape']}, ttl {d['ttl']:g}s)")
        else:
            return _clear(args, client, args.key, progress)
    else:
        pubsub = PubSubAdmin(client)
        if cmd == "channels":
            _emit(args, pubsub.list_active_channels(args.pattern), lambda cs: "\n".join(cs) or "(no active channels)")
        elif cmd == "numsub":
            data = {
                "channels": {c: pubsub.get_channel_subscriber_count(c) for c in args.channels},
                "pattern_subscriptions": pubsub.get_pattern_subscription_count(),
                "shard_channels": pubsub.list_shard_channels(),
            }
            _emit(
                args,
                data,
                lambda d: "\n".join(
                    [f"{c}: {n}" for c, n in d["channels"].items()]
                    + [f"pattern subscriptions: {d['pattern_subscriptions']}"]
                ),
            )
        else:
            print(f"delivered to {pubsub.publish_test_message(args.channel, args.message)} subscriber(s)")
    if progress:
        print("\r", end="", file=sys.stderr)
    return 0


def _found(value: T | None, what: str, db: int) -> T:
    if value is None:
        raise RedisAdminError(f"no {what} in db {db}")
    return value


def _clear(args: argparse.Namespace, client: redis.Redis, key: str | bytes | None, progress: Progress | None) -> int:
    if (key is None) == (args.pattern is None):
        raise RedisAdminError("give one key or --pattern, not both")
    if key is not None:
        print("deleted" if client.unlink(key) else f"no key {key!r}")
        return 0
    from python_utils.scanning import unlink_matching

    return _guarded_delete(
        args, client, args.pattern, lambda: unlink_matching(client, args.pattern, progress=progress), progress
    )


def main(argv: Sequence[str] | None = None) -> int:
    # A key that is not UTF-8 is printed with backslash escapes, never a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except RedisAdminError as exc:
        print(f"redis-admin: {exc}", file=sys.stderr)
        return 1
    except redis.ResponseError as exc:
        print(f"redis-admin: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"redis-admin: connection lost: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"redis-admin: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
