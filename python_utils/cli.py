"""``redis-admin``: sessions, cache, rate limits and pub/sub from the command line.

Connection from flags or the environment (REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, SENTINEL_HOSTS,
SENTINEL_MASTER_NAME, SENTINEL_PASSWORD, REDIS_*_DB_INDEX). Destructive commands that match more
than one key need --yes; --dry-run lists what would go.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import redis

from redis_ha_admin.cache_admin_tools import CacheAdmin
from redis_ha_admin.pubsub_diagnostics import PubSubAdmin
from redis_ha_admin.rate_limit_utils import RateLimitAdmin
from redis_ha_admin.redis_connector import (
    RedisAdminError,
    Settings,
    connect,
    parse_sentinels,
    role_db,
    settings_from_env,
)
from redis_ha_admin.scanning import Progress, count_keys
from redis_ha_admin.session_utils import SESSION_PREFIX, SessionAdminTools
from redis_ha_admin.values import text

T = TypeVar("T")
ROLE_OF = {"sessions": "session", "cache": "cache", "ratelimit": "cache", "pubsub": "pubsub"}


#: The arguments being parsed, so that an error about them never repeats a password given on the command line.
_ARGV: list[str] = []


def redact(message: str, argv: Sequence[str]) -> str:
    """``message`` with every value given to an option that looks like a password's (``--password X``,
    ``--password=X``, mistyped ones such as ``--pasword``) replaced by ***: argparse quotes unknown
    arguments and bad choices verbatim."""
    for i, arg in enumerate(argv):
        name = arg.partition("=")[0].lstrip("-").lower()
        if arg.startswith("-") and (
            name.startswith(("pa", "pw")) or any(w in name for w in ("pass", "secret", "auth"))
        ):
            value = arg.partition("=")[2] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            if value:
                message = message.replace(value, "***")
    return message


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {redact(message, _ARGV)} (see {self.prog} --help)", file=sys.stderr)
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


def _db(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a database index (0, 1, ...), got {text!r}")
    return int(text)


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
    p.add_argument("--user", help="ACL user (default $REDIS_USERNAME; the password is always $REDIS_PASSWORD)")
    p.add_argument("--db", type=_db, help="database index (default: the role's REDIS_*_DB_INDEX)")
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
            c.add_argument("--prefix", default=SESSION_PREFIX)
            c = command(ap, "list", "list session keys matching a pattern")
            c.add_argument("pattern", nargs="?", default=f"{SESSION_PREFIX}*", type=_key)
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
        from redis_ha_admin.scanning import scan_keys

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
    env = settings_from_env()  # the environment, with what the flags say on top
    return dataclasses.replace(
        env,
        host=args.host or env.host,
        port=args.port or env.port,
        sentinels=parse_sentinels(",".join(args.sentinel)) if args.sentinel else env.sentinels,
        master_name=args.master_name or env.master_name,
        timeout=args.timeout,
        username=args.user or env.username,
    )


@dataclass
class Context:
    """What every command gets: its arguments, a checked client of the role's database, progress."""

    args: argparse.Namespace
    client: redis.Redis
    db: int
    progress: Progress | None


def sessions_count(c: Context) -> int:
    count = SessionAdminTools(c.client).count_active_sessions(c.args.prefix, c.progress)
    _emit(c.args, {"prefix": c.args.prefix, "db": c.db, "count": count}, lambda d: str(d["count"]))
    return 0


def sessions_list(c: Context) -> int:
    _stream(c.args, SessionAdminTools(c.client).list_sessions_by_pattern(c.args.pattern, c.progress))
    return 0


def sessions_show(c: Context) -> int:
    tools = SessionAdminTools(c.client)
    details = _found(tools.get_session_details(c.args.session_id), f"session {tools.key(c.args.session_id)!r}", c.db)
    _emit(c.args, details, lambda d: json.dumps(d, indent=2, default=str))
    return 0


def sessions_clear(c: Context) -> int:
    key = SessionAdminTools(c.client).key(c.args.session_id) if c.args.session_id else None
    return _clear(c.args, c.client, key, c.progress)


def cache_keys(c: Context) -> int:
    _stream(c.args, CacheAdmin(c.client).list_cache_keys(c.args.pattern, c.progress))
    return 0


def cache_get(c: Context) -> int:
    if not c.client.exists(c.args.key):
        raise RedisAdminError(f"no key {c.args.key!r} in db {c.db}")
    value = CacheAdmin(c.client).get_cache_value(c.args.key)
    _emit(c.args, value, lambda v: v if isinstance(v, str) else json.dumps(v, indent=2))
    return 0


def cache_ttl(c: Context) -> int:
    ttl = CacheAdmin(c.client).get_cache_ttl(c.args.key)
    human = {-2.0: "no such key", -1.0: "no expiry"}
    _emit(c.args, {"key": text(c.args.key), "ttl": ttl}, lambda d: human.get(d["ttl"], f"{d['ttl']:g}s"))
    return 0


def cache_delete(c: Context) -> int:
    print("deleted" if CacheAdmin(c.client).delete_cache_key(c.args.key) else f"no key {c.args.key!r} in db {c.db}")
    return 0


def cache_flush(c: Context) -> int:
    def flush() -> int:
        return CacheAdmin(c.client).flush_cache_by_pattern(c.args.pattern, c.progress)

    return _guarded_delete(c.args, c.client, c.args.pattern, flush, c.progress)


def ratelimit_list(c: Context) -> int:
    _stream(c.args, RateLimitAdmin(c.client).list_rate_limit_keys(c.args.pattern, c.progress))
    return 0


def ratelimit_get(c: Context) -> int:
    value = _found(RateLimitAdmin(c.client).get_rate_limit_value(c.args.key), f"counter {c.args.key!r}", c.db)
    _emit(c.args, value, lambda d: f"{d['key']}: {d['value']} ({d['shape']}, ttl {d['ttl']:g}s)")
    return 0


def ratelimit_reset(c: Context) -> int:
    return _clear(c.args, c.client, c.args.key, c.progress)


def pubsub_channels(c: Context) -> int:
    channels = PubSubAdmin(c.client).list_active_channels(c.args.pattern)
    _emit(c.args, channels, lambda cs: "\n".join(cs) or "(no active channels)")
    return 0


def pubsub_numsub(c: Context) -> int:
    pubsub = PubSubAdmin(c.client)
    data = {
        "channels": {text(ch): pubsub.get_channel_subscriber_count(ch) for ch in c.args.channels},
        "pattern_subscriptions": pubsub.get_pattern_subscription_count(),
        "shard_channels": pubsub.list_shard_channels(),
    }

    def human(d: dict[str, Any]) -> str:
        lines = [f"{ch}: {n}" for ch, n in d["channels"].items()]
        return "\n".join([*lines, f"pattern subscriptions: {d['pattern_subscriptions']}"])

    _emit(c.args, data, human)
    return 0


def pubsub_publish(c: Context) -> int:
    print(f"delivered to {PubSubAdmin(c.client).publish_test_message(c.args.channel, c.args.message)} subscriber(s)")
    return 0


#: (area, command) -> what runs it (tests/unit/test_admin_cli.py: the parser offers exactly these).
COMMANDS: dict[tuple[str, str], Callable[[Context], int]] = {
    ("sessions", "count"): sessions_count,
    ("sessions", "list"): sessions_list,
    ("sessions", "show"): sessions_show,
    ("sessions", "clear"): sessions_clear,
    ("cache", "keys"): cache_keys,
    ("cache", "get"): cache_get,
    ("cache", "ttl"): cache_ttl,
    ("cache", "delete"): cache_delete,
    ("cache", "flush"): cache_flush,
    ("ratelimit", "list"): ratelimit_list,
    ("ratelimit", "get"): ratelimit_get,
    ("ratelimit", "reset"): ratelimit_reset,
    ("pubsub", "channels"): pubsub_channels,
    ("pubsub", "numsub"): pubsub_numsub,
    ("pubsub", "publish"): pubsub_publish,
}


def run(args: argparse.Namespace) -> int:
    db = args.db if args.db is not None else role_db(ROLE_OF[args.area])
    progress = _progress(args.progress)
    code = COMMANDS[(args.area, args.command)](Context(args, connect(_settings(args), db=db), db, progress))
    if progress:
        print("\r", end="", file=sys.stderr)
    return code


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
    from redis_ha_admin.scanning import unlink_matching

    return _guarded_delete(
        args, client, args.pattern, lambda: unlink_matching(client, args.pattern, progress=progress), progress
    )


def main(argv: Sequence[str] | None = None) -> int:
    # A key that is not UTF-8 is printed with backslash escapes, never a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    _ARGV[:] = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if (args.area, args.command) == ("sessions", "clear") and args.pattern is not None:
        # A session command deletes sessions only: '*' (or any pattern that can match another key) is
        # refused before connecting, even when one key would match (issue 24: it took a non-session key).
        pattern: str | bytes = args.pattern
        if not (pattern.encode() if isinstance(pattern, str) else pattern).startswith(SESSION_PREFIX.encode()):
            parser.error(
                f"--pattern {args.pattern!r} can match keys that are not sessions: start it with "
                f"{SESSION_PREFIX!r} (`cache flush PATTERN --yes` deletes any key)"
            )
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
