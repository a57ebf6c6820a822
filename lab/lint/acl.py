"""ACL `user` lines as Redis reads them: who exists, whether they can log in with a given password,
and what they may run (rules applied left to right, case-insensitively, as ACL SETUSER does)."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass, field

from lab.confparse import ConfFile, Directive
from lab.render import SENTINEL_COORDINATED

#: What Sentinel runs on the data nodes (Redis's Sentinel documentation, "Redis ACL").
SENTINEL_NEEDS = frozenset(
    {"multi", "slaveof", "ping", "exec", "subscribe", "config|rewrite", "role", "publish", "info"}
    | {"client|setname", "client|kill", "script|kill"}
)
#: What Valkey 9's SENTINEL FAILOVER <master> COORDINATED also runs there (the old master hands over by FAILOVER).
SENTINEL_MAY = SENTINEL_NEEDS | frozenset(SENTINEL_COORDINATED)
#: The channel Sentinels announce themselves and the master on: whoever may publish there can send
#: every Sentinel to an address of its choice (a forged hello), so only Sentinel's user may.
SENTINEL_HELLO = "__sentinel__:hello"
#: What a replica runs on its master.
REPLICA_NEEDS = frozenset({"psync", "replconf", "ping"})
#: Commands an application must never reach, whatever its categories say.
NEVER_FOR_APPS = frozenset(
    {"flushall", "flushdb", "config", "config|set", "config|rewrite", "config|resetstat", "debug", "shutdown"}
    | {"keys", "acl", "acl|setuser", "acl|deluser", "save", "bgsave", "bgrewriteaof", "replicaof", "slaveof"}
    | {"failover", "monitor", "module"}
)
#: ACL categories of the commands lint asks about (COMMAND INFO, Redis 7.0).
_ADMIN = frozenset({"admin", "slow", "dangerous"})
CATEGORIES = {
    "flushall": frozenset({"keyspace", "write", "slow", "dangerous"}),
    "flushdb": frozenset({"keyspace", "write", "slow", "dangerous"}),
    "keys": frozenset({"keyspace", "read", "slow", "dangerous"}),
    **dict.fromkeys(("config", "debug", "shutdown", "acl", "save", "bgsave", "bgrewriteaof"), _ADMIN),
    **dict.fromkeys(("replicaof", "slaveof", "failover", "monitor", "module", "psync", "replconf", "role"), _ADMIN),
    "info": frozenset({"slow", "dangerous"}),
    "ping": frozenset({"fast", "connection"}),
    "multi": frozenset({"fast", "transaction"}),
    "exec": frozenset({"slow", "transaction"}),
    "subscribe": frozenset({"pubsub", "slow"}),
    "publish": frozenset({"pubsub", "fast"}),
    "client": frozenset({"slow", "connection"}),
    "script": frozenset({"slow", "scripting"}),
}
ALL = frozenset({"+@all", "allcommands"})
NONE = frozenset({"-@all", "nocommands"})


@dataclass
class AclUser:
    name: str
    directive: Directive
    on: bool = False
    nopass: bool = False
    hashes: set[str] = field(default_factory=set)  # SHA-256 (hex) of every password it accepts
    plain: list[str] = field(default_factory=list)  # passwords written in clear (>password)
    #: Command rules in order (lower case): +@all, -@dangerous, +get, allcommands, ...
    commands: list[str] = field(default_factory=list)
    #: Pub/sub channel patterns (&pattern), or every channel (allchannels, &*)
    channels: list[str] = field(default_factory=list)
    allchannels: bool = False

    def may_use_channel(self, channel: str) -> bool:
        """Whether PUBLISH/SUBSCRIBE on ``channel`` passes the user's channel patterns (glob)."""
        return self.allchannels or any(fnmatch.fnmatchcase(channel, pattern) for pattern in self.channels)

    def channel_rules(self) -> str:
        return "allchannels" if self.allchannels else " ".join(f"&{c}" for c in self.channels) or "no channel"

    def accepts(self, password: str) -> bool:
        return self.on and (self.nopass or hashlib.sha256(password.encode()).hexdigest() in self.hashes)

    def all_commands(self) -> bool:
        """Every command: the last +@all/allcommands (or -@all) is +@all, with nothing taken away after."""
        state = False
        for rule in self.commands:
            state = rule in ALL or (state and not rule.startswith("-") and rule not in NONE)
        return state

    def may_run(self, command: str) -> bool:
        """Whether the rules, applied in order, leave ``command`` (``config|get`` for a subcommand)
        allowed. Categories are resolved with :data:`CATEGORIES` (the commands lint asks about)."""
        base = command.split("|")[0]
        categories = CATEGORIES.get(base, frozenset())
        allowed = False
        for rule in self.commands:
            sign, what = rule[0] == "+" or rule == "allcommands", rule.lstrip("+-")
            if rule in ALL or rule in NONE:
                allowed = rule in ALL
            elif what.startswith("@"):
                allowed = sign if what[1:] in categories else allowed
            elif what in (command, base):
                allowed = sign
        return allowed

    def granted(self) -> set[str]:
        """Single commands (and subcommands) granted by name and not taken back."""
        granted: set[str] = set()
        for rule in self.commands:
            if rule in NONE:
                granted.clear()
            elif rule.startswith("+") and not rule.startswith("+@"):
                granted.add(rule[1:])
            elif rule.startswith("-") and not rule.startswith("-@"):
                granted.discard(rule[1:])
        return granted

    def broad(self) -> list[str]:
        """What makes the user broader than a list of single commands: every command, or categories."""
        found: list[str] = []
        for rule in self.commands:
            if rule in ALL:
                found = ["every command"]
            elif rule in NONE:
                found = []
            elif rule.startswith("+@"):
                found.append(rule[1:])
        return found


def acl_users(conf: ConfFile) -> dict[str, AclUser]:
    """The file's `user` lines (a user without any is not defined by this file). A new user starts
    with every channel when the file says `acl-pubsub-default allchannels` (Redis 6.2's default)."""
    users: dict[str, AclUser] = {}
    every_channel = conf.value("acl-pubsub-default", "resetchannels").lower() == "allchannels"
    for directive in conf.all("user"):
        if not directive.args:
            continue
        name = directive.args[0]
        user = users.setdefault(name, AclUser(name, directive, allchannels=every_channel))
        for token in directive.args[1:]:
            word = token.lower()
            if word in ("on", "off"):
                user.on = word == "on"
            elif word == "nopass":
                user.nopass, user.hashes, user.plain = True, set(), []
            elif word in ("resetpass", "reset"):
                user.nopass, user.hashes, user.plain = False, set(), []
                if word == "reset":
                    user.on, user.commands = False, ["-@all"]
                    user.channels, user.allchannels = [], every_channel
            elif word == "resetchannels":
                user.channels, user.allchannels = [], False
            elif word == "allchannels" or token == "&*":
                user.channels, user.allchannels = [], True
            elif token.startswith("&"):
                user.channels.append(token[1:])
            elif token.startswith(">"):
                user.plain.append(token[1:])
                user.hashes.add(hashlib.sha256(token[1:].encode()).hexdigest())
                user.nopass = False
            elif token.startswith("#"):
                user.hashes.add(token[1:].lower())
                user.nopass = False
            elif word in ALL or word in NONE or word[:1] in "+-":
                user.commands.append(word)
    return users


def default_user(conf: ConfFile) -> AclUser | None:
    """The default user as the file leaves it: its `user default` line, else what requirepass makes
    of it (on, all commands, that password); None when neither is there (on, no password)."""
    users = acl_users(conf)
    if "default" in users:
        return users["default"]
    password = conf.get("requirepass")
    if password is None:
        return None
    user = AclUser("default", password, on=True, commands=["+@all"])
    if password.value:
        user.hashes.add(hashlib.sha256(password.value.encode()).hexdigest())
        user.plain.append(password.value)
    else:
        user.nopass = True
    return user


def authenticated(conf: ConfFile) -> bool:
    """Clients must log in: requirepass, or a default user that is off or has a password."""
    default = default_user(conf)
    return default is not None and (not default.on or not default.nopass)


@dataclass(frozen=True)
class Login:
    """How replication (masteruser/masterauth) or Sentinel (auth-user/auth-pass) logs in to a data node."""

    user: str  # "default" when only a password is sent (AUTH password), or nothing at all
    password: str | None  # None: no AUTH is sent (masteruser or auth-user alone is ignored)
    directive: Directive | None  # the line that configures it, to point at

    @property
    def named(self) -> bool:
        """AUTH user password: the user is named."""
        return self.password is not None and self.user != "default"


def replication_login(conf: ConfFile) -> Login:
    """What a data node sends to its master: AUTH masteruser masterauth, AUTH masterauth, or nothing
    (Redis ignores masteruser without masterauth)."""
    user, auth = conf.get("masteruser"), conf.get("masterauth")
    if auth is None:
        return Login("default", None, user or conf.get("replicaof") or conf.get("slaveof"))
    return Login(user.value if user else "default", auth.value, user or auth)


def sentinel_login(conf: ConfFile) -> Login:
    """What a Sentinel sends to every data node (Sentinel ignores auth-user without auth-pass)."""
    user, auth = conf.get("sentinel auth-user"), conf.get("sentinel auth-pass")
    name = user.args[1] if user and len(user.args) > 1 else "default"
    if auth is None or len(auth.args) < 2:
        return Login("default", None, user or conf.get("sentinel monitor"))
    return Login(name, auth.args[1], user or auth)


def login_users(conf: ConfFile) -> dict[str, AclUser]:
    """Every user a client can log in as on this node, the default user included (as requirepass, a
    `user default` line or its absence leave it)."""
    users = acl_users(conf)
    if "default" not in users:
        nobody = Directive("user", ("default",), conf.path, 0)  # no requirepass: on, nopass, every command
        users["default"] = default_user(conf) or AclUser("default", nobody, on=True, nopass=True, commands=["+@all"])
    return users


def login_problem(users: dict[str, AclUser], login: Login | tuple[str, str], needs: frozenset[str]) -> str:
    """Why ``login`` cannot log in and run ``needs`` on a node with ``users`` ("" when it can)."""
    name, password = (login.user, login.password) if isinstance(login, Login) else login
    user = users.get(name)
    if user is None:
        return f"there is no user {name}"
    if not user.on:
        return f"user {name} is off"
    if password is None and not user.nopass:
        return "no password is sent and the default user needs one"
    if password is not None and not user.accepts(password):
        return f"the password is not user {name}'s"
    missing = sorted(c for c in needs if not user.may_run(c))
    return f"user {name} may not run {' '.join(missing)}" if missing else ""
