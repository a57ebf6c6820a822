"""One throwaway redis-server rendered from the project's template (no replicas, no Sentinels):
a local process through manage_redis_server.sh, or a testcontainers container on the compose
backend's image. For scenarios that need a fresh server with one specific config."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import redis

from lab import servers
from lab.backends.local import LocalBackend
from lab.errors import LabError
from lab.profile import load_profile
from lab.render import render_node
from lab.secretfiles import write_secret
from lab.servers import Server
from lab.spec import NODE_NAMES, LabSpec, Layout, Node, build_spec
from lab.topology import client, node_client
from lab.waits import WaitTimeout, wait_for


class StandaloneNode:
    def __init__(self, spec: LabSpec, node: Node, backend: str) -> None:
        self.spec, self.node, self.backend = spec, node, backend
        self.container: Any = None
        self.conn: redis.Redis = self._start()

    def _start(self) -> redis.Redis:
        if self.backend == "local":
            LocalBackend().start(self.spec, [self.node])
            return node_client(self.spec, self.node, timeout=5)
        from testcontainers.core.container import DockerContainer

        from lab.docker import resolve_image

        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled
        if self.container is None:
            node_dir = self.spec.files(self.node).dir
            self.container = (
                DockerContainer(resolve_image(self.spec.server(self.node), say=None))
                .with_volume_mapping(str(node_dir), "/data", "rw")
                .with_command(f"redis-server /data/redis.conf --bind 0.0.0.0 --port {self.node.port}")
                .with_kwargs(user="0:0")
            )
            self.container.start()
        else:
            self.container.get_wrapped_container().start()
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        host = wrapped.attrs["NetworkSettings"]["IPAddress"]
        auth = self.spec.auth("redis")
        conn = client(
            host, self.node.port, auth["password"], timeout=5, username=auth["username"], **self.spec.tls_kwargs()
        )

        def answers() -> tuple[bool, str]:
            try:
                conn.ping()
            except (redis.ConnectionError, redis.BusyLoadingError) as exc:
                return False, str(exc)
            return True, "PONG"

        try:
            wait_for(answers, what=f"the container of {self.node.name} to answer", timeout=20, interval=0.05)
        except WaitTimeout as exc:
            raise LabError(f"container for {self.node.name} did not answer ({exc.last_seen})") from None
        return conn

    def kill(self) -> None:
        """SIGKILL the server (it stays down until :meth:`restart`)."""
        if self.backend == "local":
            LocalBackend().signal_node(self.spec, self.node, signal.SIGKILL)
        else:
            self.container.get_wrapped_container().kill(signal="SIGKILL")

    def restart(self) -> None:
        self.conn.close()
        if self.backend == "local":
            backend = LocalBackend()
            backend.stop(self.spec, [self.node])
        elif self.container.get_wrapped_container().status == "running":
            self.container.get_wrapped_container().stop(timeout=5)
        self.conn = self._start()

    def remove(self) -> None:
        self.conn.close()
        if self.backend == "local":
            LocalBackend().stop(self.spec, [self.node])
        elif self.container is not None:
            self.container.stop()


def standalone(
    base_dir: Path, name: str, backend: str, profile: str = "lab", server: Server | None = None, **overrides: Any
) -> StandaloneNode:
    """Render redis-1 of ``profile`` (with ``redis:`` ``overrides``) for ``server`` (default: the
    system's build) into ``base_dir`` and start it."""
    loaded = load_profile(profile)
    loaded.redis.update(overrides)
    layout: Layout = "compose" if backend == "compose" else "local"
    spec = build_spec(
        name,
        loaded,
        backend=backend,
        base_dir=base_dir,
        layout=layout,
        # A container's address is known only once it runs: the rendered bind is a placeholder that
        # the container's command line replaces (--bind 0.0.0.0); clients use the container's IP.
        net="172.29.255" if layout == "compose" else None,
        servers={n: server or servers.system() for n in NODE_NAMES},
    )
    node = spec.initial_master
    conf = spec.files(node).conf
    conf.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    write_secret(conf, render_node(spec, loaded, node))
    return StandaloneNode(spec, node, backend)
