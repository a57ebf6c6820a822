"""Client adapters for the client matrix: a small program per client library that reads one JSON
config, runs the drill's workload through the lab's Sentinels and writes lab.drill.history records.

The config (written 0600: it holds passwords, which never go on a command line; the adapter deletes it
as soon as it has read it, and an interrupted command deletes it if the adapter did not get that far)::

    {"client": "ioredis", "settings": "defaults" | "recommended",
     "sentinels": [["127.1.2.11", 26379], ...], "master_name": "mymaster",
     "username": "app" | null, "password": "...",          # the app user with ACL users, else default
     "sentinel_username": "client" | null, "sentinel_password": "...",
     "tls": {"ca": "...", "cert": "...", "key": "..."} | null,   # PEM files; null: plain text
     "workload": {"clients": 2, "prefix": "m:ioredis:kill-master", "duration_s": 12},
     "epoch_ms": 1764460000000.0,          # wall-clock ms of the drill's t=0 (one clock for all)
     "out": "/path/history-ioredis.jsonl"}

The adapter connects its clients, prints ``READY`` on a line of its own, then runs the workload for
``duration_s`` from that moment (the drill's faults are timed from READY, so a slow start of the
client's runtime never eats into the drill). Each of ``clients`` workers RPUSHes increasing
integers onto ``<prefix>:<worker>``; every operation
is an invoke/ok/fail/info record (``error`` is the matrix's class: READONLY, NOREPLICAS, refused,
timeout, closed, other:...), and the library's own events are ``client`` records.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lab import CLIENTS_DIR, interrupts
from lab.spec import LabSpec

NODE_DIR = CLIENTS_DIR / "node"
SETTINGS = ("defaults", "recommended")
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class Client:
    name: str
    adapter: Callable[[Path], list[str]]  # argv that runs the adapter on a config file
    missing: Callable[[], str | None]  # why it cannot run here (None: it can)
    version: Callable[[], str]


def _node_missing() -> str | None:
    if shutil.which("node") is None:
        return "Node.js is not installed (Node 20+; Debian: apt-get install nodejs npm)"
    if not (NODE_DIR / "node_modules" / "ioredis").is_dir():
        return f"the Node clients are not installed: npm ci --prefix {NODE_DIR} (make clients does it)"
    return None


def node_version() -> str | None:
    """``node --version`` without its v, or None without Node.js."""
    if shutil.which("node") is None:
        return None
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    return out.strip().lstrip("v") or None


def _npm_version(package: str) -> Callable[[], str]:
    def version() -> str:
        try:
            data = json.loads((NODE_DIR / "node_modules" / package / "package.json").read_text())
        except (OSError, ValueError):
            return "not installed"
        return str(data.get("version", "?"))

    return version


def _redis_py_version() -> str:
    import redis

    return str(redis.__version__)


CLIENTS: dict[str, Client] = {
    "redis-py": Client(
        "redis-py",
        lambda config: [sys.executable, "-m", "lab.drill.clients.redispy", str(config)],
        lambda: None,
        _redis_py_version,
    ),
    "ioredis": Client(
        "ioredis",
        lambda config: ["node", str(NODE_DIR / "ioredis-adapter.mjs"), str(config)],
        _node_missing,
        _npm_version("ioredis"),
    ),
    "node-redis": Client(
        "node-redis",
        lambda config: ["node", str(NODE_DIR / "node-redis-adapter.mjs"), str(config)],
        _node_missing,
        _npm_version("redis"),
    ),
}


def glide_sentinel_support() -> str:
    """Whether valkey-glide (if installed) can connect through Sentinel: it has no Sentinel mode to
    configure (GlideClientConfiguration takes fixed addresses; upstream valkey-io/valkey-glide#2761)."""
    try:
        import glide  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "valkey-glide is not installed (pip install valkey-glide): not measured"
    names = [n for n in dir(glide) if "sentinel" in n.lower()]
    version = getattr(glide, "__version__", None) or _dist_version("valkey-glide")
    if names:
        return f"valkey-glide {version} has Sentinel support ({', '.join(names)}): add an adapter"
    return f"valkey-glide {version}: no Sentinel support (no Sentinel option in its client configuration)"


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def connection_config(spec: LabSpec) -> dict[str, Any]:
    """How a Node client reaches the lab (an adapter's config, common.mjs's loadConfig): the Sentinels, the
    master's name, the application's and the Sentinel client's users and passwords, and the lab's CA and
    client certificate (PEM paths; None: plain text). It holds passwords: written 0600, deleted once read."""
    files = spec.tls_files() if spec.tls else None
    return {
        "sentinels": [[n.host, n.port] for n in spec.sentinels],
        "master_name": spec.master_name,
        **spec.auth("redis", "app"),
        **{f"sentinel_{k}": v for k, v in spec.auth("sentinel", "client").items()},
        "tls": {"ca": str(files.ca), "cert": str(files.client_cert), "key": str(files.client_key)} if files else None,
    }


class AdapterRun:
    """One adapter process for one drill: start it with a config, wait for it, read its records."""

    def __init__(
        self, client: Client, spec: LabSpec, settings: str, workdir: Path | None, *, clients: int, prefix: str
    ) -> None:
        """``workdir``: where its files go (a drill's report directory); None: a directory of its own in the
        system's temporary directory, removed with them (by :meth:`wait`, or by :meth:`kill` on an interrupt)."""
        if settings not in SETTINGS:
            raise ValueError(f"settings {settings!r}")
        self.client, self.spec, self.settings = client, spec, settings
        self.workdir, self.clients, self.prefix = workdir, clients, prefix
        self.scratch: Path | None = None
        self.process: subprocess.Popen[str] | None = None
        self.log: TextIO | None = None

    def _file(self, kind: str, suffix: str) -> Path:
        assert self.workdir is not None, "the adapter has not started"
        return self.workdir / f"{kind}-{self.client.name}-{self.settings}.{suffix}"

    @property
    def out(self) -> Path:
        return self._file("history", "jsonl")

    @property
    def config_path(self) -> Path:
        return self._file("config", "json")

    @property
    def log_path(self) -> Path:
        return self._file("adapter", "log")

    def _drop_scratch(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def start(self, epoch_ms: float, duration: float) -> None:
        interrupts.undo_on_interrupt(self.key, self.kill)  # (before anything is made)
        if self.workdir is None:
            self.workdir = self.scratch = Path(tempfile.mkdtemp(prefix="lab-drill-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "client": self.client.name,
            "settings": self.settings,
            **connection_config(self.spec),
            "workload": {"clients": self.clients, "prefix": self.prefix, "duration_s": duration},
            "epoch_ms": epoch_ms,
            "out": str(self.out),
        }
        path = self.config_path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(config, handle)
        log = self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.client.adapter(path),
            stdin=subprocess.PIPE,  # closed by stop(): the adapter ends its workload then
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        ready = select.select([self.process.stdout], [], [], READY_TIMEOUT)[0]
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != "READY":
            self.process.kill()
            self.process.wait()
            log.close()
            path.unlink(missing_ok=True)
            interrupts.done(self.key)
            why = line.strip() or self.log_path.read_text(errors="replace").strip()[-300:] or "no output"
            self._drop_scratch()
            raise RuntimeError(f"{self.client.name} adapter did not get ready within {READY_TIMEOUT:g}s: {why}")

    @property
    def key(self) -> str:
        return f"{self.client.name} adapter ({self.settings})"

    def kill(self) -> str | None:
        """An interrupt: end the adapter at once and delete its config (it holds the lab's passwords)
        if it is still there; says what it did."""
        did = []
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            did.append(f"stopped the {self.key}")
        if self.workdir is not None and self.config_path.exists():
            self.config_path.unlink(missing_ok=True)
            did.append(f"deleted its config {self.config_path} (it holds the lab's passwords)")
        if self.log is not None:
            self.log.close()
        self._drop_scratch()
        interrupts.done(self.key)
        return "; ".join(did) or None

    def stop(self) -> None:
        """End the workload now: the adapter stops when its stdin closes (or at its safety deadline)."""
        if self.process is not None and self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def wait(self, timeout: float) -> list[dict[str, Any]]:
        """The adapter's records, once it has stopped (:meth:`stop`). Its own files go once read: the
        records end up in the report's history.jsonl, and the config holds the lab's passwords."""
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.log is not None:
            self.log.close()
        try:
            if not self.out.exists():
                tail = self.log_path.read_text(errors="replace")[-500:]
                raise RuntimeError(
                    f"{self.client.name} adapter wrote no history (exit {self.process.returncode}): {tail}"
                )
            with self.out.open() as handle:
                return [json.loads(line) for line in handle if line.strip()]
        finally:
            self.out.unlink(missing_ok=True)
            self.config_path.unlink(missing_ok=True)
            interrupts.done(self.key)
            if self.log_path.exists() and self.log_path.stat().st_size == 0:
                self.log_path.unlink()
            self._drop_scratch()
