"""Read Redis and Sentinel config files the way redis-server does: one directive per line, arguments
split with double/single quotes, ``include`` followed (relative to the including file), later
values overriding earlier ones except for repeatable directives."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError

#: Valkey's spellings of Redis directives (what Valkey 8.1's CONFIG REWRITE writes), read as the
#: Redis name so every rule and comparison sees one vocabulary.
ALIASES = {
    "primaryauth": "masterauth",
    "primaryuser": "masteruser",
    "commandlog-execution-slower-than": "slowlog-log-slower-than",
    "commandlog-slow-execution-max-len": "slowlog-max-len",
    "sentinel primary-reboot-down-after-period": "sentinel master-reboot-down-after-period",
}
#: Directives that may legitimately appear more than once.
REPEATABLE = {"save", "client-output-buffer-limit", "include", "rename-command", "loadmodule", "user", "bind"}


@dataclass(frozen=True)
class Directive:
    name: str  # lower case; Sentinel lines are "sentinel <sub>"
    args: tuple[str, ...]
    file: Path
    line: int

    @property
    def value(self) -> str:
        return " ".join(self.args)


@dataclass
class ConfFile:
    path: Path
    directives: list[Directive] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message): unparseable lines

    @property
    def is_sentinel(self) -> bool:
        return any(d.name == "sentinel monitor" for d in self.directives)

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.directives if d.name == name]

    def get(self, name: str) -> Directive | None:
        """The effective (last) occurrence of a directive."""
        found = self.all(name)
        return found[-1] if found else None

    def value(self, name: str, default: str = "") -> str:
        found = self.get(name)
        return found.value if found else default

    def flag(self, name: str, default: str = "") -> str:
        """A yes/no or enum value as Redis compares it: case-insensitively."""
        return self.value(name, default).lower()


class UnreadableConfig(LabError):
    """A config file that cannot be read or is not text; ``why`` says which."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.why = why


def _split(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def parse(path: Path, _seen: tuple[Path, ...] = ()) -> ConfFile:
    """Parse ``path`` (and its includes). Raises UnreadableConfig when the file cannot be read."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise UnreadableConfig(path, "not a text file") from None
    except OSError as exc:
        raise UnreadableConfig(path, f"cannot read ({exc.strerror})") from None
    return parse_text(text, path, _seen)


def parse_text(text: str, path: Path, _seen: tuple[Path, ...] = ()) -> ConfFile:
    """Parse config text as if it were the file ``path`` (includes relative to it)."""
    conf = ConfFile(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = _split(line)
        except ValueError as exc:
            conf.errors.append((number, f"cannot parse ({exc})"))
            continue
        name = words[0].lower()
        args = tuple(words[1:])
        if name == "sentinel" and args:
            name, args = f"sentinel {args[0].lower()}", args[1:]
        name = ALIASES.get(name, name)
        if name == "include" and args:
            target = Path(args[0]) if Path(args[0]).is_absolute() else path.parent / args[0]
            if target.resolve() in _seen or target.resolve() == path.resolve():
                conf.errors.append((number, f"include loop through {target}"))
                continue
            try:
                included = parse(target, (*_seen, path.resolve()))
            except LabError as exc:
                conf.errors.append((number, str(exc)))
                continue
            conf.directives.extend(included.directives)
            conf.errors.extend(included.errors)
        conf.directives.append(Directive(name, args, path, number))
    return conf
